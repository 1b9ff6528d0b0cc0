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
    sizes: dict[str, list[Any]] = {"job_state": [], "calls": []}
    if args.bytes:
        # the bytes of stage 2's exchange, counted at `Dist`'s collectives during a round (the
        # blocks' records, the merge's all-reduces, the opponent copy's spread), and for
        # comparison the whole job state that the blocks once sent (`_job_state`, pickled).
        # Conventions per rank: all_gather_object pads every rank's pickle to the largest and
        # each rank receives W of them; a broadcast's source sends its pickle, the others
        # receive it; an all-reduce sends and receives its tensor's bytes (the payload; a ring
        # moves 2(W-1)/W of it each way). The per-iteration stop flags (8 bytes) are left out.
        import pickle

        from runtime.dist import to_cpu

        result = stage._pair_result

        def counted(job: dict[str, Any]) -> dict[str, Any]:
            sizes["job_state"].append(len(pickle.dumps(to_cpu(stage._job_state(job)))))
            return result(job)

        stage._pair_result = counted  # type: ignore[method-assign]
        gather, broadcast, all_reduce = dist.gather, dist.broadcast, dist.all_reduce

        def counted_gather(obj: Any) -> list[Any]:
            sizes["calls"].append(["gather", len(pickle.dumps(obj)), 0])
            return gather(obj)

        def counted_broadcast(obj: Any, src: int = 0) -> Any:
            out = broadcast(obj, src)
            n = len(pickle.dumps(out))
            sizes["calls"].append(
                ["broadcast", n if dist.rank == src else 0, 0 if dist.rank == src else n]
            )
            return out

        def counted_all_reduce(tensor: torch.Tensor, op: str = "sum") -> None:
            n = tensor.numel() * tensor.element_size()
            sizes["calls"].append(["all_reduce", n, n])
            all_reduce(tensor, op)

        dist.gather = counted_gather  # type: ignore[method-assign]
        dist.broadcast = counted_broadcast  # type: ignore[method-assign]
        dist.all_reduce = counted_all_reduce  # type: ignore[method-assign]
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
        stage.spread_partners(0)  # after the round's selection (here pair 0 stands for the pick)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dist.barrier()
        if r or not args.rounds:  # --rounds 0: the one untimed round's time
            times.append(time.perf_counter() - t0)
    counting = args.bytes
    if counting:
        dist.gather = gather  # type: ignore[method-assign]
    every = dist.gather(sizes)
    if dist.main:
        quota = max(stage.E * stage.trainer.iterations_per_epoch() // stage.P, 1)
        row: dict[str, Any] = {"world": world, "round_s": times, "pairs": stage.P, "quota": quota}
        if counting:
            blocks = (args.rounds + 1) * -(-stage.P // world)
            job = [r["job_state"] for r in every]
            per_block = [max(b) for b in zip(*job)]
            row["bytes_job_state"] = {
                "sent_per_rank_per_block": sum(sum(r) for r in job) / sum(len(r) for r in job),
                "received_per_rank_per_block": world * sum(per_block) / len(per_block),
            }
            sent = received = 0.0
            for calls in zip(*(r["calls"] for r in every)):
                for kind, n_out, n_in in calls:
                    sent += n_out
                    received += world * max(c[1] for c in calls) if kind == "gather" else n_in
            row["bytes_now"] = {
                "sent_per_rank_per_block": sent / world / blocks,
                "received_per_rank_per_block": received / world / blocks,
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
        help="count the bytes of stage 2's exchange per block (and of the whole job state it "
        "once sent)",
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
        if "bytes_now" in row:
            b, a = row["bytes_job_state"], row["bytes_now"]
            print(
                f"{row['world']} processes, stage-2 exchange per block, per rank: sent "
                f"{a['sent_per_rank_per_block'] / 1e6:.3f} MB, received "
                f"{a['received_per_rank_per_block'] / 1e6:.3f} MB (the whole job state, as once "
                f"sent: {b['sent_per_rank_per_block'] / 1e6:.3f} MB sent, "
                f"{b['received_per_rank_per_block'] / 1e6:.3f} MB received)"
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
