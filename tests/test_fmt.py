"""`eagan fmt`: the formatted text parses to the same tree, formatting twice changes nothing, and
every comment survives. Specs are generated as token streams with random whitespace and comments
between the tokens, so the formatter sees layouts nobody wrote by hand."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eagan_dsl import ast
from eagan_dsl.fmt import collect_comments, format_spec
from eagan_dsl.parser import parse

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(ROOT.glob("specs/*.eagan")) + sorted(ROOT.glob("tests/data/*.eagan"))

SPAN_KEYS = {"span", "name_span", "key_span", "file"}


def strip_spans(node: ast.Node) -> Any:
    """The AST as plain data without positions: two layouts of one spec compare equal."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in SPAN_KEYS}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return clean(node.model_dump())


def comment_texts(text: str) -> list[str]:
    return sorted(c.text for c in collect_comments(text))


# ------------------------------------------------------------------------------ generated specs

KEYWORDS = {
    "search", "data", "latent", "op", "choice", "cell", "edge", "output", "stem", "cells", "link",
    "head", "with", "genome", "x", "generator", "discriminator", "stage", "objectives",
    "evolution", "train", "evaluate", "run",
}  # fmt: skip

names = st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True).filter(lambda s: s not in KEYWORDS)
ints = st.integers(0, 10_000).map(str)
numbers = st.one_of(
    ints,
    st.from_regex(
        r"[+-]?([0-9]{1,3}\.[0-9]{0,3}|\.[0-9]{1,3}|[0-9]{1,3})([eE][+-]?[0-9]{1,2})?",
        fullmatch=True,
    ),
)
# string literals as the grammar reads them, escapes included (\" \\ \n)
string_chars = st.one_of(
    st.characters(blacklist_characters='"\\\n\r', blacklist_categories=("Cs", "Cc")),
    st.sampled_from(['\\"', "\\\\", "\\n", "#"]),
)
strings = st.lists(string_chars, max_size=8).map(lambda cs: '"' + "".join(cs) + '"')
comments = st.text(
    st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs", "Cc")), max_size=12
).map(lambda s: "#" + s)

Tokens = list[str]


def _sep(items: list[Tokens]) -> Tokens:
    out: Tokens = []
    for i, item in enumerate(items):
        out += item + ([","] if i < len(items) - 1 else [])
    return out


def _values(children: st.SearchStrategy[Tokens]) -> st.SearchStrategy[Tokens]:
    args = st.lists(st.tuples(st.one_of(st.none(), names), children), max_size=3).map(
        lambda pairs: _sep([([k, ":"] if k else []) + v for k, v in pairs])
    )
    return st.one_of(
        st.builds(lambda n, a: [n, "("] + a + [")"], names, args),  # call
        st.lists(children, min_size=2, max_size=3).map(lambda vs: ["("] + _sep(vs) + [")"]),
        children.map(lambda v: ["("] + v + [",", ")"]),  # a one-element tuple
        st.lists(st.tuples(names, children), min_size=1, max_size=3).map(
            lambda fs: ["("] + _sep([[k, ":"] + v for k, v in fs]) + [")"]
        ),  # record
        st.lists(children, max_size=3).map(lambda vs: ["["] + _sep(vs) + ["]"]),
    )


values = st.recursive(st.one_of(numbers, strings, names).map(lambda t: [t]), _values, max_leaves=6)
settings_ = st.lists(st.tuples(names, values, st.booleans()), max_size=4).map(
    lambda ss: [t for k, v, comma in ss for t in [k, ":", *v, *([","] if comma else [])]]
)
op_calls = st.builds(
    lambda n, parens, a: (
        [n] + (["("] + _sep([[k, ":", *v] for k, v in a]) + [")"] if parens else [])
    ),
    names,
    st.booleans(),
    st.lists(st.tuples(names, values), max_size=2),
)
op_lists = st.lists(op_calls, min_size=1, max_size=3).map(_sep)
edges = st.builds(lambda a, b, n: ["edge", a, "->", b, ":", n], ints, ints, names)
outputs = ints.map(lambda n: ["output", n])
cells = st.builds(
    lambda n, stmts: ["cell", n, "{", *[t for s in stmts for t in s], "}"],
    names,
    st.lists(st.one_of(edges, outputs), max_size=4),
)
network_stmts = st.one_of(
    op_lists.map(lambda o: ["stem", *o]),
    op_lists.map(lambda o: ["head", *o]),
    st.builds(
        lambda c, r, a: ["cells", c, "x", r, *(["(", a, ":", "8", ")"] if a else [])],
        names,
        ints,
        st.one_of(st.none(), names),
    ),
    st.builds(
        lambda a, b, c, d, n: ["link", a, ".", b, "->", c, ".", d, ":", n],
        ints,
        ints,
        ints,
        ints,
        names,
    ),
)
items = st.one_of(
    st.builds(
        lambda n, a: ["data", n, *(["("] + _sep(a) + [")"] if a else [])],
        names,
        st.lists(values, max_size=2),
    ),
    st.builds(lambda d, n: ["latent", d, *([n] if n else [])], ints, st.one_of(st.none(), names)),
    st.builds(lambda n, o: ["op", n, "="] + o, names, op_lists),
    st.builds(
        lambda n, o: ["choice", n, "=", "["] + _sep([[x] for x in o]) + ["]"],
        names,
        st.lists(names, min_size=1, max_size=4),
    ),
    cells,
    st.builds(
        lambda r, n, b: [r, n, "{", *[t for s in b for t in s], "}"],
        st.sampled_from(["generator", "discriminator"]),
        names,
        st.lists(network_stmts, max_size=4),
    ),
    st.builds(
        lambda r, n, b, g: [r, n, "=", b, "with", "genome", g],
        st.sampled_from(["generator", "discriminator"]),
        names,
        names,
        strings,
    ),
    st.builds(
        lambda k, s: [k, "{", *s, "}"],
        st.sampled_from(["objectives", "evolution", "train", "evaluate", "run"]),
        settings_,
    ),
    st.builds(lambda n, k, s: ["stage", n, ":", k, "{", *s, "}"], names, names, settings_),
)
specs = st.builds(
    lambda n, its: ["search", n, "{", *[t for i in its for t in i], "}"],
    names,
    st.lists(items, max_size=6),
)
separators = st.one_of(
    st.sampled_from([" ", " ", " ", "  ", "\n", "\n\n  ", "\t"]),
    comments.map(lambda c: f"  {c}\n"),
    comments.map(lambda c: f"\n{c}\n\n"),
)


@st.composite
def spec_texts(draw: st.DrawFn) -> str:
    tokens = draw(specs)
    seps = draw(st.lists(separators, min_size=len(tokens) + 1, max_size=len(tokens) + 1))
    return seps[0] + "".join(tok + sep for tok, sep in zip(tokens, seps[1:]))


# ------------------------------------------------------------------------------------ properties


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec_texts())
def test_format_round_trips_generated_specs(text: str) -> None:
    formatted = format_spec(text)
    assert strip_spans(parse(formatted)) == strip_spans(parse(text))
    assert format_spec(formatted) == formatted
    assert comment_texts(formatted) == sorted(c.rstrip() for c in comment_texts(text))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_shipped_specs_round_trip_and_are_stable(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    formatted = format_spec(text, path)
    assert strip_spans(parse(formatted)) == strip_spans(parse(text))
    assert format_spec(formatted, path) == formatted
    assert comment_texts(formatted) == comment_texts(text)
    assert text.count("#") == formatted.count("#")


def test_canonical_layout_of_a_small_spec() -> None:
    text = (
        "# top\n"
        "search  s{data digits( resolution :16 )latent 8 normal # z\n"
        "op c3=relu,conv( k:3,dilation:2 )\n"
        "\n\n"
        "  # the ops\n"
        "choice n=[ none,skip ,c3, ]\n"
        'train{lr:( g:2e-4,d:1.5E+3 ),betas:(0.0,0.9) stats:"a\\"#b" list:[ ] one:( 1, )}\n'
        "cell C{output 2 edge 0->1:n edge 1 -> 2 : n}\n"
        "run { }\n"
        "}   # end\n"
    )
    expected = (
        "# top\n"
        "search s {\n"
        "  data digits(resolution: 16)\n"
        "  latent 8 normal  # z\n"
        "  op c3 = relu, conv(k: 3, dilation: 2)\n"
        "\n"
        "  # the ops\n"
        "  choice n = [none, skip, c3]\n"
        "  train {\n"
        "    lr: (g: 2e-4, d: 1.5E+3)\n"
        "    betas: (0.0, 0.9)\n"
        '    stats: "a\\"#b"\n'
        "    list: []\n"
        "    one: (1,)\n"
        "  }\n"
        "  cell C {\n"
        "    output 2\n"
        "    edge 0 -> 1 : n\n"
        "    edge 1 -> 2 : n\n"
        "  }\n"
        "  run {}\n"
        "}  # end\n"
    )
    assert format_spec(text) == expected


def test_comments_inside_a_multi_line_statement_are_kept() -> None:
    text = "search s {\n  train {\n    lr: (g: 1,  # one\n         d: 2)  # two\n  }\n}\n"
    formatted = format_spec(text)
    assert "# one" in formatted and "# two" in formatted
    assert format_spec(formatted) == formatted


def test_long_op_lists_wrap_under_their_first_op() -> None:
    parts = ", ".join(f"conv(k: {k}, stride: 2, out: 128)" for k in range(1, 6))
    formatted = format_spec(f"search s {{ discriminator D {{ stem {parts} }} }}")
    lines = formatted.splitlines()[2:-2]
    assert len(lines) > 1 and all(len(line) <= 100 for line in lines)
    assert all(line.startswith(" " * 9) for line in lines[1:])  # under `stem `'s first op
    assert format_spec(formatted) == formatted


# ------------------------------------------------------------------------- docs/language.md

DOC = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
DOC_BLOCKS = re.findall(r"```eagan\n(.*?)```", DOC, re.DOTALL)


def test_doc_full_specs_check_and_are_formatted() -> None:
    from eagan_dsl.checker import check_text

    full = [b for b in DOC_BLOCKS if re.match(r"(#[^\n]*\n)*search ", b)]
    assert full, "the language reference shows no whole spec"
    for block in full:
        check_text(block, "docs/language.md")
        assert format_spec(block) == block


def test_doc_snippets_parse() -> None:
    for block in DOC_BLOCKS:
        if not block.lstrip().startswith(("search", "#")):
            parse("search s {\n" + block + "}\n")


def test_doc_lists_every_primitive_and_setting() -> None:
    from eagan_dsl import settings as schema
    from eagan_dsl.primitives import PRIMITIVES

    rows = {m.group(1) for m in re.finditer(r"^\| `([a-z_0-9]+)` \|", DOC, re.MULTILINE)}
    assert set(PRIMITIVES) <= rows
    keys = [k for table in schema.BLOCKS.values() for k in table]
    keys += [k for own, _ in schema.STAGES.values() for k in own]
    for key in keys:
        assert re.search(rf"^\| `{key.name}` \| {key.type}", DOC, re.MULTILINE), key.name
