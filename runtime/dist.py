"""Scale-out on `torch.distributed`, launched by `torchrun` (NCCL on GPUs, gloo on CPUs).

A run in one process uses `Dist()` (world 1): every method is then a no-op or the identity, so the
single-process code path is the distributed one with W = 1. Under `torchrun` (`RANK`, `WORLD_SIZE`
and `LOCAL_RANK` in the environment) `from_env` joins the process group:

- warm-up, stage 1 and the fully-train stage are data-parallel: all ranks draw the same candidate and
  the same global batch from a shared generator, each works on its slice (`shard`), gradients and
  BatchNorm statistics are averaged (`average_grads`, `average_buffers`), or, with
  `run { sync_bn: on }`, BatchNorm normalises by the whole batch's statistics (`synced_bn`);
- evaluation splits the population across ranks and gathers the records (`gather`);
- stage 2 gives every rank its own GAN pairs, gathers their records after each block of W pairs
  and all-reduces the sums that merge them into the supernet at the round's end (`all_reduce`).

Python objects (records, state dicts moved to the CPU, the stop flag) travel on a gloo group, so
they never need a CUDA device of the right index; tensors of the training steps travel on the
default group (NCCL on CUDA).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
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

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> None:
        """`tensor` becomes its sum (or max) over the ranks, in place, on the default group: the
        device's backend (NCCL for CUDA tensors, gloo for CPU ones)."""
        if not self.active:
            return
        import torch.distributed as td

        td.all_reduce(tensor, op=td.ReduceOp.MAX if op == "max" else td.ReduceOp.SUM)

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

    @contextmanager
    def synced_bn(self, *modules: nn.Module) -> Iterator[None]:
        """Within the block, every BatchNorm of `modules` that normalises by batch statistics uses
        those of the global batch, summed over the ranks (SyncBatchNorm), so that a data-parallel
        step normalises as one process on the whole batch would; the running statistics then agree
        on every rank. torch's `nn.SyncBatchNorm` runs on GPUs only; this works on gloo too. Every
        rank must run the same forward passes in the block (the data-parallel steps do)."""
        bns = [
            m
            for module in modules
            for m in module.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]
        if not self.active or not bns:
            yield
            return
        for bn in bns:  # the default group: gloo for CPU tensors, NCCL for CUDA ones
            bn.forward = functools.partial(_synced_batch_norm, bn, None)  # type: ignore[method-assign]
        try:
            yield
        finally:
            for bn in bns:
                del bn.forward

    def close(self) -> None:
        global _joined
        if self.active:
            import torch.distributed as td

            if td.is_initialized():
                td.destroy_process_group()
            _joined = None


def _synced_batch_norm(bn: nn.modules.batchnorm._BatchNorm, group: Any, x: torch.Tensor) -> Any:
    """`bn(x)` with the batch statistics of every rank's `x` together (two differentiable
    all-reduces: the sums and counts, then the squared deviations from the global mean, which is
    as accurate as one process's two-pass variance). Outside training it is `bn`'s own forward."""
    if not (bn.training or not bn.track_running_stats):
        return nn.modules.batchnorm._BatchNorm.forward(bn, x)
    from torch.distributed.nn import functional

    # differentiable: the backward all-reduces the gradients of the statistics (sum over ranks)
    all_reduce = cast(Callable[..., torch.Tensor], functional.all_reduce)
    dims = [0, *range(2, x.dim())]
    shape = [1, -1] + [1] * (x.dim() - 2)
    count = torch.full((1,), x.numel() // x.shape[1], dtype=x.dtype, device=x.device)
    sums = all_reduce(torch.cat([x.sum(dims), count]), group=group)
    n = sums[-1].detach()
    mean = sums[:-1] / n
    centred = x - mean.view(shape)
    var = all_reduce((centred * centred).sum(dims), group=group) / n
    if bn.training and bn.track_running_stats:
        assert bn.running_mean is not None and bn.running_var is not None
        assert bn.num_batches_tracked is not None
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            momentum = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
            bn.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
            unbiased = var.detach() * (n / (n - 1).clamp(min=1))
            bn.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
    y = centred * torch.rsqrt(var + bn.eps).view(shape)
    if bn.affine:
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    return y


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

    global _joined
    if _joined is not None and td.is_initialized():
        return _joined  # `--resume-if-exists` asks before the run joins: one group, not two
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if not td.is_initialized():
        store = _attempt_store(world)
        if store is None:
            td.init_process_group(backend=backend)
        else:
            td.init_process_group(backend=backend, store=store, rank=rank, world_size=world)
    objects = td.new_group(backend="gloo") if torch.cuda.is_available() else None
    _joined = Dist(rank, world, local, backend, objects)
    return _joined


_joined: Dist | None = None  # the group this process joined (`from_env`), until `close`


def _attempt_store(world: int) -> Any:
    """Under torchrun's shared store (`TORCHELASTIC_USE_AGENT_STORE`), the agent's store scoped to
    this attempt: the agent keeps one store for its whole life, and torch (2.14) joins the workers
    of every attempt under the same keys, so after `--max-restarts` restarts the workers the new
    ranks read the dead ones' gloo addresses and fail or wait to connect to them. None elsewhere
    (`env://` as usual: then rank 0 hosts a fresh store every attempt). The restart count is the
    same on every rank of one node; on several nodes an agent that restarts its workers because
    another node left may count differently, hence TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 there
    (README)."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    from datetime import timedelta

    import torch.distributed

    td: Any = torch.distributed  # TCPStore and PrefixStore: re-exported from torch._C, untyped
    store = td.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        world,
        is_master=False,
        timeout=timedelta(minutes=10),
    )
    run = os.environ.get("TORCHELASTIC_RUN_ID", "")
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return td.PrefixStore(f"eagan/{run}/attempt_{attempt}/", store)


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
