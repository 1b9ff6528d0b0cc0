"""bench/throughput.py end to end on a CPU: specs/cifar10.eagan at a tenth of its widths with
random Inception weights, one timed call per row, every phase; the JSON has a row per phase with a
positive time for fp32 (and for channels_last, which converts the stages' modules and data), and
a projection of the whole run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("warmup_g", "search_g", "warmup_d", "search_d", "fully_train", "eval")


def test_throughput_cpu_every_phase(tmp_path: Path) -> None:
    out = tmp_path / "throughput.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    cmd = [sys.executable, str(ROOT / "bench" / "throughput.py"), "--device", "cpu"]
    cmd += ["--width-scale", "0.1", "--repeats", "1", "--warmup-iters", "0"]
    cmd += ["--variants", "fp32,channels_last", "--json", str(out)]
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())

    rows = {(r["phase"], r["variant"]): r for r in result["rows"]}
    for phase in PHASES:
        row = rows[(phase, "fp32")]
        assert row["status"] == "ok" and row["s_per_iteration"] > 0, row
    for phase in PHASES[:5]:  # the training phases run in channels_last too
        assert rows[(phase, "channels_last")]["s_per_iteration"] > 0
    assert rows[("eval", "channels_last")]["status"].startswith("n/a")
    assert rows[("search_d", "fp32")]["n_critic"] == 5  # stage 2's own setting, from the spec
    for helper in ("recalibrate", "frechet"):
        assert rows[(helper, "fp32")]["s_per_iteration"] > 0

    projection = result["projection"]
    assert set(projection["totals"]) == {"fp32", "channels_last"}
    totals = projection["totals"]["fp32"]
    assert totals is not None and totals["search_days"] > 0
    assert totals["with_fully_train_days"] > totals["search_days"]
    phases = {line["phase"] for line in projection["phases"]}
    assert phases >= set(PHASES)
    assert projection["train_images"] == 50_000
    assert "Projection of the whole run" in done.stdout
