"""Does EAGAN's generator search find better generators than random search, at an equal budget?
The generator search isolated (stage 1 only) on `specs/digits.eagan`, every method's answers
fully trained by one protocol, and measures that respect a multi-objective search.

    python bench/search_quality.py search --jobs 2 --threads 1    # the searches (resumable)
    python bench/search_quality.py train --jobs 2 --threads 1     # fully-train their answers
    python bench/search_quality.py report                         # tables + JSON from the caches
    python bench/search_quality.py all --jobs 2 --threads 1       # the three in turn

`search` and `train` resume from the caches. Two processes of one part can share them: start
the same command twice (`train --jobs 1` beside `train --jobs 1`, say one of them when a search
process freed its core); each unit is claimed by the process that takes it, so they walk the list
in order and never run one unit twice. `--shard K/N` instead fixes each process's share in
advance (by a hash of the unit).

Methods, each at the same budget (the same supernet iterations and the same number of proxy
evaluations, checked), `--seeds` search seeds each:

    eagan       stage 1 of `specs/digits.eagan`, scaled to the budget, with the paper's
                estimator (uniform sampling, EMA scoring: `PAPER`), whatever the spec's defaults
    eagan_best  the same with the estimator settings `bench/rank_correlation.py` measured best
                (read from bench/results/rank_correlation.json; `--best` overrides)
    random_ws   random search with weight sharing (Li & Talwalkar, 2019): `strategy: random`,
                every round P new random architectures on the same kind of supernet; it answers
                with the best scored over all rounds
    random      random sampling without a proxy, and `fixed` GNearest: read from the ground truth
                of bench/rank_correlation.py (its architectures are stratified random samples)

Each search runs `python -m runtime.cli run SPEC --out <out>/<method>/seed<S> --seed S` on a spec
derived from the digits spec by checked edits (only stage 1; a changed base spec fails loudly) and
is read back from its `history.jsonl`. Every answer is fully trained with the ground-truth
protocol of bench/rank_correlation.py (stand-alone against the fixed AutoGAND, 2,000 steps, 2
training seeds, FD/IS of the EMA generator on 5,000 images), cached per (architecture, seed) in
`bench/results/fully_trained_digits.json` (the ground-truth cache is read too).

Measures per method, mean ± std over search seeds with a 95 % t interval: the final FD of its pick;
the pick's percentile in the ground-truth distribution (the share of ground-truth architectures
with a lower FD); the final FD of its best-scored architecture over the whole search (EAGAN picks
from its last round; this is the other selection rule on the same search); the best final FD under
parameter caps, each method answering with its
best-scored architecture under the cap; and the hypervolume of the (final FD, params) front of its
4 best-scored architectures against a fixed reference point. EAGAN against random_ws: Welch's t
and the difference in pooled standard deviations (the issue's target), and, since a failed
training puts a heavy tail on FD, the medians and the Mann–Whitney U test with P(EAGAN's pick has
the lower FD). The learning curves (`report` draws them into
bench/results/search_quality_curves.png): the best proxy FD found after each proxy evaluation, and
the parameter count of that best-so-far architecture, per method.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after ROOT: bench/runtime.py must not shadow the package

import rank_correlation as rc

SPEC = ROOT / "specs" / "digits.eagan"
RESULTS = ROOT / "bench" / "results"
SEARCHES_FILE = RESULTS / "search_quality_searches.json"
TRAINED_FILE = RESULTS / "fully_trained_digits.json"
REPORT_FILE = RESULTS / "search_quality.json"
METHODS = ("eagan", "eagan_best", "random_ws")
LABELS = {
    "eagan": "EAGAN (paper settings)",
    "eagan_best": "EAGAN (measured-best estimator)",
    "random_ws": "random search, weight sharing",
    "random": "random sampling, no proxy",
    "fixed": "fixed GNearest",
}
FALLBACK_BEST = {"warmup_sampling": "fair", "round_sampling": "fair", "score": "raw"}
# the estimator as the paper and the released code have it (the language's defaults); pinned for
# `eagan` and `random_ws`, whatever the digits spec's own defaults are
PAPER = {"warmup_sampling": "uniform", "round_sampling": "uniform", "score": "ema"}
CAPS = (150_000, 200_000, 250_000)
TOP = 4
REFERENCE = (100.0, 500_000.0)  # (FD, params): the hypervolume's reference point


# ----------------------------------------------------------------------------- method specs
def _once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise ValueError(f"expected exactly one {old!r} in {SPEC.name}; was it changed?")
    return text.replace(old, new)


def _cut_stage(text: str, name: str) -> str:
    """`text` without the block `stage NAME : ... { ... }`."""
    lines = text.splitlines(keepends=True)
    start = next(
        (i for i, line in enumerate(lines) if line.lstrip().startswith(f"stage {name} :")), None
    )
    if start is None:
        raise ValueError(f"no stage {name} in {SPEC.name}; was it changed?")
    depth, end = 0, start
    for end in range(start, len(lines)):
        code = lines[end].split("#", 1)[0]
        depth += code.count("{") - code.count("}")
        if depth == 0:
            break
    return "".join(lines[:start] + lines[end + 1 :])


ITERATIONS_PER_EPOCH = 20  # digits: 1,297 training images in full batches of 64


def best_settings(
    path: Path = RESULTS / "rank_correlation.json", iterations: int | None = None
) -> tuple[dict[str, str], str]:
    """The estimator settings bench/rank_correlation.py ranked best: the highest Kendall τ of a
    supernet predictor at the checkpoint nearest `iterations` (the search's supernet budget)
    among the checkpoints where every setting was measured; a stated fallback while there is
    no final report."""
    if not path.is_file():
        return dict(FALLBACK_BEST), "not measured yet: fallback"
    data = json.loads(path.read_text())
    gt = data.get("ground_truth", {})
    if gt.get("n_archs", 0) < 25 or gt.get("n_seeds", 0) < 2:  # an interim report decides nothing
        return dict(
            FALLBACK_BEST
        ), f"{path.name} is interim ({gt.get('n_archs', 0)} architectures): fallback"
    by_step: dict[int, dict[str, float]] = {}
    for name, row in data.get("predictors", {}).items():
        if name.startswith("supernet "):
            steps = name.rsplit(",", 1)[1].split()[0]
            at = int(steps[:-1]) * 1000 if steps.endswith("k") else int(steps)
            by_step.setdefault(at, {})[name] = row["kendall"]
    if not by_step:
        return dict(FALLBACK_BEST), f"{path.name} has no supernet predictor: fallback"
    full = max(len(v) for v in by_step.values())
    steps_ok = [at for at, v in by_step.items() if len(v) == full]
    at = min(steps_ok, key=lambda a: (abs(a - (iterations or a)), a))
    name = max(sorted(by_step[at]), key=lambda n: by_step[at][n])
    setting, rule = (x.strip() for x in name[len("supernet ") :].split(",")[:2])
    return (
        {"warmup_sampling": setting, "round_sampling": setting, "score": rule},
        f"{path.name}: {name} (τ {by_step[at][name]:.2f})",
    )


def budget_iterations(budget: Mapping[str, int]) -> int:
    """The supernet iterations of a search with this budget (warm-up and every round)."""
    return (budget["warmup"] + budget["rounds"] * budget["epochs"]) * ITERATIONS_PER_EPOCH


def method_specs(base: str, budget: Mapping[str, int], best: Mapping[str, str]) -> dict[str, str]:
    """The spec of every searching method: the digits spec with stage 1 only, its evolution
    budget set, and each method's settings in the search_g stage: eagan and random_ws score with
    the paper's estimator (PAPER), eagan_best with `best`; so random_ws differs from eagan only
    in the search strategy."""
    text = _cut_stage(_cut_stage(base, "search_d"), "fully_train")
    return {
        "eagan": set_stage_keys(text, "search_g", {**budget, **PAPER}),
        "eagan_best": set_stage_keys(text, "search_g", {**budget, **best}),
        "random_ws": set_stage_keys(text, "search_g", {**budget, **PAPER, "strategy": "random"}),
    }


def set_stage_keys(text: str, stage: str, values: Mapping[str, Any]) -> str:
    """Set `key: value` in the block of `stage NAME`: a key written there gets the new value, a
    key not written is added first in the block."""
    import re

    head = f"stage {stage} : search {{"
    start = _once(text, head, head) and text.index(head)
    end = text.index("\n}", start) if "\n  }" not in text[start:] else text.index("\n  }", start)
    block = text[start:end]
    added = []
    for key, value in values.items():
        pattern = re.compile(rf"(\b{key}\s*:\s*)([^\s,}}#]+)")
        if pattern.search(block):
            block = pattern.sub(lambda m, v=value: f"{m.group(1)}{v}", block, count=1)
        else:
            added.append(f"{key}: {value}")
    if added:  # after the head's line (and its comment)
        cut = block.find("\n")
        cut = len(block) if cut < 0 else cut
        if block.rstrip().endswith("}") and cut == len(block):  # a one-line block
            block = block.replace(head, f"{head} {', '.join(added)},", 1)
        else:
            block = block[:cut] + f"\n    {', '.join(added)}," + block[cut:]
    return text[:start] + block + text[end:]


def check_specs(texts: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """Every method's spec checks, has stage 1 only, and the budgets are equal."""
    from eagan_dsl.checker import check_text

    budgets = {}
    for name, text in texts.items():
        program = check_text(text, f"<{name}>.eagan")
        if [s.name for s in program.stages] != ["search_g"]:
            raise ValueError(f"{name}: stages {[s.name for s in program.stages]}")
        s = program.stages[0].settings
        want = "random" if name == "random_ws" else "evolution"
        if s["strategy"] != want:
            raise ValueError(f"{name}: strategy {s['strategy']}")
        budgets[name] = {
            "supernet_epochs": int(s["warmup"]) + int(s["rounds"]) * int(s["epochs"]),
            "evaluations": int(s["rounds"]) * int(s["population"]),
        }
    if len({json.dumps(b, sort_keys=True) for b in budgets.values()}) > 1:
        raise ValueError(f"unequal budgets: {budgets}")
    return budgets


# ----------------------------------------------------------------------------- the searches
def run_search(job: Mapping[str, Any]) -> float:
    """Run one search (`job`: key, method, seed, text, out, threads) with `runtime.cli run`, or
    resume it where its checkpoints stopped; the minutes it took."""
    out = Path(job["out"])
    spec = out.parent / f"{job['method']}.eagan"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(job["text"], encoding="utf-8")
    resume = not job.get("fresh") and any((out / "checkpoints").glob("ckpt-*.pt"))
    cmd = [sys.executable, "-m", "runtime.cli", "run"]
    if resume:
        cmd += ["--resume", str(out), "--device", "cpu"]
    else:
        cmd += [str(spec), "--out", str(out), "--device", "cpu", "--seed", str(job["seed"])]
        if out.exists():
            cmd.append("--force")
    env = {**os.environ, "OMP_NUM_THREADS": str(job["threads"])}
    t0 = time.perf_counter()
    with open(out.with_suffix(".log"), "a", encoding="utf-8") as log:
        code = subprocess.run(
            cmd, check=False, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        ).returncode
    if code != 0:
        raise RuntimeError(f"{job['key']}: exit {code}, see {out.with_suffix('.log')}")
    return round((time.perf_counter() - t0) / 60, 1)


def search_unit(job: dict[str, Any]) -> dict[str, Any]:
    """One (method, seed) search: run or resume it, then read every scored candidate and the
    stage's pick from its history."""
    minutes = run_search(job)
    return {
        "key": job["key"],
        "spec_sha": job["spec_sha"],
        **read_search(Path(job["out"]) / "history.jsonl", job["method"]),
        "minutes": minutes,
    }


def history_lines(history: Path) -> list[dict[str, Any]]:
    """A run's `history.jsonl`, one record per line."""
    return [json.loads(line) for line in history.read_text().splitlines() if line.strip()]


def scored(
    lines: Sequence[Mapping[str, Any]],
    keys: Sequence[str] = ("genome", "fid", "is", "params", "round"),
) -> list[dict[str, Any]]:
    """Every candidate a history scored, in order, with `keys` (the proxy FD as a number)."""
    cands = [{k: r[k] for k in keys} for r in lines if r.get("kind") == "candidate"]
    for c in cands:
        c["fid"] = rc_num(c["fid"])
    return cands


def read_search(history: Path, method: str) -> dict[str, Any]:
    """Every scored candidate (genome, proxy FD and IS, params, round) and the answer: the stage's
    pick (its last round's `best`), or for random search the best scored over all rounds."""
    lines = history_lines(history)
    cands = scored(lines)
    if method == "random_ws":
        pick = min(cands, key=lambda c: c["fid"])["genome"]
    else:
        last = max(c["round"] for c in cands)
        best = [r for r in lines if r.get("kind") == "candidate" and r["round"] == last]
        pick = next(r["genome"] for r in best if r.get("best"))
    return {"candidates": cands, "pick": pick}


def rc_num(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    return float(value) if value in ("inf", "-inf") else math.inf


# ----------------------------------------------------------------------------- the answers
def best_scored(cands: Sequence[Mapping[str, Any]], k: int, cap: float = math.inf) -> list[str]:
    """The k distinct genomes with the lowest proxy FD among candidates of at most `cap` params
    (a genome scored in several rounds counts with its best score)."""
    best: dict[str, float] = {}
    for c in cands:
        if c["params"] <= cap and math.isfinite(c["fid"]):
            best[c["genome"]] = min(best.get(c["genome"], math.inf), c["fid"])
    return sorted(best, key=lambda g: (best[g], g))[:k]


def answers(search: Mapping[str, Any]) -> dict[str, Any]:
    """What a search answers for each measure: its pick, its best-scored over the whole search
    (EAGAN picks from its last round: this is the other selection rule, on the same search), its
    best-scored under each cap, its top 4 (for the hypervolume)."""
    cands = search["candidates"]
    return {
        "pick": search["pick"],
        "best": (best_scored(cands, 1) or [None])[0],
        "caps": {str(c): (best_scored(cands, 1, c) or [None])[0] for c in CAPS},
        "top": best_scored(cands, TOP),
    }


def hypervolume_2d(points: Iterable[tuple[float, float]], ref: tuple[float, float]) -> float:
    """The area dominated by `points` (both objectives minimised) and bounded by `ref`."""
    front = sorted((p for p in points if p[0] < ref[0] and p[1] < ref[1]), key=lambda p: p)
    area, best_y = 0.0, ref[1]
    for x, y in front:
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)
            best_y = y
    return area


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """The 95 % t interval of the mean."""
    from scipy import stats

    n = len(values)
    if n < 2:
        return math.nan, math.nan
    m, s = statistics.fmean(values), statistics.stdev(values)
    h = stats.t.ppf(0.975, n - 1) * s / math.sqrt(n)
    return m - h, m + h


def welch(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Welch's t of mean(a) − mean(b), its p-value, and the difference in pooled stds."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return {"t": math.nan, "p": math.nan, "pooled_sds": math.nan}
    t, p = stats.ttest_ind(a, b, equal_var=False)
    pooled = math.sqrt((statistics.variance(a) + statistics.variance(b)) / 2)
    diff = statistics.fmean(a) - statistics.fmean(b)
    return {"t": float(t), "p": float(p), "pooled_sds": diff / pooled if pooled else math.nan}


def rank_test(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Mann–Whitney U of a against b (two-sided), and P(a < b) + ½ P(a = b): the chance that a
    draw of a has the lower FD. It does not assume normal FDs, which a failed training (FD in the
    hundreds beside tens) breaks."""
    from scipy import stats

    if not a or not b:
        return {"u": math.nan, "p_u": math.nan, "p_lower": math.nan}
    u, p = stats.mannwhitneyu(a, b, alternative="two-sided")
    return {"u": float(u), "p_u": float(p), "p_lower": 1 - float(u) / (len(a) * len(b))}


def two_sample(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Welch's t and the rank test of a against b, with the difference of the means, the medians
    and the n's: what the report prints for each comparison.

    A diverged value (inf: the training failed) has no mean, so Welch's t and the difference of
    the means leave it out, but it has a rank: the rank test and the medians keep it as the worst
    value, and `diverged` counts it. A NaN (not trained) is in neither."""
    a, b = [x for x in a if not math.isnan(x)], [x for x in b if not math.isnan(x)]
    fa, fb = finite(a), finite(b)
    return {
        **welch(fa, fb),
        **rank_test(a, b),
        "difference": statistics.fmean(fa) - statistics.fmean(fb) if fa and fb else math.nan,
        "median": [statistics.median(a), statistics.median(b)],
        "n": [len(a), len(b)],
        "diverged": [len(a) - len(fa), len(b) - len(fb)],
    }


# ----------------------------------------------------------------------------- the driver
def _budget(args: argparse.Namespace) -> dict[str, int]:
    return {
        "population": args.population,
        "rounds": args.rounds,
        "epochs": args.epochs,
        "warmup": args.warmup,
    }


def spec_sha(text: str) -> str:
    """A short hash of a method's spec, comments and layout left out: a cached search counts
    only for the spec it ran (an edited comment in the base spec changes nothing)."""
    from eagan_dsl.fmt import without_comments

    tokens = " ".join(without_comments(text).split())
    return hashlib.sha256(tokens.encode("utf-8")).hexdigest()[:16]


def current(units: Mapping[str, Any], texts: Mapping[str, str]) -> dict[str, Any]:
    """The cached searches that ran the current spec of their method (a method whose spec
    changed, as eagan_best's does when the ranking report changes, is searched again)."""
    return {
        k: u
        for k, u in units.items()
        if u["key"].split("#")[0] in texts
        and u.get("spec_sha") == spec_sha(texts[u["key"].split("#")[0]])
    }


def search_jobs(
    args: argparse.Namespace, texts: Mapping[str, str], have: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One search job per (method, seed) without a current unit in `have`, seed-major (a
    partial run already covers every method once). A stale unit's run directory is searched
    afresh, not resumed."""
    fresh = current(have, texts)
    return [
        {
            "key": f"{m}#{s}",
            "method": m,
            "seed": s,
            "text": texts[m],
            "spec_sha": spec_sha(texts[m]),
            "fresh": f"{m}#{s}" in have,
            "out": str(Path(args.out) / m / f"seed{s}"),
            "threads": args.threads,
        }
        for s in args.seeds
        for m in args.methods
        if f"{m}#{s}" not in fresh
    ]


def searches(args: argparse.Namespace, echo: Callable[[str], None] = print) -> dict[str, Any]:
    best, source = best_settings(args.rank_report, budget_iterations(_budget(args)))
    texts = method_specs(Path(args.spec).read_text(encoding="utf-8"), _budget(args), best)
    budgets = check_specs(texts)
    config = {"spec": Path(args.spec).name, "budget": _budget(args)}
    units = rc.read_cache(args.searches_cache, config)
    echo(f"budget per search: {budgets['eagan']}; eagan_best = {best} ({source})")
    todo = rc.in_shard(search_jobs(args, texts, units), getattr(args, "shard", None))
    echo(f"searches: {len(units)} cached, {len(todo)} to run ({args.jobs} at a time)")

    def done(result: dict[str, Any]) -> None:
        rc.store(args.searches_cache, config, units, result)
        echo(f"  {result['key']}: pick {result['pick']} ({result['minutes']} min)")

    claims = rc.Claims(args.searches_cache, config, match=("spec_sha",))
    rc.run_units(search_unit, todo, args.jobs, done, claims)
    return units


def _truth_args(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(
        spec=args.spec,
        archs=args.archs,
        seeds=args.train_seeds,
        steps=args.steps,
        early=args.early,
        images=args.images,
        against=args.against,
        reference=args.reference,
        truth_cache=args.truth_cache,
    )


def trained(args: argparse.Namespace) -> dict[str, Any]:
    """Every fully-trained (architecture, seed), from both caches."""
    targs = _truth_args(args)
    config = rc.truth_config(targs)
    units = dict(rc.read_cache(args.truth_cache, config))
    units.update(rc.read_cache(args.trained_cache, config))
    return units


def found_searches(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str], str]:
    """The cached searches of the current method specs; the eagan_best settings and source."""
    best, source = best_settings(args.rank_report, budget_iterations(_budget(args)))
    texts = method_specs(Path(args.spec).read_text(encoding="utf-8"), _budget(args), best)
    config = {"spec": Path(args.spec).name, "budget": _budget(args)}
    return current(rc.read_cache(args.searches_cache, config), texts), best, source


def wanted_answers(found: Mapping[str, Any]) -> list[str]:
    """Every answer to fully-train, most needed first: all the picks (the main measure), then
    the best-scored over each search (the selection rule's check), the answers under the caps,
    then the top 4s (for the hypervolume)."""
    keys = sorted(found, key=lambda k: (int(k.split("#")[1]), k))  # seed-major, like searches
    picks = [answers(found[k])["pick"] for k in keys]
    bests = [answers(found[k])["best"] for k in keys]
    caps = [g for k in keys for g in answers(found[k])["caps"].values()]
    tops = [g for k in keys for g in answers(found[k])["top"]]
    wanted: list[str] = []
    for g in [*picks, *bests, *caps, *tops]:
        if g is not None and g not in wanted:
            wanted.append(g)
    return wanted


def train_jobs(
    targs: argparse.Namespace,
    wanted: Sequence[str],
    seeds: Sequence[int],
    have: Mapping[str, Any],
    shard: tuple[int, int] | None = None,
) -> list[dict[str, Any]]:
    """The trainings still to do, answer-major in the order of `wanted` (every seed of an answer
    before the next answer: its mean FD needs them all), this process's share of them."""
    jobs = [job for g in wanted for job in rc.truth_jobs(targs, [g], seeds, have)]
    return rc.in_shard(jobs, shard, rc.training_group)


def train(args: argparse.Namespace, echo: Callable[[str], None] = print) -> None:
    found, _, _ = found_searches(args)
    wanted = wanted_answers(found)
    targs = _truth_args(args)
    config_t = rc.truth_config(targs)
    have = trained(args)
    mine = rc.read_cache(args.trained_cache, config_t)
    targs.threads = args.threads
    todo = train_jobs(targs, wanted, args.train_seeds, have, getattr(args, "shard", None))
    echo(f"fully-train: {len(wanted)} answers, {len(todo)} trainings to do")

    def done(result: dict[str, Any]) -> None:
        rc.store(args.trained_cache, config_t, mine, result)
        echo(f"  seed {result['seed']} {result['params']:,} params: {result['evals']}")

    rc.run_units(rc.truth_unit, todo, args.jobs, done, rc.Claims(args.trained_cache, config_t))


def final_fd(
    units: Mapping[str, Any], genome: str | None, seeds: Sequence[int], steps: int
) -> float:
    """The mean final FD of `genome` over the training seeds; NaN until all are trained, and
    infinite once a training diverged (an FD that is missing or not a number), so that a
    diverged training reads as failed, never as not trained."""
    if genome is None:
        return math.nan
    values = []
    for s in seeds:
        u = units.get(f"{genome}#{s}")
        if u is None:
            return math.nan
        fd = float(u["evals"].get(str(steps), {}).get("fid", math.inf))
        values.append(math.inf if math.isnan(fd) else fd)
    return statistics.fmean(values)


def top_hypervolume(
    units: Mapping[str, Any], search: Mapping[str, Any], seeds: Sequence[int], steps: int
) -> float:
    """The hypervolume of the (final FD, params) points of a search's top 4 against REFERENCE;
    NaN until all of them are trained. A diverged or failing architecture adds nothing."""
    pts = []
    for g in answers(search)["top"]:
        fd = final_fd(units, g, seeds, steps)
        if math.isnan(fd):
            return math.nan
        params = next(c["params"] for c in search["candidates"] if c["genome"] == g)
        pts.append((fd, float(params)))
    return hypervolume_2d(pts, REFERENCE)


def ran(values: Sequence[float]) -> list[float]:
    """The values of the trainings that ran: finite, or inf for a diverged one (a NaN: not
    trained yet)."""
    return [x for x in values if not math.isnan(x)]


def finite(values: Sequence[float]) -> list[float]:
    """The values that are numbers (a NaN: not trained yet)."""
    return [x for x in values if math.isfinite(x)]


def _cell(values: Sequence[float]) -> dict[str, Any]:
    """Mean, median, std and 95 % interval over the finite values, with n; an infinite value (a
    diverged training) is counted in `diverged`, outside the mean, and a NaN is not trained."""
    v = finite(values)
    return {
        "diverged": sum(math.isinf(x) for x in values),
        "mean": statistics.fmean(v) if v else math.nan,
        "median": statistics.median(v) if v else math.nan,
        "std": statistics.stdev(v) if len(v) > 1 else math.nan,
        "ci95": t_interval(v),
        "n": len(v),
        "values": list(values),
    }


def cap_cell(
    units: Mapping[str, Any],
    found: Sequence[Mapping[str, Any]],
    cap: int,
    seeds: Sequence[int],
    steps: int,
) -> dict[str, Any]:
    """The final FD of each search's answer under `cap` params, with how many searches answered
    (a search that scored nothing under the cap has no answer: that is its result, not a gap)
    and how many of the answers are not fully trained yet."""
    genomes = [answers(x)["caps"][str(cap)] for x in found]
    values = [final_fd(units, g, seeds, steps) for g in genomes]
    answered = [g is not None for g in genomes]
    return {
        **_cell(values),
        "answered": sum(answered),
        "pending": sum(a and math.isnan(v) for a, v in zip(answered, values, strict=True)),
    }


def anytime(cands: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """The search's learning curve: after each proxy evaluation (in the order the search made
    them), the lowest proxy FD so far and the parameter count of the candidate that has it."""
    best, params = math.inf, math.nan
    out: dict[str, list[float]] = {"fid": [], "params": []}
    for c in cands:
        if c["fid"] < best:
            best, params = c["fid"], float(c["params"])
        out["fid"].append(best)
        out["params"].append(params)
    return out


def plot_curves(found: Mapping[str, Any], methods: Sequence[str], path: Path) -> bool:
    """The learning curves of every method (a thin line per search seed, a thick one for the
    mean); False when no search is cached."""
    from runtime.plots import _figure, save

    mine = {m: [found[k] for k in sorted(found) if k.split("#")[0] == m] for m in methods}
    mine = {m: xs for m, xs in mine.items() if xs}
    if not mine:
        return False
    colors = {"eagan": "tab:blue", "eagan_best": "tab:green", "random_ws": "tab:orange"}
    fig = _figure(size=(11.0, 4.2))
    axes = fig.subplots(1, 2)
    for m, xs in mine.items():
        curves = [anytime(x["candidates"]) for x in xs]
        for row, (key, label) in enumerate(
            (("fid", "best proxy FD so far"), ("params", "params of the best so far"))
        ):
            ax = axes[row]
            for c in curves:
                ys = [y if math.isfinite(y) else math.nan for y in c[key]]
                ax.plot(range(1, len(ys) + 1), ys, color=colors.get(m), alpha=0.3, lw=0.8)
            n = min(len(c[key]) for c in curves)
            mean = [statistics.fmean(c[key][i] for c in curves) for i in range(n)]
            mean = [y if math.isfinite(y) else math.nan for y in mean]
            ax.plot(
                range(1, n + 1), mean, color=colors.get(m), lw=2, label=f"{LABELS[m]} ({len(xs)})"
            )
            ax.set_xlabel("proxy evaluations")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].legend(fontsize="small")
    axes[0].set_title("search: best proxy FD (each method's own supernet)", fontsize="medium")
    axes[1].set_title("size of that architecture", fontsize="medium")
    save(fig, path.with_suffix(""), formats=(path.suffix.lstrip(".") or "png",))
    return True


def report(args: argparse.Namespace) -> dict[str, Any]:
    from rich.console import Console
    from rich.table import Table

    found, best, source = found_searches(args)
    units = trained(args)
    seeds = args.train_seeds
    genomes = rc.architectures(Path(args.spec), args.archs, reference=args.reference)
    gt = rc.ground_truth_table(
        {k: u for k, u in units.items() if u["genome"] in genomes}, genomes, args.steps, args.early
    )
    truth = sorted(r["fd"] for r in gt["rows"] if math.isfinite(r["fd"]))

    def percentile(fd: float) -> float:
        return (
            100 * sum(t < fd for t in truth) / len(truth)
            if truth and math.isfinite(fd)
            else math.nan
        )

    # a training failed when its FD is 10 × the ground truth's median run (rc.collapsed)
    failed_above = gt["collapsed"]["threshold"]
    rows: dict[str, Any] = {}
    for m in args.methods:
        per_seed = [found[f"{m}#{s}"] for s in args.seeds if f"{m}#{s}" in found]
        picks = [final_fd(units, answers(x)["pick"], seeds, args.steps) for x in per_seed]
        bests = [final_fd(units, answers(x)["best"], seeds, args.steps) for x in per_seed]
        caps = {str(c): cap_cell(units, per_seed, c, seeds, args.steps) for c in CAPS}
        hvs = [top_hypervolume(units, x, seeds, args.steps) for x in per_seed]
        rows[m] = {
            "searches": len(per_seed),
            "fd": _cell(picks),
            "percentile": _cell([percentile(f) for f in picks]),
            "failed": sum(f > failed_above for f in picks if not math.isnan(f)),
            "top10": sum(percentile(f) < 10 for f in finite(picks)),
            "best_scored": _cell(bests),
            "caps": caps,
            "hypervolume": _cell(hvs),
            "minutes": _cell([x["minutes"] for x in per_seed]),
        }
    ref = rc.architectures(Path(args.spec), 0, reference=args.reference) if args.reference else []
    fixed = next((r["fd"] for r in gt["rows"] if ref and r["genome"] == ref[-1]), math.nan)
    console = Console(width=200)
    table = Table(
        title=f"G search at equal budget ({_budget(args)}), final FD over {len(seeds)} training seeds"
    )
    for col in (
        "method",
        "searches",
        "final FD of the pick",
        "percentile in ground truth",
        "median, failed, in the top 10 %",
        "final FD of the best scored",
        *(f"best FD ≤ {c // 1000}k params" for c in CAPS),
        "hypervolume (top 4)",
        "min/search",
    ):
        table.add_column(col, justify="left" if col == "method" else "right")

    def fmt(c: Mapping[str, Any], digits: int = 2) -> str:
        if not c["n"]:
            return f"— ({c['diverged']} diverged)" if c.get("diverged") else "—"
        lo, hi = c["ci95"]
        out = f"{c['mean']:.{digits}f} ± {c['std']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
        return out + (f" ({c['diverged']} diverged, not in the mean)" if c.get("diverged") else "")

    def fmt_cap(c: Mapping[str, Any], searches: int) -> str:
        pending = f", {c['pending']} not trained" if c["pending"] else ""
        return f"{fmt(c)} ({c['answered']}/{searches} answered{pending})"

    for m, r in rows.items():
        table.add_row(
            LABELS[m],
            str(r["searches"]),
            fmt(r["fd"]),
            fmt(r["percentile"], 1),
            f"{r['fd']['median']:.2f}, {r['failed']}/{r['fd']['n']}, {r['top10']}/{r['fd']['n']}"
            if r["fd"]["n"]
            else "—",
            fmt(r["best_scored"]),
            *(fmt_cap(r["caps"][str(c)], r["searches"]) for c in CAPS),
            fmt(
                {
                    **r["hypervolume"],
                    "mean": r["hypervolume"]["mean"] / 1e6,
                    "std": r["hypervolume"]["std"] / 1e6,
                    "ci95": tuple(v / 1e6 for v in r["hypervolume"]["ci95"]),
                }
            ),
            f"{r['minutes']['mean']:.1f}" if r["minutes"]["n"] else "—",
        )
    table.add_row(
        LABELS["random"],
        "—",
        f"{statistics.fmean(truth):.2f}" if truth else "—",
        "50",
        f"{statistics.median(truth):.2f}, {sum(t > failed_above for t in truth)}/{len(truth)}, "
        f"{sum(percentile(t) < 10 for t in truth)}/{len(truth)}"
        if truth
        else "—",
        "—",
        *["—"] * len(CAPS),
        "—",
        "—",
    )
    table.add_row(
        LABELS["fixed"],
        "—",
        f"{fixed:.2f}" if math.isfinite(fixed) else "—",
        f"{percentile(fixed):.1f}" if math.isfinite(fixed) else "—",
        "—",
        "—",
        *["—"] * len(CAPS),
        "—",
        "—",
    )
    console.print(table)
    verdict = {}
    # (key, what − what, the first's FDs, the second's, whether it is the issue's target)
    comparisons: list[tuple[str, str, list[float], list[float], bool]] = []
    ws = ran(rows["random_ws"]["fd"]["values"]) if "random_ws" in rows else []
    for m in ("eagan", "eagan_best"):
        if m in rows and "random_ws" in rows:
            comparisons += [
                (m, f"{LABELS[m]}'s pick", ran(rows[m]["fd"]["values"]), ws, True),
                (
                    f"{m}:best_scored",
                    f"{LABELS[m]}'s best scored over its search",
                    ran(rows[m]["best_scored"]["values"]),
                    ws,
                    True,
                ),
            ]
    for m in ("eagan", "eagan_best", "random_ws"):
        if m in rows:
            comparisons.append(
                (
                    f"{m}:random",
                    f"{LABELS[m]}'s pick",
                    ran(rows[m]["fd"]["values"]),
                    truth,
                    False,
                )
            )
    for key, first, a, b, target in comparisons:
        name = first + (" − random search's pick" if target else " − random sampling")
        if len(a) < 2 or len(b) < 2:
            console.print(f"{name}: not enough trained answers yet")
            continue
        verdict[key] = w = two_sample(a, b)
        console.print(
            f"{name} (final FD): {w['pooled_sds']:+.2f} pooled stds, Welch t {w['t']:+.2f}, "
            f"p {w['p']:.3f}; medians {w['median'][0]:.2f} and {w['median'][1]:.2f}, "
            f"Mann–Whitney p {w['p_u']:.3f}, P(lower) {w['p_lower']:.2f}; "
            f"n = {len(a)} + {len(b)} (negative = the first better"
            + ("; the target is below −2)" if target else ")")
        )
    # the hypervolume of the top 4s: larger is better, so P(higher) = 1 − P(lower)
    hv_ws = finite(rows["random_ws"]["hypervolume"]["values"]) if "random_ws" in rows else []
    for m in ("eagan", "eagan_best"):
        if m not in rows or "random_ws" not in rows:
            continue
        a = finite(rows[m]["hypervolume"]["values"])
        name = f"{LABELS[m]}'s top 4 − random search's (hypervolume, 10^6 FD·params)"
        if len(a) < 2 or len(hv_ws) < 2:
            console.print(f"{name}: not enough trained top 4s yet")
            continue
        verdict[f"{m}:hypervolume"] = hv = two_sample(a, hv_ws)
        console.print(
            f"{name}: {hv['difference'] / 1e6:+.2f} ({hv['pooled_sds']:+.2f} pooled stds), "
            f"Welch t {hv['t']:+.2f}, p {hv['p']:.3f}; Mann–Whitney p {hv['p_u']:.3f}, "
            f"P(higher) {1 - hv['p_lower']:.2f}; n = {len(a)} + {len(hv_ws)} "
            "(positive = the first better)"
        )
    out = {
        "methods": rows,
        "verdict": verdict,
        "ground_truth": {k: gt[k] for k in ("best", "median", "worst", "seed_sigma", "n_archs")},
        "budget": _budget(args),
        "eagan_best": {"settings": best, "source": source},
    }
    args.report_file.parent.mkdir(parents=True, exist_ok=True)
    args.report_file.write_text(json.dumps(out, indent=1, default=str) + "\n")
    curves = args.report_file.with_name(args.report_file.stem + "_curves.png")
    if plot_curves(found, args.methods, curves):
        console.print(f"learning curves: {curves}")
    return out


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    rc.add_part(ap, ["search", "train", "report", "all"])
    ap.add_argument("--spec", type=Path, default=SPEC)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="search seeds")
    ap.add_argument("--population", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=10, help="epochs per round")
    ap.add_argument("--warmup", type=int, default=100, help="warm-up epochs")
    ap.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--early", type=int, default=300)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--archs", type=int, default=24, help="ground-truth architectures")
    ap.add_argument("--against", default=rc.FIXED_D)
    ap.add_argument("--reference", default=rc.FIXED_G)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--shard", type=rc.shard_arg, help="search and train: " + rc.SHARD_HELP)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "search_quality")
    ap.add_argument("--rank-report", type=Path, default=rc.REPORT_FILE)
    ap.add_argument("--searches-cache", type=Path, default=SEARCHES_FILE)
    ap.add_argument("--trained-cache", type=Path, default=TRAINED_FILE)
    ap.add_argument("--truth-cache", type=Path, default=rc.TRUTH_FILE)
    ap.add_argument("--report-file", type=Path, default=REPORT_FILE)
    args = ap.parse_args(list(argv) if argv is not None else None)
    args.part = rc.part_of(ap, args)
    if args.part in ("search", "all"):
        searches(args)
    if args.part in ("train", "all"):
        train(args)
    if args.part in ("report", "all"):
        report(args)


if __name__ == "__main__":
    main()
