"""A search stage (Algorithm 1 of the paper): warm-up, then R rounds of training uniformly drawn
candidates, evaluating all P, selecting by non-dominated sorting and refilling by crossover and
mutation (§4.3). `Evolving` is the loop that the search stage and the coupled ablation share;
`SearchStage` searches one network (G or D) against an opponent. `many_to_one` (§4.1): every
candidate trains against one shared opponent, which is trained too (Eq. 7–8). `one_to_one`
(§4.2, `runtime/search/one_to_one.py`): P copies of the opponent, candidate i trains only with
copy i (Eq. 10), with weight-resetting after each round. The copies are extracted subnets (only
the chosen ops), not supernet copies — the released code's 32 supernet copies cost ~9 GB and alias
one another (research notes §3.4).
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from eagan_dsl.genome import Genome, GenomeSpace
from eagan_dsl.ir import Best, StageIR
from runtime.dist import to_cpu
from runtime.evolution import initial_population, offspring
from runtime.nets import build_fixed, build_supernet, genome_of, params_of
from runtime.search.members import (
    EvalWrapper,
    Member,
    Trainer,
    input_resolution,
    path_of,
    recalibrate,
)
from runtime.search.one_to_one import OneToOne
from runtime.search.protocol import (
    Context,
    Stage,
    StageResult,
    derive_seed,
    rng_state,
    set_rng_state,
)
from runtime.selection import cars_select, nsga2_select, objective_matrix, pick, ranks
from runtime.train import Diverged


class Evolving(Stage):
    """The loop of a search stage: warm-up, then R rounds of training uniformly drawn candidates,
    evaluating all P, selecting and refilling (Alg. 1). Subclasses say how a candidate trains, is
    scored and varied."""

    P: int
    R: int
    E: int
    round: int
    rng: random.Random
    trainer: Trainer
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
                done = self.epoch * iters + self.it
                self.announce(
                    "warmup", f"warm-up, {s['warmup']} epochs", int(s["warmup"]) * iters, done
                )
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
                done = self.epoch * iters + self.it
                self.announce(
                    f"round{self.round}", f"round {self.round + 1}/{self.R}", self.E * iters, done
                )
                ctx.poll()
                i = self._draw(self.epoch * iters + self.it)
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
                    self._evaluating(len(self.records))
                    i = len(self.records) + ctx.dist.rank
                    mine = self._evaluate(i) if i < self.P else None
                    self.records.extend(r for r in ctx.dist.gather(mine) if r is not None)
                    if len(self.records) >= self.P:
                        self._evaluating(self.P)
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

    def _evaluating(self, done: int) -> None:
        """Evaluation progress on the display (a reporter without it, e.g. a test's, is skipped)."""
        show = getattr(self.ctx.report, "evaluating", None)
        if show is not None:
            show(self.stage.name, done, self.P)

    def _draw(self, position: int) -> int:
        """The candidate that trains at `position` in the round: uniformly drawn (Alg. 1 l.8 /
        l.23), or, with `round_sampling: fair`, the next in shuffled turns over all P (each turn a
        permutation derived from the seed, the round and the turn: no extra state to save)."""
        if self.s["round_sampling"] != "fair":
            return self.rng.randrange(self.P)
        turn, pos = divmod(position, self.P)
        order = list(range(self.P))
        random.Random(
            derive_seed(self.ctx.seed, self.stage.name, "turns", self.round, turn)
        ).shuffle(order)
        return order[pos]

    def _trained(self) -> None:
        pass

    def _train_round(self) -> bool:
        """A stage that trains a whole round its own way does it here and returns True."""
        return False

    def _round_started(self) -> None:
        pass

    def _picked(self) -> None:
        """The round's pick is known (`best_i`), before it is shown and handed on."""

    def _diverged(self, i: int) -> None:
        self.diverged.add(i)

    def _score(self, record: dict[str, Any], i: int) -> dict[str, Any]:
        """IS and FID of candidate i, or the worst values for a diverged one."""
        if i in self.diverged:
            record.update({"is": 0.0, "is_std": 0.0, "fid": math.inf, "diverged": True})
            return record
        seed = derive_seed(
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
        self._picked()
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

    def _vary(
        self, parents: list[Genome], space: GenomeSpace, seen: Iterable[Genome] = ()
    ) -> list[Any]:
        """P − |parents| children: crossover & mutation (§4.3); or, for the random-search
        baseline (`strategy: random`, called without parents), P fresh random architectures that
        the stage has not evaluated before (`seen`)."""
        n, s = self.P - len(parents), self.s
        if s["strategy"] == "random":
            return offspring([], n, space, self.rng, 0.0, 0.0, taken=[*parents, *seen])
        return offspring(parents, n, space, self.rng, float(s["crossover"]), float(s["mutation"]))


class SearchStage(OneToOne, Evolving):
    """A search stage (paper §4.1 / §4.2): warm-up, then R rounds of training, evaluation,
    selection and crossover & mutation of one network against an opponent."""

    def __init__(self, ctx: Context, stage: StageIR) -> None:
        super().__init__(ctx, stage)
        s, program = self.s, ctx.program
        self.net = program.networks[s["network"]]
        self.searching_g = self.net.role == "generator"
        self.me, self.them = ("g", "d") if self.searching_g else ("d", "g")
        self.them_role = "discriminator" if self.searching_g else "generator"
        self.rng = random.Random(derive_seed(ctx.seed, stage.name, "evolution"))
        self.trainer = Trainer(
            ctx,
            s,
            torch.Generator().manual_seed(derive_seed(ctx.seed, stage.name, "batches")),
        )
        self.space = GenomeSpace(self.net, input_resolution(program, self.net))
        self.P, self.R, self.E = int(s["population"]), int(s["rounds"]), int(s["epochs"])
        self.one_to_one = s["pairing"] == "one_to_one"
        betas, lr, ema = self.trainer.betas, self.trainer.lr, s["ema"]
        supernet = build_supernet(
            program, self.net.name, derive_seed(ctx.seed, stage.name, "supernet"), ctx.device
        )
        # the supernet keeps an EMA only where it scores candidates (setting `score`)
        keep_ema = self.searching_g and s["score"] == "ema"
        self.supernet = Member(supernet, lr[self.me], betas, ema if keep_ema else None)
        opponent, self.opponent_genome = self._opponent()
        opponent.to(ctx.device).train()
        them_ema = ema if not self.searching_g else None
        first = Member(opponent, lr[self.them], betas, them_ema)
        # one-to-one: P independent copies of G* (Alg. 1 l.18); warm-up trains a separate copy
        self.partners = [first.copy() for _ in range(self.P)] if self.one_to_one else [first]
        self.warm = first if self.one_to_one else self.partners[0]
        self.phase, self.round, self.epoch, self.it = "warmup", 0, 0, 0
        self.population: list[Genome] = []
        self.seen: set[Genome] = set()  # every genome this stage has evaluated
        self.origins: list[str] = []
        self.diverged: set[int] = set()
        self.records: list[dict[str, Any]] = []
        self.best_i = 0
        # one-to-one rounds: trained pairs of this round (private weights) and pairs in progress
        self.pairs_done: dict[int, dict[str, Any]] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self._live_job: dict[str, Any] | None = None
        # one-to-one: the private weights of each pair's candidate after the last round (handed on)
        self.privates: dict[int, dict[str, Any]] = {}
        # one-to-one on several ranks: an opponent copy is current only on the rank that trained
        # it, from a round's first block until `spread_partners` or `weight_reset`
        self.partners_held = False

    def _opponent(self) -> tuple[nn.Module, Genome]:
        """A fixed network (fresh weights) or a previous stage's pick with its trained weights."""
        s, ctx = self.s, self.ctx
        source = s["against"] if s["against"] is not None else s["with"]
        if isinstance(source, Best):
            result = ctx.results[source.stage]
            return copy.deepcopy(result.modules[self.them_role]), result.genomes[self.them_role]
        module = build_fixed(
            ctx.program, source, derive_seed(ctx.seed, self.stage.name, "opponent"), ctx.device
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
        if self.s["warmup_sampling"] == "fair":
            return self._train_paths(self.space.fair_paths(self.rng), self.warm)
        return self._train(self.space.random(self.rng), self.warm)

    def warm_step(self) -> tuple[float, float]:
        """One warm-up iteration of the supernet (the bench scripts drive warm-up with it)."""
        return self._warm_iteration()

    def train_step(self, i: int) -> tuple[float, float]:
        """One round iteration of candidate i on the shared supernet with its partner (the bench
        scripts time rounds with it); `start_population` must have run."""
        return self._train_candidate(i)

    def start_population(self) -> list[Genome]:
        """Draw the first population, as at the end of warm-up; returns it."""
        self._start_population()
        return list(self.population)

    def _train_paths(self, paths: list[Genome], partner: Member) -> tuple[float, float]:
        """FairNAS's strict fairness (`warmup_sampling: fair`): one iteration in which every batch
        is cut into len(paths) shares, share k runs through path k, and the losses of all shares
        make one update, so every candidate op of every edge is trained in every step at the cost
        of one uniform step. (FairNAS trains every path on the whole batch, at K× the cost.)"""
        sup = self.supernet.module

        def mixed(x: torch.Tensor) -> torch.Tensor:
            shares = torch.tensor_split(x, len(paths))
            return torch.cat([sup(xs, g) for xs, g in zip(shares, paths, strict=True) if len(xs)])

        if self.searching_g:
            return self.trainer.iteration(None, partner.module, self.supernet, partner, g_fn=mixed)
        return self.trainer.iteration(partner.module, None, partner, self.supernet, d_fn=mixed)

    def _train_candidate(self, i: int) -> tuple[float, float]:
        return self._train(self.population[i], self._partner(i))

    def _start_population(self) -> None:
        if self.supernet.ema is not None:
            # the EMA that scores starts at the end of warm-up: from random initial weights it
            # would still hold a share of them when the first rounds are scored
            self.supernet.ema.module.load_state_dict(self.supernet.module.state_dict())
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

    def _picked(self) -> None:
        if self.one_to_one:
            self.spread_partners(self.best_i)

    def _snapshot(self) -> None:
        """Keep the shared weights of the round's start, to restore if a candidate poisons them."""
        for member in [self.supernet] + ([] if self.one_to_one else self.partners):
            member._good = copy.deepcopy(member.state_dict())  # type: ignore[attr-defined]

    # ---------------------------------------------------------------------- evaluation
    def _scorer(self, member: Member) -> nn.Module:
        """The weights that score (setting `score`): the member's EMA, or its raw weights."""
        return member.evaluated() if self.s["score"] == "ema" else member.module

    def scored_generator(self, genome: Genome) -> EvalWrapper:
        """Stage 1's scoring generator for `genome`: the supernet's scoring weights on that path,
        with BatchNorm statistics re-estimated for it (deterministic: the round's latents)."""
        net = self._scorer(self.supernet)
        fn: Callable[[torch.Tensor], torch.Tensor] = lambda z: net(z, genome)
        recalibrate(self.ctx, self.s, fn, net, self.round)
        return EvalWrapper(fn, net)

    def _generator(self, i: int) -> nn.Module:
        """The generator that scores candidate i: itself (stage 1) or, for a D candidate, the G it
        was trained with (§4.2: D is assessed indirectly through its G's IS and FID)."""
        if self.searching_g:
            return self.scored_generator(self.population[i])
        module = self._scorer(self._partner(i))
        return EvalWrapper(module, module)

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
            self.weight_reset(self.best_i)
            self.ctx.notify(
                "reset",
                stage=self.stage.name,
                round=self.round,
                best=self.best_i,
                partners=[p.module for p in self.partners],
            )
        # random search (Li & Talwalkar, 2019) keeps no parents: every round is P new random
        # architectures, so neither selection nor the size objective steers what it tries
        random_search = self.s["strategy"] == "random"
        parents = [] if random_search else [self.population[i] for i in keep]
        self.seen.update(self.population)
        children = self._vary(parents, self.space, self.seen)
        self.population = parents + [c.genome for c in children]
        self.origins = ["parent"] * len(parents) + [c.origin for c in children]
        if self.one_to_one:
            # survivors keep their G; a child takes a copy of the G of the parent in its slot
            # (random search: of the selected individuals' slots, in turn)
            slots = [] if random_search else keep
            order = slots + [keep[j % len(keep)] for j in range(len(children))]
            used: set[int] = set()
            partners = []
            for src in order:
                partners.append(self.partners[src].copy() if src in used else self.partners[src])
                used.add(src)
            self.partners = partners
            self.privates = {}  # by slot: the next round's merge makes new ones

    def _result(self) -> StageResult:
        """`best(stage)`: exactly the networks that produced the pick's recorded IS and FID. A G
        pick is its path through the supernet's scoring weights with the BatchNorm statistics it
        was scored with; a D pick is its pair's own trained copy (one-to-one) and comes with the G
        that scored it."""

        best = self.best_i
        genome = self.population[best]
        partner = self._partner(best)
        if self.searching_g:
            scored = self.scored_generator(genome)
            mine: nn.Module = path_of(scored.inner, genome)
            theirs = copy.deepcopy(partner.module)
        else:
            mine = path_of(self.supernet.module, genome)
            private = self.private_of(best)
            if private is not None:
                mine.load_state_dict(private)
            theirs = copy.deepcopy(self._scorer(partner))
        for module in (mine, theirs):
            module.requires_grad_(True)  # an EMA copy is frozen; what is handed on trains on
        return StageResult(
            stage=self.stage.name,
            searched=self.net.role,
            genomes={self.net.role: genome, self.them_role: self.opponent_genome},
            modules={self.net.role: mine, self.them_role: theirs},
            record=self.records[best] if self.records else {},
        )

    # -------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The stage's state, with what only some ranks hold gathered from them (a collective:
        every rank calls it)."""
        held = self.held_partners() if self.partners_held else {}
        pairs_done, privates = self.held_pairs()
        return {
            **self.counters(),
            "round": self.round,
            "population": [list(g.choices) for g in self.population],
            "seen": sorted(list(g.choices) for g in self.seen),
            "origins": list(self.origins),
            "diverged": sorted(self.diverged),
            "records": json.dumps(self.records, default=str),
            "best": self.best_i,
            "rng": rng_state(self.rng),
            "trainer": self.trainer.state_dict(),
            "supernet": self.supernet.state_dict(),
            "partners": [held.get(j) or p.state_dict() for j, p in enumerate(self.partners)],
            "warm": self.warm.state_dict() if self.one_to_one else None,
            "pairs_done": pairs_done,
            "privates": privates,
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
        self.seen = {Genome(self.net.name, tuple(c)) for c in state.get("seen", [])}
        self.origins = list(state["origins"])
        self.diverged = set(state["diverged"])
        self.records = json.loads(state["records"])
        set_rng_state(self.rng, state["rng"])
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
        self.privates = {int(j): v for j, v in state.get("privates", {}).items()}
        for j in self.pairs_done:
            if self.pairs_done[j]["diverged"]:
                self.diverged.add(j)
        self.partners_held = False  # every rank has every copy from the checkpoint
        if self.phase in ("train", "eval"):
            self._snapshot()
