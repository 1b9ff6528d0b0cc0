"""`eagan report RUN [RUN ...]`: what a run directory holds, read from the directory alone
(resolved.json, history.jsonl, metrics.csv, final/metrics.json): stages, rounds, each search
stage's pick with its genome and params, the final and best metrics, wall time per stage, and where
the files are; several runs side by side in one table. Imports neither torch nor matplotlib."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table

from runtime.rundir import RunDirError

FILES = {
    "history": "history.jsonl",
    "metrics_csv": "metrics.csv",
    "tensorboard": "tb",
    "plots": "plots",
    "samples": "samples",
    "checkpoints": "checkpoints",
    "final": "final",
    "final_best": "final/best",
}


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise RunDirError(f"{path}: cannot be read ({err}); the run directory is damaged") from None


def _history(path: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    if not path.is_file():
        return records
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash: the rest still reports
        if isinstance(record, dict):
            records.append(record)
    return records


def _wall(path: Path) -> dict[str, float]:
    """Running seconds per stage from metrics.csv's `time` column (the first to the last row of
    each stage; the time a stopped run was not running is not counted)."""
    if not path.is_file():
        return {}
    spans: dict[str, list[float]] = {}
    previous = 0.0
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                t = float(row.get("time") or "nan")
            except ValueError:
                continue
            stage = row.get("stage") or ""
            if not stage or not math.isfinite(t):
                continue
            span = spans.setdefault(stage, [previous, t])
            span[1] = t
            previous = t
    return {stage: round(end - start, 3) for stage, (start, end) in spans.items()}


def summarize(root: Path) -> dict[str, Any]:
    """One run directory as a JSON-ready summary; RunDirError if ROOT is not a run directory."""
    resolved_path = root / "resolved.json"
    if not root.is_dir() or not resolved_path.is_file():
        raise RunDirError(f"{root} is not a run directory (no resolved.json); check the path")
    resolved = _json(resolved_path)
    if not isinstance(resolved, dict):
        raise RunDirError(f"{resolved_path}: not a JSON object; the run directory is damaged")
    env = resolved.get("environment") or {}
    history = _history(root / "history.jsonl")
    wall = _wall(root / "metrics.csv")
    stages = []
    for st in resolved.get("stages", []):
        name = st.get("name")
        settings = st.get("settings", {})
        rounds = [r for r in history if r.get("kind") == "round" and r.get("stage") == name]
        entry: dict[str, Any] = {"name": name, "kind": st.get("kind"), "wall_s": wall.get(name)}
        if st.get("kind") == "search":
            entry["rounds"] = f"{len(rounds)}/{settings.get('rounds')}"
            entry["network"] = settings.get("network")
            if rounds:
                last = rounds[-1]
                entry["best"] = {
                    "round": last["round"] + 1,
                    "genome": last.get("best"),
                    "fid": last.get("best_fid"),
                    "is": last.get("best_is"),
                    "params": last.get("best_params"),
                }
        else:
            entry["epochs"] = settings.get("epochs")
        stages.append(entry)
    final_path = root / "final" / "metrics.json"
    final = _json(final_path) if final_path.is_file() else None
    files = {key: str(root / rel) for key, rel in FILES.items() if (root / rel).exists()}
    return {
        "run": str(root),
        "spec": resolved.get("spec"),
        "seed": env.get("seed"),
        "device": env.get("device"),
        "quick": env.get("quick", False),
        "finished": final is not None,
        "stages": stages,
        "final": final,
        "wall_s": round(sum(v for v in wall.values()), 3) if wall else None,
        "files": files,
    }


def _f(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


def _seconds(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    minutes, seconds = divmod(float(value), 60)
    return f"{int(minutes)}m{seconds:04.1f}s" if minutes else f"{seconds:.1f}s"


def render_one(s: dict[str, Any]) -> RenderableType:
    head = (
        f"{s['run']}: spec {s['spec']}, seed {s['seed']}, {s['device']}"
        + (", --quick" if s["quick"] else "")
        + ("" if s["finished"] else " (not finished)")
    )
    stages = Table(title="stages", title_justify="left")
    for col in ("stage", "kind", "progress", "pick (genome)", "FID", "IS", "params", "wall"):
        stages.add_column(col, overflow="fold")
    for st in s["stages"]:
        best = st.get("best") or {}
        progress = (
            f"round {st['rounds']}" if st["kind"] == "search" else f"epochs {_f(st.get('epochs'))}"
        )
        stages.add_row(
            st["name"],
            st["kind"],
            progress,
            _f(best.get("genome")),
            _f(best.get("fid")),
            _f(best.get("is")),
            _f(best.get("params")),
            _seconds(st.get("wall_s")),
        )
    parts: list[RenderableType] = [head, stages]
    final = s["final"]
    if final:
        table = Table(title="fully-train", title_justify="left")
        for col in ("", "epoch", "FID", "IS", "images"):
            table.add_column(col)
        table.add_row(
            "last",
            _f(final.get("epochs")),
            _f(final.get("fid")),
            f"{_f(final.get('is'))} ± {_f(final.get('is_std'))}",
            _f(final.get("images")),
        )
        best = final.get("best")
        if isinstance(best, dict):
            table.add_row(
                "best FID",
                _f(best.get("epoch")),
                _f(best.get("fid")),
                f"{_f(best.get('is'))} ± {_f(best.get('is_std'))}",
                _f(best.get("images")),
            )
        parts.append(table)
        parts.append(
            f"G {final.get('g_genome')} ({_f(final.get('g_params'))} params) · "
            f"D {final.get('d_genome')} ({_f(final.get('d_params'))} params)"
        )
    files = Table(title="files", title_justify="left", show_header=False)
    files.add_column("what")
    files.add_column("path", overflow="fold")
    for key, path in s["files"].items():
        files.add_row(key, path)
    parts.append(files)
    return Group(*parts)


def render_many(summaries: Sequence[dict[str, Any]]) -> RenderableType:
    table = Table(title="runs", title_justify="left")
    search = list(
        dict.fromkeys(st["name"] for s in summaries for st in s["stages"] if st["kind"] == "search")
    )
    table.add_column("run", overflow="fold")
    table.add_column("seed")
    for name in search:
        table.add_column(f"{name} FID")
    for col in ("final FID", "final IS", "best FID (epoch)", "G params", "D params", "wall"):
        table.add_column(col)
    for s in summaries:
        by_name = {st["name"]: st for st in s["stages"]}
        final = s["final"] or {}
        best = final.get("best") if isinstance(final.get("best"), dict) else None
        table.add_row(
            s["run"],
            _f(s["seed"]),
            *[_f((by_name.get(n, {}).get("best") or {}).get("fid")) for n in search],
            _f(final.get("fid")),
            _f(final.get("is")),
            f"{_f(best.get('fid'))} ({best.get('epoch')})" if best else "—",
            _f(final.get("g_params")),
            _f(final.get("d_params")),
            _seconds(s["wall_s"]),
        )
    return table


def report(runs: Sequence[Path], console: Console, as_json: bool = False) -> None:
    """Print the summary of one run, or a comparison of several (`as_json`: the summaries)."""
    summaries = [summarize(r) for r in runs]
    if as_json:
        value: Any = summaries[0] if len(summaries) == 1 else summaries
        text = json.dumps(value, indent=2, sort_keys=True, default=str)
        console.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    console.print(render_one(summaries[0]) if len(summaries) == 1 else render_many(summaries))
