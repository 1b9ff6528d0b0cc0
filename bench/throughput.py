"""Throughput of the search's training steps and of evaluation, and a projection of the whole
CIFAR-10 search in GPU-days from them, beside the paper's 1.2 GPU-days.

    python bench/throughput.py --device cuda                                 # paper widths, everything
    python bench/throughput.py --device cpu --width-scale 0.25 --repeats 2   # a quick check on a CPU
    python bench/throughput.py --device cuda --phases search_g,eval --json throughput.json

Phases (built from the spec by the project's checker and compiler, run by the runtime's own
training iteration `runtime.search.Trainer.iteration` = n_critic × `d_step` + one `g_step`, on
CIFAR-shaped random uint8 data held on the device as `runtime.data.ImageData`, exactly as a run
holds CIFAR-10):

  warmup_g     stage-1 warm-up: SuperNet-G on a fresh random genome every iteration against the
               fixed D (which is trained too: many-to-one, Eq. 7-8)
  search_g     a stage-1 round: SuperNet-G on a uniformly drawn member of a population of P genomes
  warmup_d     stage-2 warm-up: SuperNet-D on a fresh random genome against a copy of G*
  search_d     a stage-2 round: SuperNet-D on a population member against its own copy of G*
               (one-to-one, Eq. 10; one copy here: the P copies cost memory, not time)
  fully_train  the fully-train stage: the published G* and D* subnets, with the EMA of G
  eval         scoring one candidate: the generator at the spec's `eval_batch`, uint8, TF1 resize
               to 299, Inception pool3 + logits, streaming statistics (`evaluate_generator`); the
               Fréchet step and stage 1's BN recalibration are timed on their own

What an image count means: a training iteration processes n_critic × (batch_d real + batch_d
generated) images through D plus batch_g generated images in the G step ("images/iter"); "real
img/s" counts only the real images, the unit of an epoch. Evaluation counts generated images
scored. The Inception has random weights (the real ones are not available offline): throughput
does not depend on the weights' values.

Variants: `fp32` (what the runtime does), `bf16` (the networks' forward passes under bfloat16
autocast, backward outside it; for evaluation the extractor's own `bf16=True` option), and
`channels_last` (modules and D's input in channels_last). A variant the device cannot run is
reported "n/a" with the reason. Neither variant is used by `eagan run` today.

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
import gc
import json
import math
import platform
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from statistics import median
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from bench.supernet import scaled
from eagan_dsl.checker import load
from eagan_dsl.genome import GenomeSpace
from eagan_dsl.ir import Program, StageIR
from runtime.data import ImageData
from runtime.evolution import initial_population
from runtime.metrics import ReferenceStats, evaluate_generator, frechet_distance
from runtime.metrics.inception import InceptionV3FID, random_inception_state_dict
from runtime.nets import build_fixed, build_supernet
from runtime.search import EvalWrapper, Member, Trainer, input_resolution, recalibrate_bn

SPEC = ROOT / "specs" / "cifar10.eagan"
PAPER_GPU_DAYS = (
    1.2  # paper abstract / §5.2: the CIFAR-10 search (both stages), fully-train not included
)
# training images per epoch of each data set the runtime reads (runtime/data/)
TRAIN_IMAGES = {"cifar10": 50_000, "stl10": 105_000, "digits": 1_297}
PHASES = ("warmup_g", "search_g", "warmup_d", "search_d", "fully_train", "eval")
VARIANTS = ("fp32", "bf16", "channels_last")
DATA_ROWS = 2048  # random "real" images held on the device (the gather costs the same for 50,000)


def trainer_context(program: Program, data: ImageData, dev: torch.device) -> SimpleNamespace:
    """The parts of `runtime.search.Context` a `Trainer` reads (one process: no data parallelism)."""
    ctx = SimpleNamespace(program=program, data=data, device=dev)
    try:
        # data parallelism, where the runtime has it: one process here (world size 1)
        from runtime.dist import Dist
    except ImportError:
        pass
    else:
        ctx.dist = Dist()
    return ctx


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


def wrap(
    fn: Callable[[torch.Tensor], torch.Tensor], variant: str, dev: torch.device, image_input: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A network callable in a variant: forward under bf16 autocast (the loss and backward stay
    outside, as torch.amp recommends) or with the image input in channels_last."""
    if variant == "bf16":

        def amp(x: torch.Tensor) -> torch.Tensor:
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                return fn(x).float()

        return amp
    if variant == "channels_last" and image_input:
        return lambda x: fn(x.contiguous(memory_format=torch.channels_last))
    return fn


def set_format(modules: list[torch.nn.Module], variant: str) -> None:
    fmt = torch.channels_last if variant == "channels_last" else torch.contiguous_format
    for m in modules:
        m.to(memory_format=fmt)


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


def stats_row(times: list[float]) -> dict[str, float]:
    return {"s_per_iteration": median(times), "s_min": min(times), "repeats": len(times)}


# --------------------------------------------------------------------------- the program
def scaled_program(program: Program, scale: float) -> Program:
    """The program with every cell width × scale (bench/supernet.py's `scaled`)."""
    if scale == 1.0:
        return program
    nets = {name: scaled(net, scale) for name, net in program.networks.items()}
    return dataclasses.replace(program, networks=nets)


def stage_of(program: Program, role: str) -> StageIR | None:
    """The search stage that searches the network of `role` (generator: stage 1, D: stage 2)."""
    for st in program.stages:
        net = st.settings.get("network")
        if st.kind == "search" and isinstance(net, str) and program.networks[net].role == role:
            return st
    return None


def train_stage(program: Program) -> StageIR | None:
    return next((st for st in program.stages if st.kind == "train"), None)


def fixed_named(program: Program, want: str, role: str) -> str:
    """A fixed network of `role`: `want` if the spec has it, else its first one of that role."""
    if want in program.fixed and program.network(want).role == role:
        return want
    for name in program.fixed:
        if program.network(name).role == role:
            return name
    raise SystemExit(f"{program.file}: no fixed {role} to stand for the searched one")


class Bench:
    def __init__(self, program: Program, dev: torch.device, args: argparse.Namespace) -> None:
        self.program = program
        self.dev = dev
        self.args = args
        res, ch = program.data.resolution, program.data.channels
        gen = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (DATA_ROWS, ch, res, res), dtype=torch.uint8, generator=gen)
        self.data = ImageData(program.data.name, images.to(dev), reference_split="train")
        self.ctx = trainer_context(program, self.data, dev)
        self.rows: list[dict[str, Any]] = []
        self.bf16_why = bf16_available(dev)

    def trainer(self, s: Any) -> Trainer:
        return Trainer(self.ctx, s, torch.Generator().manual_seed(0))  # type: ignore[arg-type]

    def record(
        self,
        phase: str,
        variant: str,
        what: str,
        s: Any | None,
        fn: Callable[[], Any] | None,
        reason: str | None = None,
        extra: dict[str, Any] | None = None,
        warmup: int | None = None,
    ) -> None:
        row: dict[str, Any] = {"phase": phase, "variant": variant, "what": what, **(extra or {})}
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
        if reason is None and fn is not None:
            try:
                with peak_memory(self.dev, row):
                    times = timed(
                        fn,
                        self.dev,
                        self.args.warmup_iters if warmup is None else warmup,
                        self.args.repeats,
                    )
            except Exception as e:
                if variant == "fp32":
                    raise
                reason = f"{type(e).__name__}: {str(e).splitlines()[0][:100] if str(e) else ''}"
            else:
                row.update(stats_row(times))
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

    def variant_reason(self, variant: str) -> str | None:
        return self.bf16_why if variant == "bf16" else None

    # ------------------------------------------------------------------------ stage 1
    def stage1(self, phases: set[str]) -> None:
        s1 = stage_of(self.program, "generator")
        if s1 is None:
            return
        s, program, dev = dict(s1.settings), self.program, self.dev
        lr, betas = s["lr"], (float(s["betas"][0]), float(s["betas"][1]))
        net = program.networks[s["network"]]
        sup = build_supernet(program, net.name, 1, dev)
        opp = build_fixed(program, str(s["against"]), 2, dev).train()
        space = GenomeSpace(net, input_resolution(program, net))
        population = initial_population(space, int(s["population"]), random.Random(0))
        for variant in VARIANTS:
            rng = random.Random(1)  # every variant trains the same sequence of genomes
            set_format([sup, opp], variant)
            gm = Member(sup, lr["g"], betas, s["ema"])
            dm = Member(opp, lr["d"], betas, None)
            tr = self.trainer(s)
            d_fn = wrap(opp, variant, dev, image_input=True)

            def warm(
                tr: Trainer = tr,
                gm: Member = gm,
                dm: Member = dm,
                d_fn: Any = d_fn,
                variant: str = variant,
                rng: random.Random = rng,
            ) -> None:
                genome = space.random(rng)  # §5.1: a fresh valid genome every iteration
                tr.iteration(
                    None,
                    None,
                    gm,
                    dm,
                    g_fn=wrap(lambda z: sup(z, genome), variant, dev, False),
                    d_fn=d_fn,
                )

            def round_(
                tr: Trainer = tr,
                gm: Member = gm,
                dm: Member = dm,
                d_fn: Any = d_fn,
                variant: str = variant,
                rng: random.Random = rng,
            ) -> None:
                genome = population[rng.randrange(len(population))]  # Alg. 1 l.8
                tr.iteration(
                    None,
                    None,
                    gm,
                    dm,
                    g_fn=wrap(lambda z: sup(z, genome), variant, dev, False),
                    d_fn=d_fn,
                )

            why = self.variant_reason(variant)
            if "warmup_g" in phases:
                self.record(
                    "warmup_g",
                    variant,
                    f"SuperNet-G, random genome, vs {s['against']}",
                    s,
                    warm,
                    why,
                )
            if "search_g" in phases:
                self.record(
                    "search_g",
                    variant,
                    f"SuperNet-G, population of {len(population)}, vs {s['against']}",
                    s,
                    round_,
                    why,
                )
            del gm, dm, tr

    # ------------------------------------------------------------------------ stage 2
    def stage2(self, phases: set[str]) -> None:
        s2 = stage_of(self.program, "discriminator")
        if s2 is None:
            return
        s, program, dev = dict(s2.settings), self.program, self.dev
        lr, betas = s["lr"], (float(s["betas"][0]), float(s["betas"][1]))
        net = program.networks[s["network"]]
        sup = build_supernet(program, net.name, 3, dev)
        g_name = fixed_named(program, self.args.g_star, "generator")
        g_star = build_fixed(program, g_name, 4, dev).train()
        space = GenomeSpace(net, input_resolution(program, net))
        population = initial_population(space, int(s["population"]), random.Random(0))
        for variant in VARIANTS:
            rng = random.Random(1)  # every variant trains the same sequence of genomes
            set_format([sup, g_star], variant)
            dm = Member(sup, lr["d"], betas, None)
            gm = Member(
                g_star, lr["g"], betas, s["ema"]
            )  # stage 2's G* copy: EMA as the stage says
            tr = self.trainer(s)
            g_fn = wrap(g_star, variant, dev, image_input=False)

            def warm(
                tr: Trainer = tr,
                gm: Member = gm,
                dm: Member = dm,
                g_fn: Any = g_fn,
                variant: str = variant,
                rng: random.Random = rng,
            ) -> None:
                genome = space.random(rng)
                tr.iteration(
                    None,
                    None,
                    gm,
                    dm,
                    g_fn=g_fn,
                    d_fn=wrap(lambda x: sup(x, genome), variant, dev, True),
                )

            def round_(
                tr: Trainer = tr,
                gm: Member = gm,
                dm: Member = dm,
                g_fn: Any = g_fn,
                variant: str = variant,
                rng: random.Random = rng,
            ) -> None:
                genome = population[rng.randrange(len(population))]
                tr.iteration(
                    None,
                    None,
                    gm,
                    dm,
                    g_fn=g_fn,
                    d_fn=wrap(lambda x: sup(x, genome), variant, dev, True),
                )

            why = self.variant_reason(variant)
            if "warmup_d" in phases:
                self.record(
                    "warmup_d", variant, f"SuperNet-D, random genome, vs {g_name}", s, warm, why
                )
            if "search_d" in phases:
                self.record(
                    "search_d",
                    variant,
                    f"SuperNet-D, population of {len(population)}, vs {g_name}",
                    s,
                    round_,
                    why,
                )
            del gm, dm, tr

    # ------------------------------------------------------------------------ fully-train
    def fully_train(self) -> None:
        st = train_stage(self.program)
        if st is None:
            return
        s, program, dev = dict(st.settings), self.program, self.dev
        lr, betas = s["lr"], (float(s["betas"][0]), float(s["betas"][1]))
        g_name = fixed_named(program, self.args.g_star, "generator")
        d_name = fixed_named(program, self.args.d_star, "discriminator")
        G = build_fixed(program, g_name, 5, dev).train()
        D = build_fixed(program, d_name, 6, dev).train()
        for variant in VARIANTS:
            set_format([G, D], variant)
            gm = Member(G, lr["g"], betas, s["ema"])
            dm = Member(D, lr["d"], betas, None)
            tr = self.trainer(s)
            g_fn, d_fn = wrap(G, variant, dev, False), wrap(D, variant, dev, True)

            def step(
                tr: Trainer = tr,
                gm: Member = gm,
                dm: Member = dm,
                g_fn: Any = g_fn,
                d_fn: Any = d_fn,
            ) -> None:
                tr.iteration(None, None, gm, dm, g_fn=g_fn, d_fn=d_fn)

            ema = f", EMA {s['ema']}" if s["ema"] else ""
            self.record(
                "fully_train",
                variant,
                f"{g_name} + {d_name} subnets{ema}",
                s,
                step,
                self.variant_reason(variant),
            )
            del gm, dm, tr

    # ------------------------------------------------------------------------ evaluation
    def evaluation(self) -> None:
        program, dev = self.program, self.dev
        s1 = stage_of(program, "generator") or train_stage(program)
        assert s1 is not None
        s = dict(s1.settings)
        if s["extractor"] != "inception":
            raise SystemExit(
                f"{program.file}: the evaluation bench measures the Inception extractor"
            )
        batch, splits = int(s["eval_batch"]), int(s["splits"])
        # CPU: 20 images (one short batch; the Inception runs at ~10 images/s on 2 cores)
        n = int(self.args.eval_images or (batch * 10 if dev.type == "cuda" else 20))
        big = min(self.args.warmup_iters, 1)  # one untimed call warms a whole evaluation
        net = program.networks[str(s.get("network") or "G")]
        sup = build_supernet(program, net.name, 7, dev)
        genome = GenomeSpace(net, input_resolution(program, net)).random(random.Random(2))
        fn: Callable[[torch.Tensor], torch.Tensor] = lambda z: sup(z, genome)
        extractor = InceptionV3FID(quantize=str(s["quantize"]))  # type: ignore[arg-type]
        extractor.load_state_dict(random_inception_state_dict(0))
        extractor.to(dev)
        rng = np.random.default_rng(0)
        d = extractor.feature_dim
        a = rng.standard_normal((d, 2 * d)) / math.sqrt(2 * d)
        ref = ReferenceStats(rng.standard_normal(d) * 0.1, a @ a.T, {"source": "random"})
        _ = ref.sqrt_sigma  # computed once per run and cached: not a per-candidate cost
        b = rng.standard_normal((d, 2 * d)) / math.sqrt(2 * d)
        sigma_g, mu_g = b @ b.T, rng.standard_normal(d) * 0.1

        # BN recalibration of a stage-1 candidate (recalibrate_bn batches of eval_batch, train mode)
        recal = int(s["recalibrate_bn"])
        self.record(
            "recalibrate",
            "fp32",
            f"BN recalibration: {recal} × {batch} G forwards",
            None,
            lambda: recalibrate_bn(fn, sup, recal, batch, program.latent_dim, dev, 0),
            None if recal else "recalibrate_bn is 0",
            {"images_per_candidate": recal * batch},
            big,
        )
        self.record(
            "frechet",
            "fp32",
            f"Fréchet distance, d = {d} (numpy, CPU)",
            None,
            lambda: frechet_distance(mu_g, sigma_g, ref),
            warmup=big,
        )
        fd_s = next(r for r in self.rows if r["phase"] == "frechet").get("s_per_iteration", 0.0)
        for variant in VARIANTS:
            why = self.variant_reason(variant)
            if variant == "channels_last":
                why = (
                    "the Inception port always runs channels_last (every variant above includes it)"
                )

            def one(variant: str = variant) -> None:
                with (
                    warnings.catch_warnings()
                ):  # FID from n <= 2048 images: singular, fine for timing
                    warnings.simplefilter("ignore", RuntimeWarning)
                    evaluate_generator(
                        EvalWrapper(fn, sup),
                        n,
                        extractor,
                        ref,
                        batch_size=batch,
                        seed=0,
                        latent_dim=program.latent_dim,
                        device=dev,
                        splits=splits,
                        bf16=variant == "bf16",
                    )

            what = f"G → uint8 → 299 → Inception, {n} images, batch {batch}"
            self.record("eval", variant, what, None, one, why, {"images_per_call": n}, big)
            row = self.rows[-1]
            if "s_per_iteration" in row:
                # per image: the call minus its one Fréchet step
                row["images_per_s"] = n / max(row["s_per_iteration"] - fd_s, 1e-9)


# --------------------------------------------------------------------------- projection
def iterations_per_epoch(program: Program, s: Any, n_train: int) -> int:
    """The runtime's own count (`Trainer.iterations_per_epoch`: (N // batch_d) // n_critic)."""
    fake = torch.zeros(1, 1, 1, 1, dtype=torch.uint8).expand(n_train, 1, 1, 1)
    ctx = trainer_context(program, ImageData("n", fake, "train"), torch.device("cpu"))
    return Trainer(ctx, s, torch.Generator()).iterations_per_epoch()  # type: ignore[arg-type]


def projection(program: Program, rows: list[dict[str, Any]], n_train: int) -> dict[str, Any]:
    """GPU-hours per phase of the spec's whole run, per variant, from the measured rows."""

    def t(phase: str, variant: str) -> float | None:
        for r in rows:
            if r["phase"] == phase and r["variant"] == variant and "s_per_iteration" in r:
                return float(r["s_per_iteration"])
        return None

    def eval_rate(variant: str) -> float | None:
        for r in rows:
            if r["phase"] == "eval" and r["variant"] == variant and "images_per_s" in r:
                return float(r["images_per_s"])
        return None

    out: dict[str, Any] = {"train_images": n_train, "phases": [], "totals": {}}
    lines: list[dict[str, Any]] = []
    for st in program.stages:
        s = st.settings
        if st.kind == "search":
            net = s["network"]
            if not isinstance(net, str):
                lines.append({"stage": st.name, "phase": "coupled stage", "note": "not projected"})
                continue
            g = program.networks[net].role == "generator"
            warm_p, round_p = ("warmup_g", "search_g") if g else ("warmup_d", "search_d")
            ipe = iterations_per_epoch(program, s, n_train)
            P, R, E = int(s["population"]), int(s["rounds"]), int(s["epochs"])
            recal = g and int(s["recalibrate_bn"]) > 0
            lines += [
                {
                    "stage": st.name,
                    "phase": warm_p,
                    "count": int(s["warmup"]) * ipe,
                    "unit": "iterations",
                    "how": f"{s['warmup']} epochs × {ipe} it/epoch",
                    "search": True,
                },
                {
                    "stage": st.name,
                    "phase": round_p,
                    "count": R * E * ipe,
                    "unit": "iterations",
                    "how": f"{R} rounds × {E} epochs × {ipe} it/epoch",
                    "search": True,
                },
                {
                    "stage": st.name,
                    "phase": "eval",
                    "count": R * P * int(s["images"]),
                    "unit": "images",
                    "how": f"{R} rounds × P {P} × {s['images']} images",
                    "search": True,
                    "candidates": R * P,
                    "recalibrate": recal,
                },
            ]
        else:
            ipe = iterations_per_epoch(program, s, n_train)
            lines += [
                {
                    "stage": st.name,
                    "phase": "fully_train",
                    "count": int(s["epochs"]) * ipe,
                    "unit": "iterations",
                    "how": f"{s['epochs']} epochs × {ipe} it/epoch",
                    "search": False,
                },
                {
                    "stage": st.name,
                    "phase": "eval",
                    "count": int(s["final_images"]),
                    "unit": "images",
                    "how": f"final {s['final_images']} images",
                    "search": False,
                    "candidates": 1,
                    "recalibrate": False,
                },
            ]
    ev = program.blocks["evaluate"]
    if not ev.get("stats"):
        lines.insert(
            0,
            {
                "stage": "reference",
                "phase": "eval",
                "count": n_train,
                "unit": "images",
                "how": f"real statistics of {n_train} training images",
                "search": True,
                "candidates": 0,
                "recalibrate": False,
            },
        )
    fd = t("frechet", "fp32") or 0.0
    rc = t("recalibrate", "fp32") or 0.0
    for variant in VARIANTS:
        search_h = full_h = 0.0
        ok = True
        for line in lines:
            if "count" not in line:
                continue
            if line["unit"] == "iterations":
                sec = t(line["phase"], variant)
                h = None if sec is None else line["count"] * sec / 3600
            else:
                rate = eval_rate(variant)
                h = (
                    None
                    if rate is None
                    else (
                        line["count"] / rate
                        + line["candidates"] * (fd + (rc if line["recalibrate"] else 0.0))
                    )
                    / 3600
                )
            line.setdefault("hours", {})[variant] = h
            if h is None:
                ok = False
            elif line["search"]:
                search_h += h
            else:
                full_h += h
        out["totals"][variant] = (
            {
                "search_hours": search_h,
                "search_days": search_h / 24,
                "fully_train_hours": full_h,
                "with_fully_train_days": (search_h + full_h) / 24,
            }
            if ok
            else None
        )
    out["phases"] = lines
    return out


# --------------------------------------------------------------------------- output
def fmt_h(h: float | None) -> str:
    return "n/a" if h is None else f"{h:,.2f}"


def show(
    console: Console, setup: dict[str, Any], rows: list[dict[str, Any]], proj: dict[str, Any] | None
) -> None:
    t = Table(title=f"Throughput ({setup['summary']})")
    for col, j in (
        ("phase", "left"),
        ("what", "left"),
        ("variant", "left"),
        ("n_crit", "right"),
        ("img/iter", "right"),
        ("s/iter", "right"),
        ("img/s", "right"),
        ("real img/s", "right"),
    ):
        t.add_column(col, justify=j)  # type: ignore[arg-type]
    cuda = setup["device"] == "cuda"
    if cuda:
        t.add_column("peak GiB", justify="right")
    for r in rows:
        ok = r["status"] == "ok"
        ipi = r.get(
            "images_per_iteration", r.get("images_per_call", r.get("images_per_candidate", ""))
        )
        cells = [
            r["phase"],
            r["what"],
            r["variant"],
            str(r.get("n_critic", "")),
            f"{ipi}",
            f"{r['s_per_iteration']:.4f}" if ok else "n/a",
            f"{r['images_per_s']:,.1f}" if ok and "images_per_s" in r else "",
            f"{r['real_images_per_s']:,.1f}" if ok and "real_images_per_s" in r else "",
        ]
        if cuda:
            cells.append(f"{r.get('peak_gib', '')}")
        t.add_row(*cells)
    console.print(t)
    for r in rows:
        if r["status"] != "ok":
            console.print(f"• {r['phase']} {r['variant']} {r['status']}")
    if proj is None:
        return
    unit = "GPU" if cuda else "CPU"
    p = Table(
        title=f"Projection of the whole run of {setup['spec']} ({proj['train_images']:,} training images), {unit}-hours"
    )
    for col, j in (("stage", "left"), ("phase", "left"), ("count", "right"), ("how", "left")):
        p.add_column(col, justify=j)  # type: ignore[arg-type]
    for v in VARIANTS:
        p.add_column(f"{v} h", justify="right")
    for line in proj["phases"]:
        if "count" not in line:
            p.add_row(line["stage"], line["phase"], "", line["note"], *[""] * len(VARIANTS))
            continue
        p.add_row(
            line["stage"],
            line["phase"],
            f"{line['count']:,} {line['unit']}",
            line["how"],
            *[fmt_h(line["hours"][v]) for v in VARIANTS],
        )
    tot = proj["totals"]
    d = lambda v, k: "n/a" if tot[v] is None else f"{tot[v][k]:,.2f}"
    p.add_row(
        "search",
        f"total, {unit}-days",
        "",
        "stage 1 + stage 2 (what the paper's figure covers)",
        *[d(v, "search_days") for v in VARIANTS],
        style="bold",
    )
    p.add_row(
        "paper", "GPU-days", "", "EAGAN, CIFAR-10 search", *[f"{PAPER_GPU_DAYS}"] * len(VARIANTS)
    )
    p.add_row(
        "search",
        "/ paper",
        "",
        "",
        *[
            "n/a" if tot[v] is None else f"{tot[v]['search_days'] / PAPER_GPU_DAYS:,.2f}×"
            for v in VARIANTS
        ],
    )
    p.add_row(
        "all",
        f"total, {unit}-days",
        "",
        "search + fully-train (not in the paper's figure)",
        *[d(v, "with_fully_train_days") for v in VARIANTS],
    )
    console.print(p)
    for note in setup["notes"]:
        console.print(f"• {note}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="cpu, cuda or cuda:N",
    )
    ap.add_argument("--spec", type=Path, default=SPEC)
    ap.add_argument(
        "--width-scale", type=float, default=1.0, help="scale every cell width (1 = the spec's)"
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=0,
        help="timed iterations (calls) per row, the median is kept (default 20 on CUDA, 3 on CPU)",
    )
    ap.add_argument(
        "--warmup-iters", type=int, default=2, help="untimed iterations before each row"
    )
    ap.add_argument(
        "--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}"
    )
    ap.add_argument(
        "--eval-images",
        type=int,
        default=0,
        help="images per timed evaluation call (default eval_batch × 10 on CUDA, 20 on CPU)",
    )
    ap.add_argument(
        "--g-star", default="GStar", help="fixed generator standing for G* (stage 2, fully-train)"
    )
    ap.add_argument(
        "--d-star", default="DStarC10", help="fixed discriminator standing for D* (fully-train)"
    )
    ap.add_argument(
        "--train-images", type=int, default=0, help="training set size (default: the data set's)"
    )
    ap.add_argument(
        "--threads", type=int, default=0, help="torch threads on CPU (0: torch's default)"
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    if bad := phases - set(PHASES):
        ap.error(f"unknown phase(s) {', '.join(sorted(bad))}; known: {', '.join(PHASES)}")
    dev = torch.device(args.device)
    args.repeats = args.repeats or (20 if dev.type == "cuda" else 3)
    if dev.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available here")
    if args.threads:
        torch.set_num_threads(args.threads)
    if dev.type == "cuda":  # "cuda" means the current device; name its index for the queries below
        dev = torch.device("cuda", torch.cuda.current_device() if dev.index is None else dev.index)
        torch.cuda.set_device(dev)

    full = load(args.spec)
    program = scaled_program(full, args.width_scale)
    n_train = args.train_images or TRAIN_IMAGES.get(program.data.name, 0)
    if not n_train:
        ap.error(f"unknown size of data set {program.data.name}: pass --train-images")
    name = (
        torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else (platform.processor() or platform.machine())
    )
    ref_note = (
        "" if program.blocks["evaluate"].get("stats") else " and the real reference statistics"
    )
    notes = [
        (
            "images/iter = n_critic × (batch_d real + batch_d generated) through D + batch_g generated "
            "in the G step; real img/s counts only the real images (an epoch is one pass over them)"
        ),
        (
            "eval img/s: generated images scored per second, the Fréchet step excluded (timed on its "
            "own row); the Inception has random weights (none offline): throughput does not depend on them"
        ),
        "fp32 is what `eagan run` does; bf16 (autocast around the forwards) and channels_last are what-ifs",
        (
            f"the search total covers both search stages{ref_note}; fully-train is shown apart: the "
            "paper's 1.2 GPU-days is the search alone; not counted: checkpoints, sample grids, selection"
        ),
    ]
    if args.width_scale != 1.0:
        notes.insert(
            0,
            f"REDUCED WIDTH: every cell width × {args.width_scale}; the projection is NOT comparable "
            "with the paper's 1.2 GPU-days (the evaluation's Inception is full size)",
        )
    if dev.type != "cuda":
        notes.insert(
            0,
            "measured on a CPU: the projection is in CPU-days and NOT comparable with the paper's GPU-days",
        )
    tf32 = (
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        if dev.type == "cuda"
        else None
    )
    setup = {
        "spec": str(args.spec.relative_to(ROOT) if args.spec.is_relative_to(ROOT) else args.spec),
        "device": dev.type,
        "device_name": name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "width_scale": args.width_scale,
        "repeats": args.repeats,
        "warmup_iters": args.warmup_iters,
        "resolution": program.data.resolution,
        "tf32_matmul_cudnn": tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "inception_weights": "random (throughput only)",
        "notes": notes,
    }
    setup["summary"] = (
        f"{setup['spec']}, {program.data.resolution}×{program.data.resolution}, widths × {args.width_scale}, "
        f"{dev} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"median of {args.repeats} after {args.warmup_iters} untimed"
    )
    print(f"measuring: {setup['summary']}", flush=True)
    bench = Bench(program, dev, args)
    for wanted, part in (
        ({"warmup_g", "search_g"}, bench.stage1),
        ({"warmup_d", "search_d"}, bench.stage2),
        ({"fully_train"}, lambda _: bench.fully_train()),
        ({"eval"}, lambda _: bench.evaluation()),
    ):
        if phases & wanted:
            part(phases)
            gc.collect()  # the networks of one part are freed before the next is built
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    proj = projection(program, bench.rows, n_train)
    show(Console(width=200), setup, bench.rows, proj)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "setup": setup,
                    "rows": bench.rows,
                    "projection": proj,
                    "paper_gpu_days": PAPER_GPU_DAYS,
                },
                indent=2,
                default=str,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
