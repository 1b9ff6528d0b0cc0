"""The checked program: what the checker hands to the compiler and the runtime.

Plain frozen dataclasses, torch-free. Every name is resolved (ops to their primitive parts with all
arguments filled in, choice sets to their candidate ops, cells to their instances with channel
widths), every setting has its value or its default, and every stage knows its kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from math import prod
from types import MappingProxyType
from typing import Any

from .ast import NO_SPAN, Span
from .primitives import Kind

SCALE = {"up": 1, "down": -1, "normal": 0, "none": 0}


@dataclass(frozen=True)
class Prim:
    """One primitive with every argument resolved (defaults filled in; None = automatic)."""

    name: str
    args: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        for k, v in self.args:
            if k == key:
                return v
        return default

    def __str__(self) -> str:
        shown = [f"{k}: {v}" for k, v in self.args if v is not None]
        return f"{self.name}({', '.join(shown)})" if shown else self.name


@dataclass(frozen=True)
class Op:
    """A candidate operation: a primitive or a composite `op` definition, applied left to right."""

    name: str
    parts: tuple[Prim, ...]
    kind: Kind
    span: Span = NO_SPAN

    @property
    def is_none(self) -> bool:
        return self.kind == "none"

    @property
    def scale(self) -> int:
        """log2 of the resolution change: +1 up-samples, −1 down-samples, 0 keeps it."""
        return SCALE.get(self.kind, 0)


class _Variants:
    """What edges and links share: `candidates` holds one concrete op per (own option, values of
    the decisions read), own option most significant. Without decisions (`depends` empty) the
    candidates are the own options, one per choice-set entry (or the one fixed op)."""

    candidates: tuple[Op, ...]
    choice: str | None
    depends: tuple[int, ...]
    radix: tuple[int, ...]

    @property
    def searchable(self) -> bool:
        """Whether the edge (or link) has a gene of its own: its op names a choice set."""
        return self.choice is not None

    @property
    def options(self) -> tuple[Op, ...]:
        """One op per own option (the variant at the decisions' first values): what its gene
        chooses between; all variants of an option share its kind (the checker ensures it)."""
        return self.candidates[:: prod(self.radix)]

    def variant(self, option: int, values: Sequence[int]) -> int:
        """The index in `candidates` of own option `option` when the cell's decisions (all of
        them, in declaration order) take `values`."""
        index = option
        for d, n in zip(self.depends, self.radix):
            index = index * n + values[d]
        return index


@dataclass(frozen=True)
class EdgeIR(_Variants):
    src: int
    dst: int
    candidates: tuple[Op, ...]
    choice: str | None = None  # the choice set's name when searchable, None when fixed
    span: Span = NO_SPAN
    depends: tuple[int, ...] = ()  # the cell decisions the op reads (indices), in order
    radix: tuple[int, ...] = ()  # their option counts


@dataclass(frozen=True)
class DecisionIR:
    """`cell C(norm: [none, bn, in])`: one gene per cell instance, read by case ops."""

    name: str
    options: tuple[str, ...]
    span: Span = NO_SPAN


@dataclass(frozen=True)
class CellIR:
    name: str
    edges: tuple[EdgeIR, ...]
    output: int
    num_nodes: int
    span: Span = NO_SPAN
    decisions: tuple[DecisionIR, ...] = ()

    @property
    def searchable_edges(self) -> tuple[int, ...]:
        return tuple(i for i, e in enumerate(self.edges) if e.searchable)


@dataclass(frozen=True)
class CellInstance:
    """The `index`-th cell (1-based, as `link` counts) of a network, at its widths."""

    index: int
    cell: CellIR
    in_channels: int
    channels: int


@dataclass(frozen=True)
class LinkIR(_Variants):
    """Node `src_node` of cell `src_cell` feeds node `dst_node` of cell `dst_cell` through `op`,
    added to the destination node. Links read the source node's final value (after its own links
    are added: a tap after the adds). A link whose op names a choice set is searched (`choice`,
    e.g. `[none, xskip]`: on or off); its ops may read the destination cell's decisions."""

    src_cell: int
    src_node: int
    dst_cell: int
    dst_node: int
    op: Op  # the first candidate (the only one of a plain link)
    span: Span = NO_SPAN
    candidates: tuple[Op, ...] = ()  # every variant; () means (op,)
    choice: str | None = None
    depends: tuple[int, ...] = ()  # decisions of the destination cell
    radix: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.candidates:
            object.__setattr__(self, "candidates", (self.op,))


@dataclass(frozen=True)
class Gene:
    """One integer of a genome: a cell decision, a searchable edge or a searchable link.

    `pos` is the cell position (for a link, its destination cell's); `index` the decision, edge
    or link index. A cell's genes: its decisions, then its searchable edges, then the searchable
    links into it, each in spec order."""

    kind: str  # "decision" | "edge" | "link"
    pos: int
    index: int


@dataclass(frozen=True)
class NetworkIR:
    """A generator (latent → image) or discriminator (image → score) with its search space.

    Forward order: `stem` primitives, then each cell in `cells` (with `links` between them), then
    `head` primitives. For a generator, `stem` starts with `project` (latent → map).
    `stem_channels` is the channel count leaving the stem (the first cell's `in_channels`).
    """

    name: str
    role: str  # "generator" | "discriminator"
    stem: tuple[Prim, ...]
    cells: tuple[CellInstance, ...]
    links: tuple[LinkIR, ...]
    head: tuple[Prim, ...]
    image_channels: int
    resolution: int
    latent_dim: int
    stem_channels: int
    span: Span = NO_SPAN

    @property
    def searchable_edges(self) -> tuple[tuple[int, int], ...]:
        """(cell position, edge index) of every searchable edge, in spec order: the genome's genes."""
        return tuple(
            (pos, e) for pos, inst in enumerate(self.cells) for e in inst.cell.searchable_edges
        )

    @property
    def genes(self) -> tuple[Gene, ...]:
        """Every gene of the network's genomes, in order (cells in order; see `Gene`). Without
        decisions and searchable links, one per searchable edge, as `searchable_edges`."""
        out: list[Gene] = []
        for pos, inst in enumerate(self.cells):
            out += [Gene("decision", pos, d) for d in range(len(inst.cell.decisions))]
            out += [Gene("edge", pos, e) for e in inst.cell.searchable_edges]
            out += [
                Gene("link", pos, i)
                for i, link in enumerate(self.links)
                if link.searchable and link.dst_cell == pos + 1
            ]
        return tuple(out)

    @property
    def searchable_cells(self) -> tuple[int, ...]:
        return tuple(sorted({g.pos for g in self.genes}))

    def candidates(self, gene: int) -> tuple[Op, ...]:
        pos, e = self.searchable_edges[gene]
        return self.cells[pos].cell.edges[e].candidates


@dataclass(frozen=True)
class FixedNetworkIR:
    """One architecture of a searchable network, named in the spec."""

    name: str
    role: str
    base: str
    genome: tuple[int, ...]
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Best:
    """`best(stage)`: the individual a stage hands on."""

    stage: str

    def __str__(self) -> str:
        return f"best({self.stage})"


@dataclass(frozen=True)
class DataIR:
    name: str  # cifar10 | stl10 | digits | imagefolder
    root: str | None  # resolved relative to the spec file's folder
    resolution: int
    channels: int
    args: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class StageIR:
    name: str
    kind: str  # "search" | "train"
    settings: Mapping[
        str, Any
    ]  # every setting resolved: the stage's own, then the blocks', then defaults
    span: Span = NO_SPAN


@dataclass(frozen=True)
class Program:
    name: str
    file: str
    data: DataIR
    latent_dim: int
    latent_distribution: str
    networks: Mapping[str, NetworkIR]
    fixed: Mapping[str, FixedNetworkIR]
    objectives: tuple[tuple[str, str], ...]  # (fid|is|params, min|max)
    blocks: Mapping[
        str, Mapping[str, Any]
    ]  # evolution, train, evaluate, run: resolved with defaults
    stages: tuple[StageIR, ...]
    ops: Mapping[str, Op] = field(default_factory=lambda: MappingProxyType({}))
    choices: Mapping[str, tuple[Op, ...]] = field(default_factory=lambda: MappingProxyType({}))
    # ops whose parts a cell decision picks: name → (the case as written, its kind)
    case_ops: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))

    def network(self, name: str) -> NetworkIR:
        """A searchable network, or the base network of a fixed one."""
        if name in self.fixed:
            return self.networks[self.fixed[name].base]
        return self.networks[name]
