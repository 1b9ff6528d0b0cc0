"""Runtime targets: `eagan run specs/digits.eagan` end to end (wall time, peak memory, final FD/IS),
and training steps per second of stage 1 and stage 2 at the CIFAR-10 spec's widths and batch sizes
on 32×32 (CPU here; the same script runs on CUDA with --device cuda).

    python bench/runtime.py                 # both parts
    python bench/runtime.py --steps-only --width-scale 0.25 --repeats 3
    python bench/runtime.py --e2e-only --json bench_runtime.json
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def e2e(spec: Path, threads: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [
            sys.executable,
            "-m",
            "runtime.cli",
            "run",
            str(spec),
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
        t0 = time.perf_counter()
        proc = subprocess.run(  # noqa: PLW1510 (the return code is read below)
            cmd,
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={
                "OMP_NUM_THREADS": str(threads),
                "PATH": "/usr/bin:/bin",
                "HOME": str(Path.home()),
            },
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
            raise SystemExit(f"run failed with exit {proc.returncode}")
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        metrics = json.loads((out / "final" / "metrics.json").read_text())
    return {
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(peak_mb),
        "fd": metrics["fid"],
        "is": metrics["is"],
        "g": metrics["g_genome"],
        "d": metrics["d_genome"],
    }


def scaled_spec(scale: float) -> str:
    text = (ROOT / "specs" / "cifar10.eagan").read_text()
    return re.sub(
        r"channels: (\d+)", lambda m: f"channels: {max(int(int(m.group(1)) * scale), 8)}", text
    )


def steps(device: str, scale: float, repeats: int) -> list[dict[str, object]]:
    import torch

    from compiler.extract import extract
    from compiler.supernet import SuperNet
    from eagan_dsl.checker import check_text
    from eagan_dsl.genome import Genome, GenomeSpace
    from runtime.train import adam, d_step, g_step

    program = check_text(scaled_spec(scale), "cifar10.eagan")
    dev = torch.device(device)
    s1, s2 = (st.settings for st in program.stages[:2])
    rng = random.Random(0)
    G = SuperNet(program.networks["G"]).to(dev)
    D = SuperNet(program.networks["D"]).to(dev)
    fixed = program.fixed["AutoGAND"]
    fixed_d = extract(D, Genome("D", fixed.genome)).to(dev)
    g_star = extract(G, Genome("G", program.fixed["GStar"].genome)).to(dev)
    gs, ds = GenomeSpace(program.networks["G"]), GenomeSpace(program.networks["D"], 16)
    bg, bd = s1["batch"]["g"], s1["batch"]["d"]
    real = torch.rand(bd, 3, 32, 32, device=dev) * 2 - 1
    opt = {
        k: adam(m.parameters(), 2e-4, (0.0, 0.9))
        for k, m in (("G", G), ("D", D), ("fd", fixed_d), ("gs", g_star))
    }
    rows = []

    def timed(name: str, fn: object, n_critic: int) -> None:
        times = []
        for i in range(repeats + 1):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()  # type: ignore[operator]
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if i:  # the first is a warm-up
                times.append(time.perf_counter() - t0)
        t = median(times)
        rows.append(
            {
                "stage": name,
                "n_critic": n_critic,
                "s_per_iteration": round(t, 3),
                "iterations_per_s": round(1 / t, 3),
            }
        )

    def stage1() -> None:
        genome = gs.random(rng)
        g = lambda z: G(z, genome)
        d_step(g, fixed_d, real, torch.randn(bd, program.latent_dim, device=dev), opt["fd"])
        g_step(g, fixed_d, torch.randn(bg, program.latent_dim, device=dev), opt["G"])

    def stage2() -> None:
        genome = ds.random(rng)
        d = lambda x: D(x, genome)
        for _ in range(s2["n_critic"]):
            d_step(g_star, d, real, torch.randn(bd, program.latent_dim, device=dev), opt["D"])
        g_step(g_star, d, torch.randn(bg, program.latent_dim, device=dev), opt["gs"])

    timed("stage 1 (SuperNet-G, random genome, fixed AutoGAN-D)", stage1, s1["n_critic"])
    timed("stage 2 (G* subnet, SuperNet-D, random genome)", stage2, s2["n_critic"])
    for r in rows:
        r.update({"device": device, "width_scale": scale, "batch_g": bg, "batch_d": bd})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--width-scale",
        type=float,
        default=0.25,
        help="scale the spec's channel widths (1 = the paper's)",
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps-only", action="store_true")
    ap.add_argument("--e2e-only", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    result: dict[str, object] = {}
    if not args.e2e_only:
        rows = steps(args.device, args.width_scale, args.repeats)
        result["steps"] = rows
        print(f"{'stage':58} {'n_critic':>8} {'s/iter':>8} {'iter/s':>8}")
        for r in rows:
            print(
                f"{r['stage']:58} {r['n_critic']:>8} {r['s_per_iteration']:>8} {r['iterations_per_s']:>8}"
            )
        print(
            f"(device {args.device}, widths × {args.width_scale}, batch G {rows[0]['batch_g']} / D {rows[0]['batch_d']}, 32×32)"
        )
    if not args.steps_only:
        run = e2e(ROOT / "specs" / "digits.eagan", args.threads)
        result["digits_e2e"] = run
        print(
            f"\neagan run specs/digits.eagan: {run['wall_s']} s wall, peak RSS {run['peak_rss_mb']} MB, "
            f"final FD {run['fd']:.2f}, IS {run['is']:.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
