"""The operation registry (STYLE lessons 8 and 9): one factory per primitive, each tested."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compiler.ops import REGISTRY, Chain, OpError, Resize, build_op, build_part, build_prims
from compiler.params import Part, walk
from eagan_dsl.ir import Op, Prim
from eagan_dsl.primitives import PRIMITIVES


def default_prim(name: str, **override: object) -> Prim:
    args = {a.name: a.default for a in PRIMITIVES[name].args}
    args.update(override)
    return Prim(name, tuple(args.items()))


def test_registry_names_and_kinds_equal_the_language_table() -> None:
    assert set(REGISTRY) == set(PRIMITIVES)
    assert all(REGISTRY[n].kind == PRIMITIVES[n].kind for n in PRIMITIVES)


def sample(name: str) -> tuple[nn.Module, torch.Tensor, tuple[int, ...]]:
    """The primitive at its defaults, an input and the expected output shape."""
    x = torch.randn(2, 4, 8, 8)
    prim = default_prim(name)
    if name == "project":
        module = build_part(Part(default_prim(name, split=2), 6, 4), chunk_channels=(4, 3))
        return module, torch.randn(2, 6), (2, 4, 4, 4)
    if name == "linear":
        return build_part(Part(prim, 4, 5)), torch.randn(2, 4), (2, 5)
    out = {"up": (2, 4, 16, 16), "down": (2, 4, 4, 4), "global": (2, 4)}.get(
        PRIMITIVES[name].kind, (2, 4, 8, 8)
    )
    return build_part(Part(prim, 4, 4)), x, out


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_every_op_runs_forward_and_backward(name: str) -> None:
    torch.manual_seed(0)
    module, x, shape = sample(name)
    module.train()
    x.requires_grad_(True)
    out = module(x, (12, 12)) if isinstance(module, Resize) else module(x)
    if name == "resize":
        shape = (2, 4, 12, 12)
    if name == "project":
        assert [tuple(m.shape) for m in out] == [(2, 4, 4, 4), (2, 3, 8, 8)]
        out = torch.cat([m.flatten(1) for m in out], dim=1)
        shape = (2, 4 * 16 + 3 * 64)
    assert tuple(out.shape) == shape
    assert torch.isfinite(out).all()
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for pname, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_conv_same_padding_and_strides() -> None:
    x = torch.randn(1, 4, 9, 9)
    for k, d in ((1, 1), (3, 1), (5, 1), (3, 2), (5, 2)):
        assert build_part(Part(default_prim("conv", k=k, dilation=d), 4, 6))(x).shape == (
            1,
            6,
            9,
            9,
        )
    x = torch.randn(1, 4, 8, 8)
    assert build_part(Part(default_prim("conv", k=5, stride=2, dilation=2), 4, 4))(x).shape == (
        1,
        4,
        4,
        4,
    )
    assert build_part(Part(default_prim("conv", k=4, stride=2), 4, 4))(x).shape == (
        1,
        4,
        4,
        4,
    )  # SimpleD
    deconv = build_part(Part(default_prim("conv_transpose", depthwise=True, bias=False), 4, 4))
    assert isinstance(deconv, nn.ConvTranspose2d)
    assert (deconv.padding, deconv.output_padding, deconv.groups) == ((1, 1), (1, 1), 4)
    assert deconv(x).shape == (1, 4, 16, 16)
    assert build_part(Part(default_prim("avgpool", k=4), 4, 4))(x).shape == (1, 4, 2, 2)


def test_pools_and_interpolation_agree_with_torch() -> None:
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(build_part(Part(default_prim("sum_pool"), 3, 3))(x), x.sum(dim=(2, 3)))
    assert torch.equal(build_part(Part(default_prim("mean_pool"), 3, 3))(x), x.mean(dim=(2, 3)))
    up = build_part(Part(default_prim("upsample", mode="nearest"), 3, 3))(x)
    assert torch.equal(up[:, :, ::2, ::2], x) and torch.equal(up[:, :, 1::2, 1::2], x)
    bil = build_part(Part(default_prim("upsample", mode="bilinear"), 3, 3))(x)
    assert torch.allclose(
        bil,
        torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False),
    )


def test_spectral_norm_adds_no_parameters() -> None:
    for name, shape in (("conv", (4, 4)), ("linear", (4, 2))):
        plain = build_part(Part(default_prim(name, sn=False), *shape))
        normed = build_part(Part(default_prim(name, sn=True), *shape))
        assert sum(p.numel() for p in plain.parameters()) == sum(
            p.numel() for p in normed.parameters()
        )
        assert hasattr(normed, "parametrizations") and not hasattr(plain, "parametrizations")


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(OpError, match="depthwise needs in_channels == out_channels, got 3 → 8"):
        build_part(Part(default_prim("conv", depthwise=True), 3, 8))
    with pytest.raises(OpError, match="unknown mode 'cubic'"):
        build_part(Part(default_prim("upsample", mode="cubic"), 3, 3))
    with pytest.raises(OpError, match="identity cannot map 3 → 8"):
        build_part(Part(default_prim("skip"), 3, 8))
    with pytest.raises(OpError, match="stride must be at least 1"):
        build_part(Part(default_prim("conv", stride=0), 3, 3))
    # a composite whose parts cannot reach the edge's width
    op = Op("pool", (default_prim("avgpool"),), "down")
    with pytest.raises(OpError, match="ends with 3 channels, but the edge needs 8"):
        build_op(op, 3, 8)


def test_composite_ops_are_sequentials_with_channel_rules() -> None:
    op = Op(
        "deconv",
        (
            default_prim("relu"),
            default_prim("conv_transpose", depthwise=True, bias=False),
            default_prim("conv", k=1, bias=False),
        ),
        "up",
    )
    chain = build_op(op, 8, 8)
    assert isinstance(chain, Chain) and isinstance(chain, nn.Sequential) and len(chain) == 3
    # the first channel-changing part maps in → out, `out: image` overrides the target
    parts = walk(
        (default_prim("conv", out=6), default_prim("bn"), default_prim("conv", out="image")),
        4,
        None,
        3,
        "head",
    )
    assert [(p.in_channels, p.out_channels) for p in parts] == [(4, 6), (6, 6), (6, 3)]
    head = build_prims([p.prim for p in parts], 4, None, 3, "head")
    assert head(torch.randn(1, 4, 5, 5)).shape == (1, 3, 5, 5)
    link = build_op(
        Op("x", (default_prim("resize", mode="bilinear"), default_prim("conv", k=1)), "resize"),
        4,
        4,
    )
    assert link(torch.randn(1, 4, 4, 4), (8, 8)).shape == (1, 4, 8, 8)
