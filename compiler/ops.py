"""The operation registry: one PyTorch factory per primitive of `eagan_dsl.primitives.PRIMITIVES`.

A decorator registry in the manner of timm's `_registry.py` (STYLE lesson 8): adding a primitive is
one `@register` entry here and one row in the language's table; a test asserts both name sets are
equal and runs every entry forward and backward (lesson 9).

Factories take the primitive (all arguments resolved by the checker), its input and output channels
(resolved by `compiler.params.walk`, which also counts parameters, so counts and modules agree) and
return an `nn.Module`. Initialisation follows the released code (research notes §1.1 "Init"):
xavier_uniform (gain 1) on Conv2d weights (not ConvTranspose2d), BatchNorm weight ~ N(1, 0.02) and
bias 0, Linear left at PyTorch's default. It is applied before spectral norm wraps a layer, so the
power-iteration vectors start from the initialised weight.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from eagan_dsl.ir import Op, Prim
from eagan_dsl.primitives import MODES, PRIMITIVES, Kind

from .params import OpError, Part, project_sizes, walk

__all__ = [
    "REGISTRY",
    "Chain",
    "OpEntry",
    "OpError",
    "Project",
    "Resize",
    "build_op",
    "build_part",
    "build_prims",
    "register",
]


class Factory(Protocol):
    def __call__(
        self, prim: Prim, in_channels: int, out_channels: int, **context: Any
    ) -> nn.Module: ...


@dataclass(frozen=True)
class OpEntry:
    name: str
    kind: Kind
    factory: Factory


REGISTRY: dict[str, OpEntry] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    """Register the factory of primitive `name`; its kind comes from the language's table."""
    if name not in PRIMITIVES:
        raise KeyError(f"'{name}' is not a primitive of eagan_dsl.primitives.PRIMITIVES")

    def wrap(factory: Factory) -> Factory:
        if name in REGISTRY:
            raise KeyError(f"primitive '{name}' is registered twice")
        REGISTRY[name] = OpEntry(name, PRIMITIVES[name].kind, factory)
        return factory

    return wrap


# ------------------------------------------------------------------------------ small modules
class Zero(nn.Module):
    """The `none` op: contributes nothing. Single-path execution never runs it (the edge is
    skipped); only the DARTS-style `forward_mixed` baseline does. On an edge that changes the
    width (a discriminator cell's first edge) it gives zeros of the edge's width."""

    def __init__(self, out_channels: int | None = None) -> None:
        super().__init__()
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.out_channels is None or self.out_channels == x.shape[1]:
            return x * 0.0
        return x.new_zeros((x.shape[0], self.out_channels, *x.shape[2:]))


class Resize(nn.Module):
    """Interpolate to the destination node's spatial size (cross-cell links, research notes §1.1)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor, size: Sequence[int] | None = None) -> torch.Tensor:
        if size is None:
            raise ValueError("resize needs the destination's size")
        return F.interpolate(x, size=tuple(size), mode=self.mode, align_corners=_corners(self.mode))

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class SumPool(nn.Module):
    """Global sum over H and W (the released D head sums, research notes §1.2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=(2, 3))


class MeanPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class Project(nn.Module):
    """Latent → feature maps. z is cut into `split` equal chunks; chunk i goes through its own
    Linear to a (C_i, s·2^i, s·2^i) map (released code's l1/l2/l3, research notes §1.1)."""

    def __init__(
        self, latent_dim: int, shapes: Sequence[tuple[int, int]], bias: bool, sn: bool
    ) -> None:
        super().__init__()
        split = len(shapes)
        if latent_dim % split:
            raise OpError(f"project: latent {latent_dim} cannot be split into {split} equal chunks")
        self.shapes = tuple(shapes)
        chunk = latent_dim // split
        self.layers = nn.ModuleList(
            _maybe_sn(nn.Linear(chunk, c * s * s, bias=bias), sn) for c, s in shapes
        )

    def forward(self, z: torch.Tensor) -> list[torch.Tensor]:
        chunks = z.chunk(len(self.shapes), dim=1)
        return [
            layer(part).view(-1, c, s, s)
            for layer, part, (c, s) in zip(self.layers, chunks, self.shapes)
        ]


class Chain(nn.Sequential):
    """A composite op: its parts applied left to right. `size` reaches the `resize` parts."""

    def forward(self, x: torch.Tensor, size: Sequence[int] | None = None) -> torch.Tensor:
        for part in self:
            x = part(x, size) if isinstance(part, Resize) else part(x)
        return x


# ------------------------------------------------------------------------------ helpers
def _corners(mode: str) -> bool | None:
    return False if mode == "bilinear" else None


def _mode(prim: Prim) -> str:
    mode = str(prim.get("mode", "nearest"))
    if mode not in MODES:
        raise OpError(f"{prim.name}: unknown mode '{mode}' (one of {', '.join(MODES)})")
    return mode


def _maybe_sn(module: nn.Module, sn: bool) -> nn.Module:
    return spectral_norm(module) if sn else module


def _positive(prim: Prim, key: str, value: int) -> int:
    if value < 1:
        raise OpError(f"{prim.name}: {key} must be at least 1, got {value}")
    return value


def _groups(prim: Prim, in_channels: int, out_channels: int) -> int:
    if not prim.get("depthwise"):
        return 1
    if in_channels != out_channels:
        raise OpError(
            f"{prim.name}: depthwise needs in_channels == out_channels, got {in_channels} → "
            f"{out_channels}; drop `depthwise` or add a conv(k: 1) after it"
        )
    return in_channels


def _init_conv(conv: nn.Conv2d) -> nn.Conv2d:
    nn.init.xavier_uniform_(conv.weight, gain=1.0)  # research notes §1.1 "Init"
    return conv


# ------------------------------------------------------------------------------ factories
@register("none")
def _none(prim: Prim, in_channels: int, out_channels: int, **_: Any) -> nn.Module:
    return Zero(out_channels)


@register("skip")
def _skip(prim: Prim, in_channels: int, out_channels: int, **_: Any) -> nn.Module:
    if in_channels != out_channels:
        raise OpError(f"skip: identity cannot map {in_channels} → {out_channels} channels")
    return nn.Identity()


@register("conv")
def _conv(prim: Prim, in_channels: int, out_channels: int, **_: Any) -> nn.Module:
    k = _positive(prim, "k", int(prim.get("k", 3)))
    stride = _positive(prim, "stride", int(prim.get("stride", 1)))
    dilation = _positive(prim, "dilation", int(prim.get("dilation", 1)))
    padding = prim.get("padding")
    padding = dilation * (k - 1) // 2 if padding is None else int(padding)  # 'same' at stride 1
    conv = nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size=k,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=_groups(prim, in_channels, out_channels),
        bias=bool(prim.get("bias", True)),
    )
    return _maybe_sn(_init_conv(conv), bool(prim.get("sn", False)))


@register("conv_transpose")
def _conv_transpose(prim: Prim, in_channels: int, out_channels: int, **_: Any) -> nn.Module:
    k = _positive(prim, "k", int(prim.get("k", 3)))
    stride = _positive(prim, "stride", int(prim.get("stride", 2)))
    padding = prim.get("padding")
    output_padding = prim.get("output_padding")
    # released deconv: k3, s2, p1, output_padding 1 (research notes §1.1 "Up ops")
    padding = (k - 1) // 2 if padding is None else int(padding)
    output_padding = stride - 1 if output_padding is None else int(output_padding)
    deconv = nn.ConvTranspose2d(
        in_channels,
        out_channels,
        kernel_size=k,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=_groups(prim, in_channels, out_channels),
        bias=bool(prim.get("bias", True)),
    )
    # the released init matches class names containing 'Conv2d': ConvTranspose2d keeps the default
    return _maybe_sn(deconv, bool(prim.get("sn", False)))


@register("upsample")
def _upsample(prim: Prim, in_channels: int, out_channels: int, **_: Any) -> nn.Module:
    mode = _mode(prim)
    return nn.Upsample(scale_factor=2, mode=mode, align_corners=_corners(mode))


@register("resize")
def _resize(prim: Prim, in_channels: int, out_channels: int, **_: Any) -> nn.Module:
    return Resize(_mode(prim))


@register("avgpool")
def _avgpool(prim: Prim, in_channels: int, out_channels: int, **_: Any) -> nn.Module:
    k = _positive(prim, "k", int(prim.get("k", 2)))
    return nn.AvgPool2d(k)  # window = stride = k


@register("maxpool")
def _maxpool(prim: Prim, in_channels: int, out_channels: int, **_: Any) -> nn.Module:
    k = _positive(prim, "k", int(prim.get("k", 2)))
    return nn.MaxPool2d(k)


@register("bn")
def _bn(prim: Prim, in_channels: int, out_channels: int, **_: Any) -> nn.Module:
    bn = nn.BatchNorm2d(in_channels)
    nn.init.normal_(bn.weight, 1.0, 0.02)  # research notes §1.1 "Init"
    nn.init.zeros_(bn.bias)
    return bn


@register("inorm")
def _inorm(prim: Prim, in_channels: int, out_channels: int, **_: Any) -> nn.Module:
    # AutoGAN's IN: nn.InstanceNorm2d's defaults (affine=False: no parameters, no running stats)
    return nn.InstanceNorm2d(in_channels)


@register("relu")
def _relu(prim: Prim, in_channels: int, out_channels: int, **_: Any) -> nn.Module:
    # not in-place: a node's value feeds several edges
    return nn.ReLU()


@register("lrelu")
def _lrelu(prim: Prim, in_channels: int, out_channels: int, **_: Any) -> nn.Module:
    return nn.LeakyReLU(float(prim.get("slope", 0.2)))


@register("tanh")
def _tanh(prim: Prim, in_channels: int, out_channels: int, **_: Any) -> nn.Module:
    return nn.Tanh()


@register("sum_pool")
def _sum_pool(prim: Prim, in_channels: int, out_channels: int, **_: Any) -> nn.Module:
    return SumPool()


@register("mean_pool")
def _mean_pool(prim: Prim, in_channels: int, out_channels: int, **_: Any) -> nn.Module:
    return MeanPool()


@register("linear")
def _linear(prim: Prim, in_channels: int, out_channels: int, **_: Any) -> nn.Module:
    linear = nn.Linear(in_channels, out_channels, bias=bool(prim.get("bias", True)))
    return _maybe_sn(linear, bool(prim.get("sn", False)))


@register("project")
def _project(
    prim: Prim,
    in_channels: int,
    out_channels: int,
    chunk_channels: Sequence[int] | None = None,
    **_: Any,
) -> nn.Module:
    """`in_channels` = latent_dim; chunk i's map has `chunk_channels[i]` channels (default: all
    `out_channels`)."""
    split = _positive(prim, "split", int(prim.get("split", 1)))
    widths = list(chunk_channels) if chunk_channels is not None else [out_channels] * split
    if len(widths) < split:
        raise OpError(f"project: split {split} needs {split} cell inputs, got {len(widths)}")
    shapes = project_sizes(prim, widths)
    return Project(in_channels, shapes, bool(prim.get("bias", True)), bool(prim.get("sn", False)))


# ------------------------------------------------------------------------------ building
def build_part(part: Part, **context: Any) -> nn.Module:
    entry = REGISTRY.get(part.prim.name)
    if entry is None:
        raise OpError(f"no factory registered for primitive '{part.prim.name}'")
    return entry.factory(part.prim, part.in_channels, part.out_channels, **context)


def build_prims(
    prims: Sequence[Prim],
    in_channels: int,
    out_channels: int | None,
    image_channels: int,
    where: str,
) -> Chain:
    """A Chain of primitives placed between channels (see `compiler.params.walk`)."""
    return Chain(
        *(build_part(p) for p in walk(prims, in_channels, out_channels, image_channels, where))
    )


def build_op(
    op: Op, in_channels: int, out_channels: int, image_channels: int = 3, where: str = ""
) -> Chain:
    """A candidate op (primitive or composite) as a Chain (an nn.Sequential) of its parts."""
    return build_prims(
        op.parts, in_channels, out_channels, image_channels, where or f"op '{op.name}'"
    )
