"""Shape arithmetic of the primitives, in pure Python: the side of the feature map each one
produces, the channels it is placed between, and its learnable parameters.

The checker follows sizes and channels through every network with these functions, so that a spec
it accepts builds and runs (issue 15, items 6-9); `compiler/params.py` places channels and counts
parameters with the same functions, so the checker, the counts and the built modules agree.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from math import prod

from .genome import cell_problem
from .ir import CellIR, EdgeIR, Op, Prim
from .primitives import PRIMITIVES, Kind


class ShapeError(ValueError):
    """A primitive that does not fit the channels or the size it is placed at."""


def out_size(prim: Prim, size: int) -> int:
    """The side of the map `prim` makes from a `size`×`size` map (as torch computes it; ≤ 0 when
    torch would refuse the input)."""
    name = prim.name
    if name == "conv":
        k, stride, dilation = (
            int(prim.get("k", 3)),
            int(prim.get("stride", 1)),
            int(prim.get("dilation", 1)),
        )
        padding = prim.get("padding")
        pad = dilation * (k - 1) // 2 if padding is None else int(padding)
        span = size + 2 * pad - dilation * (k - 1)
        return (span - 1) // stride + 1 if span >= 1 else 0
    if name == "conv_transpose":
        k, stride = int(prim.get("k", 3)), int(prim.get("stride", 2))
        padding, output_padding = prim.get("padding"), prim.get("output_padding")
        pad = (k - 1) // 2 if padding is None else int(padding)
        extra = stride - 1 if output_padding is None else int(output_padding)
        if extra >= stride:  # torch: output padding must be smaller than the stride
            return 0
        return (size - 1) * stride - 2 * pad + k + extra
    if name == "upsample":
        return 2 * size
    if name in ("avgpool", "maxpool"):
        return size // int(prim.get("k", 2))
    return size


def kind_of(prim: Prim) -> Kind:
    return PRIMITIVES[prim.name].kind_for(dict(prim.args))


def expected_size(kind: str, size: int) -> int:
    """The size a primitive of `kind` must make: the genome's arithmetic (×2, ÷2 rounded down)."""
    if kind == "up":
        return 2 * size
    if kind == "down":
        return size // 2
    return size


def label(prim: Prim) -> str:
    """A primitive as a user writes it: the arguments that differ from their defaults."""
    spec = PRIMITIVES[prim.name]
    shown = [
        f"{k}: {str(v).lower() if isinstance(v, bool) else v}"
        for k, v in prim.args
        if spec.arg(k) is not None and v != spec.arg(k).default  # type: ignore[union-attr]
    ]
    return f"{prim.name}({', '.join(shown)})" if shown else prim.name


def size_problem(prim: Prim, size: int) -> str | None:
    """Why `prim` does not make the size its kind promises from `size`×`size`, or None."""
    kind = kind_of(prim)
    if kind in ("global", "vector", "latent", "resize", "none"):
        return None
    got, want = out_size(prim, size), expected_size(kind, size)
    if got == want:
        return None
    verb = {"up": "doubles", "down": "halves"}.get(kind, "keeps")
    article = "an" if kind == "up" else "a"
    return (
        f"{label(prim)} makes {max(got, 0)}×{max(got, 0)} from {size}×{size}, but {article} {kind} "
        f"op {verb} the size ({want}×{want})"
    )


def size_hint(prim: Prim, size: int = 32) -> str | None:
    """How to make `prim` keep its promise at `size`, for the usual mistakes."""
    if prim.name == "conv" and int(prim.get("stride", 1)) == 2 and size % 2:
        return (
            "a stride-2 conv rounds an odd size up, pooling rounds it down: keep the sizes even "
            "(change the resolution or the number of down-sampling cells)"
        )
    if prim.name == "conv":
        k, stride, dilation = (
            int(prim.get("k", 3)),
            int(prim.get("stride", 1)),
            int(prim.get("dilation", 1)),
        )
        if stride > 2:
            return "the language knows ×½ only: use stride: 2"
        if dilation * (k - 1) % 2:
            return "an even kernel cannot keep the size with symmetric padding: use an odd k"
        same = dilation * (k - 1) // 2
        if stride == 1:
            return f"leave padding out (it defaults to dilation·(k−1)/2 = {same}, which keeps the size)"
        return f"use padding: {same} with an odd k"
    if prim.name in ("avgpool", "maxpool"):
        return f"{prim.name}(k: 2) halves the size (window = stride = k)"
    if prim.name == "conv_transpose":
        return "stride: 2 with k: 3 (or k: 4, padding: 1, output_padding: 0) doubles the size"
    return None


def changes_channels(prim: Prim) -> bool:
    return PRIMITIVES[prim.name].arg("out") is not None


def resolve_out(prim: Prim, target: int, image_channels: int) -> int:
    out = prim.get("out")
    if out is None:
        return target
    return image_channels if out == "image" else int(out)


def place(
    parts: Sequence[Prim], in_channels: int, out_channels: int | None, image_channels: int
) -> list[tuple[Prim, int, int]]:
    """(primitive, in, out channels) of each part of an op. `out_channels` None: a stem or head,
    whose parts keep the channels unless `out:` says otherwise. The first channel-changing part
    maps to the target, later ones keep it. The `none` op fits any two widths (it carries
    nothing). Raises ShapeError."""
    if len(parts) == 1 and parts[0].name == "none":
        target = in_channels if out_channels is None else out_channels
        return [(parts[0], in_channels, target)]
    target = in_channels if out_channels is None else out_channels
    channels = in_channels
    placed: list[tuple[Prim, int, int]] = []
    for prim in parts:
        if prim.name not in PRIMITIVES:
            raise ShapeError(f"unknown primitive '{prim.name}'")
        new = resolve_out(prim, target, image_channels) if changes_channels(prim) else channels
        if prim.get("depthwise") and new != channels:
            raise ShapeError(
                f"depthwise {prim.name} keeps the channel count, but it is placed "
                f"between {channels} and {new} channels; drop `depthwise` or put it on an edge "
                f"whose widths agree"
            )
        placed.append((prim, channels, new))
        channels = new
    if out_channels is not None and channels != out_channels:
        raise ShapeError(
            f"the op ends with {channels} channels, but the edge needs {out_channels} "
            f"(it maps {in_channels} → {out_channels}); add a conv, e.g. conv(k: 1)"
        )
    return placed


def prim_params(prim: Prim, in_channels: int, out_channels: int) -> int:
    """Learnable parameters of one placed primitive other than `project` (spectral norm adds
    none: u, v are buffers)."""
    bias = bool(prim.get("bias", True))
    if prim.name in ("conv", "conv_transpose"):
        k = int(prim.get("k"))
        groups = in_channels if prim.get("depthwise") else 1
        return in_channels * (out_channels // groups) * k * k + (out_channels if bias else 0)
    if prim.name == "linear":
        return in_channels * out_channels + (out_channels if bias else 0)
    if prim.name == "bn":
        return 2 * in_channels
    return 0


# ------------------------------------------------------------------------ cells, by class
MAX_COMBOS = 4096  # class assignments enumerated per cell; above, an over-approximation


@dataclass(frozen=True)
class CellShapes:
    """What a cell's valid assignments do to resolutions (log2, relative to node 0).

    `exact`: every assignment of op classes (none, or a resolution change) was tried; else the
    sets below over-approximate (each node's possible scales from its inputs' possible scales).
    `outs`: the output node's possible scales. `nodes[n]`: (node n's scale, the output's scale) in
    some valid assignment. `edges[e][c]`: (scale of edge e's source, the output's scale) of the
    valid assignments in which candidate c's class is active on edge e. `problem`: why no
    assignment is valid (exact only), else None."""

    exact: bool
    outs: frozenset[int]
    nodes: tuple[frozenset[tuple[int, int]], ...]
    edges: tuple[tuple[frozenset[tuple[int, int]], ...], ...]
    problem: str | None


def _candidates(edge: EdgeIR) -> tuple[Op, ...]:
    return edge.candidates


def analyse_cell(cell: CellIR) -> CellShapes:
    classes: list[dict[tuple[bool, int], list[int]]] = []
    for edge in cell.edges:
        groups: dict[tuple[bool, int], list[int]] = {}
        for c, op in enumerate(_candidates(edge)):
            groups.setdefault((op.is_none, op.scale), []).append(c)
        classes.append(groups)
    total = prod(len(g) for g in classes)
    n_nodes, n_edges = cell.num_nodes, len(cell.edges)
    nodes: list[set[tuple[int, int]]] = [set() for _ in range(n_nodes)]
    edges: list[list[set[tuple[int, int]]]] = [[set() for _ in _candidates(e)] for e in cell.edges]
    outs: set[int] = set()
    if total <= MAX_COMBOS:
        first_problem = None
        for combo in itertools.product(*(list(g) for g in classes)):
            ops = [
                _candidates(e)[classes[i][k][0]] for i, (e, k) in enumerate(zip(cell.edges, combo))
            ]
            why = cell_problem(cell, ops)
            if why is not None:
                first_problem = first_problem or why
                continue
            scale = {0: 0}
            for node in range(1, n_nodes):
                for edge, op in zip(cell.edges, ops):
                    if edge.dst == node and not op.is_none and edge.src in scale:
                        scale[node] = scale[edge.src] + op.scale
                        break
            out = scale[cell.output]
            outs.add(out)
            for node, s in scale.items():
                nodes[node].add((s, out))
            for i, (edge, key) in enumerate(zip(cell.edges, combo)):
                if not key[0]:
                    for c in classes[i][key]:
                        edges[i][c].add((scale[edge.src], out))
        problem = None if outs else first_problem
        exact = True
    else:  # over-approximation: the scales each node can reach
        reach: list[set[int]] = [set() for _ in range(n_nodes)]
        reach[0] = {0}
        for node in range(1, n_nodes):
            for edge in cell.edges:
                if edge.dst == node:
                    for op in _candidates(edge):
                        if not op.is_none:
                            reach[node] |= {s + op.scale for s in reach[edge.src]}
        outs = set(reach[cell.output])
        for node in range(n_nodes):
            nodes[node] = {(s, o) for s in reach[node] for o in outs}
        for i, edge in enumerate(cell.edges):
            for c, op in enumerate(_candidates(edge)):
                if not op.is_none:
                    edges[i][c] = {(s, o) for s in reach[edge.src] for o in outs}
        problem, exact = None, False
    del n_edges
    return CellShapes(
        exact,
        frozenset(outs),
        tuple(frozenset(n) for n in nodes),
        tuple(tuple(frozenset(x) for x in e) for e in edges),
        problem,
    )


def rescale(size: int, scale: int) -> int:
    return int(size * 2**scale) if scale >= 0 else size // 2 ** (-scale)
