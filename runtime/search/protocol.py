"""The stage protocol: what a stage is handed (`Context`), what it hands on (`StageResult`, the
`best(stage)` of the spec), how it stops (`Interrupted`), derived seeds, and the state-machine
plumbing every stage shares (`Stage`: phase, epoch, iteration, checkpoint points).

Every stage is a small state machine (phase, round, epoch, iteration) whose whole state — weights,
optimizers, EMAs, population, every random generator, the position in the data — is returned by
`state_dict()`, so a run can stop at any iteration boundary and continue bit for bit
(`runtime/checkpoint.py`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from eagan_dsl.genome import Genome
from eagan_dsl.ir import Program, StageIR
from runtime.data import ImageData
from runtime.dist import Dist
from runtime.evaluator import Evaluator
from runtime.nets import build_subnet


class Interrupted(Exception):
    """A stop was requested (Ctrl-C); the stage is at an iteration boundary and can be saved."""


@dataclass
class StageResult:
    """What a stage hands on (`best(stage)`): the chosen GAN, per role ("generator",
    "discriminator"), with trained weights. The searched role is the stage's pick; the other role is
    the opponent it was trained with (stage 1: the fixed D; stage 2: the pick's own copy of G*)."""

    stage: str
    searched: str  # the role the stage searched
    genomes: dict[str, Genome]
    modules: dict[str, nn.Module]
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def genome(self) -> Genome:
        return self.genomes[self.searched]

    @property
    def module(self) -> nn.Module:
        return self.modules[self.searched]

    def state_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "searched": self.searched,
            "genomes": {r: [g.network, list(g.choices)] for r, g in self.genomes.items()},
            "modules": {r: m.state_dict() for r, m in self.modules.items()},
            "record": json.dumps(self.record, default=str),
        }

    @classmethod
    def from_state(
        cls, program: Program, state: dict[str, Any], device: torch.device
    ) -> StageResult:
        genomes = {r: Genome(n, tuple(c)) for r, (n, c) in state["genomes"].items()}
        modules = {}
        for role, genome in genomes.items():
            module = build_subnet(program, genome, 0, device)
            module.load_state_dict(state["modules"][role])
            modules[role] = module
        return cls(state["stage"], state["searched"], genomes, modules, json.loads(state["record"]))


@dataclass
class Context:
    program: Program
    data: ImageData
    device: torch.device
    seed: int
    evaluators: dict[str, Evaluator]
    report: Any  # runtime.display.Reporter
    history: Any  # runtime.rundir.History
    samples: Callable[[str, Any], None]
    results: dict[str, StageResult] = field(default_factory=dict)
    # test and tooling hook: called with (event, details) at fixed points of a search stage
    observe: Callable[[str, dict[str, Any]], None] | None = None
    # called at the stage's checkpoint points (end of a round, every N warm-up/train epochs)
    checkpoint: Callable[[str], None] | None = None
    # polled at every iteration boundary; True raises Interrupted (Ctrl-C)
    stop_requested: Callable[[], bool] = lambda: False
    checkpoint_every: int = 5
    dist: Dist = field(default_factory=Dist)
    # runtime.logs.RunLog: metrics.csv and TensorBoard (None outside a Runner)
    log: Any = None

    def notify(self, event: str, **details: Any) -> None:
        if self.observe is not None:
            self.observe(event, details)

    def save(self, reason: str) -> None:
        if self.checkpoint is not None:
            self.checkpoint(reason)

    def poll(self) -> None:
        """An iteration boundary: stop (on every rank) if a stop was requested (on any rank)."""
        if self.dist.any(self.stop_requested()):
            raise Interrupted()


def derive_seed(base: int, *parts: object) -> int:
    """A stable seed derived from the run seed and a path (stage, round, ...)."""
    h = base
    for p in parts:
        for ch in str(p):
            h = (h * 1000003 + ord(ch)) & 0x7FFFFFFF
    return h


def rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def set_rng_state(rng: random.Random, state: list[Any]) -> None:
    rng.setstate((state[0], tuple(state[1]), state[2]))


class Stage:
    """Shared state-machine plumbing: phase, counters, announcements, checkpoint points."""

    phase: str
    epoch: int
    it: int

    def __init__(self, ctx: Context, stage: StageIR) -> None:
        self.ctx = ctx
        self.stage = stage
        self.s = dict(stage.settings)
        self._announced = ""

    def announce(self, key: str, description: str, total: int, done: int = 0) -> None:
        """A progress bar of `total` iterations, `done` of them behind (a resumed stage's bar
        continues where it stopped)."""
        if self._announced != key:
            self._announced = key
            self.ctx.report.stage_start(self.stage.name, description, total, done)

    def counters(self) -> dict[str, Any]:
        return {"phase": self.phase, "epoch": self.epoch, "it": self.it}

    def set_counters(self, state: dict[str, Any]) -> None:
        self.phase, self.epoch, self.it = state["phase"], int(state["epoch"]), int(state["it"])

    def _advance(self, iters: int, save_every: int, what: str) -> None:
        """One iteration done; at an epoch's end, a checkpoint every `save_every` epochs."""
        self.it += 1
        if self.it == iters:
            self.it, self.epoch = 0, self.epoch + 1
            if save_every and self.epoch % save_every == 0:
                self.ctx.save(f"{self.stage.name} {what} epoch {self.epoch}")
