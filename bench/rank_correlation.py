"""Does the weight-sharing estimator rank generator architectures? Its ranking of a fixed set of G
architectures of `specs/digits.eagan` measured against stand-alone training (the ground truth).

    python bench/rank_correlation.py truth --jobs 2 --threads 1     # ground truth (resumable)
    python bench/rank_correlation.py proxy --jobs 2 --threads 1     # one supernet per setting
    python bench/rank_correlation.py report                         # tables + JSON from the caches
    python bench/rank_correlation.py all --jobs 2 --threads 1       # the three in turn

Architectures: 24 valid G genomes, stratified by parameter count (4,000 random valid genomes from a
fixed seed, sorted by size, cut into 24 equal bins, one drawn from each), plus the hand-designed
`GNearest`.

Ground truth (the digits protocol of `../shared/research/cpu-benchmark.md`): each architecture
trained stand-alone from scratch against the fixed `AutoGAND`, with the spec's train settings
(hinge, Adam 2e-4, betas (0, 0.9), batch 64, EMA 0.995), for 2,000 steps, with 2 seeds; FD (LeNet
features) and IS of the EMA generator on 5,000 images after 300 and 2,000 steps. It runs the
runtime's own fully-train stage (`runtime.search.TrainStage`) step by step. Every (architecture,
seed) is cached in `bench/results/ground_truth_digits.json` as it finishes, so a killed run
resumes where it stopped.

Proxy: one SuperNet-G per sampling setting, warmed up as stage 1 warms it (against the fixed D,
`runtime.search.SearchStage`), scored on every architecture after 1k, 4k and 10k supernet updates,
under each scoring rule. Cached per (setting, checkpoint) in `bench/results/rank_proxy_digits.json`.

Report: Kendall τ and Spearman ρ of each proxy against the ground truth (mean FD over the seeds),
with bootstrap 95 % intervals over architectures, the overlap of the top 5, τ with parameter count
partialled out, and the same for two trivial predictors: parameter count alone and the stand-alone
FD after 300 steps. Table on stdout, JSON in `bench/results/rank_correlation.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's packages, also from a git worktree

SPEC = ROOT / "specs" / "digits.eagan"
RESULTS = ROOT / "bench" / "results"
TRUTH_FILE = RESULTS / "ground_truth_digits.json"
PROXY_FILE = RESULTS / "rank_proxy_digits.json"
REPORT_FILE = RESULTS / "rank_correlation.json"
FIXED_G, FIXED_D = "GNearest", "AutoGAND"


# ----------------------------------------------------------------------------- architectures
def architectures(spec: Path, n: int, pool: int = 4000, seed: int = 0) -> list[str]:
    """`n` valid G genomes stratified by parameter count, then the hand-designed GNearest; as
    genome strings, deterministic for a spec."""
    from eagan_dsl.checker import load
    from eagan_dsl.genome import GenomeSpace
    from runtime.nets import genome_of, params_of
    from runtime.search import input_resolution

    program = load(spec)
    net = program.networks["G"]
    space = GenomeSpace(net, input_resolution(program, net))
    rng = random.Random(seed)
    seen: dict[Any, int] = {}
    for _ in range(pool * 5):
        if len(seen) >= pool:
            break
        g = space.random(rng)
        if g not in seen:
            seen[g] = params_of(program, g)
    ordered = sorted(seen, key=lambda g: (seen[g], g.choices))
    picked = []
    for b in range(n):
        lo, hi = b * len(ordered) // n, (b + 1) * len(ordered) // n
        picked.append(ordered[rng.randrange(lo, hi)])
    fixed = genome_of(program, FIXED_G)
    if fixed not in picked:
        picked.append(fixed)
    return [space.encode(g) for g in picked]


# ----------------------------------------------------------------------------- the caches
def read_cache(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The cached units of `path`, if it was made with the same config (else an error: a changed
    protocol never mixes with old numbers)."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    if data.get("config") != config:
        raise SystemExit(
            f"{path} was made with another configuration:\n  {data.get('config')}\n"
            f"not\n  {config}\nmove it away (or use --cache) to start a new one"
        )
    return dict(data["units"])


def write_cache(path: Path, config: dict[str, Any], units: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"config": config, "units": units}, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def run_units(
    work: Callable[[dict[str, Any]], dict[str, Any]],
    jobs: Sequence[dict[str, Any]],
    n_proc: int,
    done: Callable[[dict[str, Any]], None],
) -> None:
    """Each job through `work`, `n_proc` processes at a time (spawned: one torch each); `done` is
    called in the main process as each finishes."""
    if n_proc <= 1 or len(jobs) <= 1:
        for job in jobs:
            done(work(job))
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(n_proc, maxtasksperchild=1) as pool:
        for result in pool.imap_unordered(work, jobs):
            done(result)


# ----------------------------------------------------------------------------- a quiet context
def _context(spec: Path, seed: int, threads: int) -> tuple[Any, Any]:
    import torch
    from rich.console import Console

    from eagan_dsl.checker import load
    from runtime.data import load_training_data
    from runtime.display import Reporter
    from runtime.evaluator import Evaluator
    from runtime.rundir import History
    from runtime.search import Context

    torch.set_num_threads(threads)
    program = load(spec)
    device = torch.device("cpu")
    evaluator = Evaluator(program, program.blocks["evaluate"], device)
    ctx = Context(
        program=program,
        data=load_training_data(program.data, device),
        device=device,
        seed=seed,
        evaluators={"search": evaluator, "final": evaluator},
        report=Reporter(Console(file=io.StringIO()), live=False),
        history=History(None),
        samples=lambda name, g: None,
    )
    return program, ctx


def _stage(program: Any, kind: str, **settings: Any) -> Any:
    stage = next(s for s in program.stages if s.kind == kind)
    merged = {**dict(stage.settings), **settings}
    return dataclasses.replace(stage, settings=MappingProxyType(merged))


# ----------------------------------------------------------------------------- ground truth
def truth_unit(job: dict[str, Any]) -> dict[str, Any]:
    """One architecture × seed trained stand-alone against the fixed D; FD/IS of the EMA G."""
    from runtime.search import EvalWrapper, TrainStage, derive_seed
    from runtime.train import Diverged

    program, ctx = _context(Path(job["spec"]), int(job["seed"]), int(job["threads"]))
    stage = TrainStage(ctx, _stage(program, "train", g=job["genome"], d=FIXED_D))
    t0 = time.perf_counter()
    evals: dict[str, Any] = {}
    diverged = False
    for step in range(1, int(job["steps"]) + 1):
        try:
            stage.trainer.iteration(stage.G.module, stage.D.module, stage.G, stage.D)
        except Diverged:
            diverged = True
        if step in job["eval_at"] or diverged:
            g = stage.G.evaluated()
            seed = derive_seed(int(job["seed"]), "truth", step)
            r = ctx.evaluators["final"].evaluate(EvalWrapper(g, g), int(job["images"]), seed)
            evals[str(step)] = {"fid": r["fid"], "is": r["is"]}
        if diverged:
            break
    from runtime.nets import genome_of, params_of  # noqa: F401  (params of the genome string)
    from runtime.search import resolve_source

    params = params_of(program, resolve_source(ctx, job["genome"], "generator"))
    return {
        "key": job["key"],
        "genome": job["genome"],
        "seed": job["seed"],
        "params": params,
        "evals": evals,
        "diverged": diverged,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def truth_config(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "spec": SPEC.name,
        "archs": args.archs,
        "seeds": list(args.seeds),
        "steps": args.steps,
        "eval_at": [args.early, args.steps],
        "images": args.images,
        "against": FIXED_D,
    }


def truth(args: argparse.Namespace, echo: Callable[[str], None] = print) -> dict[str, Any]:
    config = truth_config(args)
    units = read_cache(args.truth_cache, config)
    genomes = architectures(Path(args.spec), args.archs)
    todo = [
        {
            "key": f"{g}#{s}",
            "genome": g,
            "seed": s,
            "spec": str(args.spec),
            "steps": args.steps,
            "eval_at": [args.early, args.steps],
            "images": args.images,
            "threads": args.threads,
        }
        for s in args.seeds
        for g in genomes
        if f"{g}#{s}" not in units
    ]
    echo(f"ground truth: {len(units)} cached, {len(todo)} to train ({args.jobs} at a time)")

    def done(result: dict[str, Any]) -> None:
        units[result["key"]] = result
        write_cache(args.truth_cache, config, units)
        last = result["evals"].get(str(args.steps), {})
        echo(
            f"  [{len(units)}/{len(genomes) * len(args.seeds)}] seed {result['seed']} "
            f"{result['params']:,} params: FD {last.get('fid', math.inf):.2f} "
            f"({result['seconds']:.0f} s)"
        )

    run_units(truth_unit, todo, args.jobs, done)
    return units


# ----------------------------------------------------------------------------- statistics
def _ranks(x: Sequence[float]) -> list[float]:
    """Average ranks (ties share the mean rank), 1-based."""
    order = sorted(range(len(x)), key=lambda i: x[i])
    r = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return r


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else math.nan


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    return pearson(_ranks(x), _ranks(y))


def kendall(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's τ-b (ties in either variable corrected), as `scipy.stats.kendalltau`."""
    n = len(x)
    concordant = discordant = tx = ty = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                tx += 1
            elif dy == 0:
                ty += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + tx) * (concordant + discordant + ty))
    return (concordant - discordant) / denom if denom else math.nan


def partial_kendall(x: Sequence[float], y: Sequence[float], z: Sequence[float]) -> float:
    """Kendall's partial τ of x and y given z: (τxy − τxz τyz) / √((1 − τxz²)(1 − τyz²))."""
    txy, txz, tyz = kendall(x, y), kendall(x, z), kendall(y, z)
    denom = math.sqrt(max((1 - txz**2) * (1 - tyz**2), 0.0))
    return (txy - txz * tyz) / denom if denom else math.nan


def bootstrap(
    stat: Callable[[list[float], list[float]], float],
    x: Sequence[float],
    y: Sequence[float],
    n: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """The 95 % percentile interval of `stat` over architectures resampled with replacement."""
    rng = random.Random(seed)
    values = []
    for _ in range(n):
        idx = [rng.randrange(len(x)) for _ in range(len(x))]
        v = stat([x[i] for i in idx], [y[i] for i in idx])
        if math.isfinite(v):
            values.append(v)
    values.sort()
    if not values:
        return math.nan, math.nan
    return values[int(0.025 * (len(values) - 1))], values[int(0.975 * (len(values) - 1))]


def top_overlap(x: Sequence[float], y: Sequence[float], k: int = 5) -> int:
    """How many of the k lowest of x are among the k lowest of y."""
    a = set(sorted(range(len(x)), key=lambda i: x[i])[:k])
    b = set(sorted(range(len(y)), key=lambda i: y[i])[:k])
    return len(a & b)


def compare(
    proxy: Sequence[float], truth: Sequence[float], params: Sequence[float]
) -> dict[str, Any]:
    """Every statistic of one predictor (lower = better, as FD) against the ground truth."""
    finite = [
        (p, t, s)
        for p, t, s in zip(proxy, truth, params, strict=True)
        if math.isfinite(p) and math.isfinite(t)
    ]
    p, t, s = ([v[k] for v in finite] for k in range(3))
    return {
        "n": len(p),
        "kendall": kendall(p, t),
        "kendall_ci": bootstrap(kendall, p, t),
        "spearman": spearman(p, t),
        "spearman_ci": bootstrap(spearman, p, t),
        "top5": top_overlap(p, t),
        "kendall_given_params": partial_kendall(p, t, s),
    }


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("part", choices=["truth", "proxy", "report", "all"])
    ap.add_argument("--spec", type=Path, default=SPEC)
    ap.add_argument("--archs", type=int, default=24, help="architectures besides GNearest")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, default=2000, help="stand-alone training steps")
    ap.add_argument("--early", type=int, default=300, help="the early FD (a trivial predictor)")
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--truth-cache", type=Path, default=TRUTH_FILE)
    ap.add_argument("--proxy-cache", type=Path, default=PROXY_FILE)
    ap.add_argument("--report-file", type=Path, default=REPORT_FILE)
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.part in ("truth", "all"):
        truth(args)


if __name__ == "__main__":
    main()
