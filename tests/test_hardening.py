"""Hardening (issue 15): what an adversarial test of eagan broke, each with a test that fails
without its fix."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "tiny.eagan"


# ------------------------------------------------ 1. no user-controlled text becomes generated code


@pytest.mark.parametrize("sep", ["\n", "\r", "\r\n", "\u2028", "\x0c", "\x85"])
def test_export_never_pastes_a_spec_path_into_code(
    tmp_path: Path, sep: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compiler.export import export_command, export_network
    from eagan_dsl.checker import check_text

    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    name = f"x{sep}open('pwned', 'w').close(){sep}#.eagan"
    out = tmp_path / "out"
    try:
        spec = tmp_path / name
        spec.write_text(TINY.read_text())
    except (OSError, ValueError):
        # a file system that refuses the name: the same name as the program's file, which is
        # what the export writes into the module's header
        program = check_text(TINY.read_text(), file=str(tmp_path / name))
        result = export_network(program, "FixedD", None, None, out)
    else:
        result = export_command(spec, "FixedD", out)
    source = result.source.read_text()
    tree = ast.parse(source)
    # the module is: a header of comments, the imports, three constants, one class
    kinds = [type(node).__name__ for node in tree.body]
    assert kinds == ["Import", "ImportFrom", "ImportFrom", "Assign", "Assign", "Assign", "ClassDef"]
    assert "open(" not in "".join(ln for ln in source.splitlines() if not ln.startswith("#"))
    module_spec = importlib.util.spec_from_file_location("_hardening_export", result.source)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    sys.modules.pop("_hardening_export", None)
    assert not marker.exists()
    assert "# spec: " in source


def test_export_literals_are_quoted() -> None:
    from compiler.export import _comment, _docstring, _literal

    evil = 'a"\n\u2028\\b'
    for text in (_comment(evil), _literal(evil), _docstring(evil)):
        assert "\n" not in text and "\u2028" not in text
    assert ast.literal_eval(_literal(evil)) == evil
    assert ast.literal_eval(_docstring(evil)) == evil
    assert _literal("nearest") == '"nearest"' and _comment("specs/a.eagan") == "specs/a.eagan"


# --------------------------------------------------- 2. --force replaces only a previous run's files


def _cli(*args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from runtime.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_force_never_deletes_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    from runtime.rundir import RunDir, RunDirError

    out = tmp_path / "thesis"
    (out / "final").mkdir(parents=True)
    (out / "final" / "thesis.tex").write_text("years of work")
    (out / "samples").mkdir()
    (out / "samples" / "figure.png").write_bytes(b"png")
    with pytest.raises(RunDirError, match="--force replaces only a previous run"):
        RunDir.create(out, TINY, force=True)
    assert (out / "final" / "thesis.tex").read_text() == "years of work"
    assert (out / "samples" / "figure.png").exists()
    assert sorted(p.name for p in out.iterdir()) == ["final", "samples"]  # nothing written
    code, output = _cli("run", str(TINY), "--out", str(out), "--force", "--device", "cpu")
    assert code == 2 and "--force replaces only a previous run" in output
    assert (out / "final" / "thesis.tex").exists()


def test_force_over_a_run_removes_only_what_the_run_wrote(tmp_path: Path) -> None:
    from runtime.rundir import RunDir

    out = tmp_path / "run"
    run = RunDir.create(out, TINY)
    (out / "resolved.json").write_text("{}")
    (out / "history.jsonl").write_text("{}\n")
    for rel in (
        "final/generator.py",
        "final/generator.safetensors",
        "final/metrics.json",
        "checkpoints/ckpt-000001.pt",
        "checkpoints/ckpt-000001.json",
        "samples/search_g_round01.png",
        "plots/search_g_is.png",
    ):
        (out / rel).write_bytes(b"old")
    (out / "final" / "thesis.tex").write_text("mine")
    (out / "notes").mkdir()
    (out / "notes" / "a.txt").write_text("mine too")
    (out / "checkpoints" / "keep.txt").write_text("mine")
    RunDir.create(out, TINY, force=True)
    assert (out / "final" / "thesis.tex").read_text() == "mine"
    assert (out / "notes" / "a.txt").read_text() == "mine too"
    assert (out / "checkpoints" / "keep.txt").exists()
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert left == ["checkpoints/keep.txt", "final/thesis.tex", "notes/a.txt", "spec.eagan"]
    assert run.root == out


# ------------------------------------------------------------ 3. one process at a time per run


def _fake_run(out: Path) -> None:
    import json

    out.mkdir(parents=True)
    (out / "spec.eagan").write_text(TINY.read_text())
    (out / "resolved.json").write_text(json.dumps({"environment": {"seed": 0}, "file": str(TINY)}))
    (out / "checkpoints").mkdir()


def test_a_run_directory_in_use_is_refused(tmp_path: Path) -> None:
    import os

    from runtime import checkpoint as ckpt
    from runtime.rundir import RunDir, RunDirError, RunLock
    from runtime.runner import resume

    out = tmp_path / "run"
    _fake_run(out)
    held = RunLock(out).acquire()
    try:
        with pytest.raises(RunDirError, match=f"{out} is in use by process {os.getpid()}"):
            resume(out)
        with pytest.raises(RunDirError, match="is in use by process"):
            RunDir.create(out, TINY, force=True, lock=RunLock(out))
        assert (out / "resolved.json").exists()  # the refused --force removed nothing
        code, output = _cli("run", "--resume", str(out), "--device", "cpu")
        assert code == 2 and f"is in use by process {os.getpid()}" in output
    finally:
        held.release()
    # the lock is released on any exit: here a resume that fails (no checkpoint yet)
    with pytest.raises(ckpt.CheckpointError):
        resume(out)
    RunLock(out).acquire().release()


def test_the_lock_is_held_across_processes(tmp_path: Path) -> None:
    import subprocess

    from runtime.rundir import RunDirError, RunLock

    out = tmp_path / "run"
    _fake_run(out)
    hold = (
        "import sys, time; from pathlib import Path; from runtime.rundir import RunLock; "
        "RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", hold, str(out)],
        cwd=ROOT,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(RunDirError, match=f"in use by process {child.pid}"):
            RunLock(out).acquire()
    finally:
        child.kill()
        child.wait()
    RunLock(out).acquire().release()  # a killed holder leaves no stale lock


# ------------------------------------------- 4, 16, 17, 18: resume over a damaged run directory


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run stopped in its search (checkpoints 3 and 4, 10 history records)."""
    from test_resume import StopAt, _fresh

    from runtime.search import Interrupted

    out = tmp_path_factory.mktemp("stopped") / "run"
    with pytest.raises(Interrupted):
        _fresh(out, StopAt(at=300))
    return out


def _copy(stopped: Path, tmp_path: Path) -> Path:
    import shutil

    out = tmp_path / "run"
    shutil.copytree(stopped, out)
    return out


def _history_lines(out: Path) -> int:
    import json

    from runtime import checkpoint as ckpt

    newest = ckpt.checkpoints(out / "checkpoints")[-1][1]
    lines = json.loads(newest.read_text())["history_lines"]
    assert isinstance(lines, int)
    return lines


@pytest.mark.parametrize("damage", ["deleted", "shortened"])
def test_resume_refuses_a_lost_or_shortened_history(
    stopped: Path, tmp_path: Path, damage: str
) -> None:
    from runtime.rundir import RunDirError
    from runtime.runner import resume

    out = _copy(stopped, tmp_path)
    lines = _history_lines(out)
    assert lines >= 6
    history = out / "history.jsonl"
    if damage == "deleted":
        history.unlink()
        kept = 0
    else:
        kept = 5
        history.write_text("".join(history.read_text().splitlines(keepends=True)[:kept]))
    before = history.read_bytes() if history.exists() else None
    with pytest.raises(RunDirError, match=f"holds {kept} record\\(s\\), but ckpt-.* after {lines}"):
        resume(out)
    assert (history.read_bytes() if history.exists() else None) == before  # nothing changed
    code, output = _cli("run", "--resume", str(out))
    assert code == 2 and "the history was lost or shortened" in output


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("file", "../../elsewhere.pt", "names the file '../../elsewhere.pt'"),
        ("file", "/etc/passwd", "names the file '/etc/passwd'"),
        ("history_lines", -1, "history_lines is -1"),
        ("history_lines", "10", "history_lines is '10'"),
        ("sha256", None, "no valid sha256"),
    ],
)
def test_a_crafted_commit_record_is_skipped(
    stopped: Path, tmp_path: Path, field: str, value: object, why: str
) -> None:
    import json
    import shutil

    from runtime import checkpoint as ckpt

    out = _copy(stopped, tmp_path)
    (seq3, _), (seq4, meta4) = ckpt.checkpoints(out / "checkpoints")[-2:]
    # a copy of the newest .pt outside checkpoints/, which the crafted record points at
    shutil.copy(out / "checkpoints" / f"ckpt-{seq4:06d}.pt", tmp_path / "elsewhere.pt")
    record = json.loads(meta4.read_text())
    record[field] = value
    meta4.write_text(json.dumps(record))
    loaded = ckpt.load_latest(out / "checkpoints")
    assert loaded.path.name == f"ckpt-{seq3:06d}.pt"
    assert len(loaded.skipped) == 1 and why in loaded.skipped[0]


def test_resume_over_a_damaged_resolved_json_is_a_clean_error(
    stopped: Path, tmp_path: Path
) -> None:
    import json

    from runtime.rundir import RunDirError
    from runtime.runner import resume

    out = _copy(stopped, tmp_path)
    good = json.loads((out / "resolved.json").read_text())
    cases = {
        "{}": "'environment' is missing",
        "[]": "a JSON list, not an object",
        "{": "not valid JSON",
        json.dumps({**good, "environment": {**good["environment"], "seed": "0"}}): "seed",
        json.dumps({**good, "data": []}): "'data' is a list",
        json.dumps({**good, "environment": {**good["environment"], "device": 3}}): "device",
    }
    for text, why in cases.items():
        (out / "resolved.json").write_text(text)
        with pytest.raises(RunDirError, match="resolved.json: .*damaged") as err:
            resume(out)
        assert why in str(err.value)
        code, output = _cli("run", "--resume", str(out))
        assert code == 2 and why in output and "Traceback" not in output


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda s: {"x": 1}, "'stage_index' is missing"),
        (lambda s: [1, 2], "it is not a mapping"),
        (lambda s: {**s, "stage_index": 99}, "'stage_index' is 99"),
        (lambda s: {**s, "results": {"search_g": "x"}}, "'results' is not a mapping"),
        (lambda s: {**s, "stage_state": {"bogus": 1}}, "KeyError"),
    ],
)
def test_a_checkpoint_with_the_wrong_structure_is_a_clean_error(
    stopped: Path, tmp_path: Path, change: object, why: str
) -> None:
    import json

    import torch

    from runtime import checkpoint as ckpt
    from runtime.runner import resume

    out = _copy(stopped, tmp_path)
    folder = out / "checkpoints"
    newest = ckpt.load_latest(folder)
    state = change(newest.state)  # type: ignore[operator]
    meta = {k: v for k, v in newest.meta.items() if k not in ("seq", "file", "sha256")}
    ckpt.save(folder, state, meta)  # checksum-valid, wrong inside
    torch.set_num_threads(1)
    with pytest.raises(ckpt.BadCheckpoint, match="does not hold a run's state") as err:
        resume(out)
    assert why in str(err.value)
    if why == "KeyError":
        return
    code, output = _cli("run", "--resume", str(out))
    assert code == 2 and why in output and "Traceback" not in output
    assert json.loads((folder / "ckpt-000005.json").read_text())["seq"] == 5  # nothing removed


def test_a_run_without_an_intact_checkpoint_exits_2(stopped: Path, tmp_path: Path) -> None:
    out = _copy(stopped, tmp_path)
    for pt in (out / "checkpoints").glob("*.pt"):
        pt.write_bytes(b"garbage")
    code, output = _cli("run", "--resume", str(out))
    assert code == 2 and "no intact checkpoint" in output


def test_a_run_killed_before_its_first_checkpoint_can_be_started_again(tmp_path: Path) -> None:
    """Item 13: the message says how to start again, and that command is accepted."""
    from runtime import checkpoint as ckpt
    from runtime.rundir import RunDir, RunDirError
    from runtime.runner import resume

    out = tmp_path / "run"
    _fake_run(out)
    with pytest.raises(ckpt.BadCheckpoint, match="--force") as err:
        resume(out)
    assert f"--out {out} --force" in str(err.value)
    with pytest.raises(RunDirError, match="already holds a run"):
        RunDir.create(out, TINY)
    RunDir.create(out, TINY, force=True)  # what the message says works


def test_resume_locates_errors_in_the_runs_own_spec(stopped: Path, tmp_path: Path) -> None:
    from eagan_dsl.diagnostics import SpecError
    from runtime.runner import resume

    out = _copy(stopped, tmp_path)
    spec = out / "spec.eagan"
    spec.write_text(spec.read_text().replace("population: 4", "population: 5"))
    with pytest.raises(SpecError) as err:
        resume(out)
    assert err.value.diagnostics[0].file == str(spec)
    assert str(spec) in err.value.render()


def test_resume_restores_the_thread_count(stopped: Path, tmp_path: Path) -> None:
    import json

    import torch
    from test_resume import StopAt

    from runtime.runner import resume

    out = _copy(stopped, tmp_path)
    resolved = json.loads((out / "resolved.json").read_text())
    assert resolved["environment"]["threads"] == 1
    torch.set_num_threads(2)
    reporter = StopAt()
    try:
        resume(out, reporter=reporter)
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(1)
    assert threads == 1
    assert any("torch threads set to 1" in m for m in reporter.messages)


# ------------------------------------------------------------------------------ 5. a full disk


class _FullDisk:
    """A file that takes `room` bytes, then fails as a full disk does."""

    def __init__(self, f: object, room: int) -> None:
        self.f, self.room = f, room

    def write(self, data: bytes) -> int:
        import errno

        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.f.write(data)  # type: ignore[attr-defined,no-any-return]

    def __getattr__(self, name: str) -> object:
        return getattr(self.f, name)


@pytest.mark.parametrize("room", [0, 200, 5000])
def test_full_disk_inside_torch_save_is_the_promised_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, room: int
) -> None:
    import torch

    from runtime import checkpoint as ckpt

    folder = tmp_path / "checkpoints"
    ckpt.save(folder, {"x": torch.ones(3)}, {"reason": "first"})
    real = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f: real(obj, _FullDisk(f, room)))
    with pytest.raises(ckpt.CheckpointError, match="no space left .* free some space, then resume"):
        ckpt.save(folder, {"x": torch.zeros(10_000)}, {"reason": "second"})
    monkeypatch.undo()
    loaded = ckpt.load_latest(folder)
    assert loaded.meta["reason"] == "first" and torch.equal(loaded.state["x"], torch.ones(3))
    assert sorted(p.name for p in folder.iterdir()) == ["ckpt-000001.json", "ckpt-000001.pt"]


def test_another_write_failure_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from runtime import checkpoint as ckpt

    folder = tmp_path / "checkpoints"
    ckpt.save(folder, {"x": torch.ones(3)}, {"reason": "first"})

    def broken(obj: object, f: object) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(ckpt.CheckpointError, match="cannot write .* previous checkpoint is intact"):
        ckpt.save(folder, {"x": torch.zeros(3)}, {"reason": "second"})
    monkeypatch.undo()
    assert ckpt.load_latest(folder).meta["reason"] == "first"


# ------------------------------------------------------ 14. tampered CIFAR-10 batches: DataError

# a pickle that calls an allowed global with arguments it rejects: _codecs.encode("x", "nope")
# raises LookupError inside the restricted unpickler
_LOOKUP = b"c_codecs\nencode\n(X\x01\x00\x00\x00xX\x04\x00\x00\x00nopetR."
# an empty dict: a pickle that loads, but holds no pixels (KeyError, already a DataError)
_NOT_A_BATCH = b"(dp0\n."


@pytest.mark.parametrize(
    "payload", [_LOOKUP, _NOT_A_BATCH], ids=["tampered (LookupError)", "no pixels (KeyError)"]
)
def test_a_damaged_cifar_batch_is_a_data_error(tmp_path: Path, payload: bytes) -> None:
    from eagan_dsl.ir import DataIR
    from runtime.data import DataError, load_training_data

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(payload)
    with pytest.raises(DataError, match="is not a CIFAR-10 python batch"):
        load_training_data(DataIR("cifar10", str(tmp_path), 8, 3), "cpu")  # type: ignore[arg-type]


# ------------------------------------------------------- 10-13: the checker itself, bounded


def _errors(text: str) -> list[str]:
    from eagan_dsl.checker import check_text
    from eagan_dsl.diagnostics import SpecError

    try:
        check_text(text, "t.eagan")
    except SpecError as err:
        assert all(d.line > 0 for d in err.diagnostics), err.render()  # always located
        return [d.message for d in err.diagnostics]
    return []


def _tiny(old: str, new: str) -> str:
    text = TINY.read_text()
    assert old in text
    return text.replace(old, new)


def test_integers_are_exact_and_bounded() -> None:
    assert _errors(_tiny("population: 4", "population: " + "9" * 400)) == [
        "a number of 400 digits is too large (at most 20 digits)"
    ]
    assert _errors(_tiny("population: 4", "population: " + "1" * 5000)) == [
        "a number of 5000 digits is too large (at most 20 digits)"
    ]
    assert _errors(_tiny("latent 16", "latent " + "7" * 5000))[0].startswith("a number of 5000")
    assert _errors(_tiny("edge 0 -> 1 : up", "edge 0 -> " + "3" * 999 + " : up"))
    # 2^53 + 1 is not rounded to 2^53 on its way to the seed
    from eagan_dsl.checker import check_text

    program = check_text(_tiny("run { seed: 0 }", "run { seed: 9007199254740993 }"), "t.eagan")
    assert program.blocks["run"]["seed"] == 9007199254740993
    assert "must be at most" in _errors(_tiny("seed: 0", "seed: 18446744073709551616"))[0]
    assert "must be a finite number" in _errors(_tiny("lr: 2e-4", "lr: 1e400"))[0]


def test_deep_nesting_is_a_located_error() -> None:
    errors = _errors(_tiny("betas: (0.0, 0.9)", "betas: " + "(" * 500 + "0" + ")" * 500))
    assert errors == ["brackets nested more than 32 deep; a spec never needs that many"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "output 4\n  }\n\n  cell DownCell",
            "output 1000000000000\n  }\n\n  cell DownCell",
            "at most 64 nodes",
        ),
        ("cells UpCell x 2", "cells UpCell x 1000000000", "repeats at most 64 times"),
        (
            "(channels: 8)\n    link",
            "(channels: 100000)\n    link",
            "channels must be at most 4,096",
        ),
        ("latent 16", "latent 100000", "latent dimension must be at most 4096"),
        ("population: 4", "population: 100000000000", "must be at most 1,000,000,000"),
    ],
)
def test_sizes_are_bounded(old: str, new: str, message: str) -> None:
    import time

    start = time.perf_counter()
    errors = _errors(_tiny(old, new))
    # generous: catches a loop over 10^12 nodes, not a loaded machine (bench/parse.py times it)
    assert time.perf_counter() - start < 30
    assert any(message in e for e in errors), errors


def _timed_check(text: str) -> tuple[float, str]:
    import time

    from eagan_dsl.checker import check_text
    from eagan_dsl.diagnostics import SpecError

    start = time.perf_counter()
    try:
        check_text(text, "big.eagan")
        rendered = ""
    except SpecError as err:
        rendered = err.render()
    return time.perf_counter() - start, rendered


def test_a_megabyte_of_ops_checks_in_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker's pass over 28,000 ops (550 s before: the op table was rebuilt per op). Such a
    file is refused by size before parsing (next test); here the limit is lifted to time the
    checker alone."""
    import time

    from eagan_dsl import parser as parser_module
    from eagan_dsl.checker import check
    from eagan_dsl.parser import parse

    monkeypatch.setattr(parser_module, "MAX_BYTES", 10**7)

    ops = "".join(f"  op o{i} = relu, conv(k: 1)\n" for i in range(28_000))
    text = _tiny("  choice up ", ops + "  choice up ")
    assert len(text) > 700_000
    spec = parse(text, "big.eagan")
    start = time.perf_counter()
    check(spec)
    seconds = time.perf_counter() - start
    assert seconds < 60, seconds  # 550 s before; bench/parse.py prints the real time


def test_any_file_up_to_a_megabyte_checks_in_two_seconds(tmp_path: Path) -> None:
    """`eagan check` (the whole process) on a 1 MB spec: refused by size at once, located."""
    import subprocess
    import sys
    import time

    ops = "".join(f"  op o{i} = relu, conv(k: 1)\n" for i in range(36_000))
    big = tmp_path / "big.eagan"
    big.write_text(_tiny("  choice up ", ops + "  choice up "))
    assert big.stat().st_size > 1_000_000
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "check", str(big)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    seconds = time.perf_counter() - start
    assert done.returncode == 2
    assert f"{big}:1:1: error: the spec is" in done.stdout + done.stderr
    assert "at most 64 KB" in done.stdout + done.stderr
    assert seconds < 30, seconds  # refused before parsing; bench/parse.py prints the real time


def test_many_unknown_names_are_fast_and_the_output_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from eagan_dsl import parser as parser_module

    monkeypatch.setattr(parser_module, "MAX_BYTES", 10**7)
    refs = "".join(f"  choice c{i} = [unknown_op_{i}]\n" for i in range(20_000))
    seconds, rendered = _timed_check(_tiny("  cell UpCell", refs + "  cell UpCell"))
    assert seconds < 60, seconds  # difflib for every name was minutes; bench/parse.py times it
    lines = rendered.splitlines()
    assert lines[-1] == "… and 19,950 more errors"
    assert len(lines) < 50 * 6


def test_a_bom_is_accepted_and_a_bad_byte_is_located(tmp_path: Path) -> None:
    from eagan_dsl.checker import load
    from eagan_dsl.diagnostics import SpecError

    spec = tmp_path / "bom.eagan"
    spec.write_bytes(b"\xef\xbb\xbf" + TINY.read_bytes())
    assert load(spec).name == "tiny"
    lines = TINY.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3][:6] + b"\xff" + lines[3][6:]  # line 4: `latent 16 normal`
    spec.write_bytes(b"".join(lines))
    with pytest.raises(SpecError) as err:
        load(spec)
    d = err.value.diagnostics[0]
    assert (d.line, d.column) == (4, 7) and "0xff is not UTF-8" in d.message
    assert f"{spec}:4:7" in err.value.render()


def test_the_project_size_hint_never_proposes_the_size_already_there() -> None:
    errors = _errors(_tiny("digits(resolution: 16)", "digits(resolution: 18)"))
    from eagan_dsl.checker import check_text
    from eagan_dsl.diagnostics import SpecError

    with pytest.raises(SpecError) as err:
        check_text(_tiny("digits(resolution: 16)", "digits(resolution: 18)"), "t.eagan")
    hints = [d.hint or "" for d in err.value.diagnostics]
    assert errors and not any("project(size: 4)" in h for h in hints), hints
    assert any("no project size gives 18 pixels" in h for h in hints), hints


def test_a_spec_that_cannot_fit_in_memory_is_refused_at_its_stage(tmp_path: Path) -> None:
    """Item 8: the memory of the largest networks, estimated from parameter counts."""
    import subprocess
    import sys

    from compiler.memory import BYTES_PER_PARAM, stage_bytes
    from compiler.params import supernet_params
    from eagan_dsl.checker import check_text

    program = check_text(TINY.read_text(), "tiny.eagan")
    sizes = stage_bytes(program)
    assert sizes["search_g"] >= supernet_params(program.networks["G"]) * BYTES_PER_PARAM
    big = tmp_path / "big.eagan"
    big.write_text(_tiny("cells UpCell x 2 (channels: 8)", "cells UpCell x 2 (channels: 4096)"))
    done = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "check", str(big)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "more than the 64 GiB eagan accepts" in out
    lines = big.read_text().splitlines()  # G at width 4096: stage 2 holds P copies of it
    line = next(i for i, t in enumerate(lines, 1) if "stage search_d" in t)
    assert f"{big}:{line}:3: error: stage search_d needs about" in out
