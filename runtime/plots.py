"""The run directory's figures, drawn with matplotlib on the Agg backend (PNG and PDF): the IS–FID
plane of a round with its 2-D non-dominated front, the learning curves of best and median FID and
IS per round across the search stages (the form of the paper's Fig. 6–7), and the losses.

matplotlib is imported inside the functions, never at module level: `eagan check` and
`import runtime.cli` stay free of it. Figures are built as `matplotlib.figure.Figure` objects
(no pyplot, no global state) so that tests can read their axes instead of pixels.
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.rundir import atomic_write

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FORMATS = ("png", "pdf")


def num(value: Any) -> float:
    """A metric as a float: a JSON number, or +inf for a missing/diverged one ("inf", None)."""
    if isinstance(value, bool):
        return float("inf")
    if isinstance(value, (int, float)):
        return float(value)
    if value == "-inf":
        return float("-inf")
    return float("inf")


def front_2d(is_: Sequence[float], fid: Sequence[float]) -> list[int]:
    """Indices of the points not dominated in the IS–FID plane (IS max, FID min), by rising IS.

    The selection front of a round is 3-D (params too), so it zig-zags when drawn in this plane;
    this is the front of the plane itself. Points with an infinite coordinate are left out."""
    ok = [i for i in range(len(is_)) if math.isfinite(is_[i]) and math.isfinite(fid[i])]
    front = [
        i
        for i in ok
        if not any(
            is_[j] >= is_[i] and fid[j] <= fid[i] and (is_[j] > is_[i] or fid[j] < fid[i])
            for j in ok
        )
    ]
    return sorted(dict.fromkeys(front), key=lambda i: (is_[i], fid[i]))


def _figure(rows: int = 1, cols: int = 1, size: tuple[float, float] = (6.4, 4.4)) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg canvas, whatever the default backend of this process
    return fig


def _integer_ticks(ax: Axes) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def save(fig: Figure, stem: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write `stem`.png and `stem`.pdf (or the given formats); the paths written."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=110)
        atomic_write(path, buffer.getvalue())  # never a half-written figure
        paths.append(path)
    return paths


def pareto_figure(
    title: str, candidates: Sequence[Mapping[str, Any]], distance: str = "FID"
) -> Figure:
    """One round's candidates in the IS–FID plane: parameter count as colour, the 2-D front as a
    step line (the boundary of what it dominates), the stage's pick as a star, diverged (infinite
    FID) candidates left out and counted in the title."""
    is_ = [num(c.get("is")) for c in candidates]
    fid = [num(c.get("fid")) for c in candidates]
    params = [num(c.get("params")) for c in candidates]
    ok = [i for i in range(len(is_)) if math.isfinite(is_[i]) and math.isfinite(fid[i])]
    fig = _figure()
    ax = fig.add_subplot()
    missing = len(candidates) - len(ok)
    ax.set_title(title + (f" ({missing} diverged, not shown)" if missing else ""))
    ax.set_xlabel("IS (higher is better)")
    ax.set_ylabel(f"{distance} (lower is better)")
    if ok:
        points = ax.scatter(
            [is_[i] for i in ok],
            [fid[i] for i in ok],
            c=[params[i] for i in ok],
            cmap="viridis",
            s=36,
            zorder=3,
            label="candidates",
        )
        fig.colorbar(points, ax=ax, label="parameters")
        front = front_2d(is_, fid)
        ax.step(
            [is_[i] for i in front],
            [fid[i] for i in front],
            where="pre",
            color="tab:red",
            linewidth=1.5,
            zorder=2,
            label=f"non-dominated (IS, {distance})",
        )
        picks = [i for i in ok if candidates[i].get("best")]
        if picks:
            ax.scatter(
                [is_[i] for i in picks],
                [fid[i] for i in picks],
                marker="*",
                s=260,
                facecolors="none",
                edgecolors="black",
                linewidths=1.2,
                zorder=4,
                label="pick",
            )
        ax.margins(0.08)  # no point clipped at the frame
        ax.legend(loc="best", fontsize="small")
    return fig


def round_stats(history: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, float]]]:
    """Per search stage (in run order), per round: the best's and the median FID, IS and params
    (the median over the round's candidates, diverged ones counted as infinitely bad)."""
    out: dict[str, list[dict[str, float]]] = {}
    for r in history:
        if r.get("kind") != "round":
            continue
        mine = [
            c
            for c in history
            if c.get("kind") == "candidate"
            and c.get("stage") == r["stage"]
            and c.get("round") == r["round"]
        ]
        fids = [num(c.get("fid")) for c in mine] or [num(r.get("best_fid"))]
        iss = [num(c.get("is")) for c in mine] or [num(r.get("best_is"))]
        iss = [v if math.isfinite(v) else 0.0 for v in iss]
        params = [num(c.get("params")) for c in mine] or [num(r.get("best_params"))]
        out.setdefault(str(r["stage"]), []).append(
            {
                "round": float(r["round"]) + 1,
                "best_fid": num(r.get("best_fid")),
                "median_fid": float(statistics.median(fids)),
                "best_is": num(r.get("best_is")),
                "median_is": float(statistics.median(iss)),
                "best_params": num(r.get("best_params")),
                "median_params": float(statistics.median(params)),
            }
        )
    return out


def curves_figure(
    title: str, stats: Mapping[str, Sequence[Mapping[str, float]]], distance: str = "FID"
) -> Figure:
    """Best and median FID (top) and IS (bottom) per round, the search stages one after the other
    on one round axis with a dashed line at each stage boundary (the paper's Fig. 6–7)."""
    fig = _figure(size=(6.4, 6.0))
    ax_fid, ax_is = fig.subplots(2, 1, sharex=True)
    fig.suptitle(title)
    offset = 0
    for n, (stage, rows) in enumerate(stats.items()):
        xs = [offset + int(r["round"]) for r in rows]
        color = f"C{n}"
        for ax, key in ((ax_fid, "fid"), (ax_is, "is")):
            best = [r[f"best_{key}"] for r in rows]
            median = [r[f"median_{key}"] for r in rows]
            ax.plot(xs, _plottable(best), "o-", color=color, label=f"{stage}: best")
            ax.plot(xs, _plottable(median), "s--", color=color, alpha=0.6, label=f"{stage}: median")
        if offset:
            for ax in (ax_fid, ax_is):
                ax.axvline(offset + 0.5, color="gray", linestyle="--", linewidth=1)
        offset += len(rows)
    ax_fid.set_ylabel(distance)
    ax_is.set_ylabel("IS")
    ax_is.set_xlabel("search round (stages in run order)")
    _integer_ticks(ax_is)
    for ax in (ax_fid, ax_is):
        ax.grid(alpha=0.3)
        if stats:
            ax.legend(loc="best", fontsize="small")
    return fig


def _plottable(values: Sequence[float]) -> list[float]:
    """Infinite values (a diverged round) become gaps, not points off the chart."""
    return [v if math.isfinite(v) else math.nan for v in values]


def losses_figure(title: str, rows: Sequence[Mapping[str, Any]]) -> Figure:
    """D and G losses against the run's iteration (`step` of metrics.csv), a dashed line where a
    stage starts, from the `loss` rows of metrics.csv."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    steps = [int(r["step"]) for r in rows]
    for key, label in (("d_loss", "D"), ("g_loss", "G")):
        ax.plot(steps, [num(r.get(key)) for r in rows], label=label, linewidth=1)
    stage = None
    for r in rows:
        if stage is not None and r["stage"] != stage:
            ax.axvline(int(r["step"]), color="gray", linestyle="--", linewidth=1)
        stage = r["stage"]
    _integer_ticks(ax)
    ax.grid(alpha=0.3)
    if rows:
        ax.legend(loc="best", fontsize="small")
    return fig


def write_round_plots(
    plots: Path, stage: str, history: Sequence[Mapping[str, Any]], distance: str = "FID"
) -> None:
    """After a search stage: the IS–FID plane of its last round and the learning curves of all
    search stages so far."""
    rounds = [r for r in history if r.get("kind") == "round" and r["stage"] == stage]
    if not rounds:
        return
    last = rounds[-1]["round"]
    mine = [
        c
        for c in history
        if c.get("kind") == "candidate" and c["stage"] == stage and c["round"] == last
    ]
    fig = pareto_figure(f"{stage}: round {last + 1}", mine, distance)
    save(fig, plots / f"{stage}_pareto_round{last + 1:02d}")
    curves = curves_figure("best and median per round", round_stats(history), distance)
    save(curves, plots / "curves")


def write_loss_plot(plots: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        save(losses_figure("D and G losses", rows), plots / "losses")
