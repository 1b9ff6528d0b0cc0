"""`eagan run`: carry out every stage of a spec, writing the run directory as it goes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from eagan_dsl.checker import load
from eagan_dsl.ir import Program, StageIR
from runtime.data import load_training_data
from runtime.display import Reporter
from runtime.evaluator import Evaluator
from runtime.plots import curves_plot, pareto_plot
from runtime.rundir import RunDir, environment
from runtime.search import Context, StageResult, run_fully_train, run_search

QUICK = {"rounds": 2, "epochs": 1, "warmup": 1, "population": 4, "images": 256, "final_images": 512}


def quick_program(program: Program) -> Program:
    """`--quick`: the same spec with rounds, epochs and images shrunk, for a smoke test."""
    stages = []
    for st in program.stages:
        s = dict(st.settings)
        for key, small in QUICK.items():
            if key in s and isinstance(s[key], int):
                s[key] = min(s[key], small)
        if st.kind == "train":
            s["epochs"] = min(int(s["epochs"]), 2)
        stages.append(dataclasses.replace(st, settings=MappingProxyType(s)))
    return dataclasses.replace(program, stages=tuple(stages))


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available here; use --device cpu")
    return torch.device(device)


def _sample_writer(run: RunDir, program: Program, device: torch.device, seed: int) -> Callable[[str, Any], None]:
    from torchvision.utils import save_image

    z = torch.Generator().manual_seed(seed)
    fixed = torch.randn(64, program.latent_dim, generator=z)

    def write(name: str, generate: Any) -> None:
        was = generate.training if isinstance(generate, nn.Module) else None
        if isinstance(generate, nn.Module):
            generate.eval()
        with torch.no_grad():
            images = generate(fixed.to(device)).float().cpu()
        if isinstance(generate, nn.Module) and was is not None:
            generate.train(was)
        save_image(images * 0.5 + 0.5, run.samples / f"{name}.png", nrow=8)

    return write


def _plots(run: RunDir, stage: str, history: list[dict[str, Any]]) -> None:
    rounds = [r for r in history if r.get("kind") == "round" and r["stage"] == stage]
    cands = [r for r in history if r.get("kind") == "candidate" and r["stage"] == stage]
    if not rounds:
        return
    last = rounds[-1]["round"]
    mine = [c for c in cands if c["round"] == last]
    num = lambda v: float(v) if isinstance(v, (int, float)) else float("inf")  # noqa: E731
    pareto_plot(
        run.plots / f"{stage}_pareto_round{last + 1:02d}.png",
        f"{stage}: round {last + 1}",
        [num(c["is"]) for c in mine],
        [num(c["fid"]) for c in mine],
        [int(c.get("rank", 1)) for c in mine],
    )
    xs = [r["round"] + 1 for r in rounds]
    curves_plot(run.plots / f"{stage}_is.png", f"{stage}: IS of the best", {"IS": (xs, [num(r["best_is"]) for r in rounds])}, "IS")
    curves_plot(run.plots / f"{stage}_fid.png", f"{stage}: FID of the best", {"FID": (xs, [num(r["best_fid"]) for r in rounds])}, "FID")


def run(
    spec: Path,
    out: Path,
    device: str = "auto",
    seed: int | None = None,
    quick: bool = False,
    force: bool = False,
    inception_weights: str | None = None,
    reporter: Reporter | None = None,
) -> Path:
    """Check SPEC and run all its stages into OUT."""
    program = load(spec)
    if quick:
        program = quick_program(program)
    return run_program(program, spec, out, device, seed, force, inception_weights, reporter, quick)


def run_program(
    program: Program,
    spec: Path,
    out: Path,
    device: str = "auto",
    seed: int | None = None,
    force: bool = False,
    inception_weights: str | None = None,
    reporter: Reporter | None = None,
    quick: bool = False,
    observe: Callable[[str, dict[str, Any]], None] | None = None,
) -> Path:
    dev = resolve_device(device)
    seed = int(program.blocks["run"]["seed"]) if seed is None else seed
    torch.manual_seed(seed)
    run_dir = RunDir.create(out, spec, force=force)
    env = environment(str(dev), seed)
    env["quick"] = quick
    run_dir.write_resolved(program, env)
    history = run_dir.history()
    data = load_training_data(program.data, dev)
    report = reporter or Reporter()
    evaluator = Evaluator(program, program.blocks["evaluate"], dev, inception_weights)
    ctx = Context(
        program=program,
        data=data,
        device=dev,
        seed=seed,
        evaluators={"search": evaluator, "final": evaluator},
        report=report,
        history=history,
        samples=_sample_writer(run_dir, program, dev, seed),
        observe=observe,
    )
    if quick:
        report.message("--quick: rounds, epochs, population and images are shrunk for a smoke test")
    with report:
        for stage in program.stages:
            if stage.kind == "search":
                result = run_search(ctx, stage)
                ctx.results[stage.name] = result
                ctx.notify("result", stage=stage.name, module=result.module, genome=result.genome)
                _plots(run_dir, stage.name, history.records)
                report.message(f"[{stage.name}] hands on {_encode(program, result)}")
            else:
                _finish(ctx, run_dir, stage)
    return out


def _encode(program: Program, result: StageResult) -> str:
    from eagan_dsl.genome import GenomeSpace

    return GenomeSpace(program.networks[result.genome.network]).encode(result.genome)


def _finish(ctx: Context, run_dir: RunDir, stage: StageIR) -> None:
    from compiler.export import export_network

    from runtime.search import resolve_source

    G, D, ema, metrics = run_fully_train(ctx, stage)
    g_final = ema.module if ema is not None else G
    for module, key, role in ((g_final, "g", "generator"), (D, "d", "discriminator")):
        genome = resolve_source(ctx, stage.settings[key], role)
        export_network(ctx.program, genome.network, genome, module.state_dict(), run_dir.final, force=True)
    run_dir.write_json("final/metrics.json", metrics)
    ctx.report.message(
        f"[{stage.name}] IS {metrics['is']:.3f} ± {metrics['is_std']:.3f}  FID {metrics['fid']:.3f} "
        f"({metrics['images']} images) → {run_dir.final}"
    )
