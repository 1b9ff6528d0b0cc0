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
partialled out, τ among the architectures whose every training succeeded, the AUC of telling the
architectures that fail on every seed from the others (0.5 is chance), and the same for two trivial
predictors: parameter count alone and the stand-alone FD after 300 steps. Table on stdout, JSON in `bench/results/rank_correlation.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import math
import os
import random
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
def architectures(
    spec: Path, n: int, reference: str = FIXED_G, pool: int = 4000, seed: int = 0
) -> list[str]:
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
    if reference:
        fixed = genome_of(program, reference)
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
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"config": config, "units": units}, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def store(
    path: Path, config: dict[str, Any], units: dict[str, Any], result: dict[str, Any]
) -> None:
    """Record one finished unit: `result` goes into `units` and into the cache at `path`.

    The file is re-read and merged under a lock, and only this unit is written into it, so two
    benchmark processes can share one cache (say, one searching eagan and one random_ws) without
    either overwriting what the other finished. `units` is brought up to date with the file."""
    units[result["key"]] = result
    with _locked(path):
        disk = read_cache(path, config)
        disk[result["key"]] = result
        write_cache(path, config, disk)
    units.update(disk)


def add_part(ap: argparse.ArgumentParser, parts: Sequence[str]) -> None:
    """The part to run, as a positional (one of `parts`), or `--report` alone: print the tables
    from the caches, which is the part `report`."""
    ap.add_argument("part", nargs="?", choices=parts)
    ap.add_argument(
        "--report",
        action="store_true",
        help="print the tables from the caches now (the same as the part `report`)",
    )


def part_of(ap: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The part `add_part`'s arguments name; a parser error (exit 2, with the usage) when none
    is named or `--report` is given beside another part."""
    if args.report and args.part not in (None, "report"):
        ap.error(f"--report prints the tables only: drop it, or drop the part {args.part!r}")
    part = "report" if args.report else args.part
    if part is None:
        ap.error("name the part to run (the usage above lists them), or give --report")
    return str(part)


def shard_arg(text: str) -> tuple[int, int]:
    """`--shard K/N`: this process takes the K-th of N disjoint shares of the units."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N (for example 0/2)") from None
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError(f"{text!r}: K must be 0 to N-1")
    return k, n


def training_group(job: Mapping[str, Any]) -> str:
    """A training's share-group: its (G, D), so both seeds of an answer land in one share and
    its mean FD is complete as early as it can be."""
    return f"{job['genome']} / {job['against']}"


def in_shard(
    jobs: Sequence[dict[str, Any]],
    shard: tuple[int, int] | None,
    group: Callable[[Mapping[str, Any]], str] = lambda job: str(job["key"]),
) -> list[dict[str, Any]]:
    """The jobs of this process's share (all without `--shard`), in their order. A unit's share
    follows from its group (by default its key) alone, so processes started at different times
    (with different units already cached) never take the same unit, and between them take every
    one."""
    if shard is None:
        return list(jobs)
    k, n = shard
    return [j for j in jobs if int(hashlib.sha256(group(j).encode()).hexdigest(), 16) % n == k]


SHARD_HELP = (
    "K/N: take only the K-th of N disjoint shares of the units, to run N processes of this "
    "command side by side on one cache (instead of --jobs N in one)"
)


# ----------------------------------------------------------------------------- claims
# Processes started side by side on one cache take its units one at a time, in order, each unit
# claimed by a file beside the cache (`<cache>.claims/<hash>.claim`: the holder's host, pid and
# its start time) under the cache's lock. So two processes of one command split the work evenly
# (a hash share can hold 7 of the 8 units that matter most), and a process started later skips
# what another finished meanwhile. A claim whose holder has died (same host, that pid gone or
# reused) is taken over; one from another host is respected until its file is removed.
@dataclasses.dataclass(frozen=True)
class Claims:
    """The claims on the units of the cache at `cache` (made with `config`). A unit counts as
    finished when the cache holds its key with the job's values of the fields in `match` (a
    search of a changed spec is not finished by the search of the old one)."""

    cache: Path
    config: dict[str, Any]
    match: tuple[str, ...] = ()

    def path(self, key: str) -> Path:
        name = hashlib.sha256(key.encode()).hexdigest()[:32] + ".claim"
        return self.cache.with_name(self.cache.name + ".claims") / name

    def take(self, job: Mapping[str, Any], holder: int) -> bool:
        """Claim `job`'s unit for process `holder`: False when it is finished already or a live
        process holds it."""
        key = str(job["key"])
        with _locked(self.cache):
            cached = read_cache(self.cache, self.config).get(key)
            if cached is not None and all(cached.get(f) == job[f] for f in self.match):
                return False
            path = self.path(key)
            if path.exists() and _holds(path):
                return False
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            me = {
                "key": key,
                "host": socket.gethostname(),
                "pid": holder,
                "started": _started(holder),
            }
            tmp.write_text(json.dumps(me) + "\n")
            os.replace(tmp, path)
            return True

    def release(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)


def _started(pid: int) -> str | None:
    """The start time of process `pid` in clock ticks since boot (Linux), to tell a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _holds(path: Path) -> bool:
    """Whether the claim at `path` is held by a live process (or one this host cannot see)."""
    try:
        held = json.loads(path.read_text())
        host, pid, started = held["host"], int(held["pid"]), held.get("started")
    except (OSError, ValueError, KeyError, TypeError):
        return False  # a torn file: its writer died mid-write
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started is None or _started(pid) == started


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    import fcntl

    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.with_name(cache.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _claimed(
    work: Callable[[dict[str, Any]], dict[str, Any]],
    claims: Claims,
    holder: int,
    job: dict[str, Any],
) -> dict[str, Any] | None:
    """`work(job)` if this process could claim the job, else None (another has it). A unit that
    raises gives its claim back."""
    if not claims.take(job, holder):
        return None
    try:
        return work(job)
    except BaseException:
        claims.release(str(job["key"]))
        raise


def run_units(
    work: Callable[[dict[str, Any]], dict[str, Any]],
    jobs: Sequence[dict[str, Any]],
    n_proc: int,
    done: Callable[[dict[str, Any]], None],
    claims: Claims | None = None,
) -> None:
    """Each job through `work`, `n_proc` processes at a time (spawned: one torch each); `done` is
    called in the main process as each finishes. With `claims`, a job runs only if this process
    can claim it (the claim is held in the main process's name and released once `done` has
    recorded the result), so any number of processes can walk the same list side by side."""
    run: Callable[[dict[str, Any]], dict[str, Any] | None] = work
    if claims is not None:
        run = functools.partial(_claimed, work, claims, os.getpid())

    def finish(result: dict[str, Any] | None) -> None:
        if result is None:
            return
        done(result)
        if claims is not None:
            claims.release(str(result["key"]))

    if n_proc <= 1 or len(jobs) <= 1:
        for job in jobs:
            finish(run(job))
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(n_proc, maxtasksperchild=1) as pool:
        for result in pool.imap_unordered(run, jobs):
            finish(result)


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
    stage = TrainStage(ctx, _stage(program, "train", g=job["genome"], d=job["against"]))
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
        "spec": Path(args.spec).name,
        "archs": args.archs,
        "seeds": list(args.seeds),
        "steps": args.steps,
        "eval_at": [args.early, args.steps],
        "images": args.images,
        "against": args.against,
    }


def truth_jobs(
    args: argparse.Namespace, genomes: Sequence[str], seeds: Sequence[int], have: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One stand-alone training job per (genome, seed) not in `have`, seed-major (a partial run
    already covers every architecture once)."""
    return [
        {
            "key": f"{g}#{s}",
            "genome": g,
            "seed": s,
            "spec": str(args.spec),
            "steps": args.steps,
            "eval_at": [args.early, args.steps],
            "images": args.images,
            "threads": args.threads,
            "against": args.against,
        }
        for s in seeds
        for g in genomes
        if f"{g}#{s}" not in have
    ]


def truth(args: argparse.Namespace, echo: Callable[[str], None] = print) -> dict[str, Any]:
    config = truth_config(args)
    units = read_cache(args.truth_cache, config)
    genomes = architectures(Path(args.spec), args.archs, reference=args.reference)
    todo = in_shard(
        truth_jobs(args, genomes, args.seeds, units), getattr(args, "shard", None), training_group
    )
    echo(f"ground truth: {len(units)} cached, {len(todo)} to train ({args.jobs} at a time)")

    def done(result: dict[str, Any]) -> None:
        store(args.truth_cache, config, units, result)
        last = result["evals"].get(str(args.steps), {})
        echo(
            f"  [{len(units)}/{len(genomes) * len(args.seeds)}] seed {result['seed']} "
            f"{result['params']:,} params: FD {last.get('fid', math.inf):.2f} "
            f"({result['seconds']:.0f} s)"
        )

    run_units(truth_unit, todo, args.jobs, done, Claims(args.truth_cache, config))
    return units


# ----------------------------------------------------------------------------- proxy
RULES = ("raw", "ema")  # what scores a candidate: the supernet's raw weights or its EMA


def proxy_unit(job: dict[str, Any]) -> dict[str, Any]:
    """One SuperNet-G warmed up with one sampling setting; every architecture scored at each
    checkpoint under each rule (BN re-estimated in both). The stage's state is kept in
    `job['state']` after each checkpoint and every `job['save_every']` steps, so a killed unit
    continues from the last one (`job['stop_at']`, for tests, returns after saving that step)."""
    import torch

    from eagan_dsl.genome import GenomeSpace
    from runtime.search import SearchStage, derive_seed, input_resolution

    program, ctx = _context(Path(job["spec"]), 0, int(job["threads"]))
    stage_ir = _stage(
        program,
        "search",
        against=job["against"],
        warmup_sampling=job["setting"],
        score="ema",  # keeps the supernet's EMA; `raw` scores are taken from the same supernet
        warmup=10**6,
    )
    stage = SearchStage(ctx, stage_ir)
    net = program.networks[stage_ir.settings["network"]]
    space = GenomeSpace(net, input_resolution(program, net))
    genomes = [space.decode(g) for g in job["genomes"]]
    state_file = Path(job["state"])
    done: dict[str, Any] = dict(job["done"])
    step, before = 0, 0.0  # before: the seconds of earlier processes
    if state_file.exists():
        saved = torch.load(state_file, weights_only=True)
        stage.load_state_dict(saved["stage"])
        step = int(saved["step"])
        done = json.loads(saved["done"])
        last = max(done.values(), key=lambda d: d["seconds"], default={"seconds": 0.0})
        before = float(saved.get("seconds", last["seconds"]))  # older states: at a checkpoint
    t0 = time.perf_counter()

    def save() -> None:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_file.with_suffix(".tmp")
        seconds = before + time.perf_counter() - t0
        torch.save(
            {
                "stage": stage.state_dict(),
                "step": step,
                "done": json.dumps(done),
                "seconds": seconds,
            },
            tmp,
        )
        os.replace(tmp, state_file)

    every, stop_at = int(job.get("save_every", 0)), job.get("stop_at")
    for at in job["checkpoints"]:
        if str(at) in done:
            continue
        while step < at:
            stage.warm_step()
            step += 1
            if step == stop_at:
                save()
                return {"key": job["setting"], "done": done, "stopped": step}
            if every and step % every == 0 and step < at:
                save()
        scores: dict[str, Any] = {}
        for rule in RULES:
            stage.s["score"] = rule
            seed = derive_seed(0, "proxy", at)  # the same latents for every candidate
            scores[rule] = []
            for g in genomes:
                r = ctx.evaluators["search"].evaluate(
                    stage.scored_generator(g), int(job["images"]), seed
                )
                scores[rule].append({"fid": r["fid"], "is": r["is"]})
        stage.s["score"] = "ema"
        seconds = before + time.perf_counter() - t0
        done[str(at)] = {"scores": scores, "seconds": round(seconds, 1)}
        save()
        # the scores so far, small enough to commit: a new machine keeps them
        partial = Path(job["partial"])
        partial.write_text(json.dumps({"config": job["config"], "done": done}, indent=1) + "\n")
    return {"key": job["setting"], "done": done}


def proxy_config(args: argparse.Namespace, genomes: list[str]) -> dict[str, Any]:
    return {
        "spec": Path(args.spec).name,
        "genomes": genomes,
        "checkpoints": list(args.checkpoints),
        "images": args.proxy_images,
        "against": args.against,
        "rules": list(RULES),
    }


def _partial(args: argparse.Namespace, setting: str) -> Path:
    return args.proxy_cache.with_name(f"{args.proxy_cache.stem}.{setting}.partial.json")


def read_proxy(args: argparse.Namespace, config: dict[str, Any]) -> dict[str, Any]:
    """The proxy cache, with the checkpoints of unfinished settings (their partial files)."""
    units = read_cache(args.proxy_cache, config)
    for setting in args.settings:
        path = _partial(args, setting)
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        have = units.get(setting, {}).get("done", {})
        if data.get("config") == config and len(data["done"]) > len(have):
            units[setting] = {"key": setting, "done": data["done"], "partial": True}
    return units


def proxy(args: argparse.Namespace, echo: Callable[[str], None] = print) -> dict[str, Any]:
    genomes = architectures(Path(args.spec), args.archs, reference=args.reference)
    config = proxy_config(args, genomes)
    units = read_proxy(args, config)
    todo = [
        {
            "key": setting,
            "setting": setting,
            "spec": str(args.spec),
            "against": args.against,
            "genomes": genomes,
            "checkpoints": list(args.checkpoints),
            "images": args.proxy_images,
            "threads": args.threads,
            "done": units.get(setting, {}).get("done", {}),
            "state": str(args.proxy_cache.parent / "proxy_state" / f"{setting}.pt"),
            "save_every": args.save_every,
            "partial": str(_partial(args, setting)),
            "config": config,
        }
        for setting in args.settings
        if len(units.get(setting, {}).get("done", {})) < len(args.checkpoints)
    ]
    echo(f"proxy: {len(units)} settings cached, {len(todo)} to train ({args.jobs} at a time)")

    def done(result: dict[str, Any]) -> None:
        store(args.proxy_cache, config, units, result)
        echo(f"  {result['key']}: checkpoints {sorted(result['done'], key=int)} scored")

    run_units(proxy_unit, todo, args.jobs, done)
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


def failure_auc(pred: Sequence[float], failed: Sequence[bool]) -> float:
    """How well a predictor (lower = better) tells the architectures whose every training failed
    from the others: P(a failing one is predicted worse than a working one), ties counting ½. The
    area under the ROC curve; 0.5 is chance. NaN without both kinds."""
    bad = [p for p, f in zip(pred, failed, strict=True) if f and math.isfinite(p)]
    good = [p for p, f in zip(pred, failed, strict=True) if not f and math.isfinite(p)]
    if not bad or not good:
        return math.nan
    return sum((b > g) + 0.5 * (b == g) for b in bad for g in good) / (len(bad) * len(good))


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


# ----------------------------------------------------------------------------- report
def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def ground_truth_table(
    units: dict[str, Any], genomes: list[str], steps: int, early: int
) -> dict[str, Any]:
    """Per architecture: params, final FD per seed and their mean, early FD mean; and the
    distribution (best, median, worst of the means; the seed σ, pooled over architectures)."""
    rows = []
    for g in genomes:
        runs = [u for u in units.values() if u["genome"] == g]
        if not runs:
            continue
        final = [u["evals"].get(str(steps), {}).get("fid", math.inf) for u in runs]
        first = [u["evals"].get(str(early), {}).get("fid", math.inf) for u in runs]
        rows.append(
            {
                "genome": g,
                "params": runs[0]["params"],
                "fd_per_seed": {str(u["seed"]): f for u, f in zip(runs, final, strict=True)},
                "fd": _mean(final),
                "fd_early": _mean(first),
                "minutes": round(sum(u["seconds"] for u in runs) / 60, 1),
            }
        )
    means = sorted(r["fd"] for r in rows if math.isfinite(r["fd"]))
    pairs = [list(r["fd_per_seed"].values()) for r in rows if len(r["fd_per_seed"]) >= 2]
    within = [
        sum((v - _mean(p)) ** 2 for v in p) / (len(p) - 1)
        for p in pairs
        if all(math.isfinite(v) for v in p)
    ]
    return {
        "rows": rows,
        "seed_agreement": seed_agreement(rows),
        "collapsed": collapsed(rows),
        "best": means[0] if means else math.nan,
        "median": means[len(means) // 2] if means else math.nan,
        "worst": means[-1] if means else math.nan,
        "seed_sigma": math.sqrt(_mean(within)) if within else math.nan,
        "n_archs": len(rows),
        "n_seeds": max((len(r["fd_per_seed"]) for r in rows), default=0),
    }


def seed_agreement(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ground truth's own noise ceiling: how well one training seed's FD ranks the
    architectures by another's (seeds 0 and 1, over the architectures that have both). A proxy
    judged against the 2-seed mean can beat this only a little."""
    both = [r["fd_per_seed"] for r in rows if {"0", "1"} <= set(r["fd_per_seed"])]
    a = [float(f["0"]) for f in both]
    b = [float(f["1"]) for f in both]
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if math.isfinite(x) and math.isfinite(y)]
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    if len(a) < 3:
        return {"n": len(a), "kendall": math.nan, "kendall_ci": (math.nan, math.nan)}
    return {"n": len(a), "kendall": kendall(a, b), "kendall_ci": bootstrap(kendall, a, b)}


def collapsed(rows: Sequence[Mapping[str, Any]], factor: float = 10.0) -> dict[str, Any]:
    """Runs whose final FD is more than `factor` × the median run's: trainings that failed (on
    digits the FDs fall in two clusters, ≈ 20–35 and ≈ 750–1000). Counted per run, and per
    architecture whether its seeds agree on failing."""
    runs = sorted(
        float(f) for r in rows for f in r["fd_per_seed"].values() if math.isfinite(float(f))
    )
    if not runs:
        return {"runs": 0, "failed": 0, "threshold": math.nan}
    threshold = factor * runs[len(runs) // 2]
    fails = [[float(f) > threshold for f in r["fd_per_seed"].values()] for r in rows]
    multi = [f for f in fails if len(f) >= 2]
    return {
        "runs": len(runs),
        "failed": sum(sum(f) for f in fails),
        "threshold": threshold,
        "archs_all_seeds_failed": sum(all(f) for f in multi),
        "archs_some_seeds_failed": sum(any(f) and not all(f) for f in multi),
        "archs_with_seeds": len(multi),
    }


def report(args: argparse.Namespace, echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=170)
    genomes = architectures(Path(args.spec), args.archs, reference=args.reference)
    truth_units = read_cache(args.truth_cache, truth_config(args))
    proxy_units = read_proxy(args, proxy_config(args, genomes))
    gt = ground_truth_table(truth_units, genomes, args.steps, args.early)
    index = {r["genome"]: i for i, r in enumerate(gt["rows"])}
    truth_fd = [r["fd"] for r in gt["rows"]]
    params = [float(r["params"]) for r in gt["rows"]]
    predictors: dict[str, list[float]] = {
        "parameter count (more = better)": [-p for p in params],
        f"stand-alone FD after {args.early} steps": [r["fd_early"] for r in gt["rows"]],
    }
    for setting, unit in sorted(proxy_units.items()):
        for at, scored in sorted(unit["done"].items(), key=lambda kv: int(kv[0])):
            for rule, scores in scored["scores"].items():
                fd = [math.inf] * len(gt["rows"])
                for g, sc in zip(genomes, scores, strict=True):
                    if g in index:
                        fd[index[g]] = sc["fid"]
                steps = f"{int(at) // 1000}k" if int(at) % 1000 == 0 else at
                predictors[f"supernet {setting}, {rule}, {steps} steps"] = fd
    rows = {name: compare(pred, truth_fd, params) for name, pred in predictors.items()}
    # secondary: among the architectures whose every training succeeded (no FD above the
    # failure threshold), where the ranking is not dominated by which trainings collapsed
    ok = [
        all(float(f) <= gt["collapsed"]["threshold"] for f in r["fd_per_seed"].values())
        for r in gt["rows"]
    ]
    for name, pred in predictors.items():
        keep = [i for i, k in enumerate(ok) if k]
        sub = compare(
            [pred[i] for i in keep], [truth_fd[i] for i in keep], [params[i] for i in keep]
        )
        rows[name]["trained_only"] = {k: sub[k] for k in ("n", "kendall", "kendall_ci")}
    # can it tell the architectures that fail on every seed from the ones that train?
    failed = [
        all(float(f) > gt["collapsed"]["threshold"] for f in r["fd_per_seed"].values())
        for r in gt["rows"]
    ]
    for name, pred in predictors.items():
        rows[name]["failure_auc"] = failure_auc(pred, failed)
    table = Table(
        title=f"Ranking of {gt['n_archs']} G architectures against stand-alone training "
        f"({args.steps} steps, mean FD over {gt['n_seeds']} seed(s))"
    )
    for col in (
        "predictor",
        "n",
        "Kendall τ [95 % CI]",
        "Spearman ρ [95 % CI]",
        "top-5",
        "τ | params",
        "τ, trained only [95 % CI]",
        "AUC, failing",
    ):
        table.add_column(col, justify="left" if col == "predictor" else "right")
    for name, r in rows.items():
        table.add_row(
            name,
            str(r["n"]),
            f"{r['kendall']:.2f} [{r['kendall_ci'][0]:.2f}, {r['kendall_ci'][1]:.2f}]",
            f"{r['spearman']:.2f} [{r['spearman_ci'][0]:.2f}, {r['spearman_ci'][1]:.2f}]",
            f"{r['top5']}/5",
            f"{r['kendall_given_params']:.2f}",
            f"{r['trained_only']['kendall']:.2f} [{r['trained_only']['kendall_ci'][0]:.2f}, "
            f"{r['trained_only']['kendall_ci'][1]:.2f}] (n {r['trained_only']['n']})",
            f"{r['failure_auc']:.2f}",
        )
    console.print(table)
    console.print(
        f"ground truth: best FD {gt['best']:.2f}, median {gt['median']:.2f}, worst "
        f"{gt['worst']:.2f}; seed σ {gt['seed_sigma']:.2f} (pooled over architectures); "
        f"{sum(r['minutes'] for r in gt['rows']):.0f} CPU-process minutes"
    )
    agree, fail = gt["seed_agreement"], gt["collapsed"]
    if agree["n"] >= 3:
        lo, hi = agree["kendall_ci"]
        console.print(
            f"noise ceiling: seed 0's FD ranks seed 1's with Kendall τ {agree['kendall']:.2f} "
            f"[{lo:.2f}, {hi:.2f}] over {agree['n']} architectures"
        )
    if fail["runs"]:
        console.print(
            f"failed trainings (FD > {fail['threshold']:.0f}, 10 × the median run): "
            f"{fail['failed']} of {fail['runs']} runs; of {fail.get('archs_with_seeds', 0)} "
            f"architectures with 2 seeds, {fail.get('archs_all_seeds_failed', 0)} failed on "
            f"every seed, {fail.get('archs_some_seeds_failed', 0)} on some"
        )
    out = {"ground_truth": gt, "predictors": rows, "config": truth_config(args)}
    args.report_file.parent.mkdir(parents=True, exist_ok=True)
    args.report_file.write_text(json.dumps(out, indent=1) + "\n")
    return out


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_part(ap, ["truth", "proxy", "report", "all"])
    ap.add_argument("--spec", type=Path, default=SPEC)
    ap.add_argument("--archs", type=int, default=24, help="architectures besides GNearest")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, default=2000, help="stand-alone training steps")
    ap.add_argument("--early", type=int, default=300, help="the early FD (a trivial predictor)")
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--against", default=FIXED_D, help="the fixed discriminator")
    ap.add_argument("--reference", default=FIXED_G, help="a fixed G added to the architectures")
    ap.add_argument("--settings", nargs="+", default=["uniform", "fair"], help="warm-up sampling")
    ap.add_argument("--checkpoints", type=int, nargs="+", default=[1000, 4000, 10000])
    ap.add_argument("--proxy-images", type=int, default=1000, help="images per proxy score")
    ap.add_argument(
        "--save-every", type=int, default=250, help="proxy: keep the supernet every N steps"
    )
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--shard", type=shard_arg, help="ground truth: " + SHARD_HELP)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--truth-cache", type=Path, default=TRUTH_FILE)
    ap.add_argument("--proxy-cache", type=Path, default=PROXY_FILE)
    ap.add_argument("--report-file", type=Path, default=REPORT_FILE)
    args = ap.parse_args(list(argv) if argv is not None else None)
    args.part = part_of(ap, args)
    if args.part in ("truth", "all"):
        truth(args)
    if args.part in ("proxy", "all"):
        proxy(args)
    if args.part in ("report", "all"):
        report(args)


if __name__ == "__main__":
    main()
