"""Algorithm 1 of the paper: warm-up, stage 1 (many-to-one), stage 2 (one-to-one with
weight-resetting), selection by non-dominated sorting, crossover & mutation; and the fully-train
stage.

One engine serves both search stages: a stage searches one network (G or D) against an opponent.
`many_to_one` (§4.1): every candidate trains against one shared opponent, which is trained too
(Eq. 7–8). `one_to_one` (§4.2): P copies of the opponent, candidate i trains only with copy i
(Eq. 10); with `weight_reset`, after each round every copy takes the weights of the best pair's copy.
The copies are extracted subnets (only the chosen ops), not supernet copies — the released code's
32 supernet copies cost ~9 GB and alias one another (research notes §3.4). In a one-to-one round
the pairs are independent: each trains a private copy of its candidate's path for an equal quota of
iterations, and the copies are averaged back into the supernet at the round's end. That is what
lets the pairs spread over processes (`runtime/dist.py`) with results that do not depend on how
many there are; warm-up, many-to-one rounds and the fully-train stage are data-parallel instead.

Every stage is a small state machine (phase, round, epoch, iteration) whose whole state — weights,
optimizers, EMAs, population, every random generator, the position in the data — is returned by
`state_dict()`, so a run can stop at any iteration boundary and continue bit for bit
(`runtime/checkpoint.py`).
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from eagan_dsl.genome import Genome, GenomeError, GenomeSpace
from eagan_dsl.ir import Best, Program, StageIR
from runtime.data import ImageData
from runtime.dist import Dist, on_main, to_cpu
from runtime.evaluator import Evaluator
from runtime.evolution import initial_population, offspring
from runtime.nets import build_fixed, build_subnet, build_supernet, genome_of, params_of
from runtime.selection import cars_select, nsga2_select, objective_matrix, pick, ranks
from runtime.train import EMA, Diverged, adam, d_step, g_step, sample_z


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


def _seed(base: int, *parts: object) -> int:
    """A stable seed derived from the run seed and a path (stage, round, ...)."""
    h = base
    for p in parts:
        for ch in str(p):
            h = (h * 1000003 + ord(ch)) & 0x7FFFFFFF
    return h


def _rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _set_rng_state(rng: random.Random, state: list[Any]) -> None:
    rng.setstate((state[0], tuple(state[1]), state[2]))


class Member:
    """One trained network: module, Adam optimizer and, optionally, an EMA copy."""

    def __init__(
        self, module: nn.Module, lr: float, betas: tuple[float, float], ema: float | None
    ) -> None:
        self.module = module
        self.opt = adam(module.parameters(), lr, betas)
        self.ema = EMA(module, ema) if ema else None
        self.params = list(module.parameters())

    def state_dict(self) -> dict[str, Any]:
        return {
            "module": self.module.state_dict(),
            "opt": self.opt.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.opt.load_state_dict(state["opt"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.module.load_state_dict(state["ema"])

    def copy(self) -> Member:
        other = copy.copy(self)
        other.module = copy.deepcopy(self.module)
        other.opt = adam(
            other.module.parameters(), self.opt.defaults["lr"], self.opt.defaults["betas"]
        )
        other.opt.load_state_dict(copy.deepcopy(self.opt.state_dict()))
        other.ema = copy.deepcopy(self.ema)
        other.params = list(other.module.parameters())
        return other

    def evaluated(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.module

    def finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in self.params)


class _Trainer:
    """Draws real batches and latents, runs n_critic D steps and one G step. With `shard` (data
    parallelism) every rank draws the same global batch and trains on its slice, with gradients and
    BatchNorm statistics averaged over the ranks; without, a rank trains on whole batches."""

    def __init__(
        self, ctx: Context, s: dict[str, Any], gen: torch.Generator, shard: bool = True
    ) -> None:
        self.dist = ctx.dist if shard else Dist()
        self.data = ctx.data
        self.device = ctx.device
        self.gen = gen
        self.bg, self.bd = int(s["batch"]["g"]), int(s["batch"]["d"])
        self.n_critic = int(s["n_critic"])
        self.lr = s["lr"]
        self.betas = (float(s["betas"][0]), float(s["betas"][1]))
        self.clip = s["grad_clip"]
        self.latent = ctx.program.latent_dim
        self.latent_dist = ctx.program.latent_distribution
        self._perm = torch.empty(0, dtype=torch.long)
        self._pos = 0

    def iterations_per_epoch(self) -> int:
        return max(self.data.batches_per_epoch(self.bd) // self.n_critic, 1)

    def real(self) -> torch.Tensor:
        if self._pos + self.bd > len(self._perm):
            self._perm = torch.randperm(len(self.data), generator=self.gen)
            self._pos = 0
        idx = self._perm[self._pos : self._pos + self.bd]
        self._pos += self.bd
        return self.dist.shard(self.data.batch(idx.to(self.data.images.device)))

    def z(self, n: int) -> torch.Tensor:
        return self.dist.shard(sample_z(n, self.latent, self.device, self.gen, self.latent_dist))

    def iteration(
        self, g: Any, d: Any, gm: Member, dm: Member, g_fn: Any = None, d_fn: Any = None
    ) -> tuple[float, float]:
        """n_critic D steps, then one G step (Alg. 1 l.9–10, l.24). `g_fn`/`d_fn` override the
        modules' forward (a supernet on one genome)."""
        gf = g_fn or g
        df = d_fn or d
        sync = self.dist.average_grads if self.dist.active else None
        for _ in range(self.n_critic):
            ld = d_step(gf, df, self.real(), self.z(self.bd), dm.opt, self.clip, dm.params, sync)
        lg = g_step(gf, df, self.z(self.bg), gm.opt, self.clip, gm.params, sync)
        self.dist.average_buffers(gm.module)
        if gm.ema is not None:
            gm.ema.update(gm.module)
        return ld, lg

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "perm": self._perm, "pos": self._pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])
        self._perm = state["perm"]
        self._pos = int(state["pos"])


class _EvalWrapper(nn.Module):
    """A callable generator that switches its module to eval mode during evaluation."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], module: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        self.inner = module

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)


@torch.no_grad()
def recalibrate_bn(
    fn: Callable[[torch.Tensor], torch.Tensor],
    module: nn.Module,
    batches: int,
    batch: int,
    latent: int,
    device: torch.device,
    seed: int,
) -> None:
    """Re-estimate BatchNorm running statistics for one subnet of a supernet (the running
    statistics of a weight-shared supernet mix all the subnets trained so far; SPOS-style
    recalibration). Deterministic: fixed latents from `seed`. Touches only BN buffers."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or batches <= 0:
        return
    was = module.training
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average over the recalibration batches
    module.train()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(batches):
        fn(torch.randn(batch, latent, generator=gen).to(device))
    for bn, m in zip(bns, momenta):
        bn.momentum = m
    module.train(was)


def _input_resolution(program: Program, net: Any) -> int | None:
    if net.role == "generator":
        return int(net.stem[0].get("size")) if net.stem else None
    size = program.data.resolution
    from eagan_dsl.primitives import PRIMITIVES

    for prim in net.stem:
        kind = PRIMITIVES[prim.name].kind_for(dict(prim.args))
        size = size // 2 if kind == "down" else size * 2 if kind == "up" else size
    return size


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
        raise GenomeError(
            f"'{source}' is neither a network of the spec nor a genome string NET:op,...|..."
        )
    genome = genome_of(ctx.program, source)
    role_of = ctx.program.network(genome.network).role
    if role_of != role:
        raise GenomeError(f"'{source}' is a {role_of}, not a {role}")
    return genome


def _recalibrate(
    ctx: Context,
    s: dict[str, Any],
    fn: Callable[[torch.Tensor], torch.Tensor],
    net: nn.Module,
    round_: int,
) -> None:
    recalibrate_bn(
        fn,
        net,
        int(s["recalibrate_bn"]),
        int(s["eval_batch"]),
        ctx.program.latent_dim,
        ctx.device,
        _seed(ctx.seed, "recalibrate", round_),
    )


class _Stage:
    """Shared state-machine plumbing: phase, counters, announcements, checkpoint points."""

    phase: str
    epoch: int
    it: int

    def __init__(self, ctx: Context, stage: StageIR) -> None:
        self.ctx = ctx
        self.stage = stage
        self.s = dict(stage.settings)
        self._announced = ""

    def announce(self, key: str, description: str, total: int) -> None:
        if self._announced != key:
            self._announced = key
            self.ctx.report.stage_start(self.stage.name, description, total)

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


class _Evolving(_Stage):
    """The loop of a search stage: warm-up, then R rounds of training uniformly drawn candidates,
    evaluating all P, selecting and refilling (Alg. 1). Subclasses say how a candidate trains, is
    scored and varied."""

    P: int
    R: int
    E: int
    round: int
    rng: random.Random
    trainer: _Trainer
    records: list[dict[str, Any]]
    diverged: set[int]
    best_i: int

    def _warm_iteration(self) -> tuple[float, float]:
        raise NotImplementedError

    def _start_population(self) -> None:
        raise NotImplementedError

    def _train_candidate(self, i: int) -> tuple[float, float]:
        raise NotImplementedError

    def _evaluate(self, i: int) -> dict[str, Any]:
        raise NotImplementedError

    def _generator(self, i: int) -> nn.Module:
        raise NotImplementedError

    def _refill(self, keep: list[int]) -> None:
        raise NotImplementedError

    def _result(self) -> StageResult:
        raise NotImplementedError

    def run(self) -> StageResult:
        ctx, s = self.ctx, self.s
        iters = self.trainer.iterations_per_epoch()
        while self.phase != "done":
            if self.phase == "warmup":
                # §5.1: all candidate ops trained equally — a fresh valid genome every iteration
                if self.epoch >= int(s["warmup"]):
                    self._start_population()
                    self.phase, self.epoch, self.it = "train", 0, 0
                    continue
                self.announce("warmup", f"warm-up, {s['warmup']} epochs", int(s["warmup"]) * iters)
                ctx.poll()
                try:
                    ld, lg = self._warm_iteration()
                except Diverged:
                    ld = lg = math.nan
                ctx.report.step(d=ld, g=lg, epoch=self.epoch)
                self._advance(iters, ctx.checkpoint_every, "warm-up")
            elif self.phase == "train":
                if self.epoch >= self.E or self._train_round():
                    self.phase, self.records = "eval", []
                    self._trained()
                    continue
                self.announce(
                    f"round{self.round}", f"round {self.round + 1}/{self.R}", self.E * iters
                )
                ctx.poll()
                i = self.rng.randrange(self.P)  # Alg. 1 l.8 / l.23: a uniformly drawn candidate
                ld = lg = math.nan
                if i not in self.diverged:
                    try:
                        ld, lg = self._train_candidate(i)
                    except Diverged:
                        self._diverged(i)
                ctx.report.step(d=ld, g=lg, epoch=self.epoch)
                self._advance(iters, 0, "round")
            elif self.phase == "eval":
                if len(self.records) < self.P:
                    # W candidates at a time, one per rank; every rank gets every record
                    ctx.poll()
                    i = len(self.records) + ctx.dist.rank
                    mine = self._evaluate(i) if i < self.P else None
                    self.records.extend(r for r in ctx.dist.gather(mine) if r is not None)
                    continue
                keep = self._rank()
                if self.round == self.R - 1:
                    self.phase = "done"
                    continue
                self._refill(keep)
                self.round += 1
                self.phase, self.epoch, self.it, self.diverged = "train", 0, 0, set()
                self._round_started()
                ctx.save(f"{self.stage.name} round {self.round}")
        return self._result()

    def _trained(self) -> None:
        pass

    def _train_round(self) -> bool:
        """A stage that trains a whole round its own way does it here and returns True."""
        return False

    def _round_started(self) -> None:
        pass

    def _diverged(self, i: int) -> None:
        self.diverged.add(i)

    def _score(self, record: dict[str, Any], i: int) -> dict[str, Any]:
        """IS and FID of candidate i, or the worst values for a diverged one."""
        if i in self.diverged:
            record.update({"is": 0.0, "is_std": 0.0, "fid": math.inf, "diverged": True})
            return record
        seed = _seed(
            self.ctx.seed, self.stage.name, "eval", self.round
        )  # same z for every candidate
        record.update(
            self.ctx.evaluators["search"].evaluate(self._generator(i), int(self.s["images"]), seed)
        )
        if not math.isfinite(record["fid"]):
            record["diverged"] = True
        return record

    def _rank(self) -> list[int]:
        """Selection (Eq. 6 / Eq. 9, §4.3): non-dominated sorting, the pick, the history."""
        ctx, s, records = self.ctx, self.s, self.records
        F = objective_matrix(records, ctx.program.objectives)
        rank = ranks(F)
        self.best_i = pick(records, F, s["pick"])
        keep = (
            cars_select(records, self.P // 2, self.rng)
            if s["selection"] == "cars"
            else nsga2_select(F, self.P // 2)
        )
        for i, record in enumerate(records):
            record.update({"rank": rank[i], "selected": i in keep, "best": i == self.best_i})
            ctx.history.candidate(self.stage.name, self.round, i, record)
        ctx.history.round(self.stage.name, self.round, records, self.best_i)
        ctx.report.round_table(self.stage.name, self.round, records)
        ctx.samples(f"{self.stage.name}_round{self.round + 1:02d}", self._generator(self.best_i))
        return keep

    def _vary(self, parents: list[Genome], space: GenomeSpace) -> list[Any]:
        """P − |parents| children: crossover & mutation (§4.3), or fresh random architectures for
        the random-search baseline."""
        n, s = self.P - len(parents), self.s
        if s["strategy"] == "random":
            return offspring([], n, space, self.rng, 0.0, 0.0, taken=parents)
        return offspring(parents, n, space, self.rng, float(s["crossover"]), float(s["mutation"]))


class SearchStage(_Evolving):
    """A search stage (paper §4.1 / §4.2): warm-up, then R rounds of training, evaluation,
    selection and crossover & mutation of one network against an opponent."""

    def __init__(self, ctx: Context, stage: StageIR) -> None:
        super().__init__(ctx, stage)
        s, program = self.s, ctx.program
        self.net = program.networks[s["network"]]
        self.searching_g = self.net.role == "generator"
        self.me, self.them = ("g", "d") if self.searching_g else ("d", "g")
        self.them_role = "discriminator" if self.searching_g else "generator"
        self.rng = random.Random(_seed(ctx.seed, stage.name, "evolution"))
        self.trainer = _Trainer(
            ctx, s, torch.Generator().manual_seed(_seed(ctx.seed, stage.name, "batches"))
        )
        self.space = GenomeSpace(self.net, _input_resolution(program, self.net))
        self.P, self.R, self.E = int(s["population"]), int(s["rounds"]), int(s["epochs"])
        self.one_to_one = s["pairing"] == "one_to_one"
        betas, lr, ema = self.trainer.betas, self.trainer.lr, s["ema"]
        supernet = build_supernet(
            program, self.net.name, _seed(ctx.seed, stage.name, "supernet"), ctx.device
        )
        self.supernet = Member(supernet, lr[self.me], betas, ema if self.searching_g else None)
        opponent, self.opponent_genome = self._opponent()
        opponent.to(ctx.device).train()
        them_ema = ema if not self.searching_g else None
        first = Member(opponent, lr[self.them], betas, them_ema)
        # one-to-one: P independent copies of G* (Alg. 1 l.18); warm-up trains a separate copy
        self.partners = [first.copy() for _ in range(self.P)] if self.one_to_one else [first]
        self.warm = first if self.one_to_one else self.partners[0]
        self.phase, self.round, self.epoch, self.it = "warmup", 0, 0, 0
        self.population: list[Genome] = []
        self.origins: list[str] = []
        self.diverged: set[int] = set()
        self.records: list[dict[str, Any]] = []
        self.best_i = 0
        # one-to-one rounds: trained pairs of this round (private weights) and pairs in progress
        self.pairs_done: dict[int, dict[str, Any]] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self._live_job: dict[str, Any] | None = None

    def _opponent(self) -> tuple[nn.Module, Genome]:
        """A fixed network (fresh weights) or a previous stage's pick with its trained weights."""
        s, ctx = self.s, self.ctx
        source = s["against"] if s["against"] is not None else s["with"]
        if isinstance(source, Best):
            result = ctx.results[source.stage]
            return copy.deepcopy(result.modules[self.them_role]), result.genomes[self.them_role]
        module = build_fixed(
            ctx.program, source, _seed(ctx.seed, self.stage.name, "opponent"), ctx.device
        )
        return module, genome_of(ctx.program, source)

    def _partner(self, i: int) -> Member:
        return self.partners[i if self.one_to_one else 0]

    # ------------------------------------------------------------------------ training
    def _train(self, genome: Genome, partner: Member) -> tuple[float, float]:
        sup = self.supernet.module
        cand: Callable[[torch.Tensor], torch.Tensor] = lambda x: sup(x, genome)
        if self.searching_g:
            return self.trainer.iteration(None, partner.module, self.supernet, partner, g_fn=cand)
        return self.trainer.iteration(partner.module, None, partner, self.supernet, d_fn=cand)

    def _warm_iteration(self) -> tuple[float, float]:
        return self._train(self.space.random(self.rng), self.warm)

    def _train_candidate(self, i: int) -> tuple[float, float]:
        return self._train(self.population[i], self._partner(i))

    # ------------------------------------------------------------ one-to-one: the pairs
    def _train_round(self) -> bool:
        """Stage 2's round (Alg. 1 l.22–25), pair by pair. Candidate i (a D, or a G when G is
        searched one-to-one) trains a private copy of its path through the supernet (inherited
        weights, §3.1) with its own copy of the opponent (Eq. 10), for the same number of iterations
        as every other pair and on its own stream of batches. Pairs are thus independent within a
        round: they spread over the ranks, W at a time, and a pair's result does not depend on the
        world size. At the round's end the private copies are averaged back into the supernet
        (`_merge`), so weights stay shared across rounds."""
        if not self.one_to_one:
            return False
        ctx, dist = self.ctx, self.ctx.dist
        quota = max(self.E * self.trainer.iterations_per_epoch() // self.P, 1)
        blocks = math.ceil(self.P / dist.world)
        self.announce(
            f"round{self.round}",
            f"round {self.round + 1}/{self.R}: {self.P} pairs × {quota} iterations",
            blocks * quota,
        )
        for first in range(0, self.P, dist.world):
            j = first + dist.rank
            job = self._job(j) if j < self.P and j not in self.pairs_done else None
            self._live_job = job
            while True:
                active = job is not None and job["it"] < quota and not job["diverged"]
                stop, running = dist.flags(ctx.stop_requested(), active)
                if stop:
                    raise Interrupted()
                if not running:
                    break
                if job is not None and active:
                    ld, lg = self._pair_step(j, job)
                    ctx.report.step(d=ld, g=lg, epoch=0)
            done = dist.gather(None if job is None else to_cpu(self._job_state(job)))
            self._live_job = None
            for state in done:
                if state is not None:
                    self._pair_done(state)
        self._merge()
        self.pairs_done = {}
        return True

    def _job(self, j: int) -> dict[str, Any]:
        """Pair j's training: a private copy of the candidate's path through the supernet (and of
        its EMA), a fresh Adam, its own batches; or the pair in progress in a checkpoint."""
        from compiler.extract import extract

        s, ctx, sup, genome = self.s, self.ctx, self.supernet, self.population[j]
        net = Member(
            extract(sup.module, genome),
            self.trainer.lr[self.me],
            self.trainer.betas,
            s["ema"] if sup.ema is not None else None,
        )
        if net.ema is not None and sup.ema is not None:
            net.ema.module.load_state_dict(extract(sup.ema.module, genome).state_dict())
        gen = torch.Generator().manual_seed(_seed(ctx.seed, self.stage.name, "pair", self.round, j))
        job = {
            "j": j,
            "it": 0,
            "diverged": False,
            "net": net,
            "trainer": _Trainer(ctx, s, gen, shard=False),
        }
        if j in self.jobs:
            saved = self.jobs.pop(j)
            job.update(it=int(saved["it"]), diverged=bool(saved["diverged"]))
            net.load_state_dict(saved["net"])
            job["trainer"].load_state_dict(saved["trainer"])
            self.partners[j].load_state_dict(saved["partner"])
        return job

    def _pair_step(self, j: int, job: dict[str, Any]) -> tuple[float, float]:
        mine, them = job["net"], self.partners[j]
        g, d = (mine, them) if self.searching_g else (them, mine)
        try:
            losses = job["trainer"].iteration(g.module, d.module, g, d)
        except Diverged:
            job["diverged"] = True  # scored worst; its weights stay out of the merge
            return math.nan, math.nan
        job["it"] += 1
        return losses

    def _job_state(self, job: dict[str, Any]) -> dict[str, Any]:
        return {
            "j": job["j"],
            "it": job["it"],
            "diverged": job["diverged"],
            "net": job["net"].state_dict(),
            "trainer": job["trainer"].state_dict(),
            "partner": self.partners[job["j"]].state_dict(),
        }

    def _pair_done(self, state: dict[str, Any]) -> None:
        j = int(state["j"])
        net = state["net"]
        self.pairs_done[j] = {
            "module": net["module"],
            "ema": net["ema"],
            "diverged": bool(state["diverged"]),
        }
        if state["diverged"]:
            self.diverged.add(j)
        self.partners[j].load_state_dict(state["partner"])

    def _merge(self) -> None:
        """The supernet (and its EMA) takes, for every weight, the mean of the pairs' private copies
        that hold it (in pair order, so identical on every rank); weights no pair used keep theirs."""
        from compiler.extract import subnet_keys

        sup = self.supernet
        targets = [("module", sup.module)] + (
            [("ema", sup.ema.module)] if sup.ema is not None else []
        )
        for part, module in targets:
            state = module.state_dict()
            sums: dict[str, torch.Tensor] = {}
            counts: dict[str, int] = {}
            for j in sorted(self.pairs_done):
                if self.pairs_done[j]["diverged"]:
                    continue
                private = self.pairs_done[j][part]
                for key, sub in subnet_keys(self.net, self.population[j], state).items():
                    value = private[sub].to(state[key].device)
                    sums[key] = sums[key] + value if key in sums else value.clone()
                    counts[key] = counts.get(key, 0) + 1
            for key, total in sums.items():
                if total.is_floating_point():
                    state[key].copy_(total / counts[key])
            module.load_state_dict(state)

    def _start_population(self) -> None:
        self.population = initial_population(self.space, self.P, self.rng)
        self.origins = ["random"] * self.P
        self._snapshot()
        self.ctx.notify(
            "population",
            stage=self.stage.name,
            population=list(self.population),
            partners=[p.module for p in self.partners],
        )

    def _trained(self) -> None:
        self.ctx.notify(
            "trained",
            stage=self.stage.name,
            round=self.round,
            population=list(self.population),
            partners=[p.module for p in self.partners],
        )

    def _diverged(self, i: int) -> None:
        """A candidate whose loss is NaN/inf: marked, scored worst, never trained again this round;
        shared weights it poisoned are restored from the round's start."""
        self.diverged.add(i)
        for member in (self.supernet, self._partner(i)):
            if not member.finite() and getattr(member, "_good", None) is not None:
                member.load_state_dict(member._good)  # type: ignore[attr-defined]

    def _round_started(self) -> None:
        self._snapshot()

    def _snapshot(self) -> None:
        """Keep the shared weights of the round's start, to restore if a candidate poisons them."""
        for member in [self.supernet] + ([] if self.one_to_one else self.partners):
            member._good = copy.deepcopy(member.state_dict())  # type: ignore[attr-defined]

    # ---------------------------------------------------------------------- evaluation
    def _generator(self, i: int) -> nn.Module:
        """The generator that scores candidate i: itself (stage 1) or, for a D candidate, the G it
        was trained with (§4.2: D is assessed indirectly through its G's IS and FID)."""
        if self.searching_g:
            net = self.supernet.evaluated()
            genome = self.population[i]
            fn: Callable[[torch.Tensor], torch.Tensor] = lambda z: net(z, genome)
            _recalibrate(self.ctx, self.s, fn, net, self.round)
            return _EvalWrapper(fn, net)
        module = self._partner(i).evaluated()
        return _EvalWrapper(module, module)

    def _evaluate(self, i: int) -> dict[str, Any]:
        genome = self.population[i]
        record = {
            "genome": self.space.encode(genome),
            "params": params_of(self.ctx.program, genome),
            "origin": self.origins[i],
        }
        return self._score(record, i)

    # ---------------------------------------------------------------------- evolution
    def _refill(self, keep: list[int]) -> None:
        """Weight-resetting (Alg. 1 l.29–30), then crossover & mutation (§4.3)."""
        if self.one_to_one and self.s["weight_reset"]:
            self._reset(self.best_i)
            self.ctx.notify(
                "reset",
                stage=self.stage.name,
                round=self.round,
                best=self.best_i,
                partners=[p.module for p in self.partners],
            )
        parents = [self.population[i] for i in keep]
        children = self._vary(parents, self.space)
        self.population = parents + [c.genome for c in children]
        self.origins = ["parent"] * len(parents) + [c.origin for c in children]
        if self.one_to_one:
            # survivors keep their G; a child takes a copy of the G of the parent in its slot
            order = keep + [keep[j % len(keep)] for j in range(len(children))]
            used: set[int] = set()
            partners = []
            for src in order:
                partners.append(self.partners[src].copy() if src in used else self.partners[src])
                used.add(src)
            self.partners = partners

    def _reset(self, best: int) -> None:
        """Every copy takes the best copy's weights, optimizer state and EMA (bit-identical)."""
        state = copy.deepcopy(self.partners[best].state_dict())
        for i, member in enumerate(self.partners):
            if i != best:
                member.load_state_dict(copy.deepcopy(state))

    def _result(self) -> StageResult:
        from compiler.extract import extract

        genome = self.population[self.best_i]
        return StageResult(
            stage=self.stage.name,
            searched=self.net.role,
            genomes={self.net.role: genome, self.them_role: self.opponent_genome},
            modules={
                self.net.role: extract(self.supernet.module, genome),
                self.them_role: copy.deepcopy(self._partner(self.best_i).module),
            },
            record=self.records[self.best_i] if self.records else {},
        )

    # -------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            **self.counters(),
            "round": self.round,
            "population": [list(g.choices) for g in self.population],
            "origins": list(self.origins),
            "diverged": sorted(self.diverged),
            "records": json.dumps(self.records, default=str),
            "best": self.best_i,
            "rng": _rng_state(self.rng),
            "trainer": self.trainer.state_dict(),
            "supernet": self.supernet.state_dict(),
            "partners": [p.state_dict() for p in self.partners],
            "warm": self.warm.state_dict() if self.one_to_one else None,
            "pairs_done": self.pairs_done,
            "jobs": self._jobs_state(),
        }

    def _jobs_state(self) -> dict[int, Any]:
        """The pairs in progress on every rank (a collective: every rank calls `state_dict`)."""
        mine = self._live_job
        states = self.ctx.dist.gather(None if mine is None else to_cpu(self._job_state(mine)))
        jobs = {int(s["j"]): s for s in states if s is not None}
        return {**self.jobs, **jobs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.set_counters(state)
        self.round, self.best_i = int(state["round"]), int(state["best"])
        self.population = [Genome(self.net.name, tuple(c)) for c in state["population"]]
        self.origins = list(state["origins"])
        self.diverged = set(state["diverged"])
        self.records = json.loads(state["records"])
        _set_rng_state(self.rng, state["rng"])
        self.trainer.load_state_dict(state["trainer"])
        self.supernet.load_state_dict(state["supernet"])
        while len(self.partners) < len(state["partners"]):
            self.partners.append(self.partners[0].copy())
        for member, ms in zip(self.partners, state["partners"]):
            member.load_state_dict(ms)
        if state["warm"] is not None:
            self.warm.load_state_dict(state["warm"])
        self.pairs_done = {int(j): v for j, v in state.get("pairs_done", {}).items()}
        self.jobs = {int(j): v for j, v in state.get("jobs", {}).items()}
        for j in self.pairs_done:
            if self.pairs_done[j]["diverged"]:
                self.diverged.add(j)
        if self.phase in ("train", "eval"):
            self._snapshot()


class CoupledStage(_Evolving):
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
        self.rng = random.Random(_seed(ctx.seed, stage.name, "evolution"))
        self.trainer = _Trainer(
            ctx, s, torch.Generator().manual_seed(_seed(ctx.seed, stage.name, "batches"))
        )
        self.g_space = GenomeSpace(self.g_net, _input_resolution(program, self.g_net))
        self.d_space = GenomeSpace(self.d_net, _input_resolution(program, self.d_net))
        self.P, self.R, self.E = int(s["population"]), int(s["rounds"]), int(s["epochs"])
        lr, betas = self.trainer.lr, self.trainer.betas
        G = build_supernet(program, self.g_net.name, _seed(ctx.seed, stage.name, "G"), ctx.device)
        D = build_supernet(program, self.d_net.name, _seed(ctx.seed, stage.name, "D"), ctx.device)
        self.G = Member(G, lr["g"], betas, s["ema"])
        self.D = Member(D, lr["d"], betas, None)
        self.phase, self.round, self.epoch, self.it = "warmup", 0, 0, 0
        self.gs: list[Genome] = []
        self.ds: list[Genome] = []
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
        self.gs = initial_population(self.g_space, self.P, self.rng)
        self.ds = initial_population(self.d_space, self.P, self.rng)

    def _generator(self, i: int) -> nn.Module:
        net, genome = self.G.evaluated(), self.gs[i]
        fn: Callable[[torch.Tensor], torch.Tensor] = lambda z: net(z, genome)
        _recalibrate(self.ctx, self.s, fn, net, self.round)
        return _EvalWrapper(fn, net)

    def _evaluate(self, i: int) -> dict[str, Any]:
        program = self.ctx.program
        record: dict[str, Any] = {
            "genome": self.g_space.encode(self.gs[i]) + " / " + self.d_space.encode(self.ds[i]),
            "params": params_of(program, self.gs[i]) + params_of(program, self.ds[i]),
        }
        return self._score(record, i)

    def _refill(self, keep: list[int]) -> None:
        kept_g, kept_d = [self.gs[i] for i in keep], [self.ds[i] for i in keep]
        self.gs = kept_g + [c.genome for c in self._vary(kept_g, self.g_space)]
        self.ds = kept_d + [c.genome for c in self._vary(kept_d, self.d_space)]

    def _result(self) -> StageResult:
        from compiler.extract import extract

        g, d = self.gs[self.best_i], self.ds[self.best_i]
        return StageResult(
            stage=self.stage.name,
            searched="generator",
            genomes={"generator": g, "discriminator": d},
            modules={
                "generator": extract(self.G.module, g),
                "discriminator": extract(self.D.module, d),
            },
            record=self.records[self.best_i] if self.records else {},
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            **self.counters(),
            "round": self.round,
            "gs": [list(g.choices) for g in self.gs],
            "ds": [list(d.choices) for d in self.ds],
            "diverged": sorted(self.diverged),
            "records": json.dumps(self.records, default=str),
            "best": self.best_i,
            "rng": _rng_state(self.rng),
            "trainer": self.trainer.state_dict(),
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.set_counters(state)
        self.round, self.best_i = int(state["round"]), int(state["best"])
        self.gs = [Genome(self.g_net.name, tuple(c)) for c in state["gs"]]
        self.ds = [Genome(self.d_net.name, tuple(c)) for c in state["ds"]]
        self.diverged = set(state["diverged"])
        self.records = json.loads(state["records"])
        _set_rng_state(self.rng, state["rng"])
        self.trainer.load_state_dict(state["trainer"])
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])


class TrainStage(_Stage):
    """The fully-train stage (§5.1): (G*, D*) from scratch, then IS/FID with the final image count."""

    def __init__(self, ctx: Context, stage: StageIR) -> None:
        super().__init__(ctx, stage)
        s, program = self.s, ctx.program
        self.g_genome = resolve_source(ctx, s["g"], "generator")
        self.d_genome = resolve_source(ctx, s["d"], "discriminator")
        self.trainer = _Trainer(
            ctx, s, torch.Generator().manual_seed(_seed(ctx.seed, stage.name, "batches"))
        )
        lr, betas = self.trainer.lr, self.trainer.betas
        G = build_subnet(
            program, self.g_genome, _seed(ctx.seed, stage.name, "G"), ctx.device
        ).train()
        D = build_subnet(
            program, self.d_genome, _seed(ctx.seed, stage.name, "D"), ctx.device
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
            self.announce("train", f"fully-train, {epochs} epochs", epochs * iters)
            ctx.poll()
            ld, lg = self.trainer.iteration(self.G.module, self.D.module, self.G, self.D)
            ctx.report.step(d=ld, g=lg, epoch=self.epoch)
            self._advance(iters, ctx.checkpoint_every if self.epoch + 1 < epochs else 0, "train")
        final = self.G.evaluated()
        metrics = on_main(
            ctx.dist,
            lambda: ctx.evaluators["final"].evaluate(
                _EvalWrapper(final, final),
                int(s["final_images"]),
                _seed(ctx.seed, self.stage.name, "final"),
            ),
        )
        program = ctx.program
        metrics.update(
            {
                "g_genome": _encode(program, self.g_genome),
                "d_genome": _encode(program, self.d_genome),
                "g_params": params_of(program, self.g_genome),
                "d_params": params_of(program, self.d_genome),
                "images": int(s["final_images"]),
                "epochs": epochs,
                "ema": s["ema"],
            }
        )
        ctx.samples(f"{self.stage.name}_final", _EvalWrapper(final, final))
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


def _encode(program: Program, genome: Genome) -> str:
    """The readable genome string (`G:bilinear,...|...`); the network name for a fixed network
    without searchable edges."""
    net = program.networks[genome.network]
    return GenomeSpace(net).encode(genome) if genome.choices else genome.network


def make_stage(ctx: Context, stage: StageIR) -> _Stage:
    if stage.kind == "train":
        return TrainStage(ctx, stage)
    if isinstance(stage.settings["network"], tuple):
        return CoupledStage(ctx, stage)
    return SearchStage(ctx, stage)
