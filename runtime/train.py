"""GAN training steps: hinge loss (paper §5.1), Adam, n_critic, EMA of G.

A step works on two callables, `g(z) -> images` and `d(images) -> scores`, so the same code trains
a supernet on one genome (single path), an extracted subnet, or a fixed network.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

Fn = Callable[[torch.Tensor], torch.Tensor]
# called between backward and the optimizer step with the optimizer's parameters (data parallelism:
# average the gradients over the ranks, runtime/dist.py)
Sync = Callable[[list[nn.Parameter]], None]


def hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Eq. 8/10 with the hinge loss (SN-GAN): mean ReLU(1 − D(x)) + mean ReLU(1 + D(G(z)))."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_g(fake: torch.Tensor) -> torch.Tensor:
    """Eq. 7 with the hinge loss: −mean D(G(z))."""
    return -fake.mean()


def adam(params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    return torch.optim.Adam(list(params), lr=float(lr), betas=(float(betas[0]), float(betas[1])))


class Diverged(RuntimeError):
    """A loss became NaN or infinite."""


def _apply(
    loss: torch.Tensor,
    opt: torch.optim.Optimizer,
    clip: float | None,
    params: Iterable[nn.Parameter],
    sync: Sync | None,
) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    if sync is not None:
        sync([p for group in opt.param_groups for p in group["params"]])
    if clip is not None:
        nn.utils.clip_grad_norm_(list(params), clip)
    opt.step()


def _finite(loss: torch.Tensor, what: str) -> float:
    value = float(loss.detach())
    if not math.isfinite(value):
        raise Diverged(f"{what} loss is {value}")
    return value


def d_step(
    g: Fn,
    d: Fn,
    real: torch.Tensor,
    z: torch.Tensor,
    opt: torch.optim.Optimizer,
    clip: float | None = None,
    params: Iterable[nn.Parameter] = (),
    sync: Sync | None = None,
) -> float:
    """One discriminator update on a real batch and a detached fake batch of the same size."""
    with torch.no_grad():
        fake = g(z)
    loss = hinge_d(d(real), d(fake))
    _apply(loss, opt, clip, params, sync)
    return _finite(loss, "D")


def g_step(
    g: Fn,
    d: Fn,
    z: torch.Tensor,
    opt: torch.optim.Optimizer,
    clip: float | None = None,
    params: Iterable[nn.Parameter] = (),
    sync: Sync | None = None,
) -> float:
    """One generator update; D's gradients are computed but never applied (set to None after)."""
    loss = hinge_g(d(g(z)))
    _apply(loss, opt, clip, params, sync)
    return _finite(loss, "G")


class EMA:
    """Exponential moving average of a module's parameters (released code §6: parameters only;
    buffers such as BN statistics are copied, as the CPU benchmark protocol does)."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        ema: list[torch.Tensor] = list(self.module.parameters())
        live = [p.detach() for p in module.parameters()]
        torch._foreach_lerp_(ema, live, 1.0 - self.decay)
        for b_ema, b in zip(self.module.buffers(), module.buffers()):
            b_ema.copy_(b)


@dataclass
class Losses:
    d: float = float("nan")
    g: float = float("nan")


def sample_z(
    n: int, dim: int, device: torch.device, gen: torch.Generator, dist: str = "normal"
) -> torch.Tensor:
    """Latent noise (paper §5.1: Gaussian), drawn from a seeded generator on the CPU so that runs on
    CPU and CUDA see the same z."""
    if dist == "uniform":
        z = torch.rand(n, dim, generator=gen) * 2 - 1
    else:
        z = torch.randn(n, dim, generator=gen)
    return z.to(device, non_blocking=True)
