"""The trained networks of a stage: a `Member` (one network with its Adam and, optionally, an EMA
copy), the `Trainer` (one training iteration: n_critic D steps and one G step on the stage's
stream of batches), BatchNorm recalibration of a weight-shared candidate, and `EvalWrapper`, a
callable generator for evaluation."""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from eagan_dsl.genome import Genome
from eagan_dsl.ir import Program
from runtime.dist import Dist
from runtime.search.protocol import Context, derive_seed
from runtime.train import EMA, adam, d_step, g_step, sample_z


class Member:
    """One trained network: module, Adam optimizer and, optionally, an EMA copy."""

    def __init__(
        self, module: nn.Module, lr: float, betas: tuple[float, float], ema: float | None
    ) -> None:
        self.module = module
        self.opt = adam(module.parameters(), lr, betas)
        self.ema = EMA(module, ema) if ema else None
        self.params = list(module.parameters())

    def state_dict(self) -> dict[str, Any]:
        return {
            "module": self.module.state_dict(),
            "opt": self.opt.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.opt.load_state_dict(state["opt"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.module.load_state_dict(state["ema"])

    def copy(self) -> Member:
        other = copy.copy(self)
        other.module = copy.deepcopy(self.module)
        other.opt = adam(
            other.module.parameters(), self.opt.defaults["lr"], self.opt.defaults["betas"]
        )
        other.opt.load_state_dict(copy.deepcopy(self.opt.state_dict()))
        other.ema = copy.deepcopy(self.ema)
        other.params = list(other.module.parameters())
        return other

    def evaluated(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.module

    def finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in self.params)


class Trainer:
    """Draws real batches and latents, runs n_critic D steps and one G step. With `shard` (data
    parallelism) every rank draws the same global batch and trains on its slice, with gradients and
    BatchNorm statistics averaged over the ranks; without, a rank trains on whole batches."""

    def __init__(
        self, ctx: Context, s: dict[str, Any], gen: torch.Generator, shard: bool = True
    ) -> None:
        self.dist = ctx.dist if shard else Dist()
        self.data = ctx.data
        self.device = ctx.device
        self.gen = gen
        self.bg, self.bd = int(s["batch"]["g"]), int(s["batch"]["d"])
        self.n_critic = int(s["n_critic"])
        self.lr = s["lr"]
        self.betas = (float(s["betas"][0]), float(s["betas"][1]))
        self.clip = s["grad_clip"]
        self.latent = ctx.program.latent_dim
        self.latent_dist = ctx.program.latent_distribution
        # run { sync_bn: on }: BatchNorm over the global batch in data-parallel steps
        self.sync_bn = bool(ctx.program.blocks["run"].get("sync_bn", False)) and self.dist.active
        self._perm = torch.empty(0, dtype=torch.long)
        self._pos = 0

    def iterations_per_epoch(self) -> int:
        return max(self.data.batches_per_epoch(self.bd) // self.n_critic, 1)

    def real(self) -> torch.Tensor:
        if self._pos + self.bd > len(self._perm):
            self._perm = torch.randperm(len(self.data), generator=self.gen)
            self._pos = 0
        idx = self._perm[self._pos : self._pos + self.bd]
        self._pos += self.bd
        return self.dist.shard(self.data.batch(idx.to(self.data.images.device)))

    def z(self, n: int) -> torch.Tensor:
        return self.dist.shard(sample_z(n, self.latent, self.device, self.gen, self.latent_dist))

    def iteration(
        self, g: Any, d: Any, gm: Member, dm: Member, g_fn: Any = None, d_fn: Any = None
    ) -> tuple[float, float]:
        """n_critic D steps, then one G step (Alg. 1 l.9–10, l.24). `g_fn`/`d_fn` override the
        modules' forward (a supernet on one genome)."""
        gf = g_fn or g
        df = d_fn or d
        sync = self.dist.average_grads if self.dist.active else None
        with self.dist.synced_bn(gm.module, dm.module) if self.sync_bn else nullcontext():
            for _ in range(self.n_critic):
                ld = d_step(
                    gf, df, self.real(), self.z(self.bd), dm.opt, self.clip, dm.params, sync
                )
            lg = g_step(gf, df, self.z(self.bg), gm.opt, self.clip, gm.params, sync)
        if not self.sync_bn:  # synced, the running statistics already agree on every rank
            self.dist.average_buffers(gm.module)
        if gm.ema is not None:
            gm.ema.update(gm.module)
        return ld, lg

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "perm": self._perm, "pos": self._pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])
        self._perm = state["perm"]
        self._pos = int(state["pos"])


class EvalWrapper(nn.Module):
    """A callable generator that switches its module to eval mode during evaluation."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], module: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        self.inner: nn.Module = module

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)


@torch.no_grad()
def recalibrate_bn(
    fn: Callable[[torch.Tensor], torch.Tensor],
    module: nn.Module,
    batches: int,
    batch: int,
    latent: int,
    device: torch.device,
    seed: int,
) -> None:
    """Re-estimate BatchNorm running statistics for one subnet of a supernet (the running
    statistics of a weight-shared supernet mix all the subnets trained so far; SPOS-style
    recalibration). Deterministic: fixed latents from `seed`. Touches only BN buffers."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or batches <= 0:
        return
    was = module.training
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average over the recalibration batches
    module.train()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(batches):
        fn(torch.randn(batch, latent, generator=gen).to(device))
    for bn, m in zip(bns, momenta):
        bn.momentum = m
    module.train(was)


def input_resolution(program: Program, net: Any) -> int | None:
    if net.role == "generator":
        return int(net.stem[0].get("size")) if net.stem else None
    size = program.data.resolution
    from eagan_dsl.primitives import PRIMITIVES

    for prim in net.stem:
        kind = PRIMITIVES[prim.name].kind_for(dict(prim.args))
        size = size // 2 if kind == "down" else size * 2 if kind == "up" else size
    return size


def recalibrate(
    ctx: Context,
    s: dict[str, Any],
    fn: Callable[[torch.Tensor], torch.Tensor],
    net: nn.Module,
    round_: int,
) -> None:
    recalibrate_bn(
        fn,
        net,
        int(s["recalibrate_bn"]),
        int(s["eval_batch"]),
        ctx.program.latent_dim,
        ctx.device,
        derive_seed(ctx.seed, "recalibrate", round_),
    )


def path_of(supernet: nn.Module, genome: Genome) -> nn.Module:
    """The subnet of `genome` with copies of a supernet's weights and buffers
    (`compiler.extract.extract`, for a module typed as a plain `nn.Module`)."""
    from compiler.extract import extract
    from compiler.supernet import SuperNet

    assert isinstance(supernet, SuperNet), type(supernet)
    return extract(supernet, genome)
