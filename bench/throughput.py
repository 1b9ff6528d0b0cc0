"""Throughput of the search's training steps and of evaluation, and a projection of the whole
CIFAR-10 search in GPU-days from them, beside the paper's 1.2 GPU-days.

    python bench/throughput.py --device cuda                                 # paper widths, everything
    python bench/throughput.py --device cpu --width-scale 0.25 --repeats 2   # a quick check on a CPU
    python bench/throughput.py --device cuda --phases search_g,eval --json throughput.json

Every phase is timed through the runtime's own stage objects, built from the spec by the checker
and the compiler on a real `runtime.search.Context` (a silent reporter, no run directory), with
CIFAR-shaped random uint8 data held on the device as `runtime.data.ImageData`, as a run holds
CIFAR-10. One iteration is the runtime's `Trainer.iteration`: n_critic D steps and one G step.

  warmup_g     stage 1's `SearchStage.warm_step()`: SuperNet-G on a fresh random genome against
               the fixed D (which is trained too: many-to-one, Eq. 7-8)
  search_g     stage 1's `SearchStage.train_step(i)`, i uniformly drawn from the population
               (Alg. 1 l.8)
  warmup_d     stage 2's `warm_step()`: SuperNet-D on a fresh random genome against the warm-up's
               copy of G* (a fixed generator stands for `best(search_g)`: no stage 1 is run)
  search_d     stage 2's `train_step(i)`: SuperNet-D on candidate i with its own copy of G*
               (one-to-one, Eq. 10; a run trains a private copy of i's path instead, same work)
  fully_train  `TrainStage`'s iteration on the fixed G* and D* subnets, with the EMA of G
  eval         scoring one candidate with the runtime's `Evaluator`: stage 1's scoring generator
               (`SearchStage.scored_generator`) at the spec's `eval_batch`, uint8, TF1 resize to
               299, Inception pool3 + logits, streaming statistics; the Fréchet step and the BN
               recalibration are timed on their own rows

What an image count means: a training iteration processes n_critic × (batch_d real + batch_d
generated) images through D plus batch_g generated images in the G step ("images/iter"); "real
img/s" counts only the real images, the unit of an epoch. Evaluation counts generated images
scored. The Inception has random weights and the reference statistics are random (the real ones
are not available offline): throughput does not depend on their values.

Variants: `fp32` (what the runtime does); `bf16`: the whole timed step under
`torch.autocast(device_type, dtype=torch.bfloat16)`, so backward runs in the dtypes autocast
recorded for each forward op (for evaluation: the extractor's own `bf16=True` option);
`channels_last`: the stage's modules (supernet, partners, G and D, their EMAs) and the real data
in channels_last. A variant the device cannot run is reported "n/a" with the reason. Neither
variant is used by `eagan run` today.

The projection multiplies the measured time per unit by the number of units of each phase, read
from the checked program: warm-up epochs, rounds × epochs per round, population × images per
evaluation, fully-train epochs, the batch sizes and n_critic, and the data set's size (CIFAR-10:
50,000 training images). Not counted: checkpoints, sample grids, selection (all small next to
training and evaluation on a GPU). Stage 2 scores each candidate D through its copy of G*; that is
projected at the rate measured for SuperNet-G on a genome (the Inception dominates either way).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import gc
import io
import json
import math
import platform
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from statistics import median
from types import MappingProxyType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from bench.supernet import scaled
from eagan_dsl.checker import load
from eagan_dsl.ir import Best, Program, StageIR
from runtime.data import ImageData
from runtime.display import Reporter
from runtime.evaluator import Evaluator
from runtime.metrics import (
    InceptionV3FID,
    ReferenceStats,
    evaluate_generator,
    frechet_distance,
    save_npz_stats,
)
from runtime.metrics.inception import random_inception_state_dict
from runtime.rundir import History
from runtime.search import Context, Member, SearchStage, Trainer, TrainStage

SPEC = ROOT / "specs" / "cifar10.eagan"
PAPER_GPU_DAYS = (
    1.2  # paper abstract / §5.2: the CIFAR-10 search (both stages), fully-train not included
)
# training images per epoch of each data set the runtime reads (runtime/data/)
TRAIN_IMAGES = {"cifar10": 50_000, "stl10": 105_000, "digits": 1_297}
PHASES = ("warmup_g", "search_g", "warmup_d", "search_d", "fully_train", "eval")
VARIANTS = ("fp32", "bf16", "channels_last")
DATA_ROWS = 2048  # random "real" images held on the device (the gather costs the same for 50,000)


# --------------------------------------------------------------------------- helpers
def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def bf16_available(dev: torch.device) -> str | None:
    """None if bfloat16 autocast can run here, else why not."""
    if dev.type == "cuda":
        return None if torch.cuda.is_bf16_supported() else "no bfloat16 on this GPU"
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.functional.conv2d(torch.randn(1, 2, 4, 4), torch.randn(2, 2, 3, 3))
    except Exception as e:  # noqa: BLE001 - any failure means: not on this CPU
        return f"bf16 autocast fails on this CPU ({type(e).__name__})"
    return None


@contextlib.contextmanager
def peak_memory(dev: torch.device, out: dict[str, Any]) -> Iterator[None]:
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    yield
    if dev.type == "cuda":
        out["peak_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)


def timed(fn: Callable[[], Any], dev: torch.device, warmup: int, repeats: int) -> list[float]:
    """Seconds of each of `repeats` calls after `warmup` untimed ones, synchronised on CUDA."""
    for _ in range(warmup):
        fn()
    sync(dev)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(dev)
        times.append(time.perf_counter() - t0)
    return times


# --------------------------------------------------------------------------- the program
def scaled_program(program: Program, scale: float) -> Program:
    """The program with every cell width × scale (bench/supernet.py's `scaled`)."""
    if scale == 1.0:
        return program
    nets = {name: scaled(net, scale) for name, net in program.networks.items()}
    return dataclasses.replace(program, networks=nets)


def stage_of(program: Program, kind: str, role: str | None = None) -> StageIR | None:
    """The first stage of `kind`; for a search stage, the one that searches the network of
    `role` (generator: stage 1, discriminator: stage 2)."""
    for st in program.stages:
        net = st.settings.get("network")
        if st.kind == kind and (
            role is None or (isinstance(net, str) and program.networks[net].role == role)
        ):
            return st
    return None


def fixed_named(program: Program, want: str, role: str) -> str:
    """A fixed network of `role`: `want` if the spec has it, else its first one of that role."""
    if want in program.fixed and program.network(want).role == role:
        return want
    for name in program.fixed:
        if program.network(name).role == role:
            return name
    raise SystemExit(f"{program.file}: no fixed {role} to stand for the searched one")


def standing_in(program: Program, ir: StageIR, args: argparse.Namespace) -> StageIR:
    """The stage with each `best(stage)` it names replaced by a fixed network of that role
    (--g-star, --d-star), as bench/distributed.py does: no earlier stage is run here."""
    s = ir.settings
    roles = {"g": "generator", "d": "discriminator"}
    if ir.kind == "search":  # `with:` / `against:` name the opponent of the searched network
        them = (
            "discriminator" if program.networks[s["network"]].role == "generator" else "generator"
        )
        roles = {"with": them, "against": them}
    want = {"generator": args.g_star, "discriminator": args.d_star}
    fixed = {
        k: fixed_named(program, want[r], r) for k, r in roles.items() if isinstance(s.get(k), Best)
    }
    return dataclasses.replace(ir, settings=MappingProxyType({**s, **fixed}))


def quiet_context(program: Program, data: ImageData, dev: torch.device) -> Context:
    """A `runtime.search.Context` for one process that reports nowhere and keeps no run directory
    (as bench/rank_correlation.py's); the evaluation builds its own `Evaluator`."""
    return Context(
        program=program,
        data=data,
        device=dev,
        seed=0,
        evaluators={},
        report=Reporter(Console(file=io.StringIO()), live=False),
        history=History(None),
        samples=lambda name, g: None,
    )


def channels_last(members: list[Member]) -> None:
    """A stage's networks (and their EMA copies) in channels_last, in place: the parameters stay
    the same objects, so the optimizers keep them."""
    for m in {id(m): m for m in members}.values():
        m.module.to(memory_format=torch.channels_last)
        if m.ema is not None:
            m.ema.module.to(memory_format=torch.channels_last)


def random_evaluator(program: Program, settings: Any, dev: torch.device, folder: Path) -> Evaluator:
    """The runtime's `Evaluator` with random Inception weights and random reference statistics,
    written to `folder` (the real ones are not available offline; the values do not matter)."""
    weights = folder / "inception_random.pth"
    torch.save(random_inception_state_dict(0), weights)
    rng = np.random.default_rng(0)
    d = InceptionV3FID.feature_dim
    a = rng.standard_normal((d, 2 * d)) / math.sqrt(2 * d)
    stats = folder / "stats_random.npz"
    save_npz_stats(
        stats, ReferenceStats(rng.standard_normal(d) * 0.1, a @ a.T, {"source": "random"})
    )
    return Evaluator(program, {**settings, "stats": str(stats)}, dev, str(weights))


class Bench:
    def __init__(self, program: Program, dev: torch.device, args: argparse.Namespace) -> None:
        self.program = program
        self.dev = dev
        self.args = args
        res, ch = program.data.resolution, program.data.channels
        gen = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (DATA_ROWS, ch, res, res), dtype=torch.uint8, generator=gen)
        self.ctx = quiet_context(
            program, ImageData(program.data.name, images.to(dev), "train"), dev
        )
        self.rows: list[dict[str, Any]] = []
        self.bf16_why = bf16_available(dev)

    def context(self, variant: str) -> Context:
        """The context of a variant: channels_last holds the real images in channels_last."""
        if variant != "channels_last":
            return self.ctx
        images = self.ctx.data.images.contiguous(memory_format=torch.channels_last)
        return dataclasses.replace(self.ctx, data=dataclasses.replace(self.ctx.data, images=images))

    def record(
        self,
        phase: str,
        variant: str,
        what: str,
        s: Any | None,
        fn: Callable[[], Any],
        reason: str | None = None,
        extra: dict[str, Any] | None = None,
        warmup: int | None = None,
        autocast: bool = True,
    ) -> None:
        """Time `fn` (the bf16 variant under bfloat16 autocast unless `autocast` is off) and
        keep a row; a failing fp32 raises, a failing variant is reported n/a."""
        row: dict[str, Any] = {"phase": phase, "variant": variant, "what": what, **(extra or {})}
        if variant == "bf16":
            reason = reason or self.bf16_why
        if s is not None:
            bg, bd, nc = int(s["batch"]["g"]), int(s["batch"]["d"]), int(s["n_critic"])
            row.update(
                {
                    "batch_g": bg,
                    "batch_d": bd,
                    "n_critic": nc,
                    "images_per_iteration": nc * 2 * bd + bg,
                    "real_per_iteration": nc * bd,
                }
            )
        amp = variant == "bf16" and autocast

        def step() -> None:
            # entered per call, cache off: the cast cache would keep bf16 copies of weights
            # across the n_critic D updates and the G update of one iteration
            with torch.autocast(self.dev.type, torch.bfloat16, enabled=amp, cache_enabled=False):
                fn()

        if reason is None:
            warm = self.args.warmup_iters if warmup is None else warmup
            try:
                with peak_memory(self.dev, row):
                    times = timed(step, self.dev, warm, self.args.repeats)
            except Exception as e:
                if variant == "fp32":
                    raise
                reason = f"{type(e).__name__}: {str(e).splitlines()[0][:100] if str(e) else ''}"
            else:
                row.update(
                    {"s_per_iteration": median(times), "s_min": min(times), "repeats": len(times)}
                )
                if "images_per_iteration" in row:
                    t = row["s_per_iteration"]
                    row["images_per_s"] = row["images_per_iteration"] / t
                    row["real_images_per_s"] = row["real_per_iteration"] / t
        row["status"] = "ok" if "s_per_iteration" in row else f"n/a: {reason}"
        self.rows.append(row)
        shown = row["status"] if row["status"] != "ok" else f"{row['s_per_iteration']:.4f} s"
        print(f"  {phase:12} {variant:14} {shown}", flush=True)
        if self.dev.type == "cuda":
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------------ search stages
    def search(self, role: str, phases: set[str]) -> None:
        """Stage 1 (`role` generator) or stage 2 (discriminator): a warm-up and a round
        iteration of the runtime's `SearchStage`, a fresh stage per variant."""
        ir = stage_of(self.program, "search", role)
        if ir is None:
            return
        warm_p, round_p = (
            ("warmup_g", "search_g") if role == "generator" else ("warmup_d", "search_d")
        )
        ir = standing_in(self.program, ir, self.args)
        s = ir.settings
        opponent, net = s["against"] or s["with"], s["network"]
        for variant in self.args.variants:
            stage = SearchStage(self.context(variant), ir)
            if variant == "channels_last":
                channels_last([stage.supernet, stage.warm, *stage.partners])
            if warm_p in phases:
                what = f"SuperNet-{net}, {s['warmup_sampling']} warm-up, vs {opponent}"
                self.record(warm_p, variant, what, s, stage.warm_step)
            if round_p in phases:
                stage.start_population()
                rng = random.Random(1)  # every variant trains the same sequence of candidates

                def round_step(stage: SearchStage = stage, rng: random.Random = rng) -> None:
                    stage.train_step(rng.randrange(stage.P))  # Alg. 1 l.8: uniformly drawn

                what = f"SuperNet-{net}, population of {stage.P}, vs {opponent}"
                self.record(round_p, variant, what, s, round_step)
            del stage

    # ------------------------------------------------------------------------ fully-train
    def fully_train(self) -> None:
        ir = stage_of(self.program, "train")
        if ir is None:
            return
        ir = standing_in(self.program, ir, self.args)
        g, d = ir.settings["g"], ir.settings["d"]
        ema = f", EMA {ir.settings['ema']}" if ir.settings["ema"] else ""
        for variant in self.args.variants:
            stage = TrainStage(self.context(variant), ir)
            if variant == "channels_last":
                channels_last([stage.G, stage.D])

            def step(st: TrainStage = stage) -> None:
                st.trainer.iteration(st.G.module, st.D.module, st.G, st.D)

            self.record("fully_train", variant, f"{g} + {d} subnets{ema}", ir.settings, step)
            del stage

    # ------------------------------------------------------------------------ evaluation
    def evaluation(self) -> None:
        program, dev = self.program, self.dev
        ir = stage_of(program, "search", "generator")
        if ir is None:
            raise SystemExit(f"{program.file}: the evaluation bench scores a stage-1 candidate")
        s = ir.settings
        if s["extractor"] != "inception":
            raise SystemExit(
                f"{program.file}: the evaluation bench measures the Inception extractor"
            )
        batch = int(s["eval_batch"])
        # CPU: 20 images (one short batch; the Inception runs at ~10 images/s on 2 cores)
        n = int(self.args.eval_images or (batch * 10 if dev.type == "cuda" else 20))
        big = min(self.args.warmup_iters, 1)  # one untimed call warms a whole evaluation
        with tempfile.TemporaryDirectory() as tmp:
            evaluator = random_evaluator(program, s, dev, Path(tmp))
        _ = evaluator.reference.sqrt_sigma  # computed once per run and cached: not per candidate
        stage = SearchStage(self.ctx, ir)
        genome = stage.start_population()[0]
        # the scoring path of a candidate, with its BatchNorm statistics recalibrated (stage 1)
        generator = stage.scored_generator(genome)
        recal = int(s["recalibrate_bn"])
        self.record(
            "recalibrate",
            "fp32",
            f"BN recalibration: {recal} × {batch} G forwards",
            None,
            lambda: stage.scored_generator(genome),
            None if recal else "recalibrate_bn is 0",
            {"images_per_candidate": recal * batch},
            big,
        )
        rng = np.random.default_rng(1)
        d = evaluator.extractor.feature_dim
        b = rng.standard_normal((d, 2 * d)) / math.sqrt(2 * d)
        sigma_g, mu_g = b @ b.T, rng.standard_normal(d) * 0.1
        self.record(
            "frechet",
            "fp32",
            f"Fréchet distance, d = {d} (numpy, CPU)",
            None,
            lambda: frechet_distance(mu_g, sigma_g, evaluator.reference),
            warmup=big,
        )
        fd_s = self.rows[-1].get("s_per_iteration", 0.0)
        for variant in self.args.variants:
            why = None
            if variant == "channels_last":
                why = (
                    "the Inception port always runs channels_last (every variant above includes it)"
                )

            def one(variant: str = variant) -> None:
                with warnings.catch_warnings():  # FID from n <= 2048 images: singular, fine here
                    warnings.simplefilter("ignore", RuntimeWarning)
                    if variant == "fp32":
                        evaluator.evaluate(generator, n, 0)  # what a round does per candidate
                        return
                    evaluate_generator(
                        generator,
                        n,
                        evaluator.extractor,
                        evaluator.reference,
                        batch_size=evaluator.batch,
                        seed=0,
                        latent_dim=program.latent_dim,
                        device=dev,
                        splits=evaluator.splits,
                        bf16=True,
                    )

            what = f"G → uint8 → 299 → Inception, {n} images, batch {batch}"
            extra = {"images_per_call": n}
            self.record("eval", variant, what, None, one, why, extra, big, autocast=False)
            row = self.rows[-1]
            if "s_per_iteration" in row:
                # per image: the call minus its one Fréchet step
                row["images_per_s"] = n / max(row["s_per_iteration"] - fd_s, 1e-9)


# --------------------------------------------------------------------------- projection
def iterations_per_epoch(ctx: Context, s: Any, n_train: int) -> int:
    """The runtime's own count (`Trainer.iterations_per_epoch`: (N // batch_d) // n_critic)."""
    fake = torch.zeros(1, 1, 1, 1, dtype=torch.uint8).expand(n_train, 1, 1, 1)
    data = ImageData("n", fake, "train")
    return Trainer(dataclasses.replace(ctx, data=data), s, torch.Generator()).iterations_per_epoch()


def projection(
    ctx: Context, rows: list[dict[str, Any]], n_train: int, variants: list[str]
) -> dict[str, Any]:
    """GPU-hours per phase of the spec's whole run, per variant, from the measured rows."""
    program = ctx.program
    measured = {(r["phase"], r["variant"]): r for r in rows if "s_per_iteration" in r}

    def t(phase: str, variant: str, key: str = "s_per_iteration") -> float | None:
        row = measured.get((phase, variant), {})
        return float(row[key]) if key in row else None

    def line(stage: str, phase: str, count: int, how: str, search: bool, **kw: Any) -> None:
        unit = "iterations" if phase != "eval" else "images"
        lines.append(
            {"stage": stage, "phase": phase, "count": count, "unit": unit, "how": how}
            | {"search": search}
            | kw
        )

    lines: list[dict[str, Any]] = []
    ev = program.blocks["evaluate"]
    if not ev.get("stats"):
        how = f"real statistics of {n_train} training images"
        line("reference", "eval", n_train, how, True, candidates=0, recalibrate=False)
    for st in program.stages:
        s, name = st.settings, st.name
        ipe = iterations_per_epoch(ctx, s, n_train)
        if st.kind == "search" and not isinstance(s["network"], str):
            lines.append({"stage": name, "phase": "coupled stage", "note": "not projected"})
        elif st.kind == "search":
            g = program.networks[s["network"]].role == "generator"
            warm_p, round_p = ("warmup_g", "search_g") if g else ("warmup_d", "search_d")
            P, R, E, W = int(s["population"]), int(s["rounds"]), int(s["epochs"]), s["warmup"]
            line(name, warm_p, int(W) * ipe, f"{W} epochs × {ipe} it/epoch", True)
            line(name, round_p, R * E * ipe, f"{R} rounds × {E} epochs × {ipe} it/epoch", True)
            how = f"{R} rounds × P {P} × {s['images']} images"
            recal = g and int(s["recalibrate_bn"]) > 0
            line(
                name,
                "eval",
                R * P * int(s["images"]),
                how,
                True,
                candidates=R * P,
                recalibrate=recal,
            )
        else:
            epochs, final = int(s["epochs"]), int(s["final_images"])
            line(name, "fully_train", epochs * ipe, f"{epochs} epochs × {ipe} it/epoch", False)
            line(
                name, "eval", final, f"final {final} images", False, candidates=1, recalibrate=False
            )
    fd = t("frechet", "fp32") or 0.0
    rc = t("recalibrate", "fp32") or 0.0
    totals: dict[str, Any] = {}
    for variant in variants:
        hours = {True: 0.0, False: 0.0}  # search, fully-train
        ok = True
        for ln in (ln for ln in lines if "count" in ln):
            h: float | None
            if ln["unit"] == "iterations":
                sec = t(ln["phase"], variant)
                h = None if sec is None else ln["count"] * sec / 3600
            else:
                rate = t("eval", variant, "images_per_s")
                per = fd + (rc if ln["recalibrate"] else 0.0)  # per candidate
                h = None if rate is None else (ln["count"] / rate + ln["candidates"] * per) / 3600
            ln.setdefault("hours", {})[variant] = h
            if h is None:
                ok = False
            else:
                hours[ln["search"]] += h
        search_h, full_h = hours[True], hours[False]
        totals[variant] = (
            {
                "search_hours": search_h,
                "search_days": search_h / 24,
                "fully_train_hours": full_h,
                "with_fully_train_days": (search_h + full_h) / 24,
            }
            if ok
            else None
        )
    return {"train_images": n_train, "phases": lines, "totals": totals}


# --------------------------------------------------------------------------- output
def fmt_h(h: float | None) -> str:
    return "n/a" if h is None else f"{h:,.2f}"


def show(console: Console, setup: dict[str, Any], rows: list[dict[str, Any]], proj: Any) -> None:
    cuda = setup["device"] == "cuda"
    t = Table(title=f"Throughput ({setup['summary']})")
    columns = ["phase", "what", "variant", "n_crit", "img/iter", "s/iter", "img/s", "real img/s"]
    for col in columns + (["peak GiB"] if cuda else []):
        t.add_column(col, justify="left" if col in ("phase", "what", "variant") else "right")
    for r in rows:
        ok = r["status"] == "ok"
        per = ("images_per_iteration", "images_per_call", "images_per_candidate")
        cells = [r["phase"], r["what"], r["variant"], str(r.get("n_critic", ""))]
        cells.append(str(next((r[k] for k in per if k in r), "")))
        cells.append(f"{r['s_per_iteration']:.4f}" if ok else "n/a")
        cells += [
            f"{r[k]:,.1f}" if ok and k in r else "" for k in ("images_per_s", "real_images_per_s")
        ]
        t.add_row(*cells, *([str(r.get("peak_gib", ""))] if cuda else []))
    console.print(t)
    for r in rows:
        if r["status"] != "ok":
            console.print(f"• {r['phase']} {r['variant']} {r['status']}")
    unit, variants, tot = ("GPU" if cuda else "CPU"), list(proj["totals"]), proj["totals"]
    title = (
        f"Projection of the whole run of {setup['spec']} ({proj['train_images']:,} training images)"
    )
    p = Table(title=f"{title}, {unit}-hours")
    for col in ("stage", "phase", "count", "how", *[f"{v} h" for v in variants]):
        p.add_column(col, justify="right" if col == "count" or col.endswith(" h") else "left")
    for line in proj["phases"]:
        if "count" not in line:
            p.add_row(line["stage"], line["phase"], "", line["note"], *[""] * len(variants))
            continue
        count = f"{line['count']:,} {line['unit']}"
        hours = [fmt_h(line["hours"][v]) for v in variants]
        p.add_row(line["stage"], line["phase"], count, line["how"], *hours)

    def d(v: str, k: str, f: float = 1.0) -> str:
        return "n/a" if tot[v] is None else f"{tot[v][k] / f:,.2f}"

    paper_figure = "stage 1 + stage 2 (what the paper's figure covers)"
    days = [d(v, "search_days") for v in variants]
    p.add_row("search", f"total, {unit}-days", "", paper_figure, *days, style="bold")
    paper = [f"{PAPER_GPU_DAYS}"] * len(variants)
    p.add_row("paper", "GPU-days", "", "EAGAN, CIFAR-10 search", *paper)
    ratio = [d(v, "search_days", PAPER_GPU_DAYS) + ("×" if tot[v] else "") for v in variants]
    p.add_row("search", "/ paper", "", "", *ratio)
    all_days = [d(v, "with_fully_train_days") for v in variants]
    p.add_row(
        "all",
        f"total, {unit}-days",
        "",
        "search + fully-train (not in the paper's figure)",
        *all_days,
    )
    console.print(p)
    for note in setup["notes"]:
        console.print(f"• {note}")


def notes(program: Program, dev: torch.device, width_scale: float) -> list[str]:
    ref = "" if program.blocks["evaluate"].get("stats") else " and the real reference statistics"
    out = [
        (
            "images/iter = n_critic × (batch_d real + batch_d generated) through D + batch_g generated "
            "in the G step; real img/s counts only the real images (an epoch is one pass over them)"
        ),
        (
            "eval img/s: generated images scored per second, the Fréchet step excluded (timed on its "
            "own row); the Inception has random weights (none offline): throughput does not depend on them"
        ),
        (
            "fp32 is what `eagan run` does; bf16 (autocast around the whole step) and channels_last "
            "are what-ifs"
        ),
        (
            f"the search total covers both search stages{ref}; fully-train is shown apart: the "
            "paper's 1.2 GPU-days is the search alone; not counted: checkpoints, sample grids, selection"
        ),
    ]
    if width_scale != 1.0:
        out.insert(
            0,
            f"REDUCED WIDTH: every cell width × {width_scale}; the projection is NOT comparable "
            "with the paper's 1.2 GPU-days (the evaluation's Inception is full size)",
        )
    if dev.type != "cuda":
        out.insert(
            0,
            "measured on a CPU: the projection is in CPU-days and NOT comparable with the paper's "
            "GPU-days",
        )
    return out


def subset(ap: argparse.ArgumentParser, given: str, known: tuple[str, ...], what: str) -> list[str]:
    """The comma-separated names of `given`, in the order of `known`."""
    names = {p.strip() for p in given.split(",") if p.strip()}
    if bad := names - set(known):
        ap.error(f"unknown {what}(s) {', '.join(sorted(bad))}; known: {', '.join(known)}")
    return [k for k in known if k in names]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_dev = "cuda" if torch.cuda.is_available() else "cpu"
    ap.add_argument("--device", default=default_dev, help="cpu, cuda or cuda:N")
    ap.add_argument("--spec", type=Path, default=SPEC)
    ap.add_argument("--width-scale", type=float, default=1.0, help="every cell width × this")
    ap.add_argument(
        "--repeats",
        type=int,
        default=0,
        help="timed iterations (calls) per row, the median is kept (default 20 on CUDA, 3 on CPU)",
    )
    ap.add_argument("--warmup-iters", type=int, default=2, help="untimed iterations per row")
    ap.add_argument("--phases", default=",".join(PHASES), help=f"a subset of {','.join(PHASES)}")
    ap.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"a subset of {','.join(VARIANTS)}"
    )
    ap.add_argument(
        "--eval-images",
        type=int,
        default=0,
        help="images per timed evaluation call (default eval_batch × 10 on CUDA, 20 on CPU)",
    )
    ap.add_argument("--g-star", default="GStar", help="fixed G standing for G* (stage 2, train)")
    ap.add_argument("--d-star", default="DStarC10", help="fixed D standing for D* (train)")
    ap.add_argument("--train-images", type=int, default=0, help="default: the data set's size")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    phases = set(subset(ap, args.phases, PHASES, "phase"))
    args.variants = subset(ap, args.variants, VARIANTS, "variant")
    dev = torch.device(args.device)
    args.repeats = args.repeats or (20 if dev.type == "cuda" else 3)
    if dev.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available here")
    if args.threads:
        torch.set_num_threads(args.threads)
    if dev.type == "cuda":  # "cuda" means the current device; name its index for the queries below
        dev = torch.device("cuda", torch.cuda.current_device() if dev.index is None else dev.index)
        torch.cuda.set_device(dev)

    program = scaled_program(load(args.spec), args.width_scale)
    n_train = args.train_images or TRAIN_IMAGES.get(program.data.name, 0)
    if not n_train:
        ap.error(f"unknown size of data set {program.data.name}: pass --train-images")
    cuda = dev.type == "cuda"
    name = torch.cuda.get_device_name(dev) if cuda else platform.processor() or platform.machine()
    spec = args.spec.relative_to(ROOT) if args.spec.is_relative_to(ROOT) else args.spec
    res = program.data.resolution
    setup = {
        "spec": str(spec),
        "device": dev.type,
        "device_name": name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "width_scale": args.width_scale,
        "repeats": args.repeats,
        "warmup_iters": args.warmup_iters,
        "resolution": res,
        "tf32_matmul_cudnn": (
            (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
            if cuda
            else None
        ),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "inception_weights": "random (throughput only)",
        "notes": notes(program, dev, args.width_scale),
        "summary": f"{spec}, {res}×{res}, widths × {args.width_scale}, {dev} ({name}), torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats} "
        f"after {args.warmup_iters} untimed",
    }
    print(f"measuring: {setup['summary']}", flush=True)
    bench = Bench(program, dev, args)
    parts: list[tuple[set[str], Callable[[], None]]] = [
        ({"warmup_g", "search_g"}, functools.partial(bench.search, "generator", phases)),
        ({"warmup_d", "search_d"}, functools.partial(bench.search, "discriminator", phases)),
        ({"fully_train"}, bench.fully_train),
        ({"eval"}, bench.evaluation),
    ]
    for wanted, part in parts:
        if phases & wanted:
            part()
            gc.collect()  # the networks of one part are freed before the next is built
            if cuda:
                torch.cuda.empty_cache()
    proj = projection(bench.ctx, bench.rows, n_train, args.variants)
    show(Console(width=200), setup, bench.rows, proj)
    if args.json:
        out = {
            "setup": setup,
            "rows": bench.rows,
            "projection": proj,
            "paper_gpu_days": PAPER_GPU_DAYS,
        }
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
