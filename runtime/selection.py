"""Selection by non-dominated sorting (paper §4.3) and the released code's CARS variant.

Objectives come from the spec (`objectives { fid: min, is: max, params: min }`) and are turned into
a matrix of values to minimise: FID as is, IS as 1/IS (paper §4.3, footnote 6), parameters as is;
any other `max` objective is negated.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

import numpy as np
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting


def minimised(name: str, direction: str, value: float) -> float:
    """One objective value as a quantity to minimise."""
    if not math.isfinite(value):
        return math.inf
    if direction == "min":
        return value
    if name == "is":
        return 1.0 / value if value > 0 else math.inf  # paper §4.3: 1/IS
    return -value


def objective_matrix(
    records: Sequence[Mapping[str, float]], objectives: Sequence[tuple[str, str]]
) -> np.ndarray:
    """Rows: individuals; columns: the spec's objectives, all to be minimised."""
    return np.array(
        [[minimised(n, d, float(r[n])) for n, d in objectives] for r in records], dtype=np.float64
    ).reshape(len(records), len(objectives))


def fronts(F: np.ndarray) -> list[list[int]]:
    """Non-dominated fronts (Eq. 11), best first; an individual with an infinite (diverged)
    objective is put after every finite one."""
    if len(F) == 0:
        return []
    finite = np.isfinite(F).all(axis=1)
    out: list[list[int]] = []
    idx = np.flatnonzero(finite)
    if len(idx):
        for front in NonDominatedSorting().do(F[idx]):
            out.append(sorted(int(idx[i]) for i in front))
    bad = [int(i) for i in np.flatnonzero(~finite)]
    if bad:
        out.append(bad)
    return out


def ranks(F: np.ndarray) -> list[int]:
    rank = [0] * len(F)
    for r, front in enumerate(fronts(F)):
        for i in front:
            rank[i] = r
    return rank


def crowding(F: np.ndarray, front: Sequence[int]) -> np.ndarray:
    if len(front) <= 2:
        return np.full(len(front), np.inf)
    sub = F[list(front)]
    sub = np.where(np.isfinite(sub), sub, np.nanmax(np.where(np.isfinite(sub), sub, np.nan)) + 1)
    return np.asarray(calc_crowding_distance(sub), dtype=np.float64)


def nsga2_select(F: np.ndarray, k: int) -> list[int]:
    """The paper's rule: whole fronts from the lowest rank while they fit, then the last front by
    descending crowding distance (NSGA-II); ties keep population order."""
    chosen: list[int] = []
    for front in fronts(F):
        if len(chosen) + len(front) <= k:
            chosen.extend(front)
            continue
        distance = crowding(F, front)
        order = sorted(range(len(front)), key=lambda j: (-distance[j], front[j]))
        chosen.extend(front[j] for j in order[: k - len(chosen)])
        break
    return chosen


def cars_select(records: Sequence[Mapping[str, float]], k: int, rng: random.Random) -> list[int]:
    """The released code's `CARS_NSGA` ("pNSGA-III", official-eagan.md §4): four non-dominated
    sorts over (1/IS, FID), (1/IS, 1/FID), (1/IS, params), (1/IS, 1/params); stage j takes the
    union of the j-th fronts of all four, and a random subset when the union does not fit."""
    inv_is = [minimised("is", "max", float(r["is"])) for r in records]

    def inv(x: float) -> float:
        return 1.0 / x if x > 0 and math.isfinite(x) else math.inf

    pairs = []
    for key in ("fid", "params"):
        vals = [float(r[key]) for r in records]
        pairs.append(np.array([[a, b] for a, b in zip(inv_is, vals)]))
        pairs.append(np.array([[a, inv(b)] for a, b in zip(inv_is, vals)]))
    all_fronts = [fronts(F) for F in pairs]
    chosen: list[int] = []
    depth = max(len(f) for f in all_fronts)
    for j in range(depth):
        union = sorted({i for f in all_fronts if j < len(f) for i in f[j]} - set(chosen))
        if len(chosen) + len(union) <= k:
            chosen.extend(union)
        else:
            chosen.extend(rng.sample(union, k - len(chosen)))
        if len(chosen) >= k:
            break
    return chosen


PICK_KEYS = {"lowest_fid": ("fid", 1.0), "highest_is": ("is", -1.0), "smallest": ("params", 1.0)}


def pick(records: Sequence[Mapping[str, float]], F: np.ndarray, rule: str) -> int:
    """The individual a stage hands on: by `rule`, among the first front (paper Alg. 1 l.16, 32)."""
    key, sign = PICK_KEYS[rule]
    first = fronts(F)[0]
    return min(first, key=lambda i: (sign * float(records[i][key]), i))
