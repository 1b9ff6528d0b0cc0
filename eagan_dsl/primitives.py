"""The primitive operations the language knows, as data: names, keyword arguments, kinds.

The language checks spec text against this table without importing torch; `compiler/ops.py`
registers one PyTorch factory per entry (a test asserts the two sets are equal).

Kinds describe what a primitive does to the feature map's resolution:
  none     the zero op: the edge carries nothing (paper Fig. 1 "None")
  normal   same resolution
  up       ×2 (up-sampling)
  down     ×½ (down-sampling)
  resize   to the destination's resolution (cross-cell links only)
  global   feature map → vector (global pooling); only in a head
  vector   works on vectors (linear); only in a head, after a global pooling
  latent   latent vector → feature map; only as a generator's stem
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["none", "normal", "up", "down", "resize", "global", "vector", "latent"]
ArgType = Literal["int", "float", "bool", "mode", "resize_mode", "out"]

# `out` values: a positive integer, or `image` (the data's channel count).
MODES = ("nearest", "bilinear")
# a link's resize may also go through stride-2 transposed convs (AutoGAN's deconv skip-ins): the
# checker writes them out, one per doubling between the two nodes, so the IR never holds `deconv`
RESIZE_MODES = (*MODES, "deconv")


@dataclass(frozen=True)
class ArgSpec:
    name: str
    type: ArgType
    default: object
    doc: str
    minimum: float | None = None


@dataclass(frozen=True)
class PrimitiveSpec:
    name: str
    kind: Kind
    args: tuple[ArgSpec, ...]
    doc: str

    def arg(self, name: str) -> ArgSpec | None:
        return next((a for a in self.args if a.name == name), None)

    def kind_for(self, args: dict[str, object]) -> Kind:
        """The kind, given resolved arguments (a conv with stride 2 down-samples)."""
        if self.name == "conv" and int(args.get("stride", 1)) > 1:  # type: ignore[call-overload]
            return "down"
        if self.name == "conv_transpose" and int(args.get("stride", 2)) == 1:  # type: ignore[call-overload]
            return "normal"
        return self.kind


_OUT = ArgSpec("out", "out", None, "output channels: an integer or `image`; default: the width")
_BIAS = ArgSpec("bias", "bool", True, "add a learned bias")
_SN = ArgSpec("sn", "bool", False, "wrap in spectral normalisation (discriminators)")

PRIMITIVES: dict[str, PrimitiveSpec] = {
    p.name: p
    for p in (
        PrimitiveSpec("none", "none", (), "no connection: the edge is dropped"),
        PrimitiveSpec("skip", "normal", (), "identity"),
        PrimitiveSpec(
            "conv",
            "normal",
            (
                ArgSpec("k", "int", 3, "kernel size", 1),
                ArgSpec("stride", "int", 1, "stride (2 halves the resolution)", 1),
                ArgSpec("dilation", "int", 1, "dilation", 1),
                ArgSpec("padding", "int", None, "padding; default dilation·(k−1)/2 ('same')", 0),
                ArgSpec("depthwise", "bool", False, "one filter per channel (groups = channels)"),
                _BIAS,
                _SN,
                _OUT,
            ),
            "2-D convolution",
        ),
        PrimitiveSpec(
            "conv_transpose",
            "up",
            (
                ArgSpec("k", "int", 3, "kernel size", 1),
                ArgSpec("stride", "int", 2, "stride (2 doubles the resolution)", 1),
                ArgSpec("padding", "int", None, "padding; default (k−1)/2", 0),
                ArgSpec("output_padding", "int", None, "output padding; default stride−1", 0),
                ArgSpec("depthwise", "bool", False, "one filter per channel (groups = channels)"),
                _BIAS,
                _SN,
                _OUT,
            ),
            "transposed 2-D convolution",
        ),
        PrimitiveSpec(
            "upsample",
            "up",
            (ArgSpec("mode", "mode", "nearest", "nearest or bilinear"),),
            "interpolate ×2",
        ),
        PrimitiveSpec(
            "resize",
            "resize",
            (ArgSpec("mode", "resize_mode", "nearest", "nearest, bilinear or deconv"),),
            "interpolate to the destination node's resolution (links only); deconv: one "
            "conv_transpose(k: 2, padding: 0, output_padding: 0) per doubling",
        ),
        PrimitiveSpec(
            "avgpool", "down", (ArgSpec("k", "int", 2, "window = stride", 2),), "average pooling"
        ),
        PrimitiveSpec(
            "maxpool", "down", (ArgSpec("k", "int", 2, "window = stride", 2),), "max pooling"
        ),
        PrimitiveSpec("bn", "normal", (), "batch normalisation"),
        PrimitiveSpec(
            "inorm", "normal", (), "instance normalisation, no affine parameters (AutoGAN's IN)"
        ),
        PrimitiveSpec("relu", "normal", (), "ReLU"),
        PrimitiveSpec(
            "lrelu", "normal", (ArgSpec("slope", "float", 0.2, "negative slope", 0.0),), "LeakyReLU"
        ),
        PrimitiveSpec("tanh", "normal", (), "tanh"),
        PrimitiveSpec("sum_pool", "global", (), "sum over height and width (SN-GAN heads)"),
        PrimitiveSpec("mean_pool", "global", (), "mean over height and width"),
        PrimitiveSpec("linear", "vector", (_OUT, _BIAS, _SN), "fully connected layer"),
        PrimitiveSpec(
            "project",
            "latent",
            (
                ArgSpec("size", "int", 4, "side of the first feature map", 1),
                ArgSpec("split", "int", 1, "cut z into this many chunks, one per cell input", 1),
                _BIAS,
                _SN,
            ),
            "latent z → C×size×size by a linear layer; with split k, chunk i feeds cell i's input",
        ),
    )
}
