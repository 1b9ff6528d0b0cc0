"""Crossover & mutation (paper §4.3): refill a population from its selected parents.

The parents are the P/2 individuals kept by selection. Offspring are made one at a time: two random
parents, crossover with probability `crossover` (exchange one edge), then mutation with probability
`mutation` (change one edge's op); a child equal to a parent or to any individual already in the
population is discarded. Every child is a valid genome. The loop is bounded: when the parents are
too alike to produce enough new children, the rest are fresh random genomes (recorded as `random`).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eagan_dsl.genome import Genome, GenomeSpace

ATTEMPTS_PER_CHILD = 50


@dataclass(frozen=True)
class Child:
    genome: Genome
    origin: str  # "crossover", "mutation", "crossover+mutation" or "random"


def offspring(
    parents: Sequence[Genome],
    n: int,
    space: GenomeSpace,
    rng: random.Random,
    crossover: float,
    mutation: float,
    taken: Iterable[Genome] = (),
) -> list[Child]:
    """`n` new, distinct, valid children of `parents`, none of them in `taken`; with no parents,
    `n` fresh random genomes (the random-search baseline)."""
    seen = set(parents) | set(taken)
    children: list[Child] = []
    attempts = 0
    while parents and len(children) < n and attempts < ATTEMPTS_PER_CHILD * n:
        attempts += 1
        a = rng.choice(parents)
        child: Genome | None = a
        how = []
        if len(parents) > 1 and rng.random() < crossover:
            b = rng.choice([p for p in parents if p != a] or [a])
            crossed = space.crossover(a, b, rng)
            if crossed is not None:
                child, how = crossed, ["crossover"]
        if rng.random() < mutation:
            mutated = space.mutate(child, rng) if child is not None else None
            if mutated is not None:
                child, how = mutated, how + ["mutation"]
        if child is None or not how or child in seen:
            continue
        seen.add(child)
        children.append(Child(child, "+".join(how)))
    for _ in range(ATTEMPTS_PER_CHILD * n):
        if len(children) >= n:
            break
        fresh = space.random(rng)
        if fresh not in seen:
            seen.add(fresh)
            children.append(Child(fresh, "random"))
    return children


def initial_population(space: GenomeSpace, n: int, rng: random.Random) -> list[Genome]:
    """`n` distinct random valid genomes (paper §5.1: after warm-up, P random subnets)."""
    population: list[Genome] = []
    for _ in range(ATTEMPTS_PER_CHILD * n):
        if len(population) == n:
            break
        g = space.random(rng)
        if g not in population:
            population.append(g)
    return population
