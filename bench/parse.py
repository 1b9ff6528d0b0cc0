"""Bench the language's speed: parse + check of specs/cifar10.eagan in-process (target < 20 ms
median, after import) and `eagan check specs/cifar10.eagan` as a whole process (target < 1 s).

    python bench/parse.py [--repeat N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SPEC = ROOT / "specs" / "cifar10.eagan"


def _in_process(repeat: int) -> dict[str, float]:
    from eagan_dsl.checker import check
    from eagan_dsl.parser import parse

    text = SPEC.read_text(encoding="utf-8")
    check(parse(text, str(SPEC)))  # build the Lark parser once, as a process does on first use
    parse_t, total_t = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        spec = parse(text, str(SPEC))
        t1 = time.perf_counter()
        check(spec)
        t2 = time.perf_counter()
        parse_t.append(t1 - t0)
        total_t.append(t2 - t0)
    return {
        "parse_ms": statistics.median(parse_t) * 1e3,
        "parse_check_ms": statistics.median(total_t) * 1e3,
    }


def _command() -> list[str]:
    script = shutil.which("eagan")
    # the console script when installed, else the module (same code path)
    return [script] if script else [sys.executable, "-m", "runtime.cli"]


def _process(repeat: int) -> float:
    cmd = [*_command(), "check", str(SPEC)]
    env = {**os.environ, "NO_COLOR": "1"}
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--repeat", type=int, default=50, help="in-process repetitions (processes: a fifth)"
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    res = _in_process(args.repeat)
    res["check_process_s"] = _process(max(args.repeat // 5, 3))
    rows = [
        ("parse specs/cifar10.eagan (median)", f"{res['parse_ms']:.1f} ms", ""),
        ("parse + check (median)", f"{res['parse_check_ms']:.1f} ms", "< 20 ms"),
        ("`eagan check` whole process (median)", f"{res['check_process_s']:.2f} s", "< 1 s"),
    ]
    from rich.console import Console
    from rich.table import Table

    table = Table("measure", "time", "target", title="eagan_dsl speed")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
