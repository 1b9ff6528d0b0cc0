"""metrics.csv and TensorBoard (runtime/logs.py) on the tiny digits run: losses every `log_every`
iterations and a row per round, read back (TensorBoard through its own `EventAccumulator`); the
steps agree with history.jsonl; a run that crashed and resumed logs no step twice and none less."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_resume import StopAt, _fresh, _resume

from runtime.logs import COLUMNS, read_csv
from runtime.search import Interrupted

ITERS = 81  # iterations per epoch of tests/data/tiny.eagan (1296 digits / batch 16)


def _history(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]


def _events(out: Path) -> Any:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("logs") / "run"
    _fresh(out, StopAt())
    return out


def test_csv_has_losses_every_n_iterations_and_a_row_per_round(ref: Path) -> None:
    rows = read_csv(ref)
    assert rows and list(rows[0]) == list(COLUMNS)
    losses = [r for r in rows if r["kind"] == "loss"]
    # search_g: warm-up + 2 rounds of 81; search_d: warm-up 81 + 2 one-to-one rounds of 4 pairs × 20;
    # fully-train: 81
    total = 3 * ITERS + ITERS + 2 * 80 + ITERS
    assert [int(r["step"]) for r in losses] == list(range(10, total + 1, 10))
    assert {r["stage"] for r in losses} == {"search_g", "search_d", "fully_train"}
    assert all(float(r["d_loss"]) == float(r["d_loss"]) for r in losses)  # numbers, not blanks
    rounds = [r for r in rows if r["kind"] == "round"]
    hist = [r for r in _history(ref) if r["kind"] == "round"]
    assert [(r["stage"], int(r["round"])) for r in rounds] == [
        (h["stage"], h["round"] + 1) for h in hist
    ]
    for row, h in zip(rounds, hist):
        assert float(row["best_fid"]) == pytest.approx(h["best_fid"])
        assert float(row["best_is"]) == pytest.approx(h["best_is"])
        assert int(float(row["best_params"])) == h["best_params"]
        cands = [
            c["fid"]
            for c in _history(ref)
            if c["kind"] == "candidate" and c["stage"] == h["stage"] and c["round"] == h["round"]
        ]
        assert float(row["median_fid"]) >= min(cands)
    # the round rows sit at the step where their round's training ended
    assert [int(r["step"]) for r in rounds] == [
        2 * ITERS,
        3 * ITERS,
        4 * ITERS + 80,
        4 * ITERS + 160,
    ]
    (final,) = [r for r in rows if r["kind"] == "final"]
    metrics = json.loads((ref / "final" / "metrics.json").read_text())
    assert float(final["fid"]) == pytest.approx(metrics["fid"]) and int(final["step"]) == total
    assert (ref / "plots" / "losses.png").is_file() and (ref / "plots" / "losses.pdf").is_file()


def test_tensorboard_events_read_back(ref: Path) -> None:
    acc = _events(ref)
    tags = acc.Tags()
    rows = read_csv(ref)
    loss_steps = [int(r["step"]) for r in rows if r["kind"] == "loss"]
    assert [e.step for e in acc.Scalars("loss/D")] == loss_steps
    assert [e.step for e in acc.Scalars("loss/G")] == loss_steps
    for stage in ("search_g", "search_d"):
        steps = [int(r["step"]) for r in rows if r["kind"] == "round" and r["stage"] == stage]
        hist = [h for h in _history(ref) if h["kind"] == "round" and h["stage"] == stage]
        for key in ("best_fid", "median_fid", "best_is", "median_is", "best_params"):
            events = acc.Scalars(f"{stage}/{key}")
            assert [e.step for e in events] == steps
        assert [e.value for e in acc.Scalars(f"{stage}/best_fid")] == pytest.approx(
            [h["best_fid"] for h in hist]
        )
        assert [e.step for e in acc.Images(f"samples/{stage}")] == steps  # each round's best
    assert len(acc.Scalars("final/fid")) == 1
    assert "samples/fully_train_final" in tags["images"]
    # the resolved settings as hparams (the HParams plugin's experiment summary)
    assert acc.PluginTagToContent("hparams")


def _strip(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


def test_a_crashed_and_resumed_run_logs_every_step_once(tmp_path: Path, ref: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        _fresh(out, StopAt(at=200))  # in search_g's second round
    # as after a crash: the newest checkpoint (taken at step 199) is lost, so the run resumes
    # from the end of round 1 (step 162) with rows and events of steps 163–199 already written
    newest = max((out / "checkpoints").glob("ckpt-*.json"))
    newest.unlink()
    newest.with_suffix(".pt").unlink()
    assert max(int(r["step"]) for r in read_csv(out)) > 2 * ITERS
    _resume(out)
    assert _strip(read_csv(out)) == _strip(read_csv(ref))
    acc, ref_acc = _events(out), _events(ref)
    for tag in ("loss/D", "loss/G", "search_g/best_fid", "search_d/median_is", "final/fid"):
        steps = [e.step for e in acc.Scalars(tag)]
        assert steps == sorted(set(steps)) == [e.step for e in ref_acc.Scalars(tag)], tag
    assert [e.step for e in acc.Images("samples/search_g")] == [2 * ITERS, 3 * ITERS]
