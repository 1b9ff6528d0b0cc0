"""bench/search_quality.py (the G search isolated) on tiny settings: the method specs keep equal
budgets, each method runs, caches and resumes, the answers (pick, caps, top 4), the hypervolume
against pymoo's indicator."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from bench_module import load_bench

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "tiny.eagan"
sq = load_bench("search_quality")


def test_method_specs_check_with_equal_budgets() -> None:
    budget = {"population": 8, "rounds": 8, "epochs": 10, "warmup": 100}
    texts = sq.method_specs((ROOT / "specs" / "digits.eagan").read_text(), budget, sq.FALLBACK_BEST)
    budgets = sq.check_specs(texts)
    assert budgets["eagan"] == {"supernet_epochs": 180, "evaluations": 64}
    assert len({json.dumps(b) for b in budgets.values()}) == 1
    assert "strategy: random" in texts["random_ws"] and "strategy" not in texts["eagan"]
    from eagan_dsl.checker import check_text

    def estimator(name: str) -> dict[str, object]:
        settings = check_text(texts[name], f"<{name}>").stages[0].settings
        return {k: settings[k] for k in sq.PAPER}

    # whatever the digits spec's defaults, eagan and random_ws score as the paper does
    assert estimator("eagan") == estimator("random_ws") == sq.PAPER
    assert estimator("eagan_best") == sq.FALLBACK_BEST
    with pytest.raises(ValueError, match="unequal budgets"):
        sq.check_specs({**texts, "random_ws": texts["random_ws"].replace("rounds: 8", "rounds: 9")})


def test_hypervolume_matches_pymoo() -> None:
    from pymoo.indicators.hv import HV

    rng = np.random.default_rng(0)
    for _ in range(20):
        pts = rng.uniform(0, 1, size=(rng.integers(1, 8), 2)) * [100, 5e5]
        ref = (90.0, 4.5e5)
        expected = HV(ref_point=np.array(ref))(pts)
        assert sq.hypervolume_2d([tuple(p) for p in pts], ref) == pytest.approx(expected)


def test_caps_pick_the_best_scored_under_the_cap() -> None:
    cands = [
        {"genome": "a", "fid": 10.0, "params": 300},
        {"genome": "b", "fid": 20.0, "params": 150},
        {"genome": "c", "fid": 15.0, "params": 200},
        {"genome": "b", "fid": 12.0, "params": 150},  # scored twice: its best counts
        {"genome": "d", "fid": math.inf, "params": 100},
    ]
    assert sq.best_scored(cands, 1, cap=200) == ["b"]
    assert sq.best_scored(cands, 1, cap=100) == []
    assert sq.best_scored(cands, 4) == ["a", "b", "c"]


def test_a_cap_tells_no_answer_from_not_trained() -> None:
    """A search with nothing scored under the cap has no answer there (counted as not answered),
    an answer whose trainings are not all cached is pending; the mean is over the trained."""

    def search(*cands: tuple[str, float, int]) -> dict[str, object]:
        return {
            "pick": cands[0][0],
            "candidates": [{"genome": g, "fid": f, "params": p} for g, f, p in cands],
        }

    def unit(fd: float) -> dict[str, object]:
        return {"evals": {"100": {"fid": fd}}}

    found = [
        search(("a", 1.0, 150_000), ("b", 2.0, 300_000)),  # answers a: trained on both seeds
        search(("c", 1.0, 400_000)),  # nothing under 200k: no answer
        search(("d", 3.0, 100_000)),  # answers d: one seed of two trained
        search(("e", 5.0, 180_000)),  # answers e: trained
    ]
    fds = {"a#0": 10.0, "a#1": 20.0, "d#0": 1.0, "e#0": 30.0, "e#1": 40.0}
    units = {k: unit(fd) for k, fd in fds.items()}
    cell = sq.cap_cell(units, found, 200_000, [0, 1], 100)
    assert (cell["answered"], cell["pending"], cell["n"]) == (3, 1, 2)
    assert cell["mean"] == pytest.approx((15.0 + 35.0) / 2)
    assert sq.cap_cell(units, found, 150_000, [0, 1], 100)["answered"] == 2


def test_a_diverged_training_is_failed_not_pending() -> None:
    """A training whose FD is not a number has diverged: the genome's final FD is infinite (a
    failure, counted outside the mean), never NaN (not trained), so the top 4's hypervolume is
    that of the others, where a genome not trained yet still leaves it pending."""
    cands = [("a", 1.0, 100_000), ("b", 2.0, 200_000), ("c", 3.0, 300_000), ("d", 4.0, 400_000)]
    search = {
        "pick": "a",
        "candidates": [{"genome": g, "fid": f, "params": p} for g, f, p in cands],
    }
    fds = {"a": math.nan, "b": 30.0, "c": 20.0, "d": 10.0}
    units = {f"{g}#{s}": {"evals": {"100": {"fid": fd}}} for g, fd in fds.items() for s in (0, 1)}
    assert sq.final_fd(units, "a", [0, 1], 100) == math.inf
    without_a = [(30.0, 2e5), (20.0, 3e5), (10.0, 4e5)]
    expected = sq.hypervolume_2d(without_a, sq.REFERENCE)
    assert expected > 0
    assert sq.top_hypervolume(units, search, [0, 1], 100) == pytest.approx(expected)
    del units["d#1"]
    assert math.isnan(sq.top_hypervolume(units, search, [0, 1], 100))
    # the runner's own shape of a diverged training: stopped early, no evaluation at the end
    units["a#0"] = {"diverged": True, "evals": {"37": {"fid": 900.0}}}
    units["a#1"] = {"diverged": False, "evals": {"100": {"fid": 50.0}}}
    assert sq.final_fd(units, "a", [0, 1], 100) == math.inf
    cell = sq._cell([math.inf, 10.0, 20.0, math.nan])
    assert (cell["n"], cell["diverged"], cell["mean"]) == (2, 1, 15.0)


def _args(tmp: Path, part: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "bench" / "search_quality.py"),
        part,
        "--spec",
        str(TINY),
        "--methods",
        "eagan",
        "random_ws",
        "--seeds",
        "0",
        "--population",
        "4",
        "--rounds",
        "2",
        "--epochs",
        "1",
        "--warmup",
        "1",
        "--train-seeds",
        "0",
        "--steps",
        "4",
        "--early",
        "2",
        "--images",
        "64",
        "--archs",
        "2",
        "--against",
        "FixedD",
        "--reference",
        "",
        "--jobs",
        "1",
        "--out",
        str(tmp / "runs"),
        "--rank-report",
        str(tmp / "none.json"),
        "--searches-cache",
        str(tmp / "searches.json"),
        "--trained-cache",
        str(tmp / "trained.json"),
        "--truth-cache",
        str(tmp / "truth.json"),
        "--report-file",
        str(tmp / "report.json"),
    ]


def test_each_method_runs_caches_and_resumes(tmp_path: Path) -> None:
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    first = subprocess.run(
        _args(tmp_path, "search"), check=True, capture_output=True, text=True, env=env
    )
    assert "0 cached, 2 to run" in first.stdout
    searches = json.loads((tmp_path / "searches.json").read_text())["units"]
    assert set(searches) == {"eagan#0", "random_ws#0"}
    rs = searches["random_ws#0"]
    rounds = {c["round"] for c in rs["candidates"]}
    assert rounds == {0, 1}
    # random search answers with the best scored over all rounds
    assert rs["pick"] == min(rs["candidates"], key=lambda c: c["fid"])["genome"]
    again = subprocess.run(
        _args(tmp_path, "search"), check=True, capture_output=True, text=True, env=env
    )
    assert "2 cached, 0 to run" in again.stdout
    subprocess.run(_args(tmp_path, "train"), check=True, capture_output=True, env=env)
    trained = json.loads((tmp_path / "trained.json").read_text())["units"]
    for s in searches.values():
        assert f"{s['pick']}#0" in trained
    out = subprocess.run(  # `--report` alone is the part `report`
        _args(tmp_path, "--report"), check=True, capture_output=True, text=True, env=env
    )
    assert "random search" in out.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["methods"]["eagan"]["searches"] == 1
    eagan = report["methods"]["eagan"]
    assert math.isfinite(eagan["fd"]["mean"])
    assert eagan["fd"]["median"] == eagan["fd"]["mean"]  # one search: its pick's FD
    # the best scored over the search is trained too (the selection rule's check)
    assert math.isfinite(eagan["best_scored"]["mean"])
    assert "not enough trained answers yet" in out.stdout  # 1 + 1 searches: no test
    assert (tmp_path / "report_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_learning_curve_is_the_best_so_far() -> None:
    cands = [
        {"fid": f, "params": p}
        for f, p in ((500.0, 10), (math.inf, 20), (300.0, 30), (400.0, 40), (300.0, 50), (90.0, 60))
    ]
    curve = sq.anytime(cands)
    assert curve["fid"] == [500.0, 500.0, 300.0, 300.0, 300.0, 90.0]
    assert curve["params"] == [10, 10, 30, 30, 30, 60]  # a tie keeps the first to reach it
    assert sq.anytime([{"fid": math.inf, "params": 1}])["fid"] == [math.inf]


def test_a_search_counts_only_for_the_spec_it_ran() -> None:
    """When eagan_best's settings change (the ranking report moved), its cached searches are
    searched again, afresh; the other methods' searches stay."""
    import argparse

    texts = {"eagan": "spec A", "eagan_best": "spec B2"}
    have = {
        "eagan#0": {"key": "eagan#0", "spec_sha": sq.spec_sha("spec A")},
        "eagan_best#0": {"key": "eagan_best#0", "spec_sha": sq.spec_sha("spec B1")},
    }
    assert set(sq.current(have, texts)) == {"eagan#0"}
    # comments and layout are not the spec; a '#' inside a string is
    assert sq.spec_sha("spec A  # a note\n") == sq.spec_sha("spec   A\n")
    assert sq.spec_sha('g: "x#y"') != sq.spec_sha('g: "x"')
    args = argparse.Namespace(seeds=[0, 1], methods=["eagan", "eagan_best"], out="o", threads=1)
    jobs = {j["key"]: j for j in sq.search_jobs(args, texts, have)}
    assert set(jobs) == {"eagan_best#0", "eagan#1", "eagan_best#1"}
    assert jobs["eagan_best#0"]["fresh"] and not jobs["eagan#1"]["fresh"]
    assert jobs["eagan_best#0"]["spec_sha"] == sq.spec_sha("spec B2")


def test_picks_are_trained_before_caps_and_tops() -> None:
    def search(seed: int, pick: str, other: str) -> dict[str, object]:
        cands = [
            {"genome": pick, "fid": 30.0, "params": 300_000},
            {"genome": other, "fid": 20.0, "params": 100_000},
        ]
        return {"key": f"eagan#{seed}", "pick": pick, "candidates": cands}

    found = {"eagan#1": search(1, "p1", "o1"), "eagan#0": search(0, "p0", "o0")}
    assert sq.wanted_answers(found) == ["p0", "p1", "o0", "o1"]
    # the best scored over a search (here above every cap) comes right after the picks
    big = {"genome": "b0", "fid": 10.0, "params": 900_000}
    under = {"genome": "c0", "fid": 15.0, "params": 100_000}
    found["eagan#0"]["candidates"] = [*found["eagan#0"]["candidates"], big, under]
    assert sq.answers(found["eagan#0"])["best"] == "b0"
    assert sq.answers(found["eagan#0"])["caps"]["150000"] == "c0"
    assert sq.wanted_answers(found)[:4] == ["p0", "p1", "b0", "o1"]


def test_trainings_are_answer_major_and_shared_by_answer() -> None:
    import argparse

    targs = argparse.Namespace(spec="s", steps=10, early=5, images=8, against="D", threads=1)
    wanted = [f"G:{i}" for i in range(12)]
    have = {"G:0#1": {}}  # already trained
    keys = [j["key"] for j in sq.train_jobs(targs, wanted, [0, 1], have)]
    assert keys[:5] == ["G:0#0", "G:1#0", "G:1#1", "G:2#0", "G:2#1"]
    shares = [sq.train_jobs(targs, wanted, [0, 1], have, (k, 2)) for k in range(2)]
    assert sorted(j["key"] for s in shares for j in s) == sorted(keys)
    for share in shares:
        genomes = [j["genome"] for j in share]
        assert genomes == sorted(genomes, key=wanted.index)  # the priority order holds
        for g in set(genomes) - {"G:0"}:
            assert genomes.count(g) == 2  # both seeds of an answer in one share


def test_best_settings_at_the_checkpoint_nearest_the_budget(tmp_path: Path) -> None:
    def report(predictors: dict[str, float], n_archs: int = 25) -> Path:
        path = tmp_path / "rank.json"
        rows = {name: {"kendall": tau} for name, tau in predictors.items()}
        rows["parameter count (more = better)"] = {"kendall": 0.9}  # not a supernet setting
        gt = {"n_archs": n_archs, "n_seeds": 2}
        path.write_text(json.dumps({"ground_truth": gt, "predictors": rows}))
        return path

    taus = {
        "supernet uniform, ema, 1k steps": 0.1,
        "supernet fair, raw, 1k steps": 0.2,
        "supernet uniform, raw, 4k steps": 0.4,  # 4k: only uniform measured so far
    }
    best, _ = sq.best_settings(report(taus), iterations=3780)
    assert best == {"warmup_sampling": "fair", "round_sampling": "fair", "score": "raw"}
    taus["supernet fair, ema, 4k steps"] = 0.3
    best, source = sq.best_settings(report(taus), iterations=3780)
    assert best == {"warmup_sampling": "uniform", "round_sampling": "uniform", "score": "raw"}
    assert "4k" in source
    best, source = sq.best_settings(report(taus), iterations=900)
    assert best["score"] == "raw" and best["warmup_sampling"] == "fair" and "1k" in source
    _, source = sq.best_settings(report(taus, n_archs=20), iterations=3780)
    assert "interim" in source
    assert sq.budget_iterations({"warmup": 100, "rounds": 8, "epochs": 10}) == 3600


def test_the_rank_test_against_a_plain_count_and_an_exact_enumeration() -> None:
    import itertools

    a, b = [23.1, 47.3, 59.4, 909.9], [34.4, 49.1, 41.0, 38.2, 61.0]
    r = sq.rank_test(a, b)
    lower = sum((x < y) + 0.5 * (x == y) for x in a for y in b)
    assert r["p_lower"] == pytest.approx(lower / (len(a) * len(b)))
    # the exact two-sided p: the share of the splits of the pooled values whose U is at least as
    # far from its mean as the observed one
    pooled = a + b
    mean_u = len(a) * len(b) / 2

    def u(xs: list[float], ys: list[float]) -> float:
        return sum((x > y) + 0.5 * (x == y) for x in xs for y in ys)

    far = abs(u(a, b) - mean_u)
    splits = list(itertools.combinations(range(len(pooled)), len(a)))
    extreme = 0
    for idx in splits:
        xs = [pooled[i] for i in idx]
        ys = [pooled[i] for i in range(len(pooled)) if i not in idx]
        extreme += abs(u(xs, ys) - mean_u) >= far - 1e-9
    assert r["p_u"] == pytest.approx(extreme / len(splits))
    assert math.isnan(sq.rank_test([], b)["p_u"])


def test_two_sample_ranks_a_diverged_value_last_and_leaves_it_out_of_the_means() -> None:
    a, b = [20.0, 25.0, math.inf, 30.0, math.nan], [22.0, 21.0, 40.0, 35.0]
    r = sq.two_sample(a, b)
    fa = [20.0, 25.0, 30.0]
    assert r["p"] == pytest.approx(scipy.stats.ttest_ind(fa, b, equal_var=False).pvalue)
    assert r["difference"] == pytest.approx(sum(fa) / 3 - sum(b) / 4)
    # the rank test sees the diverged value as worse than any: it is a large one's rank
    big = [20.0, 25.0, 1e9, 30.0]
    assert r["p_u"] == pytest.approx(scipy.stats.mannwhitneyu(big, b).pvalue)
    assert r["p_lower"] == pytest.approx(sq.rank_test(big, b)["p_lower"])
    assert r["median"][0] == 27.5 and r["n"] == [4, 4] and r["diverged"] == [1, 0]
