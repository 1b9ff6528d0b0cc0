"""Live output of a run: rich progress bars and population tables on a terminal, plain log lines
elsewhere (CI, pipes, `NO_COLOR`)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table


def _fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf"
        return f"{value:.{digits}f}"
    return str(value)


def population_table(
    stage: str,
    round_: int,
    records: Sequence[Mapping[str, Any]],
    limit: int = 12,
    distance: str = "FID",
) -> Table:
    """`distance`: "FID" with Inception features, "FD" with LeNet (`distance_name`)."""
    table = Table(title=f"{stage} · round {round_ + 1}", title_justify="left")
    for col in ("#", "rank", "IS", distance, "params", "genome"):
        table.add_column(col, justify="right" if col != "genome" else "left", overflow="fold")
    shown = sorted(
        range(len(records)), key=lambda i: (records[i].get("rank", 0), records[i]["fid"])
    )
    for i in shown[:limit]:
        r = records[i]
        mark = "*" if r.get("best") else ("+" if r.get("selected") else "")
        table.add_row(
            f"{i}{mark}",
            str(r.get("rank", "")),
            _fmt(r["is"]),
            _fmt(r["fid"]),
            f"{r['params']:,}",
            _genome_cell(str(r["genome"])),
        )
    caption = [f"{len(records) - limit} more"] if len(records) > limit else []
    if any(r.get("best") or r.get("selected") for r in records):  # the legend of the marks shown
        caption.append("* best, + kept, first front = rank 0")
    if caption:
        table.caption = "; ".join(caption)
    return table


def _genome_cell(genome: str) -> str:
    """The genome with a space after each `,` and around each `|`, so that a narrow column folds
    between ops, never inside one; the genome parser reads it as it is (spaces are ignored)."""
    return genome.split(":", 1)[-1].replace(",", ", ").replace("|", " | ")


class Reporter:
    def __init__(self, console: Console | None = None, live: bool | None = None) -> None:
        if console is None:
            # not a terminal (a log file, CI): lines are never hard-wrapped at 80 columns, so
            # that genome strings stay whole and can be copied
            probe = Console(stderr=True)
            console = Console(stderr=True, soft_wrap=not probe.is_terminal)
        self.console = console
        self.live_mode = self.console.is_terminal if live is None else live
        self.progress = Progress(
            TextColumn("[bold]{task.fields[stage]}[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"),
            console=self.console,
        )
        self.table: Table | None = None
        self.live: Live | None = None
        self.task: Any = None
        self.done = 0
        self.total = 0
        self.stage = ""
        self.last_log = 0.0
        self.losses = ""
        self.distance = "FID"  # "FD" when the extractor is LeNet (the runner sets it)
        self.eval_task: Any = None
        self.run_task: Any = None
        self.run_done = self.run_total = 0
        self.run_started: tuple[float, int] | None = None  # (time, done) when this process began

    def __enter__(self) -> Self:
        if self.live_mode:
            self.live = Live(
                self._render(), console=self.console, refresh_per_second=4, transient=False
            )
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
            self.live = None

    def _render(self) -> Group:
        parts: list[Any] = [self.progress]
        if self.table is not None:
            parts.append(self.table)
        return Group(*parts)

    def message(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=not self.live_mode)

    def stage_start(self, stage: str, description: str, total: int, done: int = 0) -> None:
        """A new bar; `done` iterations are behind already (a resumed stage)."""
        self.stage, self.done, self.total = stage, done, total
        if self.live_mode:
            if self.task is not None:
                self.progress.update(self.task, visible=False)
            self.task = self.progress.add_task(
                description, total=total, completed=done, stage=stage, losses=""
            )
            if self.live is not None:
                self.live.update(self._render())
        else:
            self.console.print(
                f"[{stage}] {description} ({total} iterations"
                + (f", resumed at {done})" if done else ")"),
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            self.last_log = time.monotonic()

    def run_progress(self, total: int, done: int = 0) -> None:
        """The whole run's training iterations (every stage), `done` of them behind (a resumed
        run): a bar of its own with the run's ETA; in plain lines, a share and an ETA."""
        self.run_total, self.run_done = total, done
        self.run_started = (time.monotonic(), done)
        if self.live_mode:
            self.run_task = self.progress.add_task(
                "all stages", total=total, completed=done, stage="run", losses=""
            )

    def _run_eta(self) -> str:
        if not self.run_total or self.run_started is None:
            return ""
        t0, d0 = self.run_started
        share = f" · run {100 * self.run_done / self.run_total:.0f}%"
        if self.run_done <= d0:
            return share
        rate = (time.monotonic() - t0) / (self.run_done - d0)
        left = max(self.run_total - self.run_done, 0) * rate
        return share + f", about {left / 60:.0f} min left"

    def step(self, d: float, g: float, epoch: int) -> None:
        self.done += 1
        self.run_done += 1
        self.losses = f"D {d:.3f}  G {g:.3f}"
        if self.live_mode and self.task is not None:
            self.progress.update(self.task, advance=1, losses=self.losses)
            if self.run_task is not None:
                self.progress.update(self.run_task, completed=self.run_done)
        elif time.monotonic() - self.last_log > 10 or self.done == self.total:
            self.last_log = time.monotonic()
            self.console.print(
                f"[{self.stage}] epoch {epoch + 1} iteration {self.done}/{self.total} {self.losses}"
                + self._run_eta(),
                highlight=False,
                markup=False,
                soft_wrap=True,
            )

    def round_table(self, stage: str, round_: int, records: Sequence[Mapping[str, Any]]) -> None:
        self.table = population_table(stage, round_, records, distance=self.distance)
        if self.live is not None:
            self.live.update(self._render())
        else:
            best = next((r for r in records if r.get("best")), records[0])
            front = sum(1 for r in records if r.get("rank") == 0)
            self.console.print(
                f"[{stage}] round {round_ + 1}: best IS {_fmt(best['is'])} {self.distance} "
                f"{_fmt(best['fid'])} "
                f"params {best['params']:,} · first front {front}/{len(records)} · {best['genome']}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )

    # ------------------------------------------------------------------ header, evaluation, end
    def header(self, rows: Sequence[tuple[str, str]]) -> None:
        """What runs, before the first bar: run directory, device, seed, the stage plan."""
        width = max((len(k) for k, _ in rows), default=0)
        self.console.rule("eagan run", style="bold", align="left")
        for key, value in rows:
            self.console.print(f"{key:<{width}}  {value}", markup=False, highlight=False)

    def evaluating(self, stage: str, done: int, total: int) -> None:
        """Evaluation of a round's population: its own bar (candidates scored), so the training
        bar does not sit frozen for minutes; plain lines at most every 10 s."""
        if self.live_mode:
            if done == 0 or getattr(self, "eval_task", None) is None:
                if getattr(self, "eval_task", None) is not None:
                    self.progress.update(self.eval_task, visible=False)
                self.eval_task = self.progress.add_task(
                    "evaluating", total=total, completed=done, stage=stage, losses=""
                )
            else:
                self.progress.update(self.eval_task, completed=done)
            if done >= total and self.eval_task is not None:
                self.progress.update(self.eval_task, visible=False)
                self.eval_task = None
        elif done == 0 or done >= total or time.monotonic() - self.last_log > 10:
            self.last_log = time.monotonic()
            self.console.print(
                f"[{stage}] evaluating {done}/{total} candidates",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )

    def summary(self, rows: Sequence[tuple[str, str]]) -> None:
        """The end of a run: what was chosen, the final metrics, time per stage, where the files
        are. The last population table is cleared first, so the summary is what stays on screen."""
        self.table = None
        if self.live is not None:
            self.live.update(self._render())
        width = max((len(k) for k, _ in rows), default=0)
        self.console.rule("run finished", style="bold", align="left")
        for key, value in rows:
            self.console.print(f"{key:<{width}}  {value}", markup=False, highlight=False)
