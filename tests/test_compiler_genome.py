"""Genomes over compiled networks: codec, variation and exact size (eagan_dsl.genome)."""

from __future__ import annotations

import itertools
import random

from test_compiler_supernet import MICRO, tiny_program

from compiler.params import genome_space
from eagan_dsl.genome import Genome


def spaces():  # type: ignore[no-untyped-def]
    program = tiny_program()
    return [genome_space(program.networks[n]) for n in ("G", "D")]


def test_codec_round_trip_and_one_hot() -> None:
    rng = random.Random(0)
    for space in spaces():
        for _ in range(50):
            genome = space.random(rng)
            assert space.is_valid(genome)
            text = space.encode(genome)
            assert space.decode(text) == genome
            assert space.decode(space.encode(genome, prefix=False)) == genome
            hot = space.one_hot(genome)
            assert tuple(row.index(1) for row in hot) == genome.choices
            assert all(
                sum(row) == 1 and len(row) == len(c) for row, c in zip(hot, space.candidates)
            )


def test_mutate_changes_exactly_one_gene() -> None:
    rng = random.Random(1)
    for space in spaces():
        for _ in range(50):
            genome = space.random(rng)
            child = space.mutate(genome, rng)
            assert child is not None and space.is_valid(child)
            assert sum(a != b for a, b in zip(genome.choices, child.choices)) == 1


def test_crossover_copies_exactly_one_gene_from_the_other_parent() -> None:
    rng = random.Random(2)
    for space in spaces():
        for _ in range(50):
            a, b = space.random(rng), space.random(rng)
            child = space.crossover(a, b, rng)
            if a == b:
                assert child is None
                continue
            assert child is not None and space.is_valid(child)
            diff = [g for g, (x, y) in enumerate(zip(a.choices, child.choices)) if x != y]
            assert len(diff) == 1 and child.choices[diff[0]] == b.choices[diff[0]]


def test_variation_returns_none_rather_than_looping() -> None:
    space = spaces()[0]
    genome = space.random(random.Random(3))
    assert space.crossover(genome, genome, random.Random(0)) is None
    # parents that differ only where copying breaks validity: b has `none` where a's node 3 needs it
    a = space.decode(
        "nearest,nearest,skip,none,skip,skip,skip|nearest,nearest,skip,skip,skip,skip,skip"
    )
    b = Genome(a.network, (a.choices[0], a.choices[1], 0) + a.choices[3:])
    assert not space.is_valid(b) and space.crossover(a, b, random.Random(0)) is None


def brute_force_size(space) -> int:  # type: ignore[no-untyped-def]
    ranges = [range(len(c)) for c in space.candidates]
    return sum(space.is_valid(Genome(space.network.name, g)) for g in itertools.product(*ranges))


def test_size_equals_brute_force_enumeration() -> None:
    micro = genome_space(tiny_program(MICRO).networks["G"])
    assert micro.size() == brute_force_size(micro) > 0
    # one tiny D cell by hand: node 1 needs 0->1 active (2 of 3); node 2 needs 0->2 or 1->2
    # (9 - 1 = 8); node 3 needs 1->3 or 0->3 (8); the two down edges must agree: pools and
    # the strided conv (3 x 3 = 9) or both skip (1) → 2 · 8 · 8 · 10 = 1280 per cell
    d = spaces()[1]
    assert d.size() == 1280**2
