"""The run display through a fixed-width console: the population table and the plain log lines."""

from __future__ import annotations

import io

from rich.console import Console

from runtime.display import Reporter, population_table

RECORDS = [
    {
        "genome": "G:nearest,bilinear",
        "is": 7.5,
        "fid": 12.25,
        "params": 1234567,
        "rank": 0,
        "best": True,
        "selected": True,
    },
    {
        "genome": "G:deconv,deconv",
        "is": 2.0,
        "fid": float("inf"),
        "params": 99,
        "rank": 1,
        "best": False,
        "selected": False,
    },
]


def test_population_table_snapshot() -> None:
    console = Console(width=80, record=True, color_system=None, file=io.StringIO())
    console.print(population_table("search_g", 0, RECORDS))
    text = console.export_text()
    lines = [line.rstrip() for line in text.splitlines()]
    assert lines[0] == "search_g · round 1"
    row = next(line for line in lines if "nearest,bilinear" in line)
    assert row.split() == [
        "│",
        "0*",
        "│",
        "0",
        "│",
        "7.50",
        "│",
        "12.25",
        "│",
        "1,234,567",
        "│",
        "nearest,bilinear",
        "│",
    ]
    row = next(line for line in lines if "deconv" in line)
    assert "inf" in row.split()


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    reporter = Reporter(Console(file=out, width=120, color_system=None), live=False)
    with reporter:
        reporter.stage_start("search_g", "round 1/2", 2)
        reporter.step(d=1.0, g=0.5, epoch=0)
        reporter.step(d=0.75, g=0.25, epoch=0)
        reporter.round_table("search_g", 0, RECORDS)
    lines = out.getvalue().splitlines()
    assert lines[0] == "[search_g] round 1/2 (2 iterations)"
    assert lines[1] == "[search_g] epoch 1 iteration 2/2 D 0.750  G 0.250"
    assert lines[2].startswith(
        "[search_g] round 1: best IS 7.50 FID 12.25 params 1,234,567 · first front 1/2"
    )
