"""SuperNet-G and SuperNet-D: every candidate op of every searchable edge, weights shared across
subnets, single-path execution (paper §3.2; research notes §3.1).

Forward order (one definition, `_Network._run`, shared with the extracted `SubNet`, so the two
compute the same sums in the same order and agree bit for bit):

  * generator: `project` cuts z into `split` chunks; chunk 0's map (through the rest of the stem)
    is cell 1's input, chunk i ≥ 1's map is added to cell i+1's input (= cell i's output) —
    the released code's l1/l2/l3 (research notes §1.1);
  * discriminator: the stem's primitives on the image, then the cells;
  * in a cell, node 0 is the cell's input; every other node is the sum of its active incoming
    edges (spec order), then of its incoming links (spec order); the output node is the cell's
    output. A link reads its source node's final value (after that node's own links: the
    released code's in-place add, research notes §1.1 "Skip-out subtlety") and is resized to the
    destination node's size;
  * the head's primitives.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeAlias

import torch
from torch import nn

from eagan_dsl.genome import Genome, GenomeSpace
from eagan_dsl.ir import CellIR, LinkIR, NetworkIR, Op

from .ops import Chain, OpError, Project, build_op, build_part, build_prims
from .params import (
    chunk_channels,
    count_params,
    edge_channels,
    genome_space,
    head_parts,
    node_channels,
    stem_parts,
)

__all__ = ["EdgeFn", "GenomeLike", "SuperNet", "as_genome", "live_nodes"]

EdgeFn: TypeAlias = Callable[[torch.Tensor], torch.Tensor]
LinkFn: TypeAlias = Callable[[torch.Tensor, Sequence[int]], torch.Tensor]
GenomeLike: TypeAlias = Genome | Sequence[int]


def as_genome(network: NetworkIR, genome: GenomeLike) -> Genome:
    if isinstance(genome, Genome):
        return genome
    return Genome(network.name, tuple(int(c) for c in genome))


def edge_where(network: NetworkIR, pos: int, e: int, op: Op) -> str:
    inst = network.cells[pos]
    edge = inst.cell.edges[e]
    return f"op '{op.name}' on edge {edge.src} -> {edge.dst} of cell {pos + 1} ({inst.cell.name})"


def link_varies(link: LinkIR) -> bool:
    """Whether the genome picks the link's op (a gene of its own, or decisions it reads)."""
    return link.searchable or len(link.candidates) > 1


def build_link_op(network: NetworkIR, i: int, op: Op) -> Chain:
    link = network.links[i]
    return build_op(
        op,
        node_channels(network.cells[link.src_cell - 1], link.src_node),
        node_channels(network.cells[link.dst_cell - 1], link.dst_node),
        network.image_channels,
        f"link {link.src_cell}.{link.src_node} -> {link.dst_cell}.{link.dst_node}",
    )


def build_edge_op(network: NetworkIR, pos: int, e: int, op: Op) -> Chain:
    inst = network.cells[pos]
    cin, cout = edge_channels(inst, inst.cell.edges[e].src)
    return build_op(op, cin, cout, network.image_channels, edge_where(network, pos, e, op))


class _Network(nn.Module):
    """What a supernet and a subnet share: project, stem, links, head and the forward order."""

    network: NetworkIR
    project: Project | None

    def _build_common(self, network: NetworkIR) -> None:
        self.network = network
        project = next((p for p in network.stem if p.name == "project"), None)
        self.project = None
        if project is not None:
            from .params import Part

            part = Part(project, network.latent_dim, chunk_channels(network)[0])
            module = build_part(part, chunk_channels=chunk_channels(network))
            assert isinstance(module, Project)
            self.project = module
        self.stem = Chain(*(build_part(p) for p in stem_parts(network)))
        self.links = nn.ModuleList(
            build_link_op(network, i, link.op)
            if not link_varies(link)
            # a searched link (or one reading decisions): every variant, `links.i.ops.c.*`
            else SuperEdge([build_link_op(network, i, op) for op in link.candidates])
            for i, link in enumerate(network.links)
        )
        self.head = Chain(*(build_part(p) for p in head_parts(network)))
        self._links_into: dict[tuple[int, int], list[int]] = {}
        for i, link in enumerate(network.links):
            self._links_into.setdefault((link.dst_cell, link.dst_node), []).append(i)
        self._link_sources = {(link.src_cell, link.src_node) for link in network.links}

    def _link(self, i: int) -> LinkFn | None:
        """The module of link `i` (None when it is off); overridden where the genome picks it."""
        module = self.links[i]
        return module if isinstance(module, Chain) else None

    def _run(
        self,
        x: torch.Tensor,
        edge_fn: Callable[[int, int], EdgeFn | None],
        link_fn: Callable[[int], LinkFn | None] | None = None,
    ) -> torch.Tensor:
        maps: list[torch.Tensor] = []
        if self.project is not None:
            maps = self.project(x)
            x = maps[0]
        h = self.stem(x)
        saved: dict[tuple[int, int], torch.Tensor] = {}
        for pos in range(len(self.network.cells)):
            if 0 < pos < len(maps):
                h = h + maps[pos]  # chunk pos feeds cell pos+1's input (research notes §1.1)
            h = self._cell(pos, h, edge_fn, saved, link_fn or self._link)
        out: torch.Tensor = self.head(h)
        return out

    def _cell(
        self,
        pos: int,
        x: torch.Tensor,
        edge_fn: Callable[[int, int], EdgeFn | None],
        saved: dict[tuple[int, int], torch.Tensor],
        link_fn: Callable[[int], LinkFn | None],
    ) -> torch.Tensor:
        cell = self.network.cells[pos].cell
        index = pos + 1  # links count cells from 1
        fns = [edge_fn(pos, e) for e in range(len(cell.edges))]
        sources = {n for c, n in self._link_sources if c == index}
        live = live_nodes(cell, {e for e, fn in enumerate(fns) if fn is not None}, sources)
        nodes: dict[int, torch.Tensor] = {0: x}
        for node in range(1, cell.num_nodes):
            if node not in live:
                continue  # feeds nothing: computing it would only cost time
            value: torch.Tensor | None = None
            for e, edge in enumerate(cell.edges):
                fn = fns[e]
                if edge.dst != node or fn is None:  # `none` costs nothing (research notes §3.1)
                    continue
                y = fn(nodes[edge.src])
                value = y if value is None else value + y
            if value is None:
                raise ValueError(f"node {node} of cell {index} ({cell.name}) has no active input")
            for i in self._links_into.get((index, node), ()):
                link = self.network.links[i]
                module = link_fn(i)
                if module is None:
                    continue  # a searched link that is off
                source = saved[(link.src_cell, link.src_node)]
                value = value + module(source, value.shape[-2:])
            nodes[node] = value
            if (index, node) in self._link_sources:
                saved[(index, node)] = value
        return nodes[cell.output]


def live_nodes(cell: CellIR, active: set[int], keep: set[int]) -> set[int]:
    """The nodes whose value reaches the cell's output (or a link, `keep`) through active edges.
    A node whose out-edges are all `none` (e.g. G*'s cell 3, node 1) is not computed; its op's
    weights still exist and still count as parameters, as in the released standalone network."""
    live = {cell.output, *keep}
    for node in range(cell.num_nodes - 1, -1, -1):
        if any(cell.edges[e].src == node and cell.edges[e].dst in live for e in active):
            live.add(node)
    return live


class SuperEdge(nn.Module):
    def __init__(self, candidates: Sequence[Chain]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(candidates)


class SuperCell(nn.Module):
    def __init__(self, edges: Sequence[SuperEdge]) -> None:
        super().__init__()
        self.edges = nn.ModuleList(edges)


class SuperNet(_Network):
    """All candidates of a network's search space; `forward(x, genome)` runs one subnet.

    `x` is z (N, latent_dim) for a generator, images (N, C, H, W) for a discriminator. The
    construction is deterministic given `seed` (the global RNG is forked, not disturbed).
    """

    def __init__(self, network: NetworkIR, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._build_common(network)
            self.cells = nn.ModuleList(
                SuperCell(
                    [
                        SuperEdge([build_edge_op(network, pos, e, op) for op in edge.candidates])
                        for e, edge in enumerate(inst.cell.edges)
                    ]
                )
                for pos, inst in enumerate(network.cells)
            )
        self.space: GenomeSpace = genome_space(network)
        self._plans: dict[tuple[int, ...], dict[tuple[int, int], int | None]] = {}

    def candidates(self, pos: int, e: int) -> list[Chain]:
        """The candidate ops of edge `e` of the cell at position `pos` (one for a fixed edge)."""
        cell = self.cells[pos]
        assert isinstance(cell, SuperCell)
        edge = cell.edges[e]
        assert isinstance(edge, SuperEdge)
        return [op for op in edge.ops if isinstance(op, Chain)]

    # ------------------------------------------------------------------------ genomes
    def random_genome(self, rng: random.Random) -> Genome:
        return self.space.random(rng)

    def params(self, genome: GenomeLike) -> int:
        """Parameters of the subnet `genome` selects (arithmetic, nothing is built)."""
        return count_params(self.network, as_genome(self.network, genome))

    def plan(self, genome: GenomeLike) -> dict[tuple[int, int], int | None]:
        """(cell position, edge) → candidate index, None for `none`. Raises ValueError for an
        invalid genome (the search never trains one, DESIGN "Validity")."""
        g = as_genome(self.network, genome)
        cached = self._plans.get(g.choices)
        if cached is not None:
            return cached
        problem = self.space.problem(g)
        if problem is not None:
            raise ValueError(
                f"invalid genome {self.space.encode(g) if _in_range(self.space, g) else g}: {problem}"
            )
        plan: dict[tuple[int, int], int | None] = {}
        for pos, inst in enumerate(self.network.cells):
            for e, (edge, v) in enumerate(zip(inst.cell.edges, self.space.variants(g, pos))):
                plan[(pos, e)] = None if edge.candidates[v].is_none else v
        if len(self._plans) < 4096:
            self._plans[g.choices] = plan
        return plan

    def link_plan(self, genome: GenomeLike) -> list[int | None]:
        """The candidate of every link (None when off); for a plain link 0."""
        g = as_genome(self.network, genome)
        self.plan(g)  # validates
        return [
            None if link.candidates[v].is_none else v
            for link, v in zip(self.network.links, self.space.link_variants(g))
        ]

    def link_module(self, i: int, c: int | None) -> LinkFn | None:
        if c is None:
            return None
        module = self.links[i]
        if isinstance(module, SuperEdge):
            op = module.ops[c]
            assert isinstance(op, Chain)
            return op
        assert isinstance(module, Chain)
        return module

    # ------------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, genome: GenomeLike) -> torch.Tensor:
        plan = self.plan(genome)
        links = self.link_plan(genome) if self.network.links else []

        def edge_fn(pos: int, e: int) -> EdgeFn | None:
            c = plan[(pos, e)]
            if c is None:
                return None
            return self.candidates(pos, e)[c]

        return self._run(x, edge_fn, lambda i: self.link_module(i, links[i]))

    def forward_mixed(self, x: torch.Tensor, genome: GenomeLike | None = None) -> torch.Tensor:
        """DARTS-style baseline (AdversarialNAS, research notes §0): every candidate of every
        edge runs and their outputs are averaged. Only candidates whose resolution change fits
        the node resolutions of `genome` (default: a fixed valid genome) can be summed, so an
        edge mixing `skip` and down-sampling ops averages the ones of the reference's kind;
        `none` contributes a zero map, as DARTS's zero op."""
        reference = (
            as_genome(self.network, genome)
            if genome is not None
            else self.random_genome(random.Random(0))
        )
        wanted = self._edge_scales(reference)

        def edge_fn(pos: int, e: int) -> EdgeFn | None:
            edge = self.network.cells[pos].cell.edges[e]
            ops = self.candidates(pos, e)
            if not edge.searchable and len(edge.candidates) == 1:
                return None if edge.candidates[0].is_none else ops[0]
            picked = [
                ops[c]
                for c, op in enumerate(edge.candidates)
                if op.is_none or op.scale == wanted[(pos, e)]
            ]
            return lambda t: _mean([m(t) for m in picked])

        links = self.link_plan(reference) if self.network.links else []
        return self._run(x, edge_fn, lambda i: self.link_module(i, links[i]))

    def _edge_scales(self, genome: Genome) -> dict[tuple[int, int], int]:
        self.plan(genome)  # validates
        out: dict[tuple[int, int], int] = {}
        for pos, inst in enumerate(self.network.cells):
            ops = self.space.ops(genome, pos)
            scale = {0: 0}
            for node in range(1, inst.cell.num_nodes):
                for edge, op in zip(inst.cell.edges, ops):
                    if edge.dst == node and not op.is_none and edge.src in scale:
                        scale[node] = scale[edge.src] + op.scale
                        break
            for e, edge in enumerate(inst.cell.edges):
                out[(pos, e)] = scale[edge.dst] - scale[edge.src]
        return out


def _mean(ys: list[torch.Tensor]) -> torch.Tensor:
    total = ys[0]
    for y in ys[1:]:
        total = total + y
    return total / len(ys)


def _in_range(space: GenomeSpace, g: Genome) -> bool:
    return len(g.choices) == len(space.candidates) and all(
        0 <= c < len(space.candidates[i]) for i, c in enumerate(g.choices)
    )


# re-exported for callers that build a single op between a network's widths
__all__ += ["OpError", "build_edge_op", "build_link_op", "build_prims", "link_varies"]
