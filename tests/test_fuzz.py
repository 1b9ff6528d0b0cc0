"""Fuzzing the language: random edits of valid specs (tokens deleted, duplicated, swapped, random
characters inserted) may make a spec invalid, but `parse` + `check` only ever raise `SpecError`,
whose diagnostics point inside the file and render; never another exception (STYLE.md §10)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eagan_dsl.checker import check_text
from eagan_dsl.diagnostics import SpecError
from eagan_dsl.fmt import format_spec

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {
    "tiny": (ROOT / "tests/data/tiny.eagan").read_text(encoding="utf-8"),
    "cifar10": (ROOT / "specs/cifar10.eagan").read_text(encoding="utf-8"),
}
# tokens as a user sees them: strings, comments, words/numbers, single punctuation
TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[A-Za-z0-9_.+-]+|\S')
NOISE = st.lists(
    st.one_of(
        st.sampled_from(list('{}()[],:.=-> "#\\\n0x') + ["->", "e-", "1e9"]), st.characters()
    ),
    min_size=1,
    max_size=4,
).map("".join)


def _tokens(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in TOKEN.finditer(text)]


@st.composite
def edited(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(SOURCES)))
    text = SOURCES[name]
    for _ in range(draw(st.integers(1, 3))):
        spans = _tokens(text)
        i = draw(st.integers(0, len(spans) - 1))
        a, b = spans[i]
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "replace"]))
        if kind == "delete":
            text = text[:a] + text[b:]
        elif kind == "duplicate":
            text = text[:b] + " " + text[a:b] + text[b:]
        elif kind == "swap":
            j = draw(st.integers(0, len(spans) - 1))
            (a, b), (c, d) = sorted([spans[i], spans[j]])
            if b <= c:
                text = text[:a] + text[c:d] + text[b:c] + text[a:b] + text[d:]
        elif kind == "insert":
            pos = draw(st.integers(0, len(text)))
            text = text[:pos] + draw(NOISE) + text[pos:]
        else:  # replace a token by another token of the file: a name where a number goes, ...
            c, d = spans[draw(st.integers(0, len(spans) - 1))]
            text = text[:a] + text[c:d] + text[b:]
    return name, text


def _only_spec_errors(text: str) -> None:
    try:
        check_text(text, "fuzz.eagan")
    except SpecError as err:
        assert err.diagnostics, "a SpecError without a diagnostic"
        lines = text.count("\n") + 1
        for diag in err.diagnostics:
            assert diag.file == "fuzz.eagan"
            assert 0 <= diag.line <= lines, diag.header()
        rendered = err.render()
        assert "fuzz.eagan:" in rendered and ": error: " in rendered
        return
    # still valid: the formatter must then accept it as well
    assert format_spec(format_spec(text)) == format_spec(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited())
def test_random_edits_raise_only_spec_errors(case: tuple[str, str]) -> None:
    _only_spec_errors(case[1])


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited())
def test_random_edits_raise_only_spec_errors_long(case: tuple[str, str]) -> None:
    _only_spec_errors(case[1])


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_spec_errors(text: str) -> None:
    _only_spec_errors(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "search",
        "search s {",
        'search s { data d(root: "unterminated) }',
        "search s { latent 99999999999999999999999 }",
        "search s { data d(0) generator g { } }",  # a ROLE after `)`: once lexed as a name
        "search s { op a = b(k: 1) discriminator g { } }",
        "search s { cell C { edge 0 -> 0 : x output 0 } }",
        "search s { train { lr: (g: 1e999, d: -1e-999) } }",
    ],
)
def test_edge_cases_raise_only_spec_errors(text: str) -> None:
    _only_spec_errors(text)
