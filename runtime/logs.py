"""Logs a researcher can open: `DIR/metrics.csv` always, TensorBoard under `DIR/tb/` when the
`tensorboard` package is importable (`pip install -e '.[tensorboard]'`).

One step axis for both: `step` counts the run's training iterations over all stages (warm-up,
rounds, fully-train), so `tensorboard --logdir runs/` shows a whole run as one curve per tag. Rows:
`loss` (D and G losses every `log_every` iterations), `round` (a search round's best and median
FID, IS and params, at the step the round ended), `eval` (a fully-train evaluation) and `final`.

Resume: the checkpoint holds the step, the number of CSV rows and the running time; a resumed run
cuts metrics.csv back to those rows and reopens TensorBoard with `purge_step` (step + 1), so that
events written after the checkpoint are dropped by every TensorBoard reader: no step is missing
and none is doubled. Everything is written only by rank 0 (`root=None` elsewhere).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import os
import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from runtime.rundir import atomic_write

COLUMNS = (
    "step",
    "time",
    "stage",
    "kind",
    "round",
    "epoch",
    "d_loss",
    "g_loss",
    "best_fid",
    "median_fid",
    "best_is",
    "median_is",
    "best_params",
    "median_params",
    "fid",
    "is",
)
CSV = "metrics.csv"
TB = "tb"


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else "inf")
    return str(value)


def _num(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return math.inf  # a diverged candidate's FID ("inf" in the history)


def read_csv(root: Path) -> list[dict[str, str]]:
    """The rows of `root/metrics.csv` (none if it is missing)."""
    path = root / CSV
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _hparams(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved settings flattened to TensorBoard hparams (`block.key`, `stage.key`)."""
    flat: dict[str, Any] = {}

    def put(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                put(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (bool, int, float, str)):
            flat[prefix] = value
        else:
            flat[prefix] = "off" if value is None else json.dumps(value)

    put("", resolved.get("blocks", {}))
    for stage in resolved.get("stages", []):
        put(str(stage.get("name")), stage.get("settings", {}))
    flat["spec"] = str(resolved.get("spec"))
    return flat


class RunLog:
    def __init__(self, root: Path | None, log_every: int, tensorboard: bool | None = None) -> None:
        self.root = root
        self.every = max(1, int(log_every))
        self.step = 0
        self.rows = 0
        self._elapsed = 0.0
        self._since = time.monotonic()
        self.tensorboard = tensorboard_available() if tensorboard is None else tensorboard
        self._writer: Any = None
        self._purge: int | None = None
        self.stage = ""

    # ------------------------------------------------------------------ state
    def elapsed(self) -> float:
        return self._elapsed + time.monotonic() - self._since

    def state(self) -> dict[str, Any]:
        return {"step": self.step, "rows": self.rows, "elapsed": self.elapsed()}

    def restore(self, state: Mapping[str, Any] | None) -> None:
        """Back to the checkpoint's point: metrics.csv cut to its rows, TensorBoard purged after
        its step (a checkpoint without log state starts the logs again from step 0)."""
        state = state or {}
        self.step, self.rows = int(state.get("step", 0)), int(state.get("rows", 0))
        self._elapsed, self._since = float(state.get("elapsed", 0.0)), time.monotonic()
        self.close()
        self._purge = self.step + 1
        if self.root is None:
            return
        path = self.root / CSV
        if path.is_file():
            lines = path.read_bytes().decode("utf-8", errors="replace").splitlines(keepends=True)
            atomic_write(path, "".join(lines[: 1 + self.rows]).encode())

    # ----------------------------------------------------------------- writers
    def _row(self, kind: str, **values: Any) -> None:
        if self.root is None:
            return
        path = self.root / CSV
        new = not path.is_file() or path.stat().st_size == 0
        row = {"step": self.step, "time": round(self.elapsed(), 3), "kind": kind, **values}
        buffer = io.StringIO()
        w = csv.writer(buffer, lineterminator="\n")
        if new:
            w.writerow(COLUMNS)
        w.writerow([_cell(row.get(c)) for c in COLUMNS])
        with open(path, "a", encoding="utf-8") as f:
            f.write(buffer.getvalue())
        self.rows += 1

    def _tb(self) -> Any:
        if self.root is None or not self.tensorboard:
            return None
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.root / TB), purge_step=self._purge, flush_secs=30)
            self._purge = None
        return self._writer

    def _scalars(self, values: Mapping[str, Any]) -> None:
        writer = self._tb()
        if writer is None:
            return
        for tag, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                writer.add_scalar(tag, float(value), self.step)

    # ------------------------------------------------------------------ events
    def start(self) -> None:
        """A fresh run: the resolved settings as TensorBoard hparams (final FID and IS as its
        metrics), read from the run directory's resolved.json."""
        writer = self._tb()
        if writer is None or self.root is None or not (self.root / "resolved.json").is_file():
            return
        from torch.utils.tensorboard.summary import hparams

        resolved = json.loads((self.root / "resolved.json").read_text(encoding="utf-8"))
        metrics = {"final/fid": 0.0, "final/is": 0.0}
        for summary in hparams(_hparams(resolved), metrics):  # type: ignore[no-untyped-call]
            writer.file_writer.add_summary(summary, self.step)

    def iteration(self, epoch: int, d: float, g: float) -> None:
        self.step += 1
        if self.step % self.every:
            return
        self._row("loss", stage=self.stage, epoch=epoch, d_loss=float(d), g_loss=float(g))
        self._scalars({"loss/D": d, "loss/G": g})

    def round(self, stage: str, round_: int, records: Sequence[Mapping[str, Any]]) -> None:
        best = next((r for r in records if r.get("best")), records[0])
        values = {
            "best_fid": _num(best.get("fid")),
            "median_fid": statistics.median(_num(r.get("fid")) for r in records),
            "best_is": _num(best.get("is")),
            "median_is": statistics.median(
                v if math.isfinite(v) else 0.0 for v in (_num(r.get("is")) for r in records)
            ),
            "best_params": _num(best.get("params")),
            "median_params": statistics.median(_num(r.get("params")) for r in records),
        }
        self._row("round", stage=stage, round=round_ + 1, **values)
        self._scalars({f"{stage}/{k}": v for k, v in values.items()})

    def evaluation(self, stage: str, epoch: int, metrics: Mapping[str, Any], kind: str) -> None:
        """A fully-train evaluation (`eval`) or the final one (`final`)."""
        fid, is_ = _num(metrics.get("fid")), _num(metrics.get("is"))
        self._row(kind, stage=stage, epoch=epoch, fid=fid, **{"is": is_})
        prefix = "final" if kind == "final" else stage
        self._scalars({f"{prefix}/fid": fid, f"{prefix}/is": is_})

    def image(self, name: str, path: Path) -> None:
        """A sample grid (a round's best, the final G) as a TensorBoard image."""
        writer = self._tb()
        if writer is None or not path.is_file():
            return
        import numpy as np
        from PIL import Image

        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"))
        tag = "samples/" + name.rsplit("_round", 1)[0]
        writer.add_image(tag, array, self.step, dataformats="HWC")

    def flush(self) -> None:
        """At a checkpoint: what the checkpoint counts is on disk."""
        if self._writer is not None:
            self._writer.flush()
        if self.root is not None and (self.root / CSV).is_file():
            with open(self.root / CSV, "rb+") as f:
                os.fsync(f.fileno())

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class LoggedReporter:
    """The run's reporter with the logs behind it: every training iteration (`step`) and every
    round's table pass through `RunLog` before reaching the display."""

    def __init__(self, inner: Any, log: RunLog) -> None:
        self.inner, self.log = inner, log

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __enter__(self) -> Self:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(*exc)

    def stage_start(self, stage: str, description: str, total: int, done: int = 0) -> None:
        self.log.stage = stage
        self.inner.stage_start(stage, description, total, done)

    def step(self, d: float, g: float, epoch: int) -> None:
        self.log.iteration(epoch, d, g)
        self.inner.step(d=d, g=g, epoch=epoch)

    def round_table(self, stage: str, round_: int, records: Sequence[Mapping[str, Any]]) -> None:
        self.log.round(stage, round_, records)
        self.inner.round_table(stage, round_, records)


@contextmanager
def closing(log: RunLog) -> Iterator[RunLog]:
    try:
        yield log
    finally:
        log.close()
