"""Scale-out of stage 2 on torch.distributed: seconds per stage-2 round with 1, 2, ... processes
(gloo on CPU, one thread per process; NCCL, one GPU per process, with --device cuda), and the
speed-up over 1 process, measured in the same invocation.

A stage-2 round is what `eagan run` does between two selections of the D search: P GAN pairs, each
a private copy of its path through SuperNet-D with its own copy of G, trained for its quota of
iterations; W pairs at a time, one per rank; then the pairs' weights are gathered and merged into
SuperNet-D. The processes are started as torchrun starts them (RANK/WORLD_SIZE/MASTER_* in the
environment, `runtime.dist.from_env`).

    python bench/distributed.py                                  # digits spec, 1 and 2 processes, CPU
    python bench/distributed.py --device cuda --nproc 1 2 4 8    # a multi-GPU node
    python bench/distributed.py --spec specs/cifar10.eagan --device cuda --nproc 1 8 --rounds 1
    python bench/distributed.py --nproc 2 --rounds 0 --bytes     # bytes of stage 2's exchange
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, args: argparse.Namespace, out: str) -> None:
    os.environ.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    import torch
    from rich.console import Console

    torch.set_num_threads(args.threads)
    from eagan_dsl.checker import load
    from runtime.data import load_training_data
    from runtime.display import Reporter
    from runtime.dist import Dist, from_env, rank_device
    from runtime.rundir import History
    from runtime.search import Context, SearchStage

    dist = from_env() if world > 1 else Dist()
    device = rank_device(dist, torch.device(args.device))
    program = load(Path(args.spec))
    stage_ir = next(
        s for s in program.stages if s.kind == "search" and s.settings["pairing"] == "one_to_one"
    )
    settings = dict(stage_ir.settings)
    settings["with"] = args.g  # a fixed G: no stage 1 needed
    stage_ir = dataclasses.replace(stage_ir, settings=MappingProxyType(settings))
    ctx = Context(
        program=program,
        data=load_training_data(program.data, device),
        device=device,
        seed=0,
        evaluators={},
        report=Reporter(Console(file=io.StringIO()), live=False),
        history=History(None),
        samples=lambda name, g: None,
        dist=dist,
    )
    stage = SearchStage(ctx, stage_ir)
    sizes: dict[str, list[int]] = {"before": [], "after": []}
    if args.bytes:
        # the bytes one rank puts into a block's all_gather_object (pickled, as torch sends them):
        # the exchange as it is (`_pair_result`) and the whole job state it replaced (`_job_state`)
        import pickle

        from runtime.dist import to_cpu

        result = stage._pair_result

        def counted(job: dict[str, Any]) -> dict[str, Any]:
            out = result(job)
            sizes["after"].append(len(pickle.dumps(to_cpu(out))))
            sizes["before"].append(len(pickle.dumps(to_cpu(stage._job_state(job)))))
            return out

        stage._pair_result = counted  # type: ignore[method-assign]
    stage._start_population()
    stage.phase = "train"
    times = []
    for r in range(args.rounds + 1):  # the first round is not timed (allocations, caches)
        stage.round = r
        dist.barrier()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        stage._train_round()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dist.barrier()
        if r or not args.rounds:  # --rounds 0: the one untimed round's time
            times.append(time.perf_counter() - t0)
    every = dist.gather(sizes)
    if dist.main:
        quota = max(stage.E * stage.trainer.iterations_per_epoch() // stage.P, 1)
        row: dict[str, Any] = {"world": world, "round_s": times, "pairs": stage.P, "quota": quota}
        if args.bytes:
            # all_gather_object pads every rank's bytes to the block's largest: each rank
            # receives W × max per block
            for when in ("before", "after"):
                per_rank = [r[when] for r in every]
                blocks = [max(b) for b in zip(*per_rank)]
                row[f"bytes_{when}"] = {
                    "sent_per_rank_per_block": sum(sum(r) for r in per_rank)
                    / sum(len(r) for r in per_rank),
                    "received_per_rank_per_block": world * sum(blocks) / len(blocks),
                }
        Path(out).write_text(json.dumps(row))
    dist.close()


def measure(args: argparse.Namespace, world: int) -> dict[str, Any]:
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "result.json")
        mp.spawn(_worker, args=(world, _free_port(), args, out), nprocs=world)
        return json.loads(Path(out).read_text())


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--spec", default=str(ROOT / "specs" / "digits.eagan"))
    ap.add_argument(
        "--g", default="GNearest", help="the fixed generator the D candidates train with"
    )
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=2, help="timed rounds (after one untimed)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "--bytes",
        action="store_true",
        help="count the bytes of stage 2's exchange per block (before/after sending only what "
        "other ranks need)",
    )
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    rows = [measure(args, w) for w in args.nproc]
    base = min(rows[0]["round_s"])
    table = Table(
        title=f"stage-2 round, {Path(args.spec).name}, {args.device}, {args.threads} thread(s)/process"
    )
    for col in (
        "processes",
        "pairs × iterations",
        "round (s), best",
        "all rounds (s)",
        "speed-up",
        "efficiency",
    ):
        table.add_column(col, justify="right")
    for row in rows:
        best = min(row["round_s"])
        speed = row["speedup"] = base / best
        table.add_row(
            str(row["world"]),
            f"{row['pairs']} × {row['quota']}",
            f"{best:.2f}",
            " ".join(f"{t:.2f}" for t in row["round_s"]),
            f"{speed:.2f}×",
            f"{speed / row['world'] * rows[0]['world']:.0%}",
        )
    Console().print(table)
    for row in rows:
        if "bytes_after" in row:
            b, a = row["bytes_before"], row["bytes_after"]
            print(
                f"{row['world']} processes, stage-2 exchange per block: sent per rank "
                f"{b['sent_per_rank_per_block'] / 1e6:.3f} MB before, "
                f"{a['sent_per_rank_per_block'] / 1e6:.3f} MB after; received per rank "
                f"{b['received_per_rank_per_block'] / 1e6:.3f} MB before, "
                f"{a['received_per_rank_per_block'] / 1e6:.3f} MB after"
            )
    print(
        f"speed-up relative to {rows[0]['world']} process(es), best of {args.rounds} timed rounds, same invocation"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"device": args.device, "spec": args.spec, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
