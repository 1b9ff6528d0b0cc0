"""Stage 2's one-to-one rounds (§4.2, Alg. 1 l.18–30): P pairs, candidate i trains only with its own
copy of the opponent (Eq. 10); pairs are independent within a round, so they spread over the
ranks (`runtime/dist.py`) with results that do not depend on how many there are. Each pair trains a
private copy of its candidate's path for an equal quota of iterations; at the round's end the
copies are merged back into the supernet (`merge`), and with weight-resetting every copy of the
opponent takes the weights of the best pair's copy (`weight_reset`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from runtime.dist import to_cpu
from runtime.search.members import Member, Trainer, path_of
from runtime.search.protocol import Interrupted, derive_seed
from runtime.train import Diverged

if TYPE_CHECKING:
    from eagan_dsl.genome import Genome
    from eagan_dsl.ir import NetworkIR, StageIR
    from runtime.search.protocol import Context


def merge_changes(
    state: dict[str, torch.Tensor],
    contributions: Sequence[Mapping[str, torch.Tensor]],
    params: set[str],
    rule: str,
) -> None:
    """Merge private copies trained from `state` back into it, in place. Each contribution maps
    keys of `state` to a private copy's value. With `sum`, a parameter moves by the sum of the
    copies' changes, w + Σ_j (w_j − w): Algorithm 1 trains one shared supernet, so a weight used
    by k pairs takes all k pairs' updates (exactly sequential training wherever the updates do
    not depend on the weights, as plain SGD on a linear loss). With `mean` it takes the mean of
    the copies, a k× smaller step. Buffers (BatchNorm statistics) take the mean either way;
    integer buffers keep theirs. Contributions are added in the given order."""
    for key, base in state.items():
        values = [c[key].to(base.device) for c in contributions if key in c]
        if not values or not base.is_floating_point():
            continue
        if rule == "sum" and key in params:
            total = base.clone()
            for v in values:
                total += v - base
        else:
            total = values[0].clone()
            for v in values[1:]:
                total += v
            total /= len(values)
        base.copy_(total)


class OneToOne:
    """The one-to-one pairs of a search stage (mixed into `SearchStage`)."""

    ctx: Context
    stage: StageIR
    s: dict[str, Any]
    P: int
    R: int
    E: int
    round: int
    net: NetworkIR
    searching_g: bool
    me: str
    one_to_one: bool
    trainer: Trainer
    supernet: Member
    partners: list[Member]
    population: list[Genome]
    diverged: set[int]
    pairs_done: dict[int, dict[str, Any]]
    jobs: dict[int, dict[str, Any]]
    _live_job: dict[str, Any] | None
    privates: dict[int, dict[str, Any]]

    announce: Callable[..., None]  # from `Stage`

    # ------------------------------------------------------------ one-to-one: the pairs
    def _train_round(self) -> bool:
        """Stage 2's round (Alg. 1 l.22–25), pair by pair. Candidate i (a D, or a G when G is
        searched one-to-one) trains a private copy of its path through the supernet (inherited
        weights, §3.1) with its own copy of the opponent (Eq. 10), for the same number of iterations
        as every other pair and on its own stream of batches. Pairs are thus independent within a
        round: they spread over the ranks, W at a time, and a pair's result does not depend on the
        world size. At the round's end the private copies are merged back into the supernet
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
            # a resumed round: this rank's pairs already trained
            quota * sum(1 for j in self.pairs_done if j % dist.world == dist.rank),
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
            done = dist.gather(None if job is None else to_cpu(self._pair_result(job)))
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

        s, ctx, sup, genome = self.s, self.ctx, self.supernet, self.population[j]
        net = Member(
            path_of(sup.module, genome),
            self.trainer.lr[self.me],
            self.trainer.betas,
            s["ema"] if sup.ema is not None else None,
        )
        if net.ema is not None and sup.ema is not None:
            net.ema.module.load_state_dict(path_of(sup.ema.module, genome).state_dict())
        gen = torch.Generator().manual_seed(
            derive_seed(ctx.seed, self.stage.name, "pair", self.round, j)
        )
        job: dict[str, Any] = {
            "j": j,
            "it": 0,
            "diverged": False,
            "net": net,
            "trainer": Trainer(ctx, s, gen, shard=False),
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
            losses: tuple[float, float] = job["trainer"].iteration(g.module, d.module, g, d)
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

    def _pair_result(self, job: dict[str, Any]) -> dict[str, Any]:
        """What the other ranks need of a finished pair (the block's exchange): the private copy's
        weights (and EMA) for the merge, and the opponent's copy, which every rank keeps (it is
        evaluated, reset from and copied into children's slots). The private copy's Adam state
        and the pair's batch stream end with the pair, so they stay on its rank; a diverged pair
        sends no weights (it stays out of the merge)."""
        net = job["net"]
        keep = not job["diverged"]
        return {
            "j": job["j"],
            "it": job["it"],
            "diverged": job["diverged"],
            "net": {
                "module": net.module.state_dict() if keep else None,
                "ema": net.ema.module.state_dict() if keep and net.ema is not None else None,
            },
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
        """The supernet (and its EMA) takes the pairs' private copies back (in pair order, so
        identical on every rank), by the rule of `merge_changes`; weights no pair used keep theirs.
        The private weights of each candidate are kept for the hand-off (`best(stage)`)."""
        from compiler.extract import subnet_keys

        sup = self.supernet
        params = {name for name, _ in sup.module.named_parameters()}
        targets = [("module", sup.module)] + (
            [("ema", sup.ema.module)] if sup.ema is not None else []
        )
        done = [j for j in sorted(self.pairs_done) if not self.pairs_done[j]["diverged"]]
        for part, module in targets:
            state = module.state_dict()
            contributions = []
            for j in done:
                private = self.pairs_done[j][part]
                keys = subnet_keys(self.net, self.population[j], state)
                contributions.append({key: private[sub] for key, sub in keys.items()})
            merge_changes(state, contributions, params, str(self.s["merge"]))
            module.load_state_dict(state)
        if not self.searching_g:
            self.privates = {j: self.pairs_done[j]["module"] for j in done}

    def weight_reset(self, best: int) -> None:
        """Weight-resetting (Alg. 1 l.29–30): every copy of the opponent takes the best copy's
        weights, optimizer state and EMA (bit-identical)."""
        state = copy.deepcopy(self.partners[best].state_dict())
        for i, member in enumerate(self.partners):
            if i != best:
                member.load_state_dict(copy.deepcopy(state))
