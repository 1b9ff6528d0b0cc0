"""The run directory's figures (runtime/plots.py), tested through matplotlib's objects, not pixels:
axis labels, integer round ticks, the drawn front is the non-dominated set of the IS–FID plane,
PNG and PDF written; and matplotlib stays off the `eagan check` path."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

from runtime.plots import (
    curves_figure,
    front_2d,
    losses_figure,
    pareto_figure,
    round_stats,
    write_loss_plot,
    write_round_plots,
)

ROOT = Path(__file__).resolve().parent.parent


def _cand(
    stage: str, round_: int, i: int, is_: float, fid: Any, params: int, **kw: Any
) -> dict[str, Any]:
    return {
        "kind": "candidate",
        "stage": stage,
        "round": round_,
        "index": i,
        "is": is_,
        "fid": fid,
        "params": params,
        "rank": 0,
        **kw,
    }


def _history() -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = []
    for stage in ("search_g", "search_d"):
        for r in range(3):
            cands = [
                _cand(stage, r, 0, 2.0 + r, 50.0 - r, 1000, best=True),
                _cand(stage, r, 1, 3.0 + r, 60.0, 2000),
                _cand(stage, r, 2, 1.5, 70.0, 500),  # dominated by candidate 0
                _cand(stage, r, 3, 0.0, "inf", 800, diverged=True),
            ]
            history += cands
            history.append(
                {
                    "kind": "round",
                    "stage": stage,
                    "round": r,
                    "best": "g",
                    "best_is": 2.0 + r,
                    "best_fid": 50.0 - r,
                    "best_params": 1000,
                }
            )
    return history


def test_front_2d_is_the_non_dominated_set() -> None:
    is_ = [2.0, 3.0, 1.5, 2.5, math.inf]
    fid = [50.0, 60.0, 70.0, 50.0, 10.0]
    front = front_2d(is_, fid)
    assert front == [3, 1]  # 0 is dominated by 3 (same FID, higher IS); inf left out
    for i in front:
        assert not any(
            is_[j] >= is_[i] and fid[j] <= fid[i] and (is_[j], fid[j]) != (is_[i], fid[i])
            for j in range(4)
        )


def test_pareto_figure_draws_the_2d_front_params_colour_and_pick() -> None:
    cands = [c for c in _history() if c["kind"] == "candidate" and c["round"] == 0][:4]
    fig = pareto_figure("search_g: round 1", cands)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("IS") and ax.get_ylabel().startswith("FID")
    assert "1 diverged" in ax.get_title()
    (step,) = [line for line in ax.get_lines() if line.get_label().startswith("non-dominated")]
    xs, ys = step.get_data()
    corners = sorted(
        {(float(x), float(y)) for x, y in zip(xs, ys)} & {(2.0, 50.0), (3.0, 60.0), (1.5, 70.0)}
    )
    assert corners == [(2.0, 50.0), (3.0, 60.0)]  # candidate 2 (dominated) is not on the front
    assert step.get_drawstyle() == "steps-pre"  # a step line, not a polyline
    labels = [c.get_label() for c in ax.collections]
    assert "candidates" in labels and "pick" in labels
    points = ax.collections[labels.index("candidates")]
    assert sorted(points.get_array().tolist()) == [500, 1000, 2000]  # colour = params
    assert any(a.get_ylabel() == "parameters" for a in fig.axes[1:])  # the colour bar


def test_curves_cross_both_stages_with_integer_ticks_and_a_dashed_boundary() -> None:
    stats = round_stats(_history())
    assert list(stats) == ["search_g", "search_d"]
    assert stats["search_g"][0]["median_fid"] == 65.0  # median of 50, 60, 70, inf
    fig = curves_figure("t", stats)
    ax_fid, ax_is = fig.axes[:2]
    assert ax_fid.get_ylabel() == "FID" and ax_is.get_ylabel() == "IS"
    assert ax_is.get_xlabel().startswith("search round")
    fig.canvas.draw()
    ticks = ax_is.get_xticks()
    assert all(float(t).is_integer() for t in ticks)
    best_d = next(line for line in ax_fid.get_lines() if line.get_label() == "search_d: best")
    assert list(best_d.get_xdata()) == [4, 5, 6]  # stage 2 follows stage 1 on one axis
    dashed = [
        line
        for line in ax_fid.get_lines()
        if line.get_linestyle() == "--" and line.get_label().startswith("_")
    ]
    assert [float(line.get_xdata()[0]) for line in dashed] == [3.5]
    labels = {line.get_label() for line in ax_is.get_lines()}
    assert {"search_g: best", "search_g: median", "search_d: best", "search_d: median"} <= labels


def test_losses_figure() -> None:
    rows = [
        {"step": s, "stage": "warm" if s < 30 else "train", "d_loss": 1.0 / s, "g_loss": s / 10}
        for s in range(10, 60, 10)
    ]
    fig = losses_figure("losses", rows)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "iteration" and ax.get_ylabel() == "loss"
    assert {line.get_label() for line in ax.get_lines()} >= {"D", "G"}
    assert [
        float(line.get_xdata()[0]) for line in ax.get_lines() if line.get_linestyle() == "--"
    ] == [30]


def test_png_and_pdf_are_written(tmp_path: Path) -> None:
    write_round_plots(tmp_path, "search_g", _history())
    write_loss_plot(tmp_path, [{"step": 10, "stage": "a", "d_loss": 1.0, "g_loss": 2.0}])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        f"{stem}.{ext}"
        for stem in ("search_g_pareto_round03", "curves", "losses")
        for ext in ("png", "pdf")
    )
    assert (tmp_path / "curves.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_check_path_imports_neither_matplotlib_nor_torch() -> None:
    code = "import sys, runtime.cli; print('matplotlib' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.split() == ["False", "False"]
