"""Benchmark: single-path supernet vs extracted subnet vs DARTS-style mixed supernet.

    python bench/supernet.py [--device cpu|cuda] [--width-scale 0.25] [--repeats 3] [--json out.json]

Forward + backward step time at the CIFAR-10 spec's batch sizes (G 80, D 40; code §3.5) and 32×32,
for (a) the supernet on one random genome, (b) the subnet extracted for that genome, (c)
`forward_mixed` (every candidate of every edge). Targets: supernet/subnet within 10% (single-path
execution costs nothing over the plain subnet), mixed/supernet ≥ 3× (why single path pays off).
On CPU the full widths are slow (a G step ~10 s): `--width-scale` shrinks every cell's width.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from rich.console import Console
from rich.table import Table

from compiler.extract import extract
from compiler.supernet import SuperNet
from eagan_dsl.checker import load
from eagan_dsl.ir import NetworkIR

SPEC = Path(__file__).resolve().parent.parent / "specs" / "cifar10.eagan"


def scaled(net: NetworkIR, scale: float) -> NetworkIR:
    """The network with every cell width × scale (the image's channels untouched)."""

    def width(c: int) -> int:
        return c if c == net.image_channels else max(1, round(c * scale))

    cells = tuple(
        dataclasses.replace(
            inst, in_channels=width(inst.in_channels), channels=width(inst.channels)
        )
        for inst in net.cells
    )
    return dataclasses.replace(net, cells=cells, stem_channels=width(net.stem_channels))


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def step_times(
    fns: dict[str, Callable[[], torch.Tensor]],
    params: list[torch.nn.Parameter],
    device: str,
    repeats: int,
) -> dict[str, float]:
    """Fastest forward+backward step of each variant. The variants are interleaved, one step each
    per round, so load from other processes on a shared machine hits them alike; the minimum is
    the least disturbed measurement. Round 0 warms up (allocations, autotuning)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(repeats + 1):
        for key, fn in fns.items():
            for p in params:
                p.grad = None
            sync(device)
            start = time.perf_counter()
            fn().float().mean().backward()
            sync(device)
            if i:
                times[key].append(time.perf_counter() - start)
    return {k: min(v) for k, v in times.items()}


def bench(
    name: str, net: NetworkIR, batch: int, device: str, repeats: int, seed: int
) -> dict[str, object]:
    supernet = SuperNet(net, seed=seed).to(device)
    genome = supernet.random_genome(random.Random(seed))
    sub = extract(supernet, genome)
    gen = torch.Generator().manual_seed(seed)
    if net.role == "generator":
        x = torch.randn(batch, net.latent_dim, generator=gen)
    else:
        x = torch.randn(batch, net.image_channels, net.resolution, net.resolution, generator=gen)
    x = x.to(device)
    params = list(supernet.parameters()) + list(sub.parameters())
    t = step_times(
        {
            "supernet": lambda: supernet(x, genome),
            "subnet": lambda: sub(x),
            "mixed": lambda: supernet.forward_mixed(x, genome),
        },
        params,
        device,
        repeats,
    )
    t_super, t_sub, t_mixed = t["supernet"], t["subnet"], t["mixed"]
    return {
        "network": name,
        "genome": supernet.space.encode(genome),
        "batch": batch,
        "supernet_params": sum(p.numel() for p in supernet.parameters()),
        "subnet_params": sum(p.numel() for p in sub.parameters()),
        "supernet_s": t_super,
        "subnet_s": t_sub,
        "mixed_s": t_mixed,
        "supernet_over_subnet": t_super / t_sub,
        "mixed_over_supernet": t_mixed / t_super,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--width-scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-g", type=int, default=80)
    parser.add_argument("--batch-d", type=int, default=40)
    parser.add_argument("--threads", type=int, default=0, help="torch threads on CPU (0: default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    program = load(SPEC)
    rows = [
        bench(
            "G",
            scaled(program.networks["G"], args.width_scale),
            args.batch_g,
            args.device,
            args.repeats,
            args.seed,
        ),
        bench(
            "D",
            scaled(program.networks["D"], args.width_scale),
            args.batch_d,
            args.device,
            args.repeats,
            args.seed,
        ),
    ]
    setup = (
        f"{SPEC.name}, 32×32, width ×{args.width_scale}, device {args.device}, "
        f"threads {torch.get_num_threads()}, fastest of {args.repeats} interleaved fwd+bwd steps after 1 warm-up"
    )
    table = Table(title=f"SuperNet step time ({setup})")
    for col in (
        "net",
        "batch",
        "params super/sub",
        "supernet s",
        "subnet s",
        "mixed s",
        "super/sub",
        "mixed/super",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r["network"]),
            str(r["batch"]),
            f"{r['supernet_params']:,} / {r['subnet_params']:,}",
            f"{r['supernet_s']:.3f}",
            f"{r['subnet_s']:.3f}",
            f"{r['mixed_s']:.3f}",
            f"{r['supernet_over_subnet']:.2f} (target ≤1.10)",
            f"{r['mixed_over_supernet']:.1f}× (target ≥3)",
        )
    Console(width=160).print(table)
    if args.json:
        args.json.write_text(json.dumps({"setup": setup, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
