"""Search quality on `specs/digits.eagan`: does the two-stage search find better architectures than
random search and the fixed hand-designed start, at an equal training budget, over several seeds;
and the paper's ablations (§5.3) on the same budget. Prints a table in the form of the paper's
Table 2, one for the ablations, a plain statement of EAGAN against random search, writes
`<out>/ablations.json` and the learning curves `<out>/ablations_curves.png` (the form of
Fig. 6–7).

    python bench/ablations.py                   # 6 configurations × seeds 0 1 2, 2 at a time
    python bench/ablations.py --collect-only    # no runs: tables, JSON, PNG from what exists
    python bench/ablations.py --configs eagan random --seeds 0 1 2 3 4 --jobs 2 --threads 1
    python bench/ablations.py --quick --seeds 0 --configs eagan fixed --jobs 1 --out /tmp/sq_smoke

Configurations, each a spec derived from specs/digits.eagan by checked text edits (a pattern not
found is an error) and validated by the checker before anything runs:

    eagan     the spec as is: G against the fixed AutoGAND, then D one-to-one with weight reset
    random    both search stages with `strategy: random` (the random-search baseline)
    fixed     no search: fully-train GNearest + AutoGAND (the hand-designed starting architecture)
    coupled   one `network: (G, D)` stage with twice the rounds and warm-up of one decoupled stage,
              so that it trains as many iterations and scores as many candidates as the two stages
    no_reset  eagan with `weight_reset: off` in search_d (Fig. 7)
    d_first   D against the fixed GNearest (many-to-one), then G one-to-one with the best D

Every configuration has the same data, latent, train and evaluate settings and the same fully-train
epochs; the searching ones have the same search epochs and candidate evaluations (checked). Each
(config, seed) runs as `python -m runtime.cli run SPEC --out <out>/<config>/seed<S> --device cpu
--seed S` (output in `<out>/<config>/seed<S>.log`); a finished run is skipped, an unfinished one
is continued with `run --resume`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's eagan_dsl and runtime, also from a git worktree

SPEC = ROOT / "specs" / "digits.eagan"
FIXED_G, FIXED_D = "GNearest", "AutoGAND"  # the hand-designed start named in specs/digits.eagan

CONFIGS: dict[str, str] = {  # name → row label, in table order
    "eagan": "EAGAN (G, then D with weight reset)",
    "random": "random search (both stages)",
    "fixed": f"fixed {FIXED_G} + {FIXED_D} (no search)",
    "coupled": "coupled (G, D) search",
    "no_reset": "EAGAN without weight-resetting",
    "d_first": "EAGAN, D first",
}
STAGES: dict[str, tuple[str, ...]] = {  # the stages each variant must resolve to, in order
    "eagan": ("search_g", "search_d", "fully_train"),
    "random": ("search_g", "search_d", "fully_train"),
    "fixed": ("fully_train",),
    "coupled": ("coupled", "fully_train"),
    "no_reset": ("search_g", "search_d", "fully_train"),
    "d_first": ("search_d", "search_g", "fully_train"),
}
ABLATIONS = (  # (what is ablated, the paper's variant, the ablated variant): paper §5.3
    ("coupled vs decoupled", "eagan", "coupled"),
    ("weight reset on vs off", "eagan", "no_reset"),
    ("G first vs D first", "eagan", "d_first"),
)
PANELS = {"search_g": "G search", "search_d": "D search", "coupled": "coupled (G, D) search"}
COLORS = {
    "eagan": (214, 39, 40),
    "random": (31, 119, 180),
    "fixed": (127, 127, 127),
    "coupled": (44, 160, 44),
    "no_reset": (148, 103, 189),
    "d_first": (255, 127, 14),
}


# ------------------------------------------------------------------------------ variant specs


def _once(text: str, old: str, new: str, where: str) -> str:
    """Replace `old` by `new`, which must occur exactly once: a changed base spec fails here."""
    n = text.count(old)
    if n != 1:
        raise ValueError(
            f"{where}: expected exactly one {old!r}, found {n}; was {SPEC.name} changed?"
        )
    return text.replace(old, new)


def stage_block(text: str, name: str) -> str:
    """The text of `stage NAME : ... { ... }` from its line to the line of its closing brace."""
    heads = list(re.finditer(rf"^[ \t]*stage {name} : \w+ \{{", text, re.MULTILINE))
    if len(heads) != 1:
        raise ValueError(f"expected one `stage {name}` block in {SPEC.name}, found {len(heads)}")
    start, depth = heads[0].start(), 0
    for line in text[start:].splitlines(keepends=True):
        code = line.split("#", 1)[0]
        depth += code.count("{") - code.count("}")
        start += len(line)
        if depth == 0:
            return text[heads[0].start() : start]
    raise ValueError(f"stage {name} in {SPEC.name} is not closed")


def variant_specs(base: str) -> dict[str, str]:
    """The spec text of every configuration, derived from the digits spec by checked edits."""
    from eagan_dsl.checker import check_text

    program = check_text(base, str(SPEC))
    if tuple(s.name for s in program.stages) != STAGES["eagan"]:
        raise ValueError(f"{SPEC.name}: expected the stages {STAGES['eagan']}; was it changed?")
    search = {s.name: s.settings for s in program.stages if s.kind == "search"}
    for key in ("rounds", "epochs", "population"):
        if search["search_g"][key] != search["search_d"][key]:
            raise ValueError(
                f"search_g and search_d differ in {key}: the coupled budget assumes equal stages"
            )
    rounds = int(search["search_g"]["rounds"])
    # the warm-ups may differ: the coupled stage gets both, D first swaps them with the roles
    warm_1, warm_2 = int(search["search_g"]["warmup"]), int(search["search_d"]["warmup"])
    g, d, train = (stage_block(base, n) for n in ("search_g", "search_d", "fully_train"))
    no_search = _once(_once(base, g, "", "search_g"), d, "", "search_d")

    def head(name: str) -> str:
        return f"# generated by bench/ablations.py: configuration `{name}` of {SPEC.name}\n"

    def with_strategy(block: str) -> str:
        first, rest = block.split("\n", 1)
        return f"{first}\n    strategy: random,  # the random-search baseline\n{rest}"

    def train_with(g_src: str, d_src: str) -> str:
        t = _once(train, "g: best(search_g)", f"g: {g_src}", "fully_train")
        return _once(t, "d: best(search_d)", f"d: {d_src}", "fully_train")

    # paper §5.3, Fig. 6; the rounds and warm-up of both decoupled stages: an equal budget
    coupled = f"""\
  stage coupled : search {{
    network: (G, D),
    rounds: {2 * rounds},
    warmup: {warm_1 + warm_2}
  }}

"""
    d_first = f"""\
  stage search_d : search {{  # docs/language.md recipe "D first"
    network: D, against: {FIXED_G}, pairing: many_to_one, warmup: {warm_1}
  }}

  stage search_g : search {{
    network: G, with: best(search_d), pairing: one_to_one, weight_reset: on, warmup: {warm_2}
  }}

"""
    random = _once(base, g, with_strategy(g), "search_g")
    no_reset = _once(d, "weight_reset: on", "weight_reset: off", "search_d")
    coupled_train = train_with("best(coupled)", "best(coupled)")
    return {
        "eagan": head("eagan") + base,
        "random": head("random") + _once(random, d, with_strategy(d), "search_d"),
        "fixed": head("fixed")
        + _once(no_search, train, train_with(FIXED_G, FIXED_D), "fully_train"),
        "coupled": head("coupled")
        + _once(no_search, train, coupled + coupled_train, "fully_train"),
        "no_reset": head("no_reset") + _once(base, d, no_reset, "search_d"),
        "d_first": head("d_first") + _once(no_search, train, d_first + train, "fully_train"),
    }


def budget(stages: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, int]:
    """Epochs of search training (warm-up + rounds × epochs), candidate evaluations (rounds × P)
    and fully-train epochs of a run's stages, given as (kind, resolved settings)."""
    out = {"search_epochs": 0, "evaluations": 0, "fully_train_epochs": 0}
    for kind, s in stages:
        if kind == "search":
            out["search_epochs"] += int(s["warmup"]) + int(s["rounds"]) * int(s["epochs"])
            out["evaluations"] += int(s["rounds"]) * int(s["population"])
        else:
            out["fully_train_epochs"] += int(s["epochs"])
    return out


def check_variants(texts: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """Check every variant spec (a SpecError names the line), its stages and settings, and that
    the budgets are equal; returns each variant's budget."""
    from eagan_dsl.checker import check_text

    budgets: dict[str, dict[str, int]] = {}
    for name, text in texts.items():
        program = check_text(text, f"<{name}>.eagan")
        stages = {s.name: s.settings for s in program.stages}
        if tuple(stages) != STAGES[name]:
            raise ValueError(f"{name}: stages {tuple(stages)}, expected {STAGES[name]}")
        searches = [s for s in program.stages if s.kind == "search"]
        strategy = {s.settings["strategy"] for s in searches}
        if searches and strategy != {"random" if name == "random" else "evolution"}:
            raise ValueError(f"{name}: search strategy {strategy}")
        d = stages.get("search_d", {})
        if d.get("pairing") == "one_to_one" and d["weight_reset"] != (name != "no_reset"):
            raise ValueError(f"{name}: weight_reset {stages['search_d']['weight_reset']}")
        budgets[name] = budget((s.kind, s.settings) for s in program.stages)
    searching = {n: b for n, b in budgets.items() if n != "fixed"}
    for key, values in (
        ("search_epochs", {b["search_epochs"] for b in searching.values()}),
        ("evaluations", {b["evaluations"] for b in searching.values()}),
        ("fully_train_epochs", {b["fully_train_epochs"] for b in budgets.values()}),
    ):
        if len(values) > 1:
            raise ValueError(f"unequal budgets ({key}): {budgets}")
    return budgets


# --------------------------------------------------------------------------------------- runs


def _wall_file(rundir: Path) -> Path:
    return rundir.with_name(rundir.name + ".wall.json")


def _stale(rundir: Path, text: str, quick: bool) -> str | None:
    """Why an existing run directory does not belong to this benchmark, or None."""
    spec, resolved = rundir / "spec.eagan", rundir / "resolved.json"
    if spec.is_file() and spec.read_text(encoding="utf-8") != text:
        return "was started from a different spec"
    if (
        resolved.is_file()
        and bool(json.loads(resolved.read_text())["environment"].get("quick")) != quick
    ):
        return f"was run {'without' if quick else 'with'} --quick"
    return None


def _execute(spec: Path, rundir: Path, seed: int, args: argparse.Namespace) -> tuple[int, float]:
    """Run (or continue) one (config, seed); returns the exit code and this attempt's wall time."""
    resume = any((rundir / "checkpoints").glob("ckpt-*.pt"))
    cmd = [sys.executable, "-m", "runtime.cli", "run"]
    if resume:
        cmd += ["--resume", str(rundir), "--device", args.device]
    else:
        cmd += [str(spec), "--out", str(rundir), "--device", args.device, "--seed", str(seed)]
        if args.quick:
            cmd.append("--quick")
        if rundir.exists():  # a directory left without a checkpoint: start it again
            cmd.append("--force")
        _wall_file(rundir).unlink(missing_ok=True)
    threads = str(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    rundir.parent.mkdir(parents=True, exist_ok=True)
    with open(rundir.with_name(rundir.name + ".log"), "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        t0 = time.perf_counter()
        code = subprocess.run(
            cmd, check=False, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        ).returncode
    wall = time.perf_counter() - t0
    wall_file = _wall_file(rundir)
    before = (
        json.loads(wall_file.read_text()) if wall_file.is_file() else {"wall_s": 0.0, "attempts": 0}
    )
    total = {"wall_s": round(before["wall_s"] + wall, 1), "attempts": before["attempts"] + 1}
    wall_file.write_text(json.dumps(total) + "\n")
    return code, wall


def run_all(
    out: Path, texts: Mapping[str, str], configs: Sequence[str], args: argparse.Namespace
) -> list[str]:
    """Run every missing (config, seed), `args.jobs` at a time; returns the failed ones."""
    tasks = []
    for seed in args.seeds:  # seed-major: a partial benchmark already compares every config
        for name in configs:
            rundir = out / name / f"seed{seed}"
            if rundir.exists() and (why := _stale(rundir, texts[name], args.quick)):
                raise SystemExit(f"{rundir} {why}: delete it or choose another --out")
            if not (rundir / "final" / "metrics.json").is_file():
                tasks.append((name, seed, rundir))
    print(f"{len(tasks)} runs to do, {args.jobs} at a time, {args.threads} thread(s) each")
    for name in configs:
        (out / "specs").mkdir(parents=True, exist_ok=True)
        (out / "specs" / f"{name}.eagan").write_text(texts[name], encoding="utf-8")

    def one(task: tuple[str, int, Path]) -> str | None:
        name, seed, rundir = task
        code, wall = _execute(out / "specs" / f"{name}.eagan", rundir, seed, args)
        state = "done" if code == 0 else f"FAILED (exit {code}, see {rundir}.log)"
        print(f"{name} seed {seed}: {state} in {wall:.0f} s", flush=True)
        return None if code == 0 else f"{name} seed {seed}"

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(one, t) for t in tasks]
        try:
            return [f for f in (fut.result() for fut in futures) if f]
        except KeyboardInterrupt:  # the runs save a checkpoint on the same Ctrl-C; rerun to resume
            for fut in futures:
                fut.cancel()
            raise


# -------------------------------------------------------------------------------- aggregation


def _num(value: Any) -> float:
    """A metric as written by the runtime: a number, "inf"/"-inf" or null (NaN)."""
    if isinstance(value, int | float):
        return float(value)
    return float(value) if value in ("inf", "-inf") else math.nan


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Mean and sample standard deviation (n − 1) of per-seed values; std is None below two
    seeds or with a non-finite value."""
    finite = all(math.isfinite(v) for v in values)
    return {
        "mean": statistics.fmean(values) if values else None,
        "std": statistics.stdev(values) if len(values) > 1 and finite else None,
        "per_seed": list(values),
    }


def collect_run(rundir: Path, seed: int) -> dict[str, Any] | None:
    """A finished run's final metrics, budget, wall time and best FD/IS per search round."""
    metrics_path = rundir / "final" / "metrics.json"
    if not metrics_path.is_file():
        return None
    metrics = json.loads(metrics_path.read_text())
    resolved = json.loads((rundir / "resolved.json").read_text())
    wall_file = _wall_file(rundir)
    curves: dict[str, dict[str, list[float]]] = {}
    history = rundir / "history.jsonl"  # absent when the run has no search stage
    for line in history.read_text().splitlines() if history.is_file() else []:
        record = json.loads(line) if line.strip() else {}
        if record.get("kind") == "round":
            c = curves.setdefault(record["stage"], {"round": [], "best_fid": [], "best_is": []})
            c["round"].append(record["round"] + 1)
            c["best_fid"].append(_num(record["best_fid"]))
            c["best_is"].append(_num(record["best_is"]))
    return {
        "seed": seed,
        "fid": _num(metrics["fid"]),
        "is": _num(metrics["is"]),
        "g_genome": metrics["g_genome"],
        "d_genome": metrics["d_genome"],
        "g_params": metrics["g_params"],
        "d_params": metrics["d_params"],
        "final_images": metrics["images"],
        "quick": bool(resolved["environment"].get("quick")),
        "budget": budget((s["kind"], s["settings"]) for s in resolved["stages"]),
        "wall_s": json.loads(wall_file.read_text())["wall_s"] if wall_file.is_file() else None,
        "curves": curves,
    }


def _mean_curves(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Per stage: the mean, min and max over seeds of the best FD and IS of each round."""
    out: dict[str, dict[str, list[float]]] = {}
    for stage in dict.fromkeys(s for r in runs for s in r["curves"]):
        curves = [r["curves"][stage] for r in runs if stage in r["curves"]]
        n = min(len(c["round"]) for c in curves)
        entry: dict[str, list[float]] = {"round": curves[0]["round"][:n]}
        for key, short in (("best_fid", "fid"), ("best_is", "is")):
            columns = [[c[key][i] for c in curves] for i in range(n)]
            entry[f"{short}_mean"] = [statistics.fmean(col) for col in columns]
            entry[f"{short}_min"] = [min(col) for col in columns]
            entry[f"{short}_max"] = [max(col) for col in columns]
        out[stage] = entry
    return out


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    """FD of configuration a against b: b − a (positive: a has the lower, better FD), in pooled
    standard deviations and as Welch's t."""
    fa, fb = a["fid"], b["fid"]
    if fa["mean"] is None or fb["mean"] is None:
        return None
    delta = fb["mean"] - fa["mean"]
    out: dict[str, Any] = {
        "delta_fid": delta,
        "pooled_std": None,
        "delta_in_stds": None,
        "welch_t": None,
    }
    if fa["std"] is not None and fb["std"] is not None:
        pooled = math.sqrt((fa["std"] ** 2 + fb["std"] ** 2) / 2)
        se = math.sqrt(fa["std"] ** 2 / len(fa["per_seed"]) + fb["std"] ** 2 / len(fb["per_seed"]))
        out.update(
            pooled_std=pooled,
            delta_in_stds=delta / pooled if pooled > 0 else None,
            welch_t=delta / se if se > 0 else None,
        )
    return out


def aggregate(out: Path, configs: Sequence[str], seeds: Sequence[int]) -> dict[str, Any]:
    """Everything the tables, the plot and the JSON show, from the run directories under `out`."""
    result: dict[str, Any] = {"configs": {}, "missing": []}
    for name in configs:
        runs = []
        for seed in seeds:
            run = collect_run(out / name / f"seed{seed}", seed)
            if run is None:
                result["missing"].append(f"{name} seed {seed}")
            else:
                runs.append(run)
        walls = [r["wall_s"] for r in runs if r["wall_s"] is not None]
        result["configs"][name] = {
            "label": CONFIGS[name],
            "n": len(runs),
            "seeds": [r["seed"] for r in runs],
            "fid": summarize([r["fid"] for r in runs]),
            "is": summarize([r["is"] for r in runs]),
            "g_params_mean": statistics.fmean(r["g_params"] for r in runs) if runs else None,
            "d_params_mean": statistics.fmean(r["d_params"] for r in runs) if runs else None,
            "wall_s_mean": statistics.fmean(walls) if walls else None,
            "budget": runs[0]["budget"] if runs else None,
            "runs": runs,
            "curves_mean": _mean_curves(runs) if runs else {},
        }
    c = result["configs"]
    result["comparisons"] = {
        f"eagan_vs_{other}": compare(c["eagan"], c[other])
        for other in ("random", "fixed")
        if "eagan" in c and other in c
    }
    result["ablations"] = [
        {"ablation": title, "paper": a, "variant": b, **(compare(c[a], c[b]) or {})}
        for title, a, b in ABLATIONS
        if a in c and b in c
    ]
    result["quick_mixed"] = len({r["quick"] for cfg in c.values() for r in cfg["runs"]}) > 1
    return result


# ------------------------------------------------------------------------------------- output


def _pm(s: dict[str, Any], digits: int) -> str:
    if s["mean"] is None:
        return "-"
    std = "-" if s["std"] is None else f"{s['std']:.{digits}f}"
    return f"{s['mean']:.{digits}f} ± {std}"


def _seeds(s: dict[str, Any], digits: int) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in s["per_seed"]) or "-"


def _k(v: float | None) -> str:
    return "-" if v is None else f"{v / 1e3:.0f}k"


def verdict(result: dict[str, Any], other: str) -> str:
    """One plain sentence: did EAGAN beat `other` on mean FD, and by how many stds."""
    cmp = result["comparisons"].get(f"eagan_vs_{other}")
    label = CONFIGS[other]
    if cmp is None:
        return f"EAGAN vs {label}: not enough finished runs to compare."
    e, o = result["configs"]["eagan"]["fid"], result["configs"][other]["fid"]
    beat = "beat" if cmp["delta_fid"] > 0 else "did NOT beat"
    by = "(no std: fewer than two seeds, or no spread)"
    if cmp["delta_in_stds"] is not None and cmp["welch_t"] is not None:
        by = (
            f"= {abs(cmp['delta_in_stds']):.2f} pooled stds (pooled std {cmp['pooled_std']:.2f}, "
            f"Welch t {cmp['welch_t']:.2f})"
        )
    return (
        f"EAGAN {beat} {label} on mean FD: {e['mean']:.2f} vs {o['mean']:.2f} "
        f"({'lower' if cmp['delta_fid'] > 0 else 'higher'} by {abs(cmp['delta_fid']):.2f}) {by}; "
        f"n = {len(e['per_seed'])} vs {len(o['per_seed'])} seeds."
    )


def print_tables(result: dict[str, Any], console: Console) -> None:
    configs = result["configs"]
    main = Table(
        title="Search quality on digits (the form of the paper's Table 2)", title_justify="left"
    )
    for col in (
        "method",
        "IS ↑",
        "FD ↓",
        "FD per seed",
        "IS per seed",
        "G params",
        "D params",
        "search epochs",
        "evals",
        "wall / run",
        "n (seeds)",
    ):
        main.add_column(
            col, justify="left" if col in ("method", "FD per seed", "IS per seed") else "right"
        )
    for cfg in configs.values():
        b = cfg["budget"] or {}
        wall = cfg["wall_s_mean"]
        main.add_row(
            cfg["label"],
            _pm(cfg["is"], 2),
            _pm(cfg["fid"], 2),
            _seeds(cfg["fid"], 1),
            _seeds(cfg["is"], 2),
            _k(cfg["g_params_mean"]),
            _k(cfg["d_params_mean"]),
            str(b.get("search_epochs", "-")),
            str(b.get("evaluations", "-")),
            "-" if wall is None else f"{wall / 60:.1f} min",
            f"{cfg['n']} ({' '.join(map(str, cfg['seeds']))})",
        )
    console.print(main)
    console.print(
        "IS, FD: the fully-trained final generator (final/metrics.json: the spec's extractor and "
        "final_images); mean ± sample std (n − 1) over seeds; params: mean over seeds. Budget: "
        "every searching method has the same search epochs (warm-up + rounds × epochs) and "
        "candidate evaluations (the coupled stage gets the rounds and warm-up of both decoupled "
        f"stages); the fixed {FIXED_G} + {FIXED_D} gets the same fully-train epochs but none of "
        "the search compute. Wall time: this script's clock per run (parallel runs share the CPU)."
    )
    ablations = Table(title="Ablations (paper §5.3), same budget", title_justify="left")
    for col in (
        "ablation",
        "variant",
        "IS ↑",
        "FD ↓",
        "FD per seed",
        "ΔFD vs paper",
        "Δ / pooled std",
        "n",
    ):
        ablations.add_column(
            col, justify="left" if col in ("ablation", "variant", "FD per seed") else "right"
        )
    for ab in result["ablations"]:
        for role, name in (("paper", ab["paper"]), ("ablated", ab["variant"])):
            cfg = configs[name]
            delta = stds = "-"
            if role == "ablated" and "delta_fid" in ab:
                # compare(paper, variant): variant − paper, positive when the ablation is worse
                delta = f"{ab['delta_fid']:+.2f}"
                stds = "-" if ab["delta_in_stds"] is None else f"{ab['delta_in_stds']:+.2f}"
            ablations.add_row(
                ab["ablation"] if role == "paper" else "",
                cfg["label"],
                _pm(cfg["is"], 2),
                _pm(cfg["fid"], 2),
                _seeds(cfg["fid"], 1),
                delta,
                stds,
                str(cfg["n"]),
            )
    if result["ablations"]:
        console.print(ablations)
        console.print(
            "ΔFD: the ablated variant's mean FD minus EAGAN's (positive: the paper's choice is "
            "better); Δ / pooled std: the same in pooled standard deviations of the two."
        )
    for other in ("random", "fixed"):
        if f"eagan_vs_{other}" in result["comparisons"]:
            console.print(verdict(result, other))
    if result["missing"]:
        console.print(f"not finished (left out): {', '.join(result['missing'])}")
    if result["quick_mixed"]:
        console.print("WARNING: runs with and without --quick are mixed in these numbers")


def plot_curves(result: dict[str, Any], path: Path) -> bool:
    """Best FD (top row) and IS (bottom row) per search round, one panel per kind of search stage:
    a thick line for the mean over seeds, a thin one per seed. False when no run has a search."""
    from matplotlib.ticker import MaxNLocator

    from runtime.plots import _figure, save  # the run directory's figure helpers (matplotlib)

    panels = [
        s for s in PANELS if any(s in cfg["curves_mean"] for cfg in result["configs"].values())
    ]
    if not panels:
        return False
    fig = _figure(size=(5.0 * len(panels), 7.0))
    axes = fig.subplots(2, len(panels), squeeze=False)
    for col, stage in enumerate(panels):
        mine = {n: cfg for n, cfg in result["configs"].items() if stage in cfg["curves_mean"]}
        for row, (key, label, short) in enumerate(
            (("best_fid", "FD", "fid"), ("best_is", "IS", "is"))
        ):
            ax = axes[row][col]
            ax.set_title(f"{PANELS[stage]}: {label} of each round's best", fontsize="medium")
            ax.set_xlabel("round")
            ax.set_ylabel(label)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            for name, cfg in mine.items():
                color = tuple(c / 255 for c in COLORS[name])
                for run in cfg["runs"]:
                    c = run["curves"].get(stage)
                    if c:
                        ys = [y if math.isfinite(y) else math.nan for y in c[key]]
                        ax.plot(c["round"], ys, color=color, alpha=0.35, linewidth=0.8)
                mean = cfg["curves_mean"][stage]
                ax.plot(mean["round"], mean[f"{short}_mean"], color=color, linewidth=2, label=name)
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
    save(fig, path.with_suffix(""), formats=(path.suffix.lstrip(".") or "png",))
    return True


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    ap.add_argument("--out", type=Path, default=Path("runs/ablations"))
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time")
    ap.add_argument("--threads", type=int, default=1, help="OMP/MKL threads of each run")
    ap.add_argument("--device", default="cpu", help="--device of each run (cpu, cuda)")
    ap.add_argument(
        "--quick", action="store_true", help="pass --quick to the runs: a tiny smoke budget"
    )
    ap.add_argument(
        "--collect-only", action="store_true", help="run nothing; aggregate what exists"
    )
    ap.add_argument("--json", type=Path, help="default <out>/ablations.json")
    args = ap.parse_args()
    out = args.out.resolve()
    configs = list(dict.fromkeys(args.configs))
    texts = variant_specs(SPEC.read_text(encoding="utf-8"))
    budgets = check_variants(texts)
    print(f"checked {len(texts)} variant specs of {SPEC.relative_to(ROOT)}: budgets equal")
    failed = [] if args.collect_only else run_all(out, texts, configs, args)
    result = aggregate(out, configs, args.seeds)
    result["settings"] = {
        "spec": str(SPEC.relative_to(ROOT)),
        "out": str(out),
        "seeds": args.seeds,
        "quick": args.quick,
        "jobs": args.jobs,
        "threads": args.threads,
        "device": args.device,
        "spec_budgets": budgets,
    }
    result["failed"] = failed
    probe = Console()
    print_tables(result, Console(highlight=False, width=None if probe.is_terminal else 200))
    png = out / "ablations_curves.png"
    print(
        f"wrote {png}" if plot_curves(result, png) else "no search rounds yet: no learning curves"
    )
    json_path = args.json or out / "ablations.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(_json_safe(result), indent=2) + "\n")
    print(f"wrote {json_path}")
    if failed:
        raise SystemExit(f"failed runs: {', '.join(failed)}")


if __name__ == "__main__":
    main()
