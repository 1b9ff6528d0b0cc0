"""The fully-train stage (§5.1): the chosen (G*, D*) trained from scratch, then IS and FID with the
final image count; and how a stage names its networks (`best(stage)`, a network, a genome)."""

from __future__ import annotations

from typing import Any

import torch

from eagan_dsl.genome import Genome, GenomeError, GenomeSpace
from eagan_dsl.ir import Best, Program, StageIR
from eagan_dsl.settings import distance_name
from runtime.dist import on_main
from runtime.nets import build_subnet, genome_of, params_of
from runtime.search.members import EvalWrapper, Member, Trainer
from runtime.search.protocol import Context, Stage, derive_seed


class TrainStage(Stage):
    """The fully-train stage (§5.1): (G*, D*) from scratch, then IS/FID with the final image count."""

    def __init__(self, ctx: Context, stage: StageIR) -> None:
        super().__init__(ctx, stage)
        s, program = self.s, ctx.program
        self.g_genome = resolve_source(ctx, s["g"], "generator")
        self.d_genome = resolve_source(ctx, s["d"], "discriminator")
        self.trainer = Trainer(
            ctx,
            s,
            torch.Generator().manual_seed(derive_seed(ctx.seed, stage.name, "batches")),
        )
        lr, betas = self.trainer.lr, self.trainer.betas
        G = build_subnet(
            program, self.g_genome, derive_seed(ctx.seed, stage.name, "G"), ctx.device
        ).train()
        D = build_subnet(
            program, self.d_genome, derive_seed(ctx.seed, stage.name, "D"), ctx.device
        ).train()
        self.G = Member(G, lr["g"], betas, s["ema"])
        self.D = Member(D, lr["d"], betas, None)
        self.phase, self.epoch, self.it = "train", 0, 0
        self.metrics: dict[str, Any] = {}

    def run(self) -> dict[str, Any]:
        ctx, s = self.ctx, self.s
        iters = self.trainer.iterations_per_epoch()
        epochs = int(s["epochs"])
        while self.phase == "train":
            if self.epoch >= epochs:
                self.phase = "eval"
                break
            done = self.epoch * iters + self.it
            self.announce("train", f"fully-train, {epochs} epochs", epochs * iters, done)
            ctx.poll()
            ld, lg = self.trainer.iteration(self.G.module, self.D.module, self.G, self.D)
            ctx.report.step(d=ld, g=lg, epoch=self.epoch)
            self._advance(iters, ctx.checkpoint_every if self.epoch + 1 < epochs else 0, "train")
        final = self.G.evaluated()
        seed = derive_seed(ctx.seed, self.stage.name, "final")
        scores = on_main(
            ctx.dist,
            lambda: ctx.evaluators["final"].evaluate(
                EvalWrapper(final, final), int(s["final_images"]), seed
            ),
        )
        program = ctx.program
        metrics: dict[str, Any] = dict(scores)
        metrics.update(
            {
                "g_genome": encode_genome(program, self.g_genome),
                "d_genome": encode_genome(program, self.d_genome),
                "g_params": params_of(program, self.g_genome),
                "d_params": params_of(program, self.d_genome),
                "images": int(s["final_images"]),
                "epochs": epochs,
                "ema": s["ema"],
                "eval": ctx.evaluators["final"].protocol(int(s["final_images"]), seed),
                "distance": distance_name(str(program.blocks["evaluate"]["extractor"])),
            }
        )
        ctx.samples(f"{self.stage.name}_final", EvalWrapper(final, final))
        self.phase = "done"
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {
            **self.counters(),
            "trainer": self.trainer.state_dict(),
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.set_counters(state)
        self.trainer.load_state_dict(state["trainer"])
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])


def encode_genome(program: Program, genome: Genome) -> str:
    """The readable genome string (`G:bilinear,...|...`); the network name for a fixed network
    without searchable edges."""
    net = program.networks[genome.network]
    return GenomeSpace(net).encode(genome) if genome.choices else genome.network


def resolve_source(ctx: Context, source: Any, role: str) -> Genome:
    """best(stage) (its pick of `role`), a network name, or a genome string `NET:op,op|...`."""
    if isinstance(source, Best):
        return ctx.results[source.stage].genomes[role]
    if isinstance(source, str) and ":" in source:
        net = source.split(":", 1)[0].strip()
        if net not in ctx.program.networks:
            raise GenomeError(f"genome '{source}' names no searchable network '{net}' of the spec")
        genome = GenomeSpace(ctx.program.networks[net]).decode(source)
        problem = GenomeSpace(ctx.program.networks[net]).problem(genome)
        if problem:
            raise GenomeError(f"genome '{source}' is not a valid architecture: {problem}")
        return genome
    if (
        isinstance(source, str)
        and source not in ctx.program.networks
        and source not in ctx.program.fixed
    ):
        import difflib

        names = [*ctx.program.networks, *ctx.program.fixed]
        close = difflib.get_close_matches(source, names, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise GenomeError(
            f"'{source}' is neither a network of the spec nor a genome string NET:op,...|...{hint}"
        )
    genome = genome_of(ctx.program, source)
    role_of = ctx.program.network(genome.network).role
    if role_of != role:
        raise GenomeError(f"'{source}' is a {role_of}, not a {role}")
    return genome
