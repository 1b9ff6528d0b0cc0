"""bench/search_diagnose.py on fake run directories in the runtime's format: Spearman against
scipy, the per-stage summary against numbers computed here, and the same-G pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bench_module import load_bench
from scipy.stats import spearmanr

diag = load_bench("search_diagnose")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spearman_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, size=12).astype(float).tolist()  # ties on purpose
    y = (np.asarray(x) * 0.5 + rng.normal(size=12)).tolist()
    assert diag.spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert diag.spearman(x[:2], y[:2]) is None


def _run(
    root: Path,
    config: str,
    seed: int,
    fid: float,
    g: str,
    g_params: int,
    rounds: list[list[tuple[float, int, bool]]],
) -> None:
    d = root / config / f"seed{seed}"
    (d / "final").mkdir(parents=True)
    (d / "final" / "metrics.json").write_text(
        json.dumps(
            {
                "fid": fid,
                "is": 5.0,
                "g_genome": g,
                "d_genome": "D:x",
                "g_params": g_params,
                "d_params": 10,
            }
        )
    )
    lines: list[dict[str, Any]] = []
    for r, cands in enumerate(rounds):
        for i, (f, p, best) in enumerate(cands):
            lines.append(
                {
                    "kind": "candidate",
                    "stage": "search_g",
                    "round": r,
                    "fid": f,
                    "params": p,
                    "best": best,
                    "genome": f"G:{r}{i}",
                }
            )
        lines.append({"kind": "round", "stage": "search_g", "round": r})
    (d / "history.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")


def test_diagnose_reads_runs(tmp_path: Path) -> None:
    last = [(300.0, 100, False), (250.0, 120, True), (400.0, 90, False)]
    _run(tmp_path, "eagan", 0, 40.0, "G:a", 120, [[(500.0, 80, True), (600.0, 70, False)], last])
    _run(tmp_path, "no_reset", 0, 30.0, "G:a", 120, [last])
    _run(tmp_path, "random", 0, 20.0, "G:b", 300, [[(260.0, 300, True)]])
    result = diag.diagnose(tmp_path)
    eagan = next(r for r in result["runs"] if r["config"] == "eagan")["stages"]["search_g"]
    assert eagan == {
        "evaluations": 5,
        "distinct": 5,
        "best_proxy_fid": 250.0,
        "median_proxy_fid": 300.0,
        "best_params": 120,
        "median_params": 100,
    }
    assert result["same_g"] == [
        {
            "seed": 0,
            "configs": ["eagan", "no_reset"],
            "g_params": 120,
            "fids": [40.0, 30.0],
            "gap": 10.0,
        }
    ]
    fids, sizes = [40.0, 30.0, 20.0], [120.0, 120.0, 300.0]
    assert "spearman_proxy_final_g_first" not in result  # across runs: no supernet's ranking
    assert result["spearman_gparams_final"] == pytest.approx(spearmanr(sizes, fids).statistic)
