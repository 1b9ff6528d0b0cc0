"""The paper's coupled baseline (§5.3, Fig. 6): G and D architectures evolved together."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from eagan_dsl.genome import Genome, GenomeSpace
from eagan_dsl.ir import StageIR
from runtime.evolution import initial_population
from runtime.nets import build_supernet, params_of
from runtime.search.members import (
    EvalWrapper,
    Member,
    Trainer,
    input_resolution,
    path_of,
    recalibrate,
)
from runtime.search.protocol import Context, StageResult, derive_seed, rng_state, set_rng_state
from runtime.search.search_stage import Evolving


class CoupledStage(Evolving):
    """The paper's coupled baseline (§5.3, Fig. 6): G and D architectures evolved together every
    round. Individuals are (G, D) pairs sharing SuperNet-G and SuperNet-D; each iteration trains one
    uniformly drawn pair; a pair is scored by its G's IS and FID and by the size of both networks."""

    def __init__(self, ctx: Context, stage: StageIR) -> None:
        super().__init__(ctx, stage)
        s, program = self.s, ctx.program
        names = {program.networks[n].role: n for n in s["network"]}
        self.g_net, self.d_net = (
            program.networks[names["generator"]],
            program.networks[names["discriminator"]],
        )
        self.rng = random.Random(derive_seed(ctx.seed, stage.name, "evolution"))
        self.trainer = Trainer(
            ctx,
            s,
            torch.Generator().manual_seed(derive_seed(ctx.seed, stage.name, "batches")),
        )
        self.g_space = GenomeSpace(self.g_net, input_resolution(program, self.g_net))
        self.d_space = GenomeSpace(self.d_net, input_resolution(program, self.d_net))
        self.P, self.R, self.E = int(s["population"]), int(s["rounds"]), int(s["epochs"])
        lr, betas = self.trainer.lr, self.trainer.betas
        G = build_supernet(
            program, self.g_net.name, derive_seed(ctx.seed, stage.name, "G"), ctx.device
        )
        D = build_supernet(
            program, self.d_net.name, derive_seed(ctx.seed, stage.name, "D"), ctx.device
        )
        self.G = Member(G, lr["g"], betas, s["ema"])
        self.D = Member(D, lr["d"], betas, None)
        self.phase, self.round, self.epoch, self.it = "warmup", 0, 0, 0
        self.gs: list[Genome] = []
        self.ds: list[Genome] = []
        self.seen_g: set[Genome] = set()
        self.seen_d: set[Genome] = set()
        self.records: list[dict[str, Any]] = []
        self.diverged: set[int] = set()
        self.best_i = 0

    def _train(self, g: Genome, d: Genome) -> tuple[float, float]:
        G, D = self.G.module, self.D.module
        return self.trainer.iteration(
            None, None, self.G, self.D, g_fn=lambda z: G(z, g), d_fn=lambda x: D(x, d)
        )

    def _warm_iteration(self) -> tuple[float, float]:
        return self._train(self.g_space.random(self.rng), self.d_space.random(self.rng))

    def _train_candidate(self, i: int) -> tuple[float, float]:
        return self._train(self.gs[i], self.ds[i])

    def _start_population(self) -> None:
        if self.G.ema is not None:  # the scoring EMA starts at the end of warm-up
            self.G.ema.module.load_state_dict(self.G.module.state_dict())
        self.gs = initial_population(self.g_space, self.P, self.rng)
        self.ds = initial_population(self.d_space, self.P, self.rng)

    def _generator(self, i: int) -> nn.Module:
        net = self.G.evaluated() if self.s["score"] == "ema" else self.G.module
        genome = self.gs[i]
        fn: Callable[[torch.Tensor], torch.Tensor] = lambda z: net(z, genome)
        recalibrate(self.ctx, self.s, fn, net, self.round)
        return EvalWrapper(fn, net)

    def _evaluate(self, i: int) -> dict[str, Any]:
        program = self.ctx.program
        record: dict[str, Any] = {
            "genome": self.g_space.encode(self.gs[i]) + " / " + self.d_space.encode(self.ds[i]),
            "params": params_of(program, self.gs[i]) + params_of(program, self.ds[i]),
        }
        return self._score(record, i)

    def _refill(self, keep: list[int]) -> None:
        if self.s["strategy"] == "random":  # no parents: P new random pairs (never seen before)
            self.seen_g.update(self.gs)
            self.seen_d.update(self.ds)
            self.gs = [c.genome for c in self._vary([], self.g_space, self.seen_g)]
            self.ds = [c.genome for c in self._vary([], self.d_space, self.seen_d)]
            return
        kept_g, kept_d = [self.gs[i] for i in keep], [self.ds[i] for i in keep]
        self.gs = kept_g + [c.genome for c in self._vary(kept_g, self.g_space)]
        self.ds = kept_d + [c.genome for c in self._vary(kept_d, self.d_space)]

    def _result(self) -> StageResult:

        g, d = self.gs[self.best_i], self.ds[self.best_i]
        scored = self._generator(self.best_i)  # what scored the pick (weights and BN statistics)
        assert isinstance(scored, EvalWrapper)
        return StageResult(
            stage=self.stage.name,
            searched="generator",
            genomes={"generator": g, "discriminator": d},
            modules={
                "generator": path_of(scored.inner, g).requires_grad_(True),
                "discriminator": path_of(self.D.module, d),
            },
            record=self.records[self.best_i] if self.records else {},
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            **self.counters(),
            "round": self.round,
            "gs": [list(g.choices) for g in self.gs],
            "ds": [list(d.choices) for d in self.ds],
            "seen_g": sorted(list(g.choices) for g in self.seen_g),
            "seen_d": sorted(list(d.choices) for d in self.seen_d),
            "diverged": sorted(self.diverged),
            "records": json.dumps(self.records, default=str),
            "best": self.best_i,
            "rng": rng_state(self.rng),
            "trainer": self.trainer.state_dict(),
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.set_counters(state)
        self.round, self.best_i = int(state["round"]), int(state["best"])
        self.gs = [Genome(self.g_net.name, tuple(c)) for c in state["gs"]]
        self.ds = [Genome(self.d_net.name, tuple(c)) for c in state["ds"]]
        self.seen_g = {Genome(self.g_net.name, tuple(c)) for c in state.get("seen_g", [])}
        self.seen_d = {Genome(self.d_net.name, tuple(c)) for c in state.get("seen_d", [])}
        self.diverged = set(state["diverged"])
        self.records = json.loads(state["records"])
        set_rng_state(self.rng, state["rng"])
        self.trainer.load_state_dict(state["trainer"])
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
