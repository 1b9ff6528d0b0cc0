"""Metadata and packaging (issue 17, item 5): the version in one place and printed by
`eagan --version`, the environment recorded in resolved.json, the licence, py.typed, and the
dependencies declared where the code uses them."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import runtime
from runtime.cli import app
from runtime.rundir import RECORDED_PACKAGES, environment, git_commit

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("eagan_dsl", "compiler", "runtime")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_version_flag() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"eagan {runtime.__version__}\n"


def test_version_has_one_source() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "runtime.__version__"


def test_environment_records_versions_and_commit() -> None:
    from importlib import metadata

    env = environment("cpu", 3)
    assert env["eagan"] == runtime.__version__
    assert set(env["packages"]) == set(RECORDED_PACKAGES) == {
        "torch", "torchvision", "numpy", "pymoo", "lark", "pydantic", "scipy", "rich", "typer",
    }  # fmt: skip
    for name, version in env["packages"].items():
        assert version == metadata.version(name)
    if (ROOT / ".git").exists() and shutil.which("git"):
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        assert env["git"]["commit"] == head
        assert isinstance(env["git"]["dirty"], bool)


def test_git_commit_outside_a_checkout_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert git_commit(tmp_path) is None  # an installed package: no .git above it
    (tmp_path / ".git").mkdir()  # a broken checkout
    assert git_commit(tmp_path) is None
    monkeypatch.setenv("PATH", str(tmp_path))  # no git at all
    assert git_commit(ROOT) is None


def test_licence() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text  # the full text, not a pointer to it
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    notice = (ROOT / "NOTICE").read_text(encoding="utf-8")
    assert "pytorch-fid" in notice and "torch-fidelity" in notice


def _imports() -> set[str]:
    """Top-level modules the installed packages import (anywhere, lazily too)."""
    names: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.add(node.module.split(".")[0])
    return names


def _declared(requirements: list[str]) -> set[str]:
    return {r.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip()
            for r in requirements}  # fmt: skip


def test_dependencies_declared_where_used() -> None:
    used = _imports()
    runtime_deps = _declared(PYPROJECT["project"]["dependencies"])
    test_deps = _declared(PYPROJECT["project"]["optional-dependencies"]["test"])
    assert "scipy" not in used and "scipy" not in runtime_deps and "scipy" in test_deps
    if "matplotlib" in used:
        assert "matplotlib" in runtime_deps
    # pymoo's non-dominated sorting and crowding are imported from internal paths: bounded
    (pymoo,) = [r for r in PYPROJECT["project"]["dependencies"] if r.startswith("pymoo")]
    assert "<" in pymoo


def test_wheel_holds_py_typed_and_licence(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "NOTICE"):
        shutil.copy(ROOT / name, src / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*cmd, "-q", "-w", str(tmp_path / "dist")],
        capture_output=True,
        text=True,
        cwd=src,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("eagan-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = z.read(meta).decode()
    for package in PACKAGES:
        assert f"{package}/py.typed" in names
    assert f"Version: {runtime.__version__}" in metadata
    assert "License-Expression: Apache-2.0" in metadata
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert any(n.endswith("licenses/NOTICE") for n in names)
