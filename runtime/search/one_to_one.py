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
from typing import TYPE_CHECKING, Any, cast

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
    counts: Mapping[str, int] | None = None,
    all_reduce: Callable[[torch.Tensor, str], None] | None = None,
) -> None:
    """Merge private copies trained from `state` back into it, in place. Each contribution maps
    keys of `state` to a private copy's value. With `sum`, a parameter moves by the sum of the
    copies' changes, w + Σ_j (w_j − w): Algorithm 1 trains one shared supernet, so a weight used
    by k pairs takes all k pairs' updates (exactly sequential training wherever the updates do
    not depend on the weights, as plain SGD on a linear loss). With `mean` it takes the mean of
    the copies, a k× smaller step. Buffers (BatchNorm statistics) take the mean either way;
    integer buffers keep theirs.

    Across ranks (`all_reduce`, a sum or max over the ranks in place; `counts`, how many
    contributions each key has on all ranks together), each rank passes the contributions it
    holds and the sums travel as two tensor all-reduces. The sums are exact and so do not depend
    on how the contributions are split over ranks, nor on their order: each key's terms (changes
    or values) are fixed-point integers (int64) in units of 2^(e − 62 + ⌈log2 k⌉), e the exponent
    of the key's largest term on any rank (the first all-reduce), so every term keeps its float32
    bits unless it is 2^33 times smaller than that largest one, and integers add exactly."""
    given = counts or {}
    n = {
        k: given.get(k, 0) if counts is not None else sum(1 for c in contributions if k in c)
        for k in state
    }
    keys = [k for k, base in state.items() if base.is_floating_point() and n[k] > 0]
    if not keys:
        return
    terms: dict[str, list[torch.Tensor]] = {}
    for k in keys:
        base = state[k]
        delta = rule == "sum" and k in params
        terms[k] = [
            (c[k].to(base.device) - base) if delta else c[k].to(base.device)
            for c in contributions
            if k in c
        ]
    device = state[keys[0]].device
    # the largest term's exponent (frexp: |x| < 2^e) per key, over all ranks
    top = torch.stack(
        [
            torch.stack([t.abs().max() for t in terms[k]]).max().float()
            if terms[k]
            else torch.zeros((), device=device)
            for k in keys
        ]
    )
    # a key whose terms are all zero: any unit will do (2^-200 is below float32's smallest)
    exps = torch.frexp(top).exponent.long().where(top > 0, torch.full_like(top, -200).long())
    if all_reduce is not None:
        all_reduce(exps, "max")
    shift = {
        k: int(exps[i]) - 62 + max(math.ceil(math.log2(max(n[k], 1))), 0)
        for i, k in enumerate(keys)
    }
    flat = torch.cat([_fixed(terms[k], shift[k], state[k]).reshape(-1) for k in keys])
    if all_reduce is not None:
        all_reduce(flat, "sum")
    offset = 0
    for k in keys:
        base = state[k]
        total = torch.ldexp(
            flat[offset : offset + base.numel()].view_as(base).double(),
            torch.tensor(float(shift[k]), dtype=torch.float64, device=base.device),
        )
        offset += base.numel()
        if rule == "sum" and k in params:
            base.copy_(base.double() + total)
        else:
            base.copy_(total / n[k])


def _fixed(terms: list[torch.Tensor], shift: int, like: torch.Tensor) -> torch.Tensor:
    """Σ terms as int64 in units of 2^shift (each term rounded half to even on its own)."""
    out = torch.zeros(like.shape, dtype=torch.int64, device=like.device)
    scale = torch.tensor(float(-shift), dtype=torch.float64, device=like.device)
    for t in terms:
        out += torch.round(torch.ldexp(t.double(), scale)).long()
    return out


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
    partners_held: bool

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
            # the block's exchange: each pair's record; its weights stay on its rank
            self.partners_held = dist.active
            done = dist.gather(None if job is None else self._pair_result(job))
            self._live_job = None
            for record in done:
                if record is not None:
                    self._pair_done(
                        record, job if job is not None and job["j"] == record["j"] else None
                    )
        self._merge()
        self.pairs_done = {}
        return True

    def _holder(self, j: int) -> int:
        """The rank that holds pair j's weights between the blocks and the round's end (the rank
        that trains it; after a resume every rank holds the checkpoint's pairs, and this one
        counts them)."""
        return j % self.ctx.dist.world

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
        """What the other ranks need of a finished pair after its block: its record. Its weights
        stay on its rank (`_holder`): the private copy enters the merge through the round's
        all-reduced sums (`_merge`), and the opponent's copy, which scores the pair on this same
        rank, travels once per round where it is needed (`spread_partners`)."""
        return {"j": job["j"], "it": job["it"], "diverged": job["diverged"]}

    def _pair_done(self, record: dict[str, Any], job: dict[str, Any] | None) -> None:
        """Pair j's record, with its private weights where this rank trained it (`job`)."""
        j = int(record["j"])
        keep = job is not None and not job["diverged"]
        net = job["net"] if job is not None else None
        self.pairs_done[j] = {
            "module": to_cpu(net.module.state_dict()) if keep and net is not None else None,
            "ema": (
                to_cpu(net.ema.module.state_dict())
                if keep and net is not None and net.ema is not None
                else None
            ),
            "diverged": bool(record["diverged"]),
        }
        if record["diverged"]:
            self.diverged.add(j)

    def _merge(self) -> None:
        """The supernet (and its EMA) takes the pairs' private copies back, by the rule of
        `merge_changes`: each rank adds the copies it holds, the sums are all-reduced (exact, so
        the same on every rank and for any number of ranks); weights no pair used keep theirs.
        The private weights of each candidate are kept for the hand-off (`best(stage)`), on the
        rank that holds them."""
        from compiler.extract import subnet_keys

        sup, dist = self.supernet, self.ctx.dist
        params = {name for name, _ in sup.module.named_parameters()}
        targets = [("module", sup.module)] + (
            [("ema", sup.ema.module)] if sup.ema is not None else []
        )
        done = [j for j in sorted(self.pairs_done) if not self.pairs_done[j]["diverged"]]
        for part, module in targets:
            state = module.state_dict()
            counts: dict[str, int] = {}
            contributions = []
            for j in done:
                keys = subnet_keys(self.net, self.population[j], state)
                for key in keys:
                    counts[key] = counts.get(key, 0) + 1
                private = self.pairs_done[j][part]
                if self._holder(j) == dist.rank and private is not None:
                    contributions.append({key: private[sub] for key, sub in keys.items()})
            merge_changes(
                state, contributions, params, str(self.s["merge"]), counts, dist.all_reduce
            )
            module.load_state_dict(state)
        if not self.searching_g:
            self.privates = {j: self.pairs_done[j]["module"] for j in done}

    def private_of(self, j: int) -> dict[str, Any] | None:
        """Candidate j's private weights after the last round, on every rank (a collective where
        they are held on one rank)."""
        if j not in self.privates:
            return None
        dist = self.ctx.dist
        held = self.privates[j] if dist.rank == self._holder(j) else None
        return cast("dict[str, Any] | None", dist.broadcast(held, src=self._holder(j)))

    def spread_partners(self, best: int) -> None:
        """After a distributed round each opponent copy is current on the rank that trained its
        pair only (which scored it). With weight-resetting every copy takes the best's (Alg. 1
        l.29–30), so only the best one travels; without, every rank sends the copies it holds."""
        dist = self.ctx.dist
        if not self.partners_held:
            return
        if self.s["weight_reset"]:
            src = self._holder(best)
            mine = to_cpu(self.partners[best].state_dict()) if dist.rank == src else None
            state = dist.broadcast(mine, src=src)
            if dist.rank != src:
                self.partners[best].load_state_dict(state)
            return  # `weight_reset` then makes every copy the best's
        self.load_partners(self.held_partners())

    def held_partners(self) -> dict[int, dict[str, Any]]:
        """Every opponent copy that some rank holds, from every rank (a collective)."""
        dist = self.ctx.dist
        mine = {
            j: to_cpu(p.state_dict())
            for j, p in enumerate(self.partners)
            if self._holder(j) == dist.rank
        }
        return {j: state for part in dist.gather(mine) for j, state in part.items()}

    def load_partners(self, states: dict[int, dict[str, Any]]) -> None:
        dist = self.ctx.dist
        for j, state in states.items():
            if self._holder(j) != dist.rank:
                self.partners[j].load_state_dict(state)
        self.partners_held = False

    def held_pairs(self) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
        """The round's finished pairs and the private weights after the last merge, each with
        the weights from the rank that holds them (a collective: every rank calls it)."""
        dist = self.ctx.dist
        if not dist.active:
            return dict(self.pairs_done), dict(self.privates)
        mine = (
            {j: v for j, v in self.pairs_done.items() if self._holder(j) == dist.rank},
            {j: v for j, v in self.privates.items() if self._holder(j) == dist.rank},
        )
        pairs: dict[int, dict[str, Any]] = {}
        privates: dict[int, dict[str, Any]] = {}
        for p, q in dist.gather(mine):
            pairs.update(p)
            privates.update(q)
        return pairs, privates

    def weight_reset(self, best: int) -> None:
        """Weight-resetting (Alg. 1 l.29–30): every copy of the opponent takes the best copy's
        weights, optimizer state and EMA (bit-identical)."""
        state = copy.deepcopy(self.partners[best].state_dict())
        for i, member in enumerate(self.partners):
            if i != best:
                member.load_state_dict(copy.deepcopy(state))
        self.partners_held = False
