"""`eagan report` (runtime/report.py): one run's summary, several runs compared, `--json`, from the
run directory alone (a directory written here by hand: no run, no torch)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from runtime.cli import app
from runtime.report import report, summarize

G = "G:nearest,deconv,skip,conv1x1,conv3x3,conv3x3,skip|deconv,bilinear,none,skip,none,skip,none"


def _run_dir(root: Path, fid: float, finished: bool = True) -> Path:
    root.mkdir(parents=True)
    stages = [
        {"name": "search_g", "kind": "search", "settings": {"rounds": 2, "network": "G"}},
        {"name": "fully_train", "kind": "train", "settings": {"epochs": 3}},
    ]
    resolved = {"spec": "tiny", "stages": stages, "environment": {"seed": 7, "device": "cpu"}}
    (root / "resolved.json").write_text(json.dumps(resolved))
    rounds = [
        {
            "kind": "round",
            "stage": "search_g",
            "round": r,
            "best": G,
            "best_fid": fid + 10 - r,
            "best_is": 4.5,
            "best_params": 7577,
        }
        for r in range(2)
    ]
    (root / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rounds) + "{cut")
    (root / "metrics.csv").write_text(
        "step,time,stage,kind\n10,1.0,search_g,loss\n162,9.0,search_g,round\n"
        "200,12.5,fully_train,loss\n243,15.0,fully_train,final\n"
    )
    if finished:
        (root / "final" / "best").mkdir(parents=True)
        final = {
            "fid": fid,
            "is": 3.5,
            "is_std": 0.1,
            "images": 128,
            "epochs": 3,
            "g_genome": G,
            "g_params": 7577,
            "d_genome": "FixedD",
            "d_params": 3680,
            "best": {"epoch": 2, "fid": fid - 1, "is": 3.6, "is_std": 0.1, "images": 128},
        }
        (root / "final" / "metrics.json").write_text(json.dumps(final))
    return root


def test_summary_of_one_run(tmp_path: Path) -> None:
    s = summarize(_run_dir(tmp_path / "a", 40.0))
    g, train = s["stages"]
    assert g["rounds"] == "2/2" and g["best"] == {
        "round": 2,
        "genome": G,
        "fid": 49.0,
        "is": 4.5,
        "params": 7577,
    }
    assert g["wall_s"] == 9.0 and train["wall_s"] == 6.0 and s["wall_s"] == 15.0
    assert s["final"]["best"]["epoch"] == 2 and s["finished"]
    assert set(s["files"]) == {"history", "metrics_csv", "final", "final_best"}
    console = Console(record=True, width=200)
    report([tmp_path / "a"], console)
    text = console.export_text()
    for expected in ("spec tiny, seed 7", G, "49.000", "best FID", "39.000", "9.0s"):
        assert expected in text, expected


def test_comparison_and_json_through_the_cli(tmp_path: Path) -> None:
    a, b = _run_dir(tmp_path / "a", 40.0), _run_dir(tmp_path / "b", 30.0, finished=False)
    cli = CliRunner()
    result = cli.invoke(app, ["report", str(a), str(b)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "search_g FID" in result.output and "39.000 (2)" in result.output
    result = cli.invoke(app, ["report", str(a), str(b), "--json"])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert [d["finished"] for d in data] == [True, False]
    one = json.loads(cli.invoke(app, ["report", str(a), "--json"]).output)
    assert one["final"]["fid"] == 40.0


def test_not_a_run_directory_is_bad_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "is not a run directory" in result.output
