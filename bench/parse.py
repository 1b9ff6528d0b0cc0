"""Bench the language's speed: parse + check of specs/cifar10.eagan in-process (target < 20 ms
median, after import) and `eagan check specs/cifar10.eagan` as a whole process (target < 1 s);
and `eagan check` on hostile input (target < 2 s each): the largest accepted file (64 KB of op
definitions), a 1 MB file (refused by size), 10^12 nodes in a cell, 1,500 unknown names.

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


def _hostile(tmp: Path) -> dict[str, float]:
    """`eagan check` wall time on crafted files (the process, as a user runs it)."""
    base = (ROOT / "specs" / "digits.eagan").read_text(encoding="utf-8")
    at = base.index("  choice up ")

    def ops(n: int) -> str:
        return "".join(f"  op o{i} = relu, conv(k: 1)\n" for i in range(n))

    cases = {
        "a 60 KB spec (64 KB is the limit)": base[:at] + ops(1_600) + base[at:],
        "1 MB file (refused by size)": base[:at] + ops(36_000) + base[at:],
        "output 10^12 in a cell": base.replace(
            "output 4\n  }\n\n  cell DownCell", "output 1000000000000\n  }\n\n  cell DownCell", 1
        ),
        "1,500 unknown names": base[:at]
        + "".join(f"  choice c{i} = [unknown_op_{i}]\n" for i in range(1_500))
        + base[at:],
    }
    out = {}
    for name, text in cases.items():
        path = tmp / "hostile.eagan"
        path.write_text(text, encoding="utf-8")
        t0 = time.perf_counter()
        subprocess.run(
            [*_command(), "check", str(path)], cwd=ROOT, check=False, capture_output=True
        )
        out[name] = time.perf_counter() - t0
    return out


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
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        hostile = _hostile(Path(tmp))
    res["hostile_s"] = hostile
    rows = [
        ("parse specs/cifar10.eagan (median)", f"{res['parse_ms']:.1f} ms", ""),
        ("parse + check (median)", f"{res['parse_check_ms']:.1f} ms", "< 20 ms"),
        ("`eagan check` whole process (median)", f"{res['check_process_s']:.2f} s", "< 1 s"),
        *((f"`eagan check`, {name}", f"{t:.2f} s", "< 2 s") for name, t in hostile.items()),
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
