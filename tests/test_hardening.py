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
    from compiler.export import export_command

    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    name = f"x{sep}open('pwned', 'w').close(){sep}#.eagan"
    try:
        spec = tmp_path / name
        spec.write_text(TINY.read_text())
    except (OSError, ValueError):
        pytest.skip("the file system refuses this name")
    out = tmp_path / "out"
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
