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
