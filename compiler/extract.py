"""Subnets: the chosen ops of one genome as a plain module (paper §4.1: candidates inherit the
supernet's weights; §5.1: the fully-train stage trains (G*, D*) as standalone networks).

`extract` copies the chosen ops (training the subnet does not touch the supernet); its forward is
the supernet's `_run` with the genome baked in, so `extract(s, g)(x)` equals `s(x, g)` bit for bit.
State-dict layout: `project.layers.i.*`, `stem.i.*`, `cells.<cell position>.<edge index>.<part>.*`
(edges with `none` are absent), `links.i.*`, `head.i.*`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from eagan_dsl.genome import Genome
from eagan_dsl.ir import NetworkIR

from .ops import Chain
from .params import genome_space
from .supernet import (
    EdgeFn,
    GenomeLike,
    LinkFn,
    SuperEdge,
    SuperNet,
    _Network,
    as_genome,
    build_edge_op,
)

__all__ = ["SubNet", "build_subnet", "extract", "subnet_keys"]


class SubNet(_Network):
    """One architecture: only its chosen ops; `forward(x)` needs no genome."""

    def __init__(self, network: NetworkIR, genome: Genome) -> None:
        super().__init__()
        self.genome = genome
        self.network = network
        self.links_off: frozenset[int] = frozenset()  # searched links that are off

    def _link(self, i: int) -> LinkFn | None:
        if i in self.links_off:
            return None  # an empty placeholder keeps the other links' indices
        return super()._link(i)

    def _set_edges(self, edges: Mapping[tuple[int, int], Chain]) -> None:
        self.cells = nn.ModuleList(
            nn.ModuleDict(
                {str(e): edges[(pos, e)] for e in range(len(inst.cell.edges)) if (pos, e) in edges}
            )
            for pos, inst in enumerate(self.network.cells)
        )

    def edge(self, pos: int, e: int) -> Chain | None:
        cell = self.cells[pos]
        assert isinstance(cell, nn.ModuleDict)
        op = cell[str(e)] if str(e) in cell else None  # noqa: SIM401 - ModuleDict has no get
        assert op is None or isinstance(op, Chain)
        return op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def edge_fn(pos: int, e: int) -> EdgeFn | None:
            return self.edge(pos, e)

        return self._run(x, edge_fn)


def _check(
    network: NetworkIR, genome: GenomeLike
) -> tuple[Genome, dict[tuple[int, int], int | None]]:
    g = as_genome(network, genome)
    space = genome_space(network)
    problem = space.problem(g)
    if problem is not None:
        raise ValueError(f"invalid genome {g}: {problem}")
    plan: dict[tuple[int, int], int | None] = {}
    for pos, inst in enumerate(network.cells):
        for e, (edge, v) in enumerate(zip(inst.cell.edges, space.variants(g, pos))):
            plan[(pos, e)] = None if edge.candidates[v].is_none else v
    return g, plan


def _link_plan(network: NetworkIR, g: Genome) -> list[int | None]:
    return [
        None if link.candidates[v].is_none else v
        for link, v in zip(network.links, genome_space(network).link_variants(g))
    ]


def extract(supernet: SuperNet, genome: GenomeLike) -> SubNet:
    """The subnet of `genome` with copies of the supernet's weights (and buffers: BN statistics,
    spectral-norm vectors), in the supernet's train/eval mode, on its device and dtype."""
    network = supernet.network
    g, plan = _check(network, genome)
    sub = SubNet(network, g)
    sub.project = copy.deepcopy(supernet.project)
    sub.stem = copy.deepcopy(supernet.stem)
    links = _link_plan(network, g)
    sub.links = nn.ModuleList(
        Chain() if c is None else copy.deepcopy(_as_module(supernet.link_module(i, c)))
        for i, c in enumerate(links)
    )
    sub.links_off = frozenset(i for i, c in enumerate(links) if c is None)
    sub.head = copy.deepcopy(supernet.head)
    sub._links_into = dict(supernet._links_into)
    sub._link_sources = set(supernet._link_sources)
    edges = {}
    for (pos, e), c in plan.items():
        if c is not None:
            module = supernet.candidates(pos, e)[c]
            edges[(pos, e)] = copy.deepcopy(module)
    sub._set_edges(edges)
    sub.train(supernet.training)
    return sub


def _as_module(fn: LinkFn | None) -> nn.Module:
    assert isinstance(fn, nn.Module)
    return fn


def build_subnet(network: NetworkIR, genome: GenomeLike = (), seed: int = 0) -> SubNet:
    """A freshly initialised subnet (the fully-train stage's G* and D*, or a network without
    searchable edges such as SimpleD), built without the supernet."""
    g, plan = _check(network, genome)
    sub = SubNet(network, g)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sub._build_common(network)
        links = _link_plan(network, g)
        sub.links = nn.ModuleList(
            Chain() if c is None else module.ops[c] if isinstance(module, SuperEdge) else module
            for module, c in zip(sub.links, links)
        )
        sub.links_off = frozenset(i for i, c in enumerate(links) if c is None)
        edges = {
            (pos, e): build_edge_op(network, pos, e, network.cells[pos].cell.edges[e].candidates[c])
            for (pos, e), c in plan.items()
            if c is not None
        }
        sub._set_edges(edges)
    return sub


def subnet_keys(network: NetworkIR, genome: GenomeLike, keys: Iterable[str]) -> dict[str, str]:
    """The subnet's state-dict key of every supernet key that the genome chooses (others are left
    out): `cells.p.edges.e.ops.c.rest` → `cells.p.e.rest`, `links.i.ops.c.rest` (a link the genome
    picks) → `links.i.rest`; other keys are unchanged."""
    g, plan = _check(network, genome)
    links = _link_plan(network, g)
    out = {}
    for key in keys:
        parts = key.split(".")
        if parts[0] == "links" and len(parts) > 3 and parts[2] == "ops":
            if links[int(parts[1])] == int(parts[3]):
                out[key] = ".".join(["links", parts[1], *parts[4:]])
        elif parts[0] != "cells" or len(parts) < 6 or parts[2] != "edges" or parts[4] != "ops":
            out[key] = key
        elif plan.get((int(parts[1]), int(parts[3]))) == int(parts[5]):
            out[key] = ".".join(["cells", parts[1], parts[3], *parts[6:]])
    return out
