"""Channel bookkeeping and parameter counts, as arithmetic on the IR (no torch).

`eagan show` and the search's `params` objective (paper §4.3) need the size of a genome's network
without building it; this module counts it from the same channel rules the compiler builds with
(`compiler/ops.py` imports `walk` from here, so the two cannot disagree).

Channel rules (issue "The compiler"):
  * in a cell instance an op on an edge leaving node 0 maps `in_channels → channels`, every other
    edge `channels → channels`; links map the source node's channels → the destination's;
  * inside a composite op the first channel-changing part (conv, conv_transpose, linear) maps the
    incoming channels to the target, later ones keep the target; `out:` overrides the target
    (`image` = the data's channel count);
  * stem and head primitives track channels through `out:`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eagan_dsl import shapes
from eagan_dsl.genome import Genome, GenomeSpace, cell_problem, cell_scale
from eagan_dsl.ir import CellInstance, EdgeIR, LinkIR, NetworkIR, Op, Prim, Program
from eagan_dsl.primitives import PRIMITIVES


class OpError(ValueError):
    """An op whose arguments do not fit the channels it is placed between."""


@dataclass(frozen=True)
class Part:
    """One primitive of an op, placed: its input and output channels resolved."""

    prim: Prim
    in_channels: int
    out_channels: int


def walk(
    parts: Sequence[Prim],
    in_channels: int,
    out_channels: int | None,
    image_channels: int,
    where: str,
) -> list[Part]:
    """Place each part of an op between its channels (`eagan_dsl.shapes.place`, which the checker
    uses too). `out_channels` None: a stem or head, whose parts keep the channels unless `out:`
    says otherwise. Raises OpError naming `where`."""
    try:
        placed = shapes.place(parts, in_channels, out_channels, image_channels)
    except shapes.ShapeError as err:
        raise OpError(f"{where}: {err}") from None
    return [Part(prim, cin, cout) for prim, cin, cout in placed]


def prim_params(part: Part, latent_dim: int = 0, chunk_channels: Sequence[int] = ()) -> int:
    """Learnable parameters of one placed primitive (spectral norm adds none: u, v are buffers)."""
    if part.prim.name == "project":
        return project_params(part.prim, latent_dim, chunk_channels)
    return shapes.prim_params(part.prim, part.in_channels, part.out_channels)


def project_sizes(prim: Prim, chunk_channels: Sequence[int]) -> list[tuple[int, int]]:
    """(channels, side) of each chunk's map: chunk i feeds cell i+1's input at size·2^i
    (research notes §1.1: l1 → 4×4, l2 → 8×8, l3 → 16×16)."""
    size, split = int(prim.get("size")), int(prim.get("split", 1))
    return [(chunk_channels[i], size * 2**i) for i in range(split)]


def project_params(prim: Prim, latent_dim: int, chunk_channels: Sequence[int]) -> int:
    split = int(prim.get("split", 1))
    bias = bool(prim.get("bias", True))
    chunk = latent_dim // split
    return sum(
        chunk * c * s * s + (c * s * s if bias else 0)
        for c, s in project_sizes(prim, chunk_channels)
    )


def op_params(
    op: Op, in_channels: int, out_channels: int, image_channels: int, where: str = ""
) -> int:
    parts = walk(op.parts, in_channels, out_channels, image_channels, where or f"op '{op.name}'")
    return sum(prim_params(p) for p in parts)


def node_channels(inst: CellInstance, node: int) -> int:
    return inst.in_channels if node == 0 else inst.channels


def edge_channels(inst: CellInstance, src: int) -> tuple[int, int]:
    return node_channels(inst, src), inst.channels


def chunk_channels(network: NetworkIR) -> list[int]:
    """The channels of each cell input that a project chunk is added to."""
    return [inst.in_channels for inst in network.cells] or [network.stem_channels]


def stem_parts(network: NetworkIR) -> list[Part]:
    """The stem's primitives after `project` (a generator's project is counted on its own)."""
    prims = [p for p in network.stem if p.name != "project"]
    # a generator's stem continues from project's map (the first cell's width); a
    # discriminator's starts from the image
    start = chunk_channels(network)[0] if network.role == "generator" else network.image_channels
    return walk(prims, start, None, network.image_channels, f"stem of {network.name}")


def head_parts(network: NetworkIR) -> list[Part]:
    channels = network.cells[-1].channels if network.cells else network.stem_channels
    return walk(network.head, channels, None, network.image_channels, f"head of {network.name}")


def fixed_params(network: NetworkIR) -> int:
    """Parameters that do not depend on the genome: stem (with project), links, head, fixed edges."""
    total = sum(prim_params(p) for p in stem_parts(network))
    total += sum(prim_params(p) for p in head_parts(network))
    for prim in network.stem:
        if prim.name == "project":
            total += project_params(prim, network.latent_dim, chunk_channels(network))
    for i, link in enumerate(network.links):
        if not _varies(link):
            total += _link_op_params(network, i, link.op)
    for inst in network.cells:
        for e, edge in enumerate(inst.cell.edges):
            if not _varies(edge):
                total += _edge_op_params(network, inst, e, edge.candidates[0])
    return total


def _varies(edge: EdgeIR | LinkIR) -> bool:
    """Whether the genome picks the op: a gene of its own, or decisions it reads."""
    return edge.searchable or len(edge.candidates) > 1


def _link_op_params(network: NetworkIR, i: int, op: Op) -> int:
    link = network.links[i]
    src = network.cells[link.src_cell - 1]
    dst = network.cells[link.dst_cell - 1]
    return op_params(
        op,
        node_channels(src, link.src_node),
        node_channels(dst, link.dst_node),
        network.image_channels,
        f"link {link.src_cell}.{link.src_node} -> {link.dst_cell}.{link.dst_node}",
    )


_SPACES: dict[int, tuple[NetworkIR, GenomeSpace]] = {}


def _space(network: NetworkIR) -> GenomeSpace:
    """The network's genome space without the resolution floor (codec and plans only), cached."""
    hit = _SPACES.get(id(network))
    if hit is None or hit[0] is not network:
        if len(_SPACES) > 256:
            _SPACES.clear()
        hit = _SPACES[id(network)] = (network, GenomeSpace(network))
    return hit[1]


def _edge_op_params(network: NetworkIR, inst: CellInstance, e: int, op: Op) -> int:
    edge = inst.cell.edges[e]
    cin, cout = edge_channels(inst, edge.src)
    where = (
        f"op '{op.name}' on edge {edge.src} -> {edge.dst} of cell {inst.index} ({inst.cell.name})"
    )
    return op_params(op, cin, cout, network.image_channels, where)


def count_params(network: NetworkIR, genome: Genome | Sequence[int] = ()) -> int:
    """Learnable parameters of the subnet a genome selects, counted from the IR (no torch)."""
    choices = genome.choices if isinstance(genome, Genome) else tuple(genome)
    genes = network.genes
    if len(choices) != len(genes):
        raise ValueError(
            f"genome has {len(choices)} genes, network {network.name} has {len(genes)}"
        )
    total = fixed_params(network)
    space = _space(network)
    g = Genome(network.name, choices)
    for pos, inst in enumerate(network.cells):
        for e, (edge, v) in enumerate(zip(inst.cell.edges, space.variants(g, pos))):
            if _varies(edge):
                total += _edge_op_params(network, inst, e, edge.candidates[v])
    for i, (link, v) in enumerate(zip(network.links, space.link_variants(g))):
        if _varies(link):
            total += _link_op_params(network, i, link.candidates[v])
    return total


def supernet_params(network: NetworkIR) -> int:
    """Parameters of the whole supernet: every candidate of every searchable edge."""
    total = fixed_params(network)
    for inst in network.cells:
        for e, edge in enumerate(inst.cell.edges):
            if _varies(edge):
                total += sum(_edge_op_params(network, inst, e, op) for op in edge.candidates)
    for i, link in enumerate(network.links):
        if _varies(link):
            total += sum(_link_op_params(network, i, op) for op in link.candidates)
    return total


def _cell_options(network: NetworkIR, pos: int) -> dict[int, tuple[int, int]]:
    """For one cell: cell scale (log2) → (min, max) parameters of its searchable edges over the
    valid assignments with that scale. Validity depends only on each op's (is_none, scale) class
    (eagan_dsl.genome.cell_problem), so the cell is enumerated over classes (≤ 3^edges, 32 for the
    paper's UpCell) with each class contributing its cheapest / dearest member."""
    inst = network.cells[pos]
    decisions = inst.cell.decisions
    links = [
        (i, link)
        for i, link in enumerate(network.links)
        if link.dst_cell == pos + 1 and _varies(link)
    ]
    out: dict[int, tuple[int, int]] = {}
    # a decision's variants share their kind: validity rests on the own options, and the
    # decisions' values only change the costs, so each assignment of values is tried
    for values in itertools.product(*(range(len(d.options)) for d in decisions)):
        classes: list[list[tuple[Op, int, int]]] = []
        for e, edge in enumerate(inst.cell.edges):
            groups: dict[tuple[bool, int], list[int]] = {}
            reps: dict[tuple[bool, int], Op] = {}
            for o, option in enumerate(edge.options):
                op = edge.candidates[edge.variant(o, values)]
                key = (op.is_none, op.scale)
                cost = _edge_op_params(network, inst, e, op) if _varies(edge) else 0
                groups.setdefault(key, []).append(cost)
                reps.setdefault(key, op)
            classes.append([(reps[k], min(v), max(v)) for k, v in groups.items()])
        link_lo = link_hi = 0
        for i, link in links:
            costs = [
                _link_op_params(network, i, link.candidates[link.variant(o, values)])
                for o in range(len(link.options))
            ]
            link_lo, link_hi = link_lo + min(costs), link_hi + max(costs)
        for combo in _product(classes):
            ops = [op for op, _, _ in combo]
            if cell_problem(inst.cell, ops) is not None:
                continue
            lo = sum(c[1] for c in combo) + link_lo
            hi = sum(c[2] for c in combo) + link_hi
            scale = cell_scale(inst.cell, ops)
            old = out.get(scale)
            out[scale] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
    return out


def _product(
    classes: list[list[tuple[Op, int, int]]],
) -> Iterable[tuple[tuple[Op, int, int], ...]]:
    return itertools.product(*classes)


def param_range(network: NetworkIR, input_resolution: int | None = None) -> tuple[int, int]:
    """(min, max) parameters over the valid genomes, exactly, without enumerating them: cells
    are independent except through the resolution (a cell may not shrink the map below one
    pixel), so a dynamic programme over cells keeps, per reachable resolution, the best sums."""
    base = fixed_params(network)
    if input_resolution is None:
        input_resolution = first_cell_resolution(network)
    states: dict[int | None, tuple[int, int]] = {input_resolution: (0, 0)}
    for pos in range(len(network.cells)):
        options = _cell_options(network, pos)
        if not options:
            raise ValueError(f"cell {pos + 1} of {network.name} has no valid assignment")
        new: dict[int | None, tuple[int, int]] = {}
        for size, (lo, hi) in states.items():
            for scale, (clo, chi) in options.items():
                nxt = None if size is None else _rescale(size, scale)
                if nxt is not None and nxt < 1:
                    continue
                old = new.get(nxt)
                cand = (lo + clo, hi + chi)
                new[nxt] = cand if old is None else (min(old[0], cand[0]), max(old[1], cand[1]))
        states = new
    if not states:
        raise ValueError(f"no genome of {network.name} keeps the feature map at one pixel or more")
    return base + min(v[0] for v in states.values()), base + max(v[1] for v in states.values())


def _rescale(size: int, scale: int) -> int:
    return int(size * 2**scale) if scale >= 0 else size // 2 ** (-scale)


def first_cell_resolution(network: NetworkIR) -> int | None:
    """The resolution entering the first cell (as the checker computes it for GenomeSpace)."""
    if not network.resolution:
        return None
    if network.role == "generator":
        project = next((p for p in network.stem if p.name == "project"), None)
        return int(project.get("size")) if project is not None else None
    size = network.resolution
    for prim in network.stem:
        kind = PRIMITIVES[prim.name].kind_for(dict(prim.args))
        size = _rescale(size, 1 if kind == "up" else -1 if kind == "down" else 0)
    return size


def genome_space(network: NetworkIR) -> GenomeSpace:
    return GenomeSpace(network, first_cell_resolution(network))


def program_params(program: Program, name: str) -> int | tuple[int, int]:
    """What `eagan show` prints for a network: the exact count of a fixed network (or of a
    network without searchable edges), else the (min, max) range over valid genomes."""
    if name in program.fixed:
        fixed = program.fixed[name]
        return count_params(program.networks[fixed.base], fixed.genome)
    network = program.networks[name]
    if not network.genes:
        return count_params(network, ())
    return param_range(network)


__all__ = [
    "OpError",
    "Part",
    "count_params",
    "fixed_params",
    "genome_space",
    "op_params",
    "param_range",
    "program_params",
    "supernet_params",
    "walk",
]
