"""Scale-out on `torch.distributed`, launched by `torchrun` (NCCL on GPUs, gloo on CPUs).

A run in one process uses `Dist()` (world 1): every method is then a no-op or the identity, so the
single-process code path is the distributed one with W = 1. Under `torchrun` (`RANK`, `WORLD_SIZE`
and `LOCAL_RANK` in the environment) `from_env` joins the process group:

- warm-up, stage 1 and the fully-train stage are data-parallel: all ranks draw the same candidate and
  the same global batch from a shared generator, each works on its slice (`shard`), gradients and
  BatchNorm statistics are averaged (`average_grads`, `average_buffers`);
- evaluation splits the population across ranks and gathers the records (`gather`);
- stage 2 gives every rank its own GAN pairs and gathers their weights after each block of W pairs.

Python objects (records, state dicts moved to the CPU, the stop flag) travel on a gloo group, so
they never need a CUDA device of the right index; tensors of the training steps travel on the
default group (NCCL on CUDA).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import torch
from torch import nn

T = TypeVar("T")


def launched() -> bool:
    """True inside a process started by torchrun (or another launcher that sets the env)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str = ""
    objects: Any = field(default=None, repr=False)  # the gloo group for Python objects

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    # ------------------------------------------------------------------- collectives
    def any(self, flag: bool) -> bool:
        """True on every rank when `flag` is true on at least one (the stop request)."""
        return self.flags(flag)[0]

    def flags(self, *flags: bool) -> tuple[bool, ...]:
        """For each flag: is it true on any rank? (one all-reduce for all of them)"""
        if not self.active:
            return flags
        import torch.distributed as td

        t = torch.tensor([1 if f else 0 for f in flags], dtype=torch.int32)
        td.all_reduce(t, op=td.ReduceOp.MAX, group=self.objects)
        return tuple(bool(v) for v in t.tolist())

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order, on every rank (tensors must be on the CPU)."""
        if not self.active:
            return [obj]
        import torch.distributed as td

        out: list[Any] = [None] * self.world
        td.all_gather_object(out, obj, group=self.objects)
        return out

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        if not self.active:
            return obj
        import torch.distributed as td

        box = [obj if self.rank == src else None]
        td.broadcast_object_list(box, src=src, group=self.objects)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as td

            td.barrier(group=self.objects)

    # --------------------------------------------------------------- data parallelism
    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a global batch (equal slices when W divides the batch size)."""
        if not self.active:
            return batch
        n = batch.shape[0]
        return batch[self.rank * n // self.world : (self.rank + 1) * n // self.world]

    def average_grads(self, params: Iterable[nn.Parameter]) -> None:
        """Average the gradients of `params` over the ranks (one flat all-reduce)."""
        if not self.active:
            return
        import torch.distributed as td

        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        td.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def average_buffers(self, module: nn.Module) -> None:
        """Average BatchNorm running statistics, which each rank estimated on its own slice."""
        if not self.active:
            return
        import torch.distributed as td

        bufs = [
            b
            for m in module.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)
            for b in (m.running_mean, m.running_var)
            if b is not None
        ]
        if not bufs:
            return
        flat = torch.cat([b.reshape(-1) for b in bufs])
        td.all_reduce(flat)
        flat /= self.world
        offset = 0
        for b in bufs:
            b.copy_(flat[offset : offset + b.numel()].view_as(b))
            offset += b.numel()

    def close(self) -> None:
        if self.active:
            import torch.distributed as td

            if td.is_initialized():
                td.destroy_process_group()


def to_cpu(obj: Any) -> Any:
    """A copy of a nested structure of tensors with every tensor on the CPU (for `gather`)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def from_env() -> Dist:
    """Join the process group torchrun set up: gloo for CPU tensors and, where CUDA exists, NCCL for
    CUDA tensors (`cpu:gloo,cuda:nccl`, so a run may use either device); a single process gets
    `Dist()`. Python objects go through a separate gloo group."""
    if not launched():
        return Dist()
    import torch.distributed as td

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if not td.is_initialized():
        td.init_process_group(backend=backend)
    objects = td.new_group(backend="gloo") if torch.cuda.is_available() else None
    return Dist(rank, world, local, backend, objects)


def rank_device(dist: Dist, device: torch.device) -> torch.device:
    """This rank's device: `cuda:LOCAL_RANK` for CUDA under torchrun (one GPU per process)."""
    if dist.active and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    return device


def on_main(dist: Dist, fn: Callable[[], T]) -> T:
    """Run `fn` on rank 0 only and hand its result to every rank; an exception it raises is raised
    on every rank (so that no rank waits for a peer that has failed)."""
    result: Any = None
    error: BaseException | None = None
    if dist.main:
        try:
            result = fn()
        except Exception as err:  # noqa: BLE001 - re-raised below, on every rank
            error = err
    result, error = dist.broadcast((result, error))
    if error is not None:
        raise error
    return cast(T, result)
