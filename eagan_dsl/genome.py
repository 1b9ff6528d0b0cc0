"""Genomes: one integer per searchable edge of a network, in spec order (paper §3.2, §4.3).

Pure data and pure Python (no torch), so the checker can validate the genome strings written in a
spec, and the compiler and runtime share one definition.

String form (stable, readable, pastable into a spec or a command line): the candidate op names of
the searchable edges, cells separated by `|`, optionally prefixed by the network name:
`G:bilinear,bilinear,skip,none,conv1x1,conv3x3,skip|bilinear,...`.

Validity comes from the graph (shared/DESIGN.md): every node of every cell needs at least one
active (not `none`) input, all active inputs of a node agree in resolution, and the resolution
never falls below one pixel. Policy for invalid genomes: `random` draws each cell uniformly among
its valid assignments (rejection, per cell); `mutate` and `crossover` only return valid genomes
(they try other edges and other ops, and give up by returning None when no valid different child
exists); the search never trains an invalid genome.
"""

from __future__ import annotations

import itertools
import random as _random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from math import prod

from .ir import CellIR, Gene, NetworkIR, Op

MAX_TRIES = 1000


class GenomeError(ValueError):
    """A genome string or vector that does not fit its network; the message says what to do."""


@dataclass(frozen=True, order=True)
class Genome:
    network: str
    choices: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.network}:{','.join(map(str, self.choices))}"


def cell_problem(cell: CellIR, ops: Sequence[Op]) -> str | None:
    """Why this assignment of one op per edge is not a valid cell, or None when it is."""
    scale: dict[int, int | None] = {0: 0}
    for node in range(1, cell.num_nodes):
        incoming = [(e, op) for e, op in zip(cell.edges, ops) if e.dst == node]
        active = [(e, op) for e, op in incoming if not op.is_none and scale.get(e.src) is not None]
        if not active:
            scale[node] = None
            return f"node {node} of cell {cell.name} has no active input"
        scales = {scale[e.src] + op.scale for e, op in active}  # type: ignore[operator]
        if len(scales) > 1:
            return f"the inputs of node {node} of cell {cell.name} differ in resolution"
        scale[node] = scales.pop()
    return None


def cell_scale(cell: CellIR, ops: Sequence[Op]) -> int:
    """log2 of the resolution change from a valid cell's input to its output."""
    scale = {0: 0}
    for edge, op in zip(cell.edges, ops):
        if not op.is_none and edge.src in scale and edge.dst not in scale:
            scale[edge.dst] = scale[edge.src] + op.scale
    return scale.get(cell.output, 0)


@dataclass(frozen=True)
class Option:
    """An option of a gene that is no op: a decision's value (`pre`, `bn`, ...)."""

    name: str
    is_none: bool = False


class GenomeSpace:
    """The genomes of one network: codec, validity, size, sampling and variation (paper §4.3).

    A gene is a searchable edge (one op of its choice set), a cell decision (one of its values,
    read by every case op of the cell: one gene, many places) or a searchable link."""

    def __init__(self, network: NetworkIR, input_resolution: int | None = None) -> None:
        self.network = network
        self.genes: tuple[Gene, ...] = network.genes
        self.candidates: tuple[tuple[Op | Option, ...], ...] = tuple(
            self._options(g) for g in self.genes
        )
        # the resolution entering the first cell; cells must never shrink it below 1 pixel
        self.input_resolution = input_resolution

    def _options(self, gene: Gene) -> tuple[Op | Option, ...]:
        cell = self.network.cells[gene.pos].cell
        if gene.kind == "decision":
            return tuple(Option(v) for v in cell.decisions[gene.index].options)
        if gene.kind == "edge":
            return cell.edges[gene.index].options
        return self.network.links[gene.index].options

    def where(self, g: int) -> str:
        """The place of gene `g`, in the user's words."""
        gene = self.genes[g]
        cell = self.network.cells[gene.pos].cell
        options = ", ".join(o.name for o in self.candidates[g])
        if gene.kind == "decision":
            dec = cell.decisions[gene.index]
            return f"decision {dec.name} of cell {gene.pos + 1} ({options})"
        if gene.kind == "edge":
            edge = cell.edges[gene.index]
            return (
                f"edge {edge.src} -> {edge.dst} in cell {gene.pos + 1} "
                f"(choice '{edge.choice}': {options})"
            )
        link = self.network.links[gene.index]
        return (
            f"link {link.src_cell}.{link.src_node} -> {link.dst_cell}.{link.dst_node} "
            f"(choice '{link.choice}': {options})"
        )

    # --------------------------------------------------------------------------------- codec
    def encode(self, genome: Genome, prefix: bool = True) -> str:
        groups: list[list[str]] = []
        last = None
        for gene, choice in enumerate(genome.choices):
            pos = self.genes[gene].pos
            if pos != last:
                groups.append([])
                last = pos
            groups[-1].append(self.candidates[gene][choice].name)
        body = "|".join(",".join(g) for g in groups)
        return f"{self.network.name}:{body}" if prefix else body

    def decode(self, text: str) -> Genome:
        """Parse a genome string; raises GenomeError naming the first problem."""
        text = text.strip()
        if ":" in text:
            name, text = text.split(":", 1)
            if name.strip() != self.network.name:
                raise GenomeError(
                    f"genome is for network '{name.strip()}', not '{self.network.name}'"
                )
        cells = [c for c in text.split("|")]
        expected = [
            sum(1 for g in self.genes if g.pos == pos) for pos in self.network.searchable_cells
        ]
        if len(cells) != len(expected):
            raise GenomeError(
                f"genome has {len(cells)} cell group(s) separated by '|', network "
                f"'{self.network.name}' has {len(expected)} searchable cell(s)"
            )
        names = [n.strip() for group in cells for n in group.split(",")]
        for i, (group, n) in enumerate(zip(cells, expected)):
            got = len(group.split(","))
            if got != n:
                raise GenomeError(
                    f"cell group {i + 1} of the genome has {got} op(s), network "
                    f"'{self.network.name}' has {n} searchable edge(s) there"
                    if all(g.kind == "edge" for g in self.genes)
                    else f"cell group {i + 1} of the genome has {got} entries, network "
                    f"'{self.network.name}' has {n} gene(s) there"
                )
        choices = []
        for gene, name in enumerate(names):
            options = [op.name for op in self.candidates[gene]]
            if name not in options:
                raise GenomeError(
                    f"'{name}' is not a candidate of {self.where(gene)}"
                    if self.genes[gene].kind != "decision"
                    else f"'{name}' is not a value of {self.where(gene)}"
                )
            choices.append(options.index(name))
        return Genome(self.network.name, tuple(choices))

    def one_hot(self, genome: Genome) -> tuple[tuple[int, ...], ...]:
        """The paper's encoding: one one-hot sequence per gene (§3.2); a tied decision is one
        sequence, however many places read it."""
        return tuple(
            tuple(int(i == c) for i in range(len(self.candidates[g])))
            for g, c in enumerate(genome.choices)
        )

    # ------------------------------------------------------------------------------ validity
    def decision_values(self, genome: Genome, pos: int) -> list[int]:
        """The values of the decisions of the cell at position `pos`."""
        cell = self.network.cells[pos].cell
        values = [0] * len(cell.decisions)
        for g, gene in enumerate(self.genes):
            if gene.kind == "decision" and gene.pos == pos:
                values[gene.index] = genome.choices[g]
        return values

    def variants(self, genome: Genome, pos: int) -> list[int]:
        """The index into `candidates` of the op on every edge of the cell at position `pos`."""
        cell = self.network.cells[pos].cell
        values = self.decision_values(genome, pos)
        chosen = {
            gene.index: genome.choices[g]
            for g, gene in enumerate(self.genes)
            if gene.kind == "edge" and gene.pos == pos
        }
        return [edge.variant(chosen.get(i, 0), values) for i, edge in enumerate(cell.edges)]

    def link_variants(self, genome: Genome) -> list[int]:
        """The index into `candidates` of the op on every link."""
        chosen = {
            gene.index: genome.choices[g]
            for g, gene in enumerate(self.genes)
            if gene.kind == "link"
        }
        out = []
        for i, link in enumerate(self.network.links):
            values = self.decision_values(genome, link.dst_cell - 1) if link.depends else []
            out.append(link.variant(chosen.get(i, 0), values))
        return out

    def ops(self, genome: Genome, pos: int) -> list[Op]:
        """The op on every edge (fixed or chosen) of the cell at position `pos`."""
        cell = self.network.cells[pos].cell
        return [edge.candidates[v] for edge, v in zip(cell.edges, self.variants(genome, pos))]

    def link_ops(self, genome: Genome) -> list[Op]:
        """The op on every link (`none` when a searchable link is off)."""
        return [
            link.candidates[v] for link, v in zip(self.network.links, self.link_variants(genome))
        ]

    def problem(self, genome: Genome) -> str | None:
        """Why the genome is invalid, or None."""
        if genome.network != self.network.name:
            return f"genome is for network '{genome.network}', not '{self.network.name}'"
        if len(genome.choices) != len(self.genes):
            return f"genome has {len(genome.choices)} genes, network has {len(self.genes)}"
        for g, c in enumerate(genome.choices):
            if not 0 <= c < len(self.candidates[g]):
                return f"gene {g} is {c}, outside 0..{len(self.candidates[g]) - 1}"
        size = self.input_resolution
        for pos, inst in enumerate(self.network.cells):
            ops = self.ops(genome, pos)
            why = cell_problem(inst.cell, ops)
            if why is not None:
                return f"cell {pos + 1}: {why}"
            if size is not None:
                scale = cell_scale(inst.cell, ops)
                size = size * 2**scale if scale >= 0 else size // 2 ** (-scale)
                if size < 1:
                    return f"cell {pos + 1} shrinks the feature map below one pixel"
        return None

    def is_valid(self, genome: Genome) -> bool:
        return self.problem(genome) is None

    # ---------------------------------------------------------------------------------- size
    @cached_property
    def _cell_counts(self) -> tuple[int, ...]:
        """Valid assignments per searchable cell, counted over classes of ops (none / scale).
        A decision's variants share their kind, so validity depends on the edges' own options
        only: each decision multiplies its cell's count by its number of values, and so does
        each searchable link (it adds to a node, never decides whether one has an input)."""
        counts = []
        for pos in self.network.searchable_cells:
            cell = self.network.cells[pos].cell
            classes = []
            for edge in cell.edges:
                groups: dict[tuple[bool, int], list[Op]] = {}
                for op in edge.options:
                    groups.setdefault((op.is_none, op.scale), []).append(op)
                classes.append([(ops[0], len(ops)) for ops in groups.values()])
            total = 0
            for combo in itertools.product(*classes):
                if cell_problem(cell, [op for op, _ in combo]) is None:
                    total += prod(n for _, n in combo)
            total *= prod(len(d.options) for d in cell.decisions)
            total *= prod(
                len(self.candidates[g])
                for g, gene in enumerate(self.genes)
                if gene.kind == "link" and gene.pos == pos
            )
            counts.append(total)
        return tuple(counts)

    def size(self) -> int:
        """The exact number of valid genomes (ignoring the resolution floor)."""
        return prod(self._cell_counts)

    def total(self) -> int:
        """The number of genomes, valid or not: the product of the genes' option counts."""
        return prod(len(c) for c in self.candidates)

    # ---------------------------------------------------------------------- sample and vary
    def random(self, rng: _random.Random) -> Genome:
        """Uniform over valid genomes: each cell drawn uniformly among its valid assignments."""
        for _ in range(MAX_TRIES):
            choices: list[int] = []
            for pos in self.network.searchable_cells:
                genes = [g for g, gene in enumerate(self.genes) if gene.pos == pos]
                for _ in range(MAX_TRIES):
                    part = [rng.randrange(len(self.candidates[g])) for g in genes]
                    trial = Genome(
                        self.network.name,
                        tuple(choices + part + [0] * (len(self.genes) - len(choices) - len(part))),
                    )
                    if cell_problem(self.network.cells[pos].cell, self.ops(trial, pos)) is None:
                        break
                else:
                    raise GenomeError(
                        f"cell {pos + 1} of '{self.network.name}' has no valid assignment"
                    )
                choices.extend(part)
            genome = Genome(self.network.name, tuple(choices))
            if self.is_valid(genome):
                return genome
        raise GenomeError(f"no valid genome of '{self.network.name}' found in {MAX_TRIES} draws")

    def mutate(self, genome: Genome, rng: _random.Random) -> Genome | None:
        """Change the op of one edge to another candidate (paper §4.3): the edge first, drawn
        uniformly, then the op, drawn uniformly among the other candidates of that edge. An edge
        with no valid change is passed over for the next one drawn; None if no edge has one.
        The genes are drawn alike: a tied decision is one gene (all its places move together)."""
        edges = [g for g in range(len(self.genes)) if len(self.candidates[g]) > 1]
        rng.shuffle(edges)
        for g in edges:
            ops = [c for c in range(len(self.candidates[g])) if c != genome.choices[g]]
            rng.shuffle(ops)
            for c in ops:
                child = list(genome.choices)
                child[g] = c
                candidate = Genome(genome.network, tuple(child))
                if self.is_valid(candidate):
                    return candidate
        return None

    def usable_ops(self) -> list[list[int]]:
        """For every edge, the candidates that some valid genome uses there (an op that can never
        be valid on an edge, such as `none` on the only input of a node, is left out); found by
        setting the edge on random valid genomes, with a fixed seed."""
        if getattr(self, "_usable", None) is None:
            rng = _random.Random(0)
            pool = [self.random(rng) for _ in range(64)]
            usable: list[list[int]] = []
            for g, cands in enumerate(self.candidates):
                ops = []
                for c in range(len(cands)):
                    for base in pool:
                        trial = list(base.choices)
                        trial[g] = c
                        if self.is_valid(Genome(self.network.name, tuple(trial))):
                            ops.append(c)
                            break
                usable.append(ops)
            self._usable = usable
        return [list(u) for u in self._usable]

    def fair_paths(self, rng: _random.Random) -> list[Genome]:
        """FairNAS's strict fairness (Chu et al., 2021): K = the most candidates of any edge valid
        genomes that together use every candidate op of every edge, each as evenly as possible
        (exactly once where an edge has K usable candidates, else ⌊K/m⌋ or ⌈K/m⌉ times for m;
        `usable_ops`). Column e of the K paths is a shuffled sequence of edge e's ops; a set with
        an invalid path is drawn again."""
        usable = self.usable_ops()
        k = max((len(u) for u in usable), default=1)
        columns = []
        for ops in usable:
            m = len(ops)
            columns.append([c for _ in range(-(-k // m)) for c in rng.sample(ops, m)][:k])

        def path(i: int) -> Genome:
            return Genome(self.network.name, tuple(col[i] for col in columns))

        bad = {i for i in range(k) if not self.is_valid(path(i))}
        # repair by swapping two paths' ops on one edge: every column keeps its ops, so the
        # balance holds; a swap is kept when it does not add invalid paths
        for _ in range(MAX_TRIES * 10):
            if not bad:
                return [path(i) for i in range(k)]
            i = rng.choice(sorted(bad))
            j = rng.randrange(k)
            col = columns[rng.randrange(len(columns))]
            if i == j or col[i] == col[j]:
                continue
            col[i], col[j] = col[j], col[i]
            now = {x for x in bad | {j} if not self.is_valid(path(x))}
            if len(now) <= len(bad):
                bad = now
            else:
                col[i], col[j] = col[j], col[i]
        raise GenomeError(
            f"no fair set of valid paths of '{self.network.name}' found in {MAX_TRIES} draws"
        )

    def crossover(self, a: Genome, b: Genome, rng: _random.Random) -> Genome | None:
        """Child = `a` with one edge copied from `b` where they differ (paper §4.3); None when the
        parents are equal or no such exchange gives a valid genome (never an endless loop)."""
        genes = [g for g in range(len(self.genes)) if a.choices[g] != b.choices[g]]
        rng.shuffle(genes)
        for g in genes:
            child = list(a.choices)
            child[g] = b.choices[g]
            candidate = Genome(a.network, tuple(child))
            if self.is_valid(candidate):
                return candidate
        return None
