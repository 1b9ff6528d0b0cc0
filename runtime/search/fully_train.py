"""The fully-train stage (§5.1): the chosen (G*, D*) trained from scratch, then IS and FID with the
final image count; and how a stage names its networks (`best(stage)`, a network, a genome)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

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
        # `eval_every`: IS/FID every N epochs (the released code validates periodically), the
        # best-FID G and D kept (their weights, on the CPU) for final/best/
        self.evaluations: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None

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
            self._advance(iters, 0, "train")
            if self.it == 0:  # an epoch ended: evaluate first, so that a checkpoint holds it
                self._periodic(epochs)
                every = ctx.checkpoint_every
                if self.epoch < epochs and every and self.epoch % every == 0:
                    ctx.save(f"{self.stage.name} train epoch {self.epoch}")
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
                "eval_every": int(s["eval_every"]),
                "evaluations": list(self.evaluations),
                "distance": distance_name(str(program.blocks["evaluate"]["extractor"])),
            }
        )
        if self.best is not None:
            metrics["best"] = self._best_metrics(epochs, scores)
        ctx.samples(f"{self.stage.name}_final", EvalWrapper(final, final))
        self.phase = "done"
        return metrics

    def _periodic(self, epochs: int) -> None:
        """IS/FID of G every `eval_every` epochs and at the last (`images` images, the same
        latents every time); the best FID so far keeps its G and D."""
        ctx, every = self.ctx, int(self.s["eval_every"])
        if not every or (self.epoch % every and self.epoch != epochs):
            return
        g = self.G.evaluated()
        scores = on_main(
            ctx.dist,
            lambda: ctx.evaluators["final"].evaluate(
                EvalWrapper(g, g),
                int(self.s["images"]),
                derive_seed(ctx.seed, self.stage.name, "periodic"),
            ),
        )
        record = {"epoch": self.epoch, **scores, "images": int(self.s["images"])}
        self.evaluations.append(record)
        if self.best is None or scores["fid"] < self.best["fid"]:
            self.best = {
                **record,
                "G": _cpu(g.state_dict()),
                "D": _cpu(self.D.module.state_dict()),
            }
        if ctx.log is not None:
            ctx.log.evaluation(self.stage.name, self.epoch, scores, "eval")
        ctx.report.message(
            f"[{self.stage.name}] epoch {self.epoch}/{epochs}: IS {scores['is']:.3f}  "
            f"FID {scores['fid']:.3f} ({record['images']} images; best FID "
            f"{self.best['fid']:.3f} at epoch {self.best['epoch']})"
        )

    def best_modules(self) -> tuple[nn.Module, nn.Module]:
        """The best-FID G and D of the periodic evaluations (`eval_every`)."""
        assert self.best is not None
        program, device = self.ctx.program, self.ctx.device
        g = build_subnet(program, self.g_genome, 0, device)
        g.load_state_dict(self.best["G"])
        d = build_subnet(program, self.d_genome, 0, device)
        d.load_state_dict(self.best["D"])
        return g.eval(), d

    def _best_metrics(self, epochs: int, final: dict[str, Any]) -> dict[str, Any]:
        """The best epoch's G scored like the last one (`final_images`), so the two compare."""
        assert self.best is not None
        best = {k: v for k, v in self.best.items() if k not in ("G", "D")}
        periodic = {"periodic_" + k: best[k] for k in ("fid", "is", "is_std", "images")}
        if best["epoch"] == epochs:
            scores: dict[str, Any] = {k: final[k] for k in ("fid", "is", "is_std")}
        else:
            g, _ = self.best_modules()
            scores = on_main(
                self.ctx.dist,
                lambda: self.ctx.evaluators["final"].evaluate(
                    EvalWrapper(g, g),
                    int(self.s["final_images"]),
                    derive_seed(self.ctx.seed, self.stage.name, "final"),
                ),
            )
        return {
            "epoch": best["epoch"],
            **periodic,
            **dict(scores),
            "images": int(self.s["final_images"]),
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            **self.counters(),
            "trainer": self.trainer.state_dict(),
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "evaluations": list(self.evaluations),
            "best": self.best,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.set_counters(state)
        self.trainer.load_state_dict(state["trainer"])
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.evaluations = list(state.get("evaluations", []))
        self.best = state.get("best")


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


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
