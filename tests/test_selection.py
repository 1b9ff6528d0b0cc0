"""Selection and offspring: a hand-checked non-dominated sorting, crowding, CARS, refilling."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from eagan_dsl.checker import load
from eagan_dsl.genome import GenomeSpace
from runtime.evolution import initial_population, offspring
from runtime.selection import cars_select, fronts, nsga2_select, objective_matrix, pick

OBJ = (("fid", "min"), ("is", "max"))
# Worked by hand (fid, 1/IS): 0 (10, .2), 1 (12, .125), 2 (15, .25), 3 (9, .5), 4 (20, .1),
# 5 (11, .1667). Only 2 is dominated (by 0: 10 < 15 and .2 < .25), so fronts {0,1,3,4,5}, {2}.
# Crowding in front 0 (normalised by ranges 11 and .4): 3 and 4 are extremes (inf);
# 0: 2/11 + .3333/.4 = 1.015; 1: 9/11 + .0667/.4 = .985; 5: 2/11 + .075/.4 = .369.
RECORDS = [
    {"fid": 10, "is": 5, "params": 3},
    {"fid": 12, "is": 8, "params": 2},
    {"fid": 15, "is": 4, "params": 1},
    {"fid": 9, "is": 2, "params": 5},
    {"fid": 20, "is": 10, "params": 4},
    {"fid": 11, "is": 6, "params": 6},
]


def test_fronts_by_hand() -> None:
    F = objective_matrix(RECORDS, OBJ)
    assert fronts(F) == [[0, 1, 3, 4, 5], [2]]


def test_crowding_breaks_ties_in_the_last_front() -> None:
    F = objective_matrix(RECORDS, OBJ)
    assert sorted(nsga2_select(F, 3)) == [0, 3, 4]
    assert sorted(nsga2_select(F, 4)) == [0, 1, 3, 4]
    assert sorted(nsga2_select(F, 6)) == [0, 1, 2, 3, 4, 5]


def test_diverged_individuals_rank_last() -> None:
    records = RECORDS + [{"fid": float("nan"), "is": 1.0, "params": 1}]
    F = objective_matrix(records, OBJ)
    assert fronts(F)[-1] == [6]
    assert 6 not in nsga2_select(F, 6)


def test_pick_lowest_fid_on_first_front() -> None:
    F = objective_matrix(RECORDS, OBJ)
    assert pick(RECORDS, F, "lowest_fid") == 3
    assert pick(RECORDS, F, "highest_is") == 4


def test_cars_takes_the_union_of_four_first_fronts() -> None:
    # Record 6 (fid 14, IS 1, params 3.5) is dominated in all four sorts: by 0 in (1/IS, FID) and
    # (1/IS, params), by 2 in (1/IS, 1/FID), by 3 in (1/IS, 1/params). Records 0-5 are each on
    # some first front (2 only on (1/IS, params) and (1/IS, 1/FID)), so exactly 0-5 are kept.
    records = RECORDS + [{"fid": 14, "is": 1, "params": 3.5}]
    assert sorted(cars_select(records, 6, random.Random(0))) == [0, 1, 2, 3, 4, 5]
    # when the union does not fit, a random subset of it fills the quota
    chosen = cars_select(records, 4, random.Random(0))
    assert len(set(chosen)) == 4 and 6 not in chosen


def test_offspring_are_new_valid_and_distinct() -> None:
    program = load(Path(__file__).parent / "data" / "tiny.eagan")
    space = GenomeSpace(program.networks["G"])
    rng = random.Random(1)
    parents = initial_population(space, 4, rng)
    children = offspring(parents, 4, space, rng, crossover=0.3, mutation=0.5)
    genomes = [c.genome for c in children]
    assert len(genomes) == 4 and len(set(genomes)) == 4
    assert not set(genomes) & set(parents)
    assert all(space.is_valid(g) for g in genomes)
    for c in children:
        if c.origin == "mutation":  # one edge changed from some parent
            assert (
                min(sum(a != b for a, b in zip(c.genome.choices, p.choices)) for p in parents) == 1
            )


def test_equal_parents_do_not_loop_forever() -> None:
    program = load(Path(__file__).parent / "data" / "tiny.eagan")
    space = GenomeSpace(program.networks["G"])
    rng = random.Random(2)
    parent = space.random(rng)
    children = offspring([parent, parent], 6, space, rng, crossover=1.0, mutation=0.0)
    assert len(children) == 6  # crossover of equal parents is impossible: random refill
    assert all(c.origin == "random" for c in children)
    assert np.all([space.is_valid(c.genome) for c in children])
