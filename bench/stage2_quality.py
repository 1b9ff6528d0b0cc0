"""Stage 2 and the paper's ablations (§5.3) at a budget that lets discriminators be ranked, judged
by paired differences at the same generator, so that the generator's noise cancels.

    python bench/stage2_quality.py search --jobs 2 --threads 1    # the searches (resumable)
    python bench/stage2_quality.py train --jobs 2 --threads 1     # fully-train their answers
    python bench/stage2_quality.py report                         # tables + JSON from the caches
    python bench/stage2_quality.py all --jobs 2 --threads 1       # the three in turn

`search` and `train` resume from the caches. Two processes of one part can share them: start
the same command twice (`train --jobs 1` beside `train --jobs 1`, say one of them when a search
process freed its core); each unit is claimed by the process that takes it, so they walk the list
in order and never run one unit twice. `--shard K/N` instead fixes each process's share in
advance (by a hash of the unit).

Methods, each a spec derived from `specs/digits.eagan` (its stage blocks kept, their budgets set,
no fully-train stage: every answer is fully trained below by one protocol):

    eagan     stage 1 (G against the fixed AutoGAND), then stage 2 (D one-to-one with copies of
              G*, weight-resetting on): the paper's method
    no_reset  the same, weight-resetting off (paper Fig. 7)
    random_d  the same stage 1, then random search for D on the same supernet (`strategy:
              random`; the best scored D over all rounds)
    d_first   D first (many-to-one against the fixed GNearest), then G one-to-one with D*
    coupled   one (G, D) search with twice the rounds and warm-up, at the same epochs in all
    gd3       EAGAN-GD3: the two stages twice, stage 1 of the second pass against the first D*
              (the paper's repeat; twice the search budget, as in the paper)

Budget: stage 1 as `--g-epochs` per round, stage 2 `--d-epochs` per round, chosen so that every
pair of stage 2 trains at least 150 iterations a round (checked from the spec: epochs × batches
per epoch // population). eagan, no_reset, random_d and d_first have the same search epochs and
evaluations (checked); coupled the same epochs.

Measures, per method, over the search seeds (`--seeds`): the final FD of its answer (G_m, D_m),
and its D's added value at the same G, Δ = FD(G_m, D_m) − FD(G_m, AutoGAND), both fully trained
with the ground-truth protocol of bench/rank_correlation.py (2,000 steps, `--train-seeds`, FD of
the EMA generator on 5,000 images) and paired by training seed. eagan, no_reset and random_d
share stage 1 at a seed (the same G*, checked), so their D's are compared directly, with paired
t-tests: over every (search seed, training seed) pair, and, the conservative test (the two
trainings of one answer are not independent), over the search seeds' means; each paired
difference also gets its median and Wilcoxon's signed-rank p, which one collapsed training cannot
sway alone. D first, coupled and GD3 answer with their own G, so their final FD is compared with
EAGAN's unpaired (Welch and Mann–Whitney over the search seeds' means). `report` also draws each
method's learning curve by round, the lowest proxy FD of each round with the stage boundaries
dashed (the paper's Figs. 6 and 7), into bench/results/stage2_quality_curves.png. Cached per
search in `bench/results/stage2_searches.json` and per training in
`bench/results/stage2_trained.json`.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after ROOT: bench/runtime.py must not shadow the package

import rank_correlation as rc
import search_quality as sq

SPEC = ROOT / "specs" / "digits.eagan"
RESULTS = ROOT / "bench" / "results"
SEARCHES_FILE = RESULTS / "stage2_searches.json"
TRAINED_FILE = RESULTS / "stage2_trained.json"
REPORT_FILE = RESULTS / "stage2_quality.json"
METHODS = ("eagan", "no_reset", "random_d", "d_first", "coupled", "gd3")
LABELS = {
    "eagan": "EAGAN (G, then D with weight-resetting)",
    "no_reset": "without weight-resetting",
    "random_d": "random D search (weight sharing)",
    "d_first": "D first, then G",
    "coupled": "coupled (G, D) search",
    "gd3": "EAGAN-GD3 (both stages twice; 2× budget)",
}
SHARED_G = ("eagan", "no_reset", "random_d")  # the same stage 1 at a seed: the same G*
STAGES = {
    "eagan": ("search_g", "search_d"),
    "no_reset": ("search_g", "search_d"),
    "random_d": ("search_g", "search_d"),
    "d_first": ("search_d", "search_g"),
    "coupled": ("coupled",),
    "gd3": ("search_g", "search_d", "search_g2", "search_d2"),
}
MIN_PAIR_ITERATIONS = 150


# ----------------------------------------------------------------------------- method specs
def _block(text: str, name: str) -> str:
    """The text of `stage NAME : ... { ... }`, its lines whole."""
    without = sq._cut_stage(text, name)
    lines, rest = text.splitlines(keepends=True), without.splitlines(keepends=True)
    start = next(i for i, (a, b) in enumerate(zip(lines, rest, strict=False)) if a != b)
    return "".join(lines[start : start + len(lines) - len(rest)])


def _renamed(block: str, old: str, new: str, swaps: Mapping[str, str]) -> str:
    out = sq._once(block, f"stage {old} :", f"stage {new} :")
    for a, b in swaps.items():
        out = sq._once(out, a, b)
    return out


def set_keys(block: str, values: Mapping[str, Any]) -> str:
    """One stage block with `key: value` set: a key written in its code (not in a comment) gets
    the new value, a key not written is added first in the block. One-line and multi-line blocks
    alike."""
    import re

    lines = block.splitlines(keepends=True)
    todo = dict(values)
    for i, line in enumerate(lines):
        code, sep, comment = line.partition("#")
        for key in list(todo):
            pattern = re.compile(rf"(?<![\w.])({key}\s*:\s*)([^\s,}}#]+)")
            if pattern.search(code):
                code = pattern.sub(lambda m, v=todo[key]: f"{m.group(1)}{v}", code, count=1)
                del todo[key]
        lines[i] = code + sep + comment
    out = "".join(lines)
    if todo:
        items = ", ".join(f"{k}: {v}" for k, v in todo.items())
        brace = out.index("{")
        first = out[brace + 1 :].split("\n", 1)[0]
        if "}" in first.split("#", 1)[0]:  # a one-line block
            out = f"{out[: brace + 1]} {items},{out[brace + 1 :]}"
        else:
            cut = brace + 1 + len(first)
            out = f"{out[:cut]}\n    {items}{out[cut:]}"
    return out


def method_specs(base: str, b: Mapping[str, int], fixed_g: str, against: str) -> dict[str, str]:
    """Every method's spec: the base spec's header and settings, its two search stages kept with
    their budgets set (`b`: population, rounds, warmup, g_epochs, d_epochs), no fully-train."""
    g_block, d_block = _block(base, "search_g"), _block(base, "search_d")
    head = sq._cut_stage(sq._cut_stage(sq._cut_stage(base, "search_g"), "search_d"), "fully_train")
    close = head.rstrip().rfind("}")
    head, tail = head[:close].rstrip() + "\n\n", head[close:]
    common = {"population": b["population"], "rounds": b["rounds"], "warmup": b["warmup"]}
    g_keys = {**common, "epochs": b["g_epochs"], **sq.PAPER}  # stage 1 as the paper has it
    d_keys = {**common, "epochs": b["d_epochs"], "pairing": "one_to_one"}

    def spec(*blocks: str) -> str:
        return head + "\n".join(blk.rstrip() + "\n" for blk in blocks) + tail

    def with_keys(block: str, name: str, keys: Mapping[str, Any]) -> str:
        return set_keys(block, keys).rstrip() + "\n"

    g1 = with_keys(g_block, "search_g", g_keys)
    d2 = {
        reset: with_keys(d_block, "search_d", {**d_keys, "weight_reset": reset})
        for reset in ("on", "off")
    }
    random_d = with_keys(
        d_block, "search_d", {**d_keys, "weight_reset": "on", "strategy": "random"}
    )
    d_first = (
        f"  stage search_d : search {{  # D first: many-to-one against the fixed {fixed_g}\n"
        f"    network: D, against: {fixed_g}, pairing: many_to_one\n  }}\n"
    )
    g_second = (
        "  stage search_g : search {  # then G one-to-one with copies of D*\n"
        "    network: G, with: best(search_d), pairing: one_to_one, weight_reset: on\n  }\n"
    )
    coupled = "  stage coupled : search {\n    network: (G, D)\n  }\n"
    half = (b["g_epochs"] + b["d_epochs"]) // 2
    g2 = _renamed(g1, "search_g", "search_g2", {f"against: {against}": "with: best(search_d)"})
    d3 = _renamed(
        d2["on"], "search_d", "search_d2", {"with: best(search_g)": "with: best(search_g2)"}
    )
    return {
        "eagan": spec(g1, d2["on"]),
        "no_reset": spec(g1, d2["off"]),
        "random_d": spec(g1, random_d),
        "d_first": spec(
            with_keys(d_first, "search_d", g_keys),
            with_keys(g_second, "search_g", {**d_keys, "weight_reset": "on"}),
        ),
        "coupled": spec(
            with_keys(
                coupled,
                "coupled",
                {
                    "population": b["population"],
                    "rounds": 2 * b["rounds"],
                    "warmup": 2 * b["warmup"],
                    "epochs": half,
                },
            )
        ),
        "gd3": spec(g1, d2["on"], g2, d3),
    }


def check_specs(
    texts: Mapping[str, str], min_pair_iterations: int = MIN_PAIR_ITERATIONS
) -> dict[str, dict[str, int]]:
    """Every method's spec checks and has its stages; every one-to-one stage trains each pair at
    least `min_pair_iterations` a round (epochs × iterations per epoch // population, as the
    stage computes its quota); the budgets are equal (coupled: the same epochs up to rounding;
    gd3: twice, by design)."""
    from eagan_dsl.checker import check_text

    budgets: dict[str, dict[str, int]] = {}
    for name, text in texts.items():
        program = check_text(text, f"<{name}>.eagan")
        names = tuple(s.name for s in program.stages)
        if names != STAGES[name]:
            raise ValueError(f"{name}: stages {names}, expected {STAGES[name]}")
        epochs = evaluations = 0
        for st in program.stages:
            s = st.settings
            epochs += int(s["warmup"]) + int(s["rounds"]) * int(s["epochs"])
            evaluations += int(s["rounds"]) * int(s["population"])
            if s["pairing"] != "one_to_one":
                continue
            quota = int(s["epochs"]) * iterations_per_epoch(program, s) // int(s["population"])
            if quota < min_pair_iterations:
                raise ValueError(
                    f"{name}: stage {st.name} trains each pair {quota} iterations a round; "
                    f"discriminators need at least {min_pair_iterations} to be ranked: raise "
                    "--d-epochs"
                )
            if bool(s["weight_reset"]) != (name != "no_reset"):
                raise ValueError(f"{name}: stage {st.name} weight_reset {s['weight_reset']}")
        strategies = [s.settings["strategy"] for s in program.stages]
        want = ["evolution", "random"] if name == "random_d" else ["evolution"] * len(strategies)
        if strategies != want:
            raise ValueError(f"{name}: strategies {strategies}, expected {want}")
        budgets[name] = {"search_epochs": epochs, "evaluations": evaluations}
    equal = {n: b for n, b in budgets.items() if n not in ("gd3", "coupled")}
    if len({json.dumps(b, sort_keys=True) for b in equal.values()}) > 1:
        raise ValueError(f"unequal budgets: {budgets}")
    if equal and "coupled" in budgets:
        ref = next(iter(equal.values()))
        slack = 2 * max(int(st.settings["rounds"]) for st in check_text(texts["coupled"]).stages)
        if abs(budgets["coupled"]["search_epochs"] - ref["search_epochs"]) > slack:
            raise ValueError(f"coupled: unequal search epochs: {budgets}")
    return budgets


def iterations_per_epoch(program: Any, settings: Mapping[str, Any]) -> int:
    """A stage's iterations per epoch, as its Trainer counts them: D batches per epoch of the
    spec's data // n_critic."""
    import torch

    from runtime.data import load_training_data

    data = load_training_data(program.data, torch.device("cpu"))
    per_epoch = data.batches_per_epoch(int(settings["batch"]["d"]))
    return max(per_epoch // int(settings["n_critic"]), 1)


# ----------------------------------------------------------------------------- the searches
def _best(lines: Sequence[Mapping[str, Any]], stage: str, random: bool) -> str:
    """A stage's answer: its last round's best, or for random search the best scored in any
    round."""
    if random:
        cands = [r for r in lines if r.get("kind") == "candidate" and r["stage"] == stage]
        return str(min(cands, key=lambda c: sq.rc_num(c["fid"]))["genome"])
    rounds = [r for r in lines if r.get("kind") == "round" and r["stage"] == stage]
    return str(max(rounds, key=lambda r: r["round"])["best"])


def read_answer(lines: Sequence[Mapping[str, Any]], method: str) -> dict[str, Any]:
    """(G, D) a method answers with, and the G its stage 2 searched D with, from its history."""
    if method == "coupled":
        g, d = (x.strip() for x in _best(lines, "coupled", False).split(" / "))
        return {"g": g, "d": d}
    if method == "d_first":
        return {"g": _best(lines, "search_g", False), "d": _best(lines, "search_d", False)}
    if method == "gd3":
        return {"g": _best(lines, "search_g2", False), "d": _best(lines, "search_d2", False)}
    return {
        "g": _best(lines, "search_g", False),
        "d": _best(lines, "search_d", method == "random_d"),
    }


def search_unit(job: dict[str, Any]) -> dict[str, Any]:
    """One (method, seed) search: run or resume it, then read its answer and the candidates it
    scored from the history."""
    minutes = sq.run_search(job)
    lines = sq.history_lines(Path(job["out"]) / "history.jsonl")
    return {
        "key": job["key"],
        "spec_sha": job["spec_sha"],
        "method": job["method"],
        "seed": job["seed"],
        **read_answer(lines, job["method"]),
        # kept with the answer, so the run directory is not needed to see how a search went
        "candidates": sq.scored(lines, ("stage", "round", "genome", "fid", "is", "params")),
        "minutes": minutes,
    }


def _budget(args: argparse.Namespace) -> dict[str, int]:
    return {
        "population": args.population,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "g_epochs": args.g_epochs,
        "d_epochs": args.d_epochs,
    }


def _config(args: argparse.Namespace) -> dict[str, Any]:
    return {"spec": Path(args.spec).name, "budget": _budget(args)}


def searches(args: argparse.Namespace, echo: Callable[[str], None] = print) -> dict[str, Any]:
    texts = method_specs(
        Path(args.spec).read_text(encoding="utf-8"), _budget(args), args.fixed_g, args.against
    )
    texts = {m: texts[m] for m in args.methods}
    budgets = check_specs(texts, args.min_pair_iterations)
    units = rc.read_cache(args.searches_cache, _config(args))
    echo(f"budget per search: {budgets}")
    todo = rc.in_shard(sq.search_jobs(args, texts, units), getattr(args, "shard", None))
    echo(f"searches: {len(units)} cached, {len(todo)} to run ({args.jobs} at a time)")

    def done(result: dict[str, Any]) -> None:
        rc.store(args.searches_cache, _config(args), units, result)
        echo(f"  {result['key']}: G {result['g']}, D {result['d']} ({result['minutes']} min)")

    rc.run_units(
        search_unit,
        todo,
        args.jobs,
        done,
        rc.Claims(args.searches_cache, _config(args), match=("spec_sha",)),
    )
    return units


# ----------------------------------------------------------------------------- fully-train
def _train_config(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "spec": Path(args.spec).name,
        "steps": args.steps,
        "images": args.images,
        "seeds": list(args.train_seeds),
    }


def pair_key(g: str, d: str, seed: int) -> str:
    return f"{g} / {d}#{seed}"


def wanted_pairs(found: Mapping[str, Any], against: str) -> list[tuple[str, str]]:
    """Every (G, D) to fully train: each answer, and its G against the fixed D."""
    pairs: list[tuple[str, str]] = []
    for x in found.values():
        for p in ((x["g"], x["d"]), (x["g"], against)):
            if p not in pairs:
                pairs.append(p)
    return pairs


def train(args: argparse.Namespace, echo: Callable[[str], None] = print) -> dict[str, Any]:
    found = {  # the answers of the methods asked for (`--methods`)
        k: x
        for k, x in rc.read_cache(args.searches_cache, _config(args)).items()
        if k.split("#")[0] in args.methods
    }
    config = _train_config(args)
    units = rc.read_cache(args.trained_cache, config)
    todo = [
        {
            "key": pair_key(g, d, s),
            "genome": g,
            "against": d,
            "seed": s,
            "spec": str(args.spec),
            "steps": args.steps,
            "eval_at": [args.steps],
            "images": args.images,
            "threads": args.threads,
        }
        for s in args.train_seeds
        for g, d in wanted_pairs(found, args.against)
        if pair_key(g, d, s) not in units
    ]
    todo = rc.in_shard(todo, getattr(args, "shard", None), rc.training_group)
    echo(f"fully-train: {len(units)} cached, {len(todo)} to train ({args.jobs} at a time)")

    def done(result: dict[str, Any]) -> None:
        rc.store(args.trained_cache, config, units, result)
        echo(f"  {result['key']}: {result['evals']}")

    rc.run_units(rc.truth_unit, todo, args.jobs, done, rc.Claims(args.trained_cache, config))
    return units


# ----------------------------------------------------------------------------- the report
def fd_of(units: Mapping[str, Any], g: str, d: str, seed: int, steps: int) -> float:
    u = units.get(pair_key(g, d, seed))
    return float(u["evals"].get(str(steps), {}).get("fid", math.inf)) if u else math.nan


def paired_t(diffs: Sequence[float]) -> dict[str, float]:
    """The mean of paired differences, its 95 % t interval and the two-sided p of a t-test, with
    the median and the two-sided p of Wilcoxon's signed-rank test beside them: one training that
    diverges (FD near 900 where its pair reached 25) sets the mean and the t interval on its own,
    while the rank test weighs it as one pair among n."""
    from scipy import stats

    v = [x for x in diffs if math.isfinite(x)]
    out = {
        "mean": statistics.fmean(v) if v else math.nan,
        "lo": math.nan,
        "hi": math.nan,
        "p": math.nan,
        "median": statistics.median(v) if v else math.nan,
        "p_w": float(stats.wilcoxon(v).pvalue) if len(v) >= 2 and any(v) else math.nan,
        "n": len(v),
    }
    if len(v) >= 2:
        out["lo"], out["hi"] = sq.t_interval(v)
        out["p"] = float(stats.ttest_1samp(v, 0.0).pvalue)
    return out


def search_means(by_search: Mapping[int, Sequence[float]]) -> list[float]:
    """One value per search seed: the mean of its finite differences over the training seeds.

    The training seeds of one search train the same (G, D) answer, so they are repeated measures of
    one unit, not independent ones: the test over these means (n = search seeds) is the
    conservative one, the test over every (search seed, training seed) pair the optimistic one.
    """
    out = []
    for _, v in sorted(by_search.items()):
        if finite := sq.finite(v):
            out.append(statistics.fmean(finite))
    return out


def paired_over_searches(
    by_search: Mapping[int, Sequence[float]],
) -> tuple[dict[str, float], dict[str, float]]:
    """The two paired tests of one comparison: over every (search seed, training seed) pair, and
    the conservative one over the search seeds' means (see `search_means`)."""
    return (
        paired_t([v for vs in by_search.values() for v in vs]),
        paired_t(search_means(by_search)),
    )


def final_against_eagan(
    by_method: Mapping[str, Mapping[int, Sequence[float]]],
) -> dict[str, dict[str, Any]]:
    """Each method's final FD against EAGAN's where the two answer with different G's (D first,
    coupled, GD3), so that no pairing holds: Welch's t and the rank test over the search seeds'
    means (n = search seeds), as the paper's ablations compare whole methods. Negative = the
    method's answer trains to a lower FD than EAGAN's."""
    eagan = search_means(by_method.get("eagan", {}))
    out = {}
    for m, by_search in by_method.items():
        if m in SHARED_G:
            continue
        mine = search_means(by_search)
        if mine and eagan:
            out[m] = sq.two_sample(mine, eagan)
    return out


def round_curve(
    cands: Sequence[Mapping[str, Any]], stages: Sequence[str]
) -> tuple[list[float], list[int]]:
    """A search's learning curve by round, as the paper draws it (Figs. 6 and 7): the lowest proxy
    FD of each round, the rounds of `stages` in the order the search ran them, and the index at
    which each stage after the first begins (its dashed boundary). A round none of whose
    candidates has a finite FD gives NaN."""
    ys: list[float] = []
    starts: list[int] = []
    for i, stage in enumerate(stages):
        if i:
            starts.append(len(ys))
        rounds = sorted({int(c["round"]) for c in cands if c["stage"] == stage})
        for r in rounds:
            fds = [float(c["fid"]) for c in cands if c["stage"] == stage and int(c["round"]) == r]
            ys.append(min((x for x in fds if math.isfinite(x)), default=math.nan))
    return ys, starts


def plot_round_curves(found: Mapping[str, Any], methods: Sequence[str], path: Path) -> bool:
    """One panel per method: each search seed's round curve (thin) and their mean (thick), with
    the stage boundaries dashed. Proxy FDs are each method's own supernet's, so a panel shows how
    a search moves, not which method is better. False when no search has cached candidates."""
    from runtime.plots import _figure, save

    mine = {
        m: [found[k] for k in sorted(found) if k.split("#")[0] == m and found[k].get("candidates")]
        for m in methods
    }
    mine = {m: xs for m, xs in mine.items() if xs}
    if not mine:
        return False
    cols = min(3, len(mine))
    rows = -(-len(mine) // cols)
    fig = _figure(size=(4.2 * cols, 3.4 * rows))
    grid = fig.subplots(rows, cols, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for ax in axes[len(mine) :]:
        ax.set_visible(False)
    for ax, (m, xs) in zip(axes, mine.items(), strict=False):
        curves = [round_curve(x["candidates"], STAGES[m]) for x in xs]
        for ys, _ in curves:
            ax.plot(range(1, len(ys) + 1), ys, color="tab:blue", alpha=0.3, lw=0.8)
        n = min(len(ys) for ys, _ in curves)
        mean = [statistics.fmean(ys[i] for ys, _ in curves) for i in range(n)]
        ax.plot(range(1, n + 1), mean, color="tab:blue", lw=2, label=f"mean of {len(xs)}")
        for start in curves[0][1]:
            ax.axvline(start + 0.5, color="gray", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("search round (" + " → ".join(STAGES[m]) + ")", fontsize="small")
        ax.set_title(LABELS[m], fontsize="small")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
        ax.xaxis.get_major_locator().set_params(integer=True)
    for row in grid:
        row[0].set_ylabel("lowest proxy FD of the round")
    save(fig, path.with_suffix(""), formats=(path.suffix.lstrip(".") or "png",))
    return True


def report(args: argparse.Namespace) -> dict[str, Any]:
    from rich.console import Console
    from rich.table import Table

    found = rc.read_cache(args.searches_cache, _config(args))
    units = rc.read_cache(args.trained_cache, _train_config(args))
    seeds, steps = list(args.train_seeds), args.steps
    rows: dict[str, Any] = {}
    final_by_method: dict[str, dict[int, list[float]]] = {}
    for m in args.methods:
        runs = [found[f"{m}#{s}"] for s in args.seeds if f"{m}#{s}" in found]
        final_by_method[m] = {
            x["seed"]: [fd_of(units, x["g"], x["d"], t, steps) for t in seeds] for x in runs
        }
        final = [v for vs in final_by_method[m].values() for v in vs]
        gain_by_search = {
            x["seed"]: [
                fd_of(units, x["g"], x["d"], t, steps)
                - fd_of(units, x["g"], args.against, t, steps)
                for t in seeds
            ]
            for x in runs
        }
        gain, gain_means = paired_over_searches(gain_by_search)
        rows[m] = {
            "searches": len(runs),
            "final_fd": sq._cell(final),
            "gain_over_fixed_d": gain,
            "gain_by_search": gain_means,
            "minutes": sq._cell([x["minutes"] for x in runs]),
        }
    against_eagan: dict[str, Any] = {}
    for m in SHARED_G[1:]:
        if m not in args.methods or "eagan" not in args.methods:
            continue
        diffs: dict[int, list[float]] = {}
        for s in args.seeds:
            a, b = found.get(f"eagan#{s}"), found.get(f"{m}#{s}")
            if a is None or b is None:
                continue
            if a["g"] != b["g"]:
                raise ValueError(f"seed {s}: {m} and eagan searched D with different G*")
            diffs[s] = [
                fd_of(units, b["g"], b["d"], t, steps) - fd_of(units, a["g"], a["d"], t, steps)
                for t in seeds
            ]
        pairs, means = paired_over_searches(diffs)
        against_eagan[m] = {**pairs, "by_search": means}
    final_vs_eagan = final_against_eagan(final_by_method)
    console = Console(width=150)
    table = Table(
        title=f"Stage 2 and the ablations ({_budget(args)}); FD after {steps} steps, "
        f"{len(seeds)} training seeds per answer"
    )
    for col in (
        "method",
        "searches",
        "final FD (G_m, D_m)",
        "Δ vs AutoGAND at G_m [95 %]",
        "p",
        "median Δ, Wilcoxon p",
        "Δ, search means [95 %]",
        "p ",
        "min/search",
    ):
        table.add_column(col, justify="left" if col == "method" else "right")
    for m, r in rows.items():
        f, g, gs = r["final_fd"], r["gain_over_fixed_d"], r["gain_by_search"]
        table.add_row(
            LABELS[m],
            str(r["searches"]),
            f"{f['mean']:.2f} ± {f['std']:.2f}" if f["n"] else "—",
            f"{g['mean']:+.2f} [{g['lo']:+.2f}, {g['hi']:+.2f}]" if g["n"] else "—",
            f"{g['p']:.3f}" if math.isfinite(g["p"]) else "—",
            f"{g['median']:+.2f}, {g['p_w']:.3f}" if math.isfinite(g["p_w"]) else "—",
            f"{gs['mean']:+.2f} [{gs['lo']:+.2f}, {gs['hi']:+.2f}]" if gs["n"] else "—",
            f"{gs['p']:.3f}" if math.isfinite(gs["p"]) else "—",
            f"{r['minutes']['mean']:.1f}" if r["minutes"]["n"] else "—",
        )
    console.print(table)
    for m, d in against_eagan.items():
        if d["n"]:
            console.print(
                f"{LABELS[m]} − EAGAN, same G*, paired over (search seed, training seed): "
                f"{d['mean']:+.2f} FD [{d['lo']:+.2f}, {d['hi']:+.2f}], p {d['p']:.3f}, "
                f"median {d['median']:+.2f}, Wilcoxon p {d['p_w']:.3f}, n {d['n']} "
                "(positive = EAGAN's D better)"
            )
            b = d["by_search"]
            if b["n"]:
                console.print(
                    f"  over the search seeds' means (training seeds averaged): {b['mean']:+.2f} "
                    f"FD [{b['lo']:+.2f}, {b['hi']:+.2f}], p {b['p']:.3f}, n {b['n']}"
                )
    for m, c in final_vs_eagan.items():
        console.print(
            f"{LABELS[m]} − EAGAN, final FD over the search seeds' means (different G's, "
            f"unpaired): {c['difference']:+.2f} FD, {c['pooled_sds']:+.2f} pooled stds, "
            f"Welch p {c['p']:.3f}, Mann–Whitney p {c['p_u']:.3f}, n {c['n'][0]} + {c['n'][1]} "
            "(negative = the method's answer better)"
        )
    out = {
        "methods": rows,
        "against_eagan": against_eagan,
        "final_against_eagan": final_vs_eagan,
        "budget": _budget(args),
    }
    args.report_file.parent.mkdir(parents=True, exist_ok=True)
    args.report_file.write_text(json.dumps(out, indent=1, default=str) + "\n")
    curves = args.report_file.with_name(args.report_file.stem + "_curves.png")
    if plot_round_curves(found, args.methods, curves):
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
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=15, help="warm-up epochs of each stage")
    ap.add_argument("--g-epochs", type=int, default=5, help="stage-1 epochs per round")
    ap.add_argument(
        "--d-epochs", type=int, default=61, help="stage-2 epochs per round (≥ 150 it. per pair)"
    )
    ap.add_argument("--min-pair-iterations", type=int, default=MIN_PAIR_ITERATIONS)
    ap.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--against", default=rc.FIXED_D)
    ap.add_argument("--fixed-g", default=rc.FIXED_G)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--shard", type=rc.shard_arg, help="search and train: " + rc.SHARD_HELP)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "stage2_quality")
    ap.add_argument("--searches-cache", type=Path, default=SEARCHES_FILE)
    ap.add_argument("--trained-cache", type=Path, default=TRAINED_FILE)
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
