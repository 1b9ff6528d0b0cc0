"""The run display through a fixed-width console: the population table and the plain log lines."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from runtime.display import Reporter, population_table

ROOT = Path(__file__).resolve().parent.parent

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
    row = next(line for line in lines if "nearest, bilinear" in line)
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
        "nearest,",
        "bilinear",
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


LONG = "G:" + "|".join(["bilinear,deconv,conv3x3,dil3x3,none,skip,conv1x1"] * 2)


@pytest.mark.parametrize("width", [80, 160])
def test_the_genome_column_folds_between_ops_and_the_legend_shows(width: int) -> None:
    """Issue 20 item 13: a genome folds at `,`/`|`, never inside an op name, so it can be copied;
    the `* best, + kept` legend shows whenever those marks do (population 8, no "more" line)."""
    import re

    from eagan_dsl.checker import load
    from eagan_dsl.genome import GenomeSpace

    records = [dict(RECORDS[0], genome=LONG)] + [dict(RECORDS[1], genome=LONG)] * 7
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(population_table("search_g", 0, records))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    ops = set(re.split(r"[,|:]", LONG))
    words = {"search_g", "round", "rank", "params", "genome", "inf", "best", "kept", "first"}
    words |= {"front", "rank"}
    for token in re.findall(r"[a-z][a-z0-9_]*", text):
        assert token in ops | words, (token, text)
    assert "* best, + kept" in text
    # the folded cell, read back line by line, is the genome (the parser ignores spaces)
    cells: list[list[str]] = []  # each record's genome cell, line by line
    for line in text.splitlines():
        cols = line.split("│")[1:-1]
        if len(cols) == 6 and cols[0].strip() not in ("", "#"):
            cells.append([])
        if len(cols) == 6 and cells:
            cells[-1].append(cols[5].strip())
    assert width == 160 or len(cells[0]) > 1  # it does fold at 80 columns
    first = " ".join(cells[0])
    space = GenomeSpace(load(ROOT / "tests" / "data" / "tiny.eagan").networks["G"])
    assert space.encode(space.decode(first)) == space.encode(space.decode(LONG))


PLAN = [
    ("run directory", "runs/digits"),
    ("device", "cpu · seed 0 · threads 2"),
    (
        "stages",
        (
            "search_g (G, P 8, 3 rounds, warm-up 15) → search_d (D, P 8, 3 rounds, warm-up 15) → "
            "fully_train (train 60 epochs)"
        ),
    ),
]
END = [
    ("search_g picked", "G:nearest,nearest,conv3x3 (176,049 params)"),
    ("final", "IS 5.860 ± 0.000, FD 33.750 (5000 images); G 176,049 params, D 66,305 params"),
    ("time", "search_g 2.1 min, search_d 2.5 min, fully_train 2.0 min (this process)"),
    ("files", "runs/digits (history.jsonl, final/, plots/, samples/)"),
]


@pytest.mark.parametrize("width", [80, 160])
def test_header_evaluation_and_summary_snapshot(width: int) -> None:
    """The run's header, the evaluation lines and the closing summary, at 80 and 160 columns:
    every value whole (long ones wrap between words), the summary after the last table."""
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    report = Reporter(console, live=False)
    report.header(PLAN)
    report.evaluating("search_g", 0, 8)
    report.evaluating("search_g", 8, 8)
    report.round_table("search_g", 0, RECORDS)
    report.summary(END)
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    assert lines[0].startswith("eagan run ") and set(lines[0][10:]) == {"─"}
    assert lines[1] == "run directory  runs/digits"
    assert lines[2] == "device         cpu · seed 0 · threads 2"
    stages = " ".join(line.strip() for line in lines[3:] if not line.startswith("[")).split(
        " run finished"
    )[0]
    assert stages.startswith("stages         search_g (G, P 8, 3 rounds, warm-up 15) → search_d")
    assert "[search_g] evaluating 0/8 candidates" in lines
    assert "[search_g] evaluating 8/8 candidates" in lines
    end = lines.index(next(line for line in lines if line.startswith("run finished")))
    assert lines[end + 1] == "search_g picked  G:nearest,nearest,conv3x3 (176,049 params)"
    final = " ".join(line.strip() for line in lines[end + 2 : end + 4])
    assert final.startswith("final            IS 5.860 ± 0.000, FD 33.750 (5000 images)")
    # header and summary wrap to the width; the plain log lines `[stage] …` never hard-wrap
    assert all(len(line) <= width for line in lines if not line.startswith("["))
    if width == 160:  # wide enough: one line per row
        assert lines[end + 2] == "final            " + END[1][1]
        assert lines[end + 4] == "files            " + END[3][1]


def test_live_summary_clears_the_last_table() -> None:
    console = Console(width=100, record=True, color_system=None, file=io.StringIO())
    report = Reporter(console, live=True)
    with report:
        report.stage_start("search_g", "round 1/3", 10)
        report.evaluating("search_g", 0, 4)
        report.evaluating("search_g", 4, 4)
        report.round_table("search_g", 0, RECORDS)
        assert report.table is not None
        report.summary(END)
        assert report.table is None  # the summary, not a stale population table, ends the run
    assert "run finished" in console.export_text()


def test_whole_run_progress_and_eta_in_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    console = Console(width=160, record=True, color_system=None, file=io.StringIO())
    report = Reporter(console, live=False)
    clock = iter(float(t) for t in range(0, 1000, 1))
    monkeypatch.setattr("runtime.display.time.monotonic", lambda: next(clock))
    report.run_progress(total=100, done=50)  # a resumed run: half done
    report.stage_start("search_g", "round 1/3", 10)
    for _ in range(10):
        report.step(1.0, 2.0, 0)
    lines = [line for line in console.export_text().splitlines() if "iteration 10/10" in line]
    assert len(lines) == 1
    # 60 of 100 done, 10 steps in this process at one tick each: 40 left
    assert lines[0].endswith("· run 60%, about 1 min left")
