"""Why does (or doesn't) the search beat random search on digits? Reads the run directories that
`bench/ablations.py` left under OUT (no training) and prints, per run, the final FD against
what the search saw, then two checks:

- size vs final: does the fully-trained FD follow the generator's parameter count? (the size
  objective of the non-dominated sort pushes the evolving population towards small networks);
- same G, different D: runs of two configurations with the same seed that chose the same
  generator and differ only after it (e.g. EAGAN and EAGAN without weight-resetting): the spread
  of their final FD is what one architecture decision is worth against D and training noise.

Whether the supernet ranks architectures is measured by `bench/rank_correlation.py` (one supernet
scored on a fixed set of architectures against their stand-alone training). A correlation of one
number per run across runs with different supernets, as this script printed before, is not a rank
correlation of a supernet, so it is no longer computed.

    python bench/search_diagnose.py [--out runs/ablations] [--json diag.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table


def _ranks(values: list[float]) -> np.ndarray:
    """Ranks with ties averaged (1-based)."""
    a = np.asarray(values, dtype=float)
    order = a.argsort(kind="stable")
    ranks = np.empty(len(a))
    ranks[order] = np.arange(1, len(a) + 1)
    for v in np.unique(a):
        tie = a == v
        ranks[tie] = ranks[tie].mean()
    return ranks


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rank correlation (Pearson on the tie-averaged ranks); None below 3 points."""
    if len(x) < 3:
        return None
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def read_run(rundir: Path) -> dict[str, Any] | None:
    """Final metrics and, per search stage, what its last round saw."""
    metrics_path = rundir / "final" / "metrics.json"
    if not metrics_path.is_file():
        return None
    metrics = json.loads(metrics_path.read_text())
    history = rundir / "history.jsonl"
    records = (
        [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
        if history.is_file()
        else []
    )
    stages: dict[str, dict[str, Any]] = {}
    for stage in dict.fromkeys(r["stage"] for r in records):
        cands = [r for r in records if r["stage"] == stage and r["kind"] == "candidate"]
        last = max(r["round"] for r in cands)
        final_round = [r for r in cands if r["round"] == last]
        best = next(r for r in final_round if r["best"])
        stages[stage] = {
            "evaluations": len(cands),
            "distinct": len({r["genome"] for r in cands}),
            "best_proxy_fid": best["fid"],
            "median_proxy_fid": statistics.median(r["fid"] for r in final_round),
            "best_params": best["params"],
            "median_params": statistics.median(r["params"] for r in final_round),
        }
    return {
        "config": rundir.parent.name,
        "seed": int(rundir.name.removeprefix("seed")),
        "fid": float(metrics["fid"]),
        "is": float(metrics["is"]),
        "g_genome": metrics["g_genome"],
        "d_genome": metrics["d_genome"],
        "g_params": metrics["g_params"],
        "d_params": metrics["d_params"],
        "stages": stages,
    }


def diagnose(out: Path) -> dict[str, Any]:
    runs = [r for d in sorted(out.glob("*/seed*")) if d.is_dir() and (r := read_run(d))]
    size = spearman([float(r["g_params"]) for r in runs], [r["fid"] for r in runs])
    same_g = [
        {
            "seed": a["seed"],
            "configs": [a["config"], b["config"]],
            "g_params": a["g_params"],
            "fids": [a["fid"], b["fid"]],
            "gap": abs(a["fid"] - b["fid"]),
        }
        for a, b in combinations(runs, 2)
        if a["seed"] == b["seed"] and a["g_genome"] == b["g_genome"] and a["config"] != b["config"]
    ]
    return {
        "runs": runs,
        "spearman_gparams_final": size,
        "n_runs": len(runs),
        "same_g": same_g,
    }


def _f(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("runs/ablations"))
    parser.add_argument("--json", type=Path, default=None, help="default: OUT/search_diagnose.json")
    args = parser.parse_args()
    result = diagnose(args.out)
    console = Console(width=160)
    table = Table(
        title=f"Runs under {args.out}: final FD against what the search saw", title_justify="left"
    )
    for col in (
        "config",
        "seed",
        "final FD",
        "G params",
        "D params",
        "stage",
        "evals (distinct)",
        "best proxy FD",
        "median proxy FD",
        "best / median params",
    ):
        table.add_column(col, justify="left" if col in ("config", "stage") else "right")
    for r in result["runs"]:
        stages = r["stages"] or {"-": None}
        for k, (name, s) in enumerate(stages.items()):
            head = (
                [
                    r["config"],
                    str(r["seed"]),
                    f"{r['fid']:.1f}",
                    f"{r['g_params'] / 1e3:.0f}k",
                    f"{r['d_params'] / 1e3:.0f}k",
                ]
                if k == 0
                else [""] * 5
            )
            tail = (
                ["-"] * 4
                if s is None
                else [
                    f"{s['evaluations']} ({s['distinct']})",
                    f"{s['best_proxy_fid']:.0f}",
                    f"{s['median_proxy_fid']:.0f}",
                    f"{s['best_params'] / 1e3:.0f}k / {s['median_params'] / 1e3:.0f}k",
                ]
            )
            table.add_row(*head, name, *tail)
    console.print(table)
    console.print(
        f"Spearman(G params, final FD) over {result['n_runs']} runs: {_f(result['spearman_gparams_final'])} "
        "(negative: larger generators reach lower FD)"
    )
    for pair in result["same_g"]:
        console.print(
            f"same G ({pair['g_params'] / 1e3:.0f}k params), seed {pair['seed']}: {pair['configs'][0]} FD "
            f"{pair['fids'][0]:.1f} vs {pair['configs'][1]} FD {pair['fids'][1]:.1f} (gap {pair['gap']:.1f})"
        )
    path = args.json or args.out / "search_diagnose.json"
    path.write_text(json.dumps(result, indent=1))
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
