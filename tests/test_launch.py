"""Launching eagan (issue 17, items 1 and 2): `python -m runtime`; torchrun workers that a
`runtime/` folder in the working directory cannot shadow; `--resume-if-exists`. (A rank killed
under `torchrun --max-restarts 1` with `--resume-if-exists`: tests/test_distributed.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import runtime
from runtime.cli import app
from runtime.commands import _existing_run

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "tiny.eagan"


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def test_python_m_runtime(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runtime", "--version"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"eagan {runtime.__version__}\n"


def test_decoy_runtime_in_the_working_directory_does_not_shadow_the_workers(
    tmp_path: Path,
) -> None:
    """Another project's `runtime/` in the working directory: `eagan run --nproc 2` (here the
    launcher runs with -P, as the `eagan` script does: its sys.path never holds the working
    directory) starts torchrun workers that still import eagan's runtime. A worker reports the
    broken spec as eagan does; a shadowed worker would die importing the decoy. (Only the first
    report is certain: torchrun stops the other worker as soon as one exits, which can be before
    that one has read the spec.)"""
    decoy = tmp_path / "runtime"
    decoy.mkdir()
    (decoy / "__init__.py").write_text('raise ImportError("DECOY runtime imported")\n')
    (tmp_path / "compiler").mkdir()
    (tmp_path / "compiler" / "__init__.py").write_text('raise ImportError("DECOY compiler")\n')
    (tmp_path / "broken.eagan").write_text("search broken {\n")  # exists: the workers read it
    cmd = [sys.executable, "-P", "-m", "runtime", "run", "broken.eagan", "--nproc", "2"]
    done = subprocess.run(
        [*cmd, "--device", "cpu"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert "DECOY" not in done.stdout + done.stderr
    assert done.returncode != 0
    assert "broken.eagan:1:16: error: expected" in done.stderr, done.stderr  # a worker ran eagan
    assert "PYTHONSAFEPATH=1" in done.stderr  # the launch line says how workers are started


def _fake_run(out: Path, spec_text: str) -> None:
    out.mkdir(parents=True)
    (out / "spec.eagan").write_text(spec_text)
    (out / "resolved.json").write_text(json.dumps({"environment": {"seed": 0}}))


def test_resume_if_exists_decides_by_the_directory(tmp_path: Path) -> None:
    assert _existing_run(tmp_path / "new") is None  # nothing there: a fresh run
    (tmp_path / "empty").mkdir()
    assert _existing_run(tmp_path / "empty") is None
    _fake_run(tmp_path / "old", TINY.read_text())
    assert _existing_run(tmp_path / "old") == tmp_path / "old"  # a run: resumed


def test_resume_if_exists_refuses_a_different_spec(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _fake_run(out, TINY.read_text().replace("seed: 0", "seed: 1"))
    result = CliRunner().invoke(
        app, ["run", str(TINY), "--out", str(out), "--device", "cpu", "--resume-if-exists"]
    )
    assert result.exit_code == 2
    assert "differs from the spec this run was started with" in result.output
    # without the flag, a directory holding a run is refused as before
    plain = CliRunner().invoke(app, ["run", str(TINY), "--out", str(out), "--device", "cpu"])
    assert plain.exit_code == 2 and "differs" not in plain.output


def test_resume_if_exists_starts_a_fresh_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", str(TINY), "--out", str(out), "--device", "cpu", "--quick"]
    result = CliRunner().invoke(app, [*args, "--resume-if-exists"])
    assert result.exit_code == 0, result.output
    assert (out / "final" / "metrics.json").is_file()
    again = CliRunner().invoke(app, [*args, "--resume-if-exists"])  # the finished run: resumed
    assert again.exit_code == 0, again.output
