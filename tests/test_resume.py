"""Crash safety: a run stopped at any point and resumed gives the same history and results as a
run never interrupted; damaged checkpoints, a full disk and bad resumes are handled."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console

from eagan_dsl.checker import load
from runtime import checkpoint as ckpt
from runtime.display import Reporter
from runtime.rundir import RunDir, RunDirError, environment
from runtime.runner import Runner, resume, run_program
from runtime.search import Interrupted

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "tiny.eagan"


class StopAt(Reporter):
    """A quiet reporter that asks the runner to stop after `at` training iterations."""

    def __init__(self, at: int | None = None) -> None:
        sink = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the reporter)
        super().__init__(Console(file=sink, width=120), live=False)
        self.at, self.count = at, 0
        self.runner: Any = None
        self.messages: list[str] = []

    def step(self, d: float, g: float, epoch: int) -> None:
        self.count += 1
        if self.at is not None and self.count == self.at:
            self.runner.stop[0] = True

    def message(self, text: str) -> None:
        self.messages.append(text)


def _fresh(out: Path, reporter: StopAt) -> None:
    torch.set_num_threads(1)
    program = load(TINY)
    torch.manual_seed(0)
    run_dir = RunDir.create(out, TINY)
    run_dir.write_resolved(program, {**environment("cpu", 0), "quick": False})
    runner = Runner(program, run_dir, torch.device("cpu"), 0, reporter)
    reporter.runner = runner
    runner.run()


def _results(out: Path) -> tuple[str, dict[str, Any]]:
    return (out / "history.jsonl").read_text(), json.loads(
        (out / "final" / "metrics.json").read_text()
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any], int]:
    out = tmp_path_factory.mktemp("ref") / "run"
    reporter = StopAt()
    _fresh(out, reporter)
    history, metrics = _results(out)
    return history, metrics, reporter.count


def _resume(out: Path) -> StopAt:
    torch.set_num_threads(1)
    reporter = StopAt()
    resume(out, reporter=reporter)
    return reporter


@pytest.mark.parametrize("fraction", [0.05, 0.45, 0.8])
def test_stop_anywhere_and_resume_gives_the_same_run(
    tmp_path: Path, reference: tuple[str, dict[str, Any], int], fraction: float
) -> None:
    history, metrics, total = reference
    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        _fresh(out, StopAt(at=max(int(total * fraction), 1)))
    assert _resume(out).messages[0].startswith(f"resuming {out} from ckpt-")
    assert _results(out) == (history, metrics)


def _spawn(out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "runtime.cli",
        "run",
        str(TINY),
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _kill_and_resume(out: Path, after: float) -> None:
    proc = _spawn(out)
    # wait for the first checkpoint, then a while longer, then SIGKILL (no chance to save)
    deadline = time.monotonic() + 120
    while not list((out / "checkpoints").glob("ckpt-*.json")) and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "run ended early")
        time.sleep(0.05)
    time.sleep(after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "run", "--resume", str(out), "--device", "cpu"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("seed", [1])
def test_sigkill_at_a_random_point_then_resume(
    tmp_path: Path, reference: tuple[str, dict[str, Any], int], seed: int
) -> None:
    history, metrics, _ = reference
    out = tmp_path / "run"
    _kill_and_resume(out, random.Random(seed).uniform(0.5, 8.0))
    assert _results(out) == (history, metrics)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 8))
def test_sigkill_many_points(
    tmp_path: Path, reference: tuple[str, dict[str, Any], int], seed: int
) -> None:
    history, metrics, _ = reference
    out = tmp_path / "run"
    _kill_and_resume(out, random.Random(seed).uniform(0.0, 20.0))
    assert _results(out) == (history, metrics)


def _interrupted_run(tmp_path: Path, total: int) -> Path:
    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        _fresh(out, StopAt(at=int(total * 0.7)))
    return out


def test_damaged_newest_checkpoint_falls_back(
    tmp_path: Path, reference: tuple[str, dict[str, Any], int]
) -> None:
    history, metrics, total = reference
    out = _interrupted_run(tmp_path, total)
    newest = ckpt.checkpoints(out / "checkpoints")[-1][1]
    pt = out / "checkpoints" / newest.name.replace(".json", ".pt")
    data = bytearray(pt.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped bit
    pt.write_bytes(bytes(data))
    reporter = _resume(out)
    assert reporter.messages[0].startswith(
        "skipped a damaged checkpoint, using the previous one: checkpoint"
    )
    assert "does not match its checksum" in reporter.messages[0]
    assert _results(out) == (history, metrics)


def test_truncated_only_checkpoints_are_refused(
    tmp_path: Path, reference: tuple[str, dict[str, Any], int]
) -> None:
    out = _interrupted_run(tmp_path, reference[2])
    for pt in (out / "checkpoints").glob("*.pt"):
        pt.write_bytes(pt.read_bytes()[:100])
    with pytest.raises(ckpt.CheckpointError, match="no intact checkpoint"):
        _resume(out)


def test_full_disk_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "checkpoints"
    ckpt.save(folder, {"x": torch.ones(3)}, {"reason": "first"})

    def full(obj: Any, f: Any) -> None:
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(ckpt.CheckpointError, match="no space left"):
        ckpt.save(folder, {"x": torch.zeros(3)}, {"reason": "second"})
    monkeypatch.undo()
    loaded = ckpt.load_latest(folder)
    assert loaded.meta["reason"] == "first" and torch.equal(loaded.state["x"], torch.ones(3))
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="not a run directory"):
        resume(tmp_path)
    run_dir = RunDir.create(tmp_path / "r", TINY)
    with pytest.raises(RunDirError, match="already holds a run; resume it with --resume"):
        RunDir.create(run_dir.root, TINY)
    (run_dir.root / "resolved.json").write_text(
        json.dumps({"environment": {"seed": 0}, "file": str(TINY)})
    )
    other = tmp_path / "other.eagan"
    other.write_text(TINY.read_text().replace("population: 4", "population: 6"))
    with pytest.raises(RunDirError, match="differs from the spec this run was started with"):
        resume(run_dir.root, other)


def test_diverged_candidate_is_marked_and_the_search_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime import search
    from runtime.train import Diverged

    calls = {"n": 0}
    real_train = search.SearchStage._train

    def poisoned(self: Any, genome: Any, partner: Any) -> tuple[float, float]:
        if self.phase == "train" and self.stage.name == "search_g" and genome == self.population[0]:
            calls["n"] += 1
            for p in self.supernet.module.parameters():
                p.data.fill_(float("nan"))  # the shared weights are poisoned, too
            raise Diverged("G loss is nan")
        return real_train(self, genome, partner)

    monkeypatch.setattr(search.SearchStage, "_train", poisoned)
    torch.set_num_threads(1)
    out = tmp_path / "run"
    run_program(load(TINY), TINY, out, device="cpu", reporter=StopAt())
    lines = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    first = [
        r
        for r in lines
        if r["kind"] == "candidate" and r["stage"] == "search_g" and r["round"] == 0
    ]
    assert calls["n"] >= 1
    assert first[0]["diverged"] is True and first[0]["fid"] == "inf"
    assert all(r.get("fid") != "inf" for r in first[1:])  # the restored supernet still works
    assert json.loads((out / "final" / "metrics.json").read_text())["fid"] > 0
