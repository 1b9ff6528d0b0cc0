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
    out = subprocess.run(
        _args(tmp_path, "report"), check=True, capture_output=True, text=True, env=env
    )
    assert "random search" in out.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["methods"]["eagan"]["searches"] == 1
    assert math.isfinite(report["methods"]["eagan"]["fd"]["mean"])
