"""`eagan check / show / fmt` through typer's CliRunner, and `eagan check` as a real process:
silent success, located errors with exit 2, never a traceback, no torch on the check path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app

ROOT = Path(__file__).resolve().parent.parent
CIFAR = ROOT / "specs" / "cifar10.eagan"
TINY = ROOT / "tests" / "data" / "tiny.eagan"

runner = CliRunner()


def _bad_spec(tmp_path: Path) -> Path:
    bad = tmp_path / "bad.eagan"
    text = TINY.read_text(encoding="utf-8")
    bad.write_text(
        text.replace("cells UpCell x 2", "cells UpCel x 2").replace(
            "latent 16 normal", "latent 16 gauss"
        )
    )
    return bad


def test_check_valid_specs_is_silent() -> None:
    result = runner.invoke(app, ["check", str(CIFAR), str(TINY)])
    assert result.exit_code == 0, result.output
    assert result.output == ""


def test_check_reports_every_error_located(tmp_path: Path) -> None:
    bad = _bad_spec(tmp_path)
    lines = bad.read_text(encoding="utf-8").splitlines()
    cell_line = next(i for i, ln in enumerate(lines, 1) if "UpCel x" in ln)
    latent_line = next(i for i, ln in enumerate(lines, 1) if "latent 16" in ln)
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 2
    out = result.stderr
    col = lines[cell_line - 1].index("UpCel") + 1
    assert f"{bad}:{cell_line}:{col}: error: unknown cell 'UpCel'" in out
    assert f"{bad}:{latent_line}:" in out and "gauss" in out
    assert "did you mean 'UpCell'?" in out
    assert "^~~~~" in out  # the caret under `UpCel`
    assert "Traceback" not in result.output


def test_check_syntax_error_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.eagan"
    broken.write_text("search s {\n  cell C {\n    edge 0 -> 1 : up\n")
    result = runner.invoke(app, ["check", str(broken), str(tmp_path / "nope.eagan")])
    assert result.exit_code == 2
    assert (
        f"{broken}:3:" in result.stderr
        and "expected '}' to close cell C opened at 2:10" in result.stderr
    )
    assert "nope.eagan: no such file" in result.stderr
    assert "Traceback" not in result.output


def test_internal_errors_are_one_line_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    import eagan_dsl.checker

    def boom(path: object) -> None:
        raise RuntimeError("checker exploded")

    monkeypatch.setattr(eagan_dsl.checker, "load", boom)
    result = runner.invoke(app, ["check", str(TINY)])
    assert result.exit_code == 1
    assert result.stderr.strip() == "internal error: RuntimeError: checker exploded"


def test_show_json_has_exact_space_sizes() -> None:
    from eagan_dsl.checker import load

    result = runner.invoke(app, ["show", str(CIFAR), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    nets = {n["name"]: n for n in info["networks"]}
    g = nets["G"]
    assert isinstance(g["space_size"], int)
    # independent of the CLI: 3 cells, each cell's valid assignments counted by brute force
    program = load(CIFAR)
    assert g["space_size"] == _brute_force_cell_count(program.networks["G"]) ** 3
    assert g["genes"] == 21
    fixed = {f["name"]: f for f in info["fixed"]}
    # shared/research/official-eagan.md: the published G* has 7,142,403 parameters
    if info["params_note"] is None:
        assert fixed["GStar"]["params"] == 7_142_403
        assert fixed["AutoGAND"]["params"] == 1_053_824
    assert fixed["GStar"]["genome"].startswith("G:bilinear,bilinear,skip,none")
    stages = {s["name"]: s for s in info["stages"]}
    # defaults are shown: weight_reset defaults on, fully_train's ema is written in the spec
    assert stages["search_d"]["settings"]["weight_reset"] is True
    assert stages["search_g"]["settings"]["strategy"] == "evolution"
    assert info["blocks"]["run"]["seed"] == 0


def _brute_force_cell_count(network: object) -> int:
    """Valid assignments of one UpCell: every node has an active input (DESIGN.md, validity)."""
    import itertools

    cell = network.cells[0].cell  # type: ignore[attr-defined]
    options = [e.candidates for e in cell.edges]
    count = 0
    for ops in itertools.product(*options):
        active = {0}
        for edge, op in sorted(zip(cell.edges, ops), key=lambda p: p[0].dst):
            if op.name != "none" and edge.src in active:
                active.add(edge.dst)
        if all(n in active for n in range(cell.num_nodes)):
            count += 1
    return count


def test_show_tables_render() -> None:
    result = runner.invoke(app, ["show", str(TINY)], env={"NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    for text in (
        "op library",
        "choice sets",
        "cell UpCell",
        "networks",
        "fixed networks",
        "search_g : search",
        "weight_reset",
    ):
        assert text in result.stdout
    assert "\x1b[" not in result.stdout  # no colour codes when not a terminal


def test_fmt_check_and_rewrite(tmp_path: Path) -> None:
    messy = tmp_path / "messy.eagan"
    messy.write_text(
        TINY.read_text(encoding="utf-8").replace("latent 16 normal", "latent   16   normal  # z")
    )
    clean = tmp_path / "clean.eagan"
    result = runner.invoke(app, ["fmt", str(messy)])
    assert result.exit_code == 0 and f"reformatted {messy}" in result.stdout
    clean.write_text(messy.read_text(encoding="utf-8"))
    messy.write_text(
        messy.read_text(encoding="utf-8").replace("latent 16 normal", "latent 16  normal")
    )
    before = messy.read_text(encoding="utf-8")
    result = runner.invoke(app, ["fmt", "--check", str(messy), str(clean)])
    assert result.exit_code == 1
    assert f"would reformat {messy}" in result.stdout and str(clean) not in result.stdout
    assert messy.read_text(encoding="utf-8") == before  # --check writes nothing
    assert runner.invoke(app, ["fmt", "--check", str(clean)]).exit_code == 0
    assert "# z" in clean.read_text(encoding="utf-8")


def test_fmt_of_a_bad_spec_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.eagan"
    broken.write_text("search s { op = }")
    result = runner.invoke(app, ["fmt", str(broken)])
    assert result.exit_code == 2 and f"{broken}:1:" in result.stderr
    assert broken.read_text() == "search s { op = }"


def test_cli_import_does_not_import_torch() -> None:
    code = "import sys, runtime.cli; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_check_as_a_process(tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    ok = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "check", str(CIFAR)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    bad = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "check", str(_bad_spec(tmp_path))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 2
    assert ": error: unknown cell 'UpCel'" in bad.stderr and "Traceback" not in bad.stderr
