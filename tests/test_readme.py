"""Every command in the README's table runs: the same commands, on the tiny spec, through the CLI."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "tiny.eagan"
README = (ROOT / "README.md").read_text()

runner = CliRunner()


def readme_commands() -> list[list[str]]:
    rows = re.findall(r"^\| `eagan ([^`]+)` \|", README, flags=re.MULTILINE)
    return [shlex.split(r) for r in rows]


def test_readme_lists_every_command() -> None:
    listed = {c[0] for c in readme_commands()}
    registered = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback} | {
        "eval"
    }
    assert {"check", "show", "fmt", "run", "train", "sample", "eval", "export"} <= listed
    assert listed <= registered


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (
        args,
        result.output,
        result.stderr if result.stderr_bytes else "",
    )
    return result.output


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("readme") / "run"
    _ok(["run", str(TINY), "--out", str(out), "--device", "cpu", "--quick"])
    return out


def test_run_sample_eval_resume(run_dir: Path, tmp_path: Path) -> None:
    assert json.loads((run_dir / "final" / "metrics.json").read_text())["fid"] > 0
    assert json.loads((run_dir / "resolved.json").read_text())["environment"]["quick"] is True
    _ok(["sample", str(run_dir), "-n", "4", "--out", str(tmp_path / "grid.png")])
    assert (tmp_path / "grid.png").stat().st_size > 0
    out = _ok(
        [
            "eval",
            str(run_dir / "final"),
            "--data",
            "digits",
            "-n",
            "80",
            "--json-out",
            str(tmp_path / "e.json"),
        ]
    )
    assert (
        json.loads((tmp_path / "e.json").read_text())["n"] == 80 and "FD" in out
    )  # LeNet features on digits: FD
    before = (run_dir / "history.jsonl").read_text()
    assert "run finished" in _ok(["run", "--resume", str(run_dir), "--device", "cpu"])
    assert (
        run_dir / "history.jsonl"
    ).read_text() == before  # a finished run has nothing left to do


def test_report_of_a_run(run_dir: Path) -> None:
    assert "search_g" in _ok(["report", str(run_dir)])
    assert json.loads(_ok(["report", str(run_dir), "--json"]))["finished"] is True
    assert (ROOT / "docs" / "curves_digits_quick.png").is_file()  # the README's figure


def test_train_and_export(tmp_path: Path) -> None:
    genome = "G:nearest,nearest,conv3x3,none,none,skip,conv3x3|nearest,nearest,conv3x3,none,none,skip,conv3x3"
    _ok(
        [
            "train",
            str(TINY),
            "--g",
            genome,
            "--d",
            "FixedD",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "t"),
            "--device",
            "cpu",
        ]
    )
    assert (tmp_path / "t" / "final" / "generator.py").is_file()
    _ok(["export", "--spec", str(TINY), "--genome", "FixedD", "--out", str(tmp_path / "x")])
    assert (tmp_path / "x" / "discriminator.py").is_file()


def test_bad_inputs_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", str(TINY), "--g", "G:nearest", "--d", "FixedD", "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 2 and "error:" in result.output + (
        result.stderr if result.stderr_bytes else ""
    )
    result = runner.invoke(app, ["run", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "not a run directory" in result.output + (
        result.stderr if result.stderr_bytes else ""
    )
    result = runner.invoke(app, ["sample", str(tmp_path)])
    assert result.exit_code == 2
