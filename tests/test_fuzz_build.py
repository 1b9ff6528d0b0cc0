"""Issue 15's property: every spec of a fuzz corpus that `eagan check` accepts builds its
supernets, runs one forward and backward pass on tiny random data, and `eagan show` describes it.

The corpus mutates tests/data/tiny.eagan where shapes are decided: kernels, strides, padding,
dilation, pool windows, widths, resolutions, project sizes and splits, the ops of a choice, the
edges, links and heads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from buildcheck import build_and_step
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eagan_dsl.checker import check_text
from eagan_dsl.diagnostics import SpecError

ROOT = Path(__file__).resolve().parent.parent
TINY = (ROOT / "tests/data/tiny.eagan").read_text(encoding="utf-8")
NUMBER = re.compile(r"\b(k|stride|dilation|padding|channels|resolution|size|split|out): (\d+)")
OPS = ["none", "skip", "conv1x1", "conv3x3", "dil3x3", "avgpool", "maxpool", "d_conv3x3"]
OPS += ["s_conv1x1", "d_conv3x3_s2", "d_in_conv3x3", "nearest", "bilinear", "deconv", "bn"]
ARGS = ["k: 2", "k: 4", "stride: 2", "stride: 3", "padding: 0", "padding: 2", "dilation: 3"]
ARGS += ["depthwise: true", "out: 4", "out: image"]
HEADS = [
    (
        "head  bn, relu, conv(k: 3, out: image), tanh",
        "head  bn, relu, conv(k: 2, out: image), tanh",
    ),
    ("head  bn, relu, conv(k: 3, out: image), tanh", "head  conv(k: 3, out: image), avgpool, tanh"),
    ("head  bn, relu, conv(k: 3, out: image), tanh", "head  conv(k: 1, out: image)"),
    ("head  relu, sum_pool, linear", "head  relu, avgpool, sum_pool, linear"),
    ("head  relu, sum_pool, linear", "head  conv(k: 3), mean_pool, relu, linear"),
    ("head  relu, sum_pool, linear", "head  sum_pool, bn, linear"),
]
LINKS = ["1.3 -> 2.3", "1.0 -> 2.3", "1.4 -> 2.1", "1.1 -> 2.4", "1.2 -> 2.2"]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = TINY
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["number", "arg", "choice", "edge", "link", "head", "repeat"]))
        if kind == "number":
            matches = list(NUMBER.finditer(text))
            m = matches[draw(st.integers(0, len(matches) - 1))]
            value = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 32]))
            text = text[: m.start(2)] + str(value) + text[m.end(2) :]
        elif kind == "arg":  # an argument added to a primitive call
            calls = list(re.finditer(r"\b(conv|conv_transpose|avgpool|maxpool)\(", text))
            m = calls[draw(st.integers(0, len(calls) - 1))]
            text = text[: m.end()] + draw(st.sampled_from(ARGS)) + ", " + text[m.end() :]
            text = text.replace(", )", ")")
        elif kind == "choice":  # an op of a choice set replaced
            lists = list(re.finditer(r"choice \w+ += \[([^\]]*)\]", text))
            m = lists[draw(st.integers(0, len(lists) - 1))]
            items = [x.strip() for x in m.group(1).split(",")]
            items[draw(st.integers(0, len(items) - 1))] = draw(st.sampled_from(OPS))
            text = text[: m.start(1)] + ", ".join(items) + text[m.end(1) :]
        elif kind == "edge":  # a fixed or searchable edge gets another op
            edges = list(re.finditer(r"edge \d+ -> \d+ : (\w+)", text))
            m = edges[draw(st.integers(0, len(edges) - 1))]
            text = text[: m.start(1)] + draw(st.sampled_from(OPS)) + text[m.end(1) :]
        elif kind == "link":
            link = draw(st.sampled_from(LINKS))
            op = draw(st.sampled_from(["xskip", "conv1x1", "skip", "conv3x3"]))
            text = text.replace("link  1.3 -> 2.3 : xskip", f"link  {link} : {op}")
        elif kind == "head":
            old, new = draw(st.sampled_from(HEADS))
            text = text.replace(old, new)
        else:
            text = re.sub(
                r"cells DownCell x \d", f"cells DownCell x {draw(st.integers(1, 5))}", text
            )
    return text


def _accepted_specs_run(text: str) -> None:
    try:
        program = check_text(text, "fuzz.eagan")
    except SpecError as err:
        assert all(0 < d.line for d in err.diagnostics), err.render()
        return
    build_and_step(program, genomes=1)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_accepted_specs_build_and_run(text: str) -> None:
    _accepted_specs_run(text)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_accepted_specs_build_and_run_long(text: str) -> None:
    _accepted_specs_run(text)
