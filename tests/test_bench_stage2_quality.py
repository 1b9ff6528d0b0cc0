"""bench/stage2_quality.py (stage 2 and the paper's ablations) on tiny settings: the method specs
check with equal budgets and a stage-2 quota that lets discriminators be ranked, each method runs,
caches and resumes, the methods sharing stage 1 share G*, and the report pairs by training
seed."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import scipy.stats
from bench_module import load_bench

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "tiny.eagan"
s2 = load_bench("stage2_quality")
ALL = ("eagan", "random_d", "coupled", "gd3")
BUDGET = {"population": 8, "rounds": 3, "warmup": 15, "g_epochs": 5, "d_epochs": 61}


def test_digits_method_specs_check_with_equal_budgets() -> None:
    texts = s2.method_specs(s2.SPEC.read_text(), BUDGET, "GNearest", "AutoGAND")
    budgets = s2.check_specs(texts)
    assert set(budgets) == set(s2.METHODS)
    assert budgets["eagan"] == budgets["d_first"] == budgets["no_reset"] == budgets["random_d"]
    assert budgets["gd3"]["evaluations"] == 2 * budgets["eagan"]["evaluations"]
    assert budgets["coupled"]["evaluations"] == budgets["eagan"]["evaluations"]
    assert "fully_train" not in texts["eagan"]
    assert "weight_reset: off" in texts["no_reset"]
    from eagan_dsl.checker import check_text

    for name in s2.METHODS:  # stage 1 (or D first's G stage) scores as the paper does
        for stage in check_text(texts[name], f"<{name}>").stages:
            if stage.settings.get("network") == "G":
                assert {k: stage.settings[k] for k in s2.sq.PAPER} == s2.sq.PAPER, (name, stage)


def test_a_stage_2_too_short_to_rank_discriminators_is_refused() -> None:
    texts = s2.method_specs(s2.SPEC.read_text(), {**BUDGET, "d_epochs": 5}, "GNearest", "AutoGAND")
    with pytest.raises(ValueError, match="at least 150"):
        s2.check_specs({"eagan": texts["eagan"]})


def test_paired_t_matches_scipy() -> None:
    diffs = [1.5, -0.5, 2.0, 3.0, 0.25, math.nan]
    r = s2.paired_t(diffs)
    v = diffs[:-1]
    assert r["n"] == 5
    assert r["mean"] == pytest.approx(sum(v) / 5)
    assert r["p"] == pytest.approx(scipy.stats.ttest_1samp(v, 0.0).pvalue)
    lo, hi = scipy.stats.t.interval(0.95, 4, loc=sum(v) / 5, scale=scipy.stats.sem(v))
    assert (r["lo"], r["hi"]) == (pytest.approx(lo), pytest.approx(hi))


def _signed_rank_p(v: list[float]) -> float:
    """The exact two-sided p of the signed-rank statistic, by flipping every sign (2^n)."""
    ranks = scipy.stats.rankdata([abs(x) for x in v])
    observed = sum(r for r, x in zip(ranks, v) if x > 0)
    total = sum(ranks)
    flips = [sum(r for i, r in enumerate(ranks) if mask >> i & 1) for mask in range(2 ** len(v))]
    extreme = min(observed, total - observed)
    return min(1.0, 2 * sum(w <= extreme + 1e-9 for w in flips) / len(flips))


def test_paired_differences_carry_the_median_and_the_signed_rank_test() -> None:
    # one diverged training (-870) dominates the mean; the rank test weighs it as one pair
    diffs = [-870.0, 3.0, 5.5, -1.0, 2.0, 4.0, 7.0, 1.5, math.nan]
    r = s2.paired_t(diffs)
    v = diffs[:-1]
    assert r["median"] == pytest.approx(sorted(v)[3:5][0] / 2 + sorted(v)[3:5][1] / 2)
    assert r["p_w"] == pytest.approx(_signed_rank_p(v))
    assert r["mean"] < 0 < r["median"]
    assert math.isnan(s2.paired_t([0.0, 0.0])["p_w"])


def test_search_means_average_the_training_seeds_of_each_search() -> None:
    by_search = {3: [4.0, 6.0], 0: [1.0, math.nan], 1: [math.inf, math.nan], 2: [-2.0, 8.0]}
    # one mean per search seed, in seed order; only finite trainings count, and a search with
    # none has no mean
    assert s2.search_means(by_search) == [1.0, 3.0, 5.0]
    assert s2.search_means({}) == []


def _args(tmp: Path, part: str, methods: tuple[str, ...] = ALL) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "bench" / "stage2_quality.py"),
        part,
        "--spec", str(TINY),
        "--methods", *methods,
        "--seeds", "0",
        "--population", "4",
        "--rounds", "2",
        "--warmup", "1",
        "--g-epochs", "1",
        "--d-epochs", "1",
        "--min-pair-iterations", "1",
        "--train-seeds", "0",
        "--steps", "4",
        "--images", "64",
        "--against", "FixedD",
        "--jobs", "1",
        "--threads", "1",
        "--out", str(tmp / "runs"),
        "--searches-cache", str(tmp / "searches.json"),
        "--trained-cache", str(tmp / "trained.json"),
        "--report-file", str(tmp / "report.json"),
    ]  # fmt: skip


def test_each_method_runs_caches_and_resumes(tmp_path: Path) -> None:
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    run = lambda part, methods=ALL: subprocess.run(
        _args(tmp_path, part, methods), check=True, capture_output=True, text=True, env=env
    )
    assert "0 cached, 4 to run" in run("search").stdout
    found = json.loads((tmp_path / "searches.json").read_text())["units"]
    assert set(found) == {"eagan#0", "random_d#0", "coupled#0", "gd3#0"}
    # eagan and random D search share stage 1 at a seed: the same G*
    assert found["eagan#0"]["g"] == found["random_d#0"]["g"]
    for x in found.values():
        assert x["g"].startswith("G:") and x["d"].startswith("D:")
    # random search answers with the best D scored in any round
    history = [
        json.loads(line)
        for line in (tmp_path / "runs" / "random_d" / "seed0" / "history.jsonl")
        .read_text()
        .splitlines()
        if line.strip()
    ]
    ds = [r for r in history if r.get("kind") == "candidate" and r["stage"] == "search_d"]
    assert {r["round"] for r in ds} == {0, 1}
    assert found["random_d#0"]["d"] == min(ds, key=lambda r: r["fid"])["genome"]
    # the cache keeps every candidate the history scored, in order
    cached = [c for c in found["random_d#0"]["candidates"] if c["stage"] == "search_d"]
    assert [(c["round"], c["genome"], c["fid"]) for c in cached] == [
        (r["round"], r["genome"], r["fid"]) for r in ds
    ]
    assert "4 cached, 0 to run" in run("search").stdout
    # `--methods` chooses whose answers are trained: coupled's (G, D) and its G against FixedD
    run("train", ("coupled",))
    c = found["coupled#0"]
    assert set(json.loads((tmp_path / "trained.json").read_text())["units"]) == {
        s2.pair_key(c["g"], c["d"], 0),
        s2.pair_key(c["g"], "FixedD", 0),
    }
    run("train")
    trained = json.loads((tmp_path / "trained.json").read_text())["units"]
    for x in found.values():
        assert s2.pair_key(x["g"], x["d"], 0) in trained
        assert s2.pair_key(x["g"], "FixedD", 0) in trained
    assert "0 to train" in run("train").stdout
    out = run("report")
    assert "random D search" in out.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    eagan = report["methods"]["eagan"]
    key = s2.pair_key(found["eagan#0"]["g"], found["eagan#0"]["d"], 0)
    base = s2.pair_key(found["eagan#0"]["g"], "FixedD", 0)
    fd = trained[key]["evals"]["4"]["fid"]
    assert eagan["final_fd"]["values"] == [fd]
    assert eagan["gain_over_fixed_d"]["mean"] == pytest.approx(
        fd - trained[base]["evals"]["4"]["fid"]
    )
    assert report["against_eagan"]["random_d"]["n"] == 1
    # the conservative test: one value per search seed (here one search, one training seed)
    assert report["against_eagan"]["random_d"]["by_search"]["n"] == 1
    assert eagan["gain_by_search"]["mean"] == pytest.approx(eagan["gain_over_fixed_d"]["mean"])
    # the methods with their own G are compared with EAGAN by final FD, unpaired
    assert set(report["final_against_eagan"]) == {"coupled", "gd3"}
    c_fd = trained[s2.pair_key(c["g"], c["d"], 0)]["evals"]["4"]["fid"]
    assert report["final_against_eagan"]["coupled"]["difference"] == pytest.approx(c_fd - fd)
    assert (tmp_path / "report_curves.png").stat().st_size > 0


def test_round_curve_takes_each_rounds_lowest_in_stage_order() -> None:
    c = lambda stage, r, fid: {"stage": stage, "round": r, "fid": fid}
    cands = [
        c("search_g", 0, 900.0), c("search_g", 0, 700.0), c("search_g", 1, 800.0),
        c("search_d", 0, math.nan), c("search_d", 0, 650.0), c("search_d", 1, math.inf),
        c("search_g", 1, 750.0), c("other", 0, 1.0),
    ]  # fmt: skip
    ys, starts = s2.round_curve(cands, ("search_g", "search_d"))
    assert ys[:3] == [700.0, 750.0, 650.0] and math.isnan(ys[3]) and starts == [2]
    ys, starts = s2.round_curve(cands, ("search_d", "search_g"))  # D first: its stages reversed
    assert ys[0] == 650.0 and math.isnan(ys[1]) and ys[2:] == [700.0, 750.0] and starts == [2]


def test_final_against_eagan_compares_search_means_unpaired() -> None:
    eagan = {0: [30.0, 34.0], 1: [50.0, math.nan], 2: [41.0, 45.0]}
    d_first = {0: [20.0, 22.0], 1: [25.0, 27.0], 2: [math.inf, 19.0], 3: [30.0, 30.0]}
    shared = {0: [1.0, 1.0], 1: [2.0, 2.0]}
    out = s2.final_against_eagan({"eagan": eagan, "no_reset": shared, "d_first": d_first})
    assert set(out) == {"d_first"}  # no_reset shares EAGAN's G: it is paired elsewhere
    a, b = [21.0, 26.0, 19.0, 30.0], [32.0, 50.0, 43.0]
    r = out["d_first"]
    assert r["difference"] == pytest.approx(sum(a) / 4 - sum(b) / 3)
    assert r["p"] == pytest.approx(scipy.stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert r["p_u"] == pytest.approx(scipy.stats.mannwhitneyu(a, b).pvalue)
    assert r["n"] == [4, 3]
    # a method with no trained answer yet is left out, and so is every one without EAGAN's
    assert s2.final_against_eagan({"eagan": eagan, "coupled": {0: [math.nan]}}) == {}
    assert s2.final_against_eagan({"d_first": d_first}) == {}


def test_set_keys_in_one_line_and_multi_line_blocks() -> None:
    one = "  stage s : search { network: G, against: FixedD, warmup: 1 }\n"
    out = s2.set_keys(one, {"warmup": 3, "rounds": 2})
    assert out == "  stage s : search { rounds: 2, network: G, against: FixedD, warmup: 3 }\n"
    multi = (
        "  stage s : search {  # a comment with warmup: 9\n"
        "    network: G\n"
        "    warmup: 15  # small (paper: 50)\n"
        "  }\n"
    )
    out = s2.set_keys(multi, {"warmup": 4, "epochs": 61})
    assert out == (
        "  stage s : search {  # a comment with warmup: 9\n"
        "    epochs: 61\n"
        "    network: G\n"
        "    warmup: 4  # small (paper: 50)\n"
        "  }\n"
    )
