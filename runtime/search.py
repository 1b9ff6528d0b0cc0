"""Algorithm 1 of the paper: warm-up, stage 1 (many-to-one), stage 2 (one-to-one with
weight-resetting), selection by non-dominated sorting, crossover & mutation; and the fully-train
stage.

One engine serves both search stages: a stage searches one network (G or D) against an opponent.
`many_to_one` (§4.1): every candidate trains against one shared opponent, which is trained too
(Eq. 7–8). `one_to_one` (§4.2): P copies of the opponent, candidate i trains only with copy i
(Eq. 10); with `weight_reset`, after each round every copy takes the weights of the best pair's copy.
The copies are extracted subnets (only the chosen ops), not supernet copies — the released code's
32 supernet copies cost ~9 GB and alias one another (research notes §3.4).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from eagan_dsl.genome import Genome, GenomeSpace
from eagan_dsl.ir import Best, Program, StageIR
from runtime.data import ImageData
from runtime.evaluator import Evaluator
from runtime.evolution import initial_population, offspring
from runtime.nets import build_fixed, build_subnet, build_supernet, genome_of, params_of
from runtime.selection import cars_select, nsga2_select, objective_matrix, pick, ranks
from runtime.train import EMA, Diverged, adam, d_step, g_step, sample_z


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


@dataclass
class Context:
    program: Program
    data: ImageData
    device: torch.device
    seed: int
    evaluators: dict[str, Evaluator]
    report: Any  # runtime.display.Reporter
    history: Any  # runtime.rundir.History
    samples: Callable[[str, nn.Module | Callable[[torch.Tensor], torch.Tensor]], None]
    results: dict[str, StageResult] = field(default_factory=dict)
    # test and tooling hook: called with (event, details) at fixed points of a search stage
    observe: Callable[[str, dict[str, Any]], None] | None = None

    def notify(self, event: str, **details: Any) -> None:
        if self.observe is not None:
            self.observe(event, details)


def _seed(base: int, *parts: object) -> int:
    """A stable seed derived from the run seed and a path (stage, round, ...)."""
    h = base
    for p in parts:
        for ch in str(p):
            h = (h * 1000003 + ord(ch)) & 0x7FFFFFFF
    return h


class _Trainer:
    """Draws real batches and latents, runs n_critic D steps and one G step."""

    def __init__(self, ctx: Context, s: dict[str, Any], gen: torch.Generator) -> None:
        self.ctx = ctx
        self.data = ctx.data
        self.device = ctx.device
        self.gen = gen
        self.bg, self.bd = int(s["batch"]["g"]), int(s["batch"]["d"])
        self.n_critic = int(s["n_critic"])
        self.lr = s["lr"]
        self.betas = tuple(s["betas"])
        self.clip = s["grad_clip"]
        self.latent = ctx.program.latent_dim
        self.dist = ctx.program.latent_distribution
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
        return self.data.batch(idx.to(self.data.images.device))

    def z(self, n: int) -> torch.Tensor:
        return sample_z(n, self.latent, self.device, self.gen, self.dist)

    def iteration(
        self,
        g: Callable[[torch.Tensor], torch.Tensor],
        d: Callable[[torch.Tensor], torch.Tensor],
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        g_params: list[nn.Parameter],
        d_params: list[nn.Parameter],
    ) -> tuple[float, float]:
        for _ in range(self.n_critic):
            ld = d_step(g, d, self.real(), self.z(self.bd), opt_d, self.clip, d_params)
        lg = g_step(g, d, self.z(self.bg), opt_g, self.clip, g_params)
        return ld, lg


def _opponent(ctx: Context, s: dict[str, Any], stage: str, role: str) -> tuple[nn.Module, Genome]:
    """The opponent of a search stage: a fixed network (fresh weights) or a previous stage's pick
    of `role` with its trained weights."""
    source = s["against"] if s["against"] is not None else s["with"]
    if isinstance(source, Best):
        result = ctx.results[source.stage]
        return copy.deepcopy(result.modules[role]), result.genomes[role]
    module = build_fixed(ctx.program, source, _seed(ctx.seed, stage, "opponent"), ctx.device)
    return module, genome_of(ctx.program, source)


def run_search(ctx: Context, stage: StageIR) -> StageResult:
    s = dict(stage.settings)
    program = ctx.program
    name = s["network"]
    if isinstance(name, tuple):
        return run_coupled(ctx, stage)
    net = program.networks[name]
    searching_g = net.role == "generator"
    rng = random.Random(_seed(ctx.seed, stage.name, "evolution"))
    gen = torch.Generator().manual_seed(_seed(ctx.seed, stage.name, "batches"))
    space = GenomeSpace(net, _input_resolution(program, net))
    P, R, E = int(s["population"]), int(s["rounds"]), int(s["epochs"])
    one_to_one = s["pairing"] == "one_to_one"
    trainer = _Trainer(ctx, s, gen)
    me, them = ("g", "d") if searching_g else ("d", "g")

    supernet = build_supernet(program, name, _seed(ctx.seed, stage.name, "supernet"), ctx.device)
    opt_s = adam(supernet.parameters(), trainer.lr[me], trainer.betas)  # type: ignore[arg-type]
    them_role = "discriminator" if searching_g else "generator"
    opponent, opponent_genome = _opponent(ctx, s, stage.name, them_role)
    opponent = opponent.to(ctx.device).train()
    ema_decay = s["ema"]
    ema_s = EMA(supernet, ema_decay) if (ema_decay and searching_g) else None

    def pair_fns(genome: Genome, opp: nn.Module) -> tuple[Callable, Callable]:  # type: ignore[type-arg]
        cand: Callable[[torch.Tensor], torch.Tensor] = lambda x: supernet(x, genome)  # noqa: E731
        return (cand, opp) if searching_g else (opp, cand)

    def train_pair(genome: Genome, opp: nn.Module, opt_o: torch.optim.Optimizer, ema_o: EMA | None) -> tuple[float, float]:
        g, d = pair_fns(genome, opp)
        sp = [p for p in supernet.parameters()]
        op = [p for p in opp.parameters()]
        opt_g, opt_d = (opt_s, opt_o) if searching_g else (opt_o, opt_s)
        gp, dp = (sp, op) if searching_g else (op, sp)
        losses = trainer.iteration(g, d, opt_g, opt_d, gp, dp)
        if ema_s is not None:
            ema_s.update(supernet)
        if ema_o is not None:
            ema_o.update(opp)
        return losses

    def o_ema(m: nn.Module) -> EMA | None:
        return EMA(m, ema_decay) if (ema_decay and not searching_g) else None

    # ------------------------------------------------------------------ warm-up (§5.1)
    # All candidate ops trained equally: a fresh uniformly drawn valid genome every iteration.
    warm_opp = opponent if not one_to_one else copy.deepcopy(opponent)
    warm_opt = adam(warm_opp.parameters(), trainer.lr[them], trainer.betas)  # type: ignore[arg-type]
    warm_ema = o_ema(warm_opp)
    iters = trainer.iterations_per_epoch()
    ctx.report.stage_start(stage.name, f"warm-up, {s['warmup']} epochs", s["warmup"] * iters)
    for epoch in range(int(s["warmup"])):
        for _ in range(iters):
            try:
                ld, lg = train_pair(space.random(rng), warm_opp, warm_opt, warm_ema)
            except Diverged:
                ld = lg = math.nan
            ctx.report.step(d=ld, g=lg, epoch=epoch)

    # --------------------------------------------------------------- the population
    population = initial_population(space, P, rng)
    origins = ["random"] * P
    if one_to_one:
        partners = [copy.deepcopy(opponent) for _ in range(P)]
        partner_opts = [adam(m.parameters(), trainer.lr[them], trainer.betas) for m in partners]  # type: ignore[arg-type]
        partner_emas = [o_ema(m) for m in partners]
    else:
        partners = [warm_opp]
        partner_opts = [warm_opt]
        partner_emas = [warm_ema]
    ctx.notify("population", stage=stage.name, population=list(population), partners=partners)
    archive: list[tuple[Genome, dict[str, Any]]] = []
    best_i = 0
    records: list[dict[str, Any]] = []
    for r in range(R):
        ctx.report.stage_start(stage.name, f"round {r + 1}/{R}", E * iters)
        diverged: set[int] = set()
        for epoch in range(E):
            for _ in range(iters):
                i = rng.randrange(P)  # Alg. 1 l.8 / l.23: uniformly drawn candidate
                if i in diverged:
                    continue
                k = i if one_to_one else 0
                try:
                    ld, lg = train_pair(population[i], partners[k], partner_opts[k], partner_emas[k])
                except Diverged:
                    diverged.add(i)
                    ld = lg = math.nan
                ctx.report.step(d=ld, g=lg, epoch=epoch)
        ctx.notify("trained", stage=stage.name, round=r, population=list(population), partners=partners)
        # ------------------------------------------------------- evaluate (Eq. 6 / Eq. 9)
        records = []
        eval_seed = _seed(ctx.seed, stage.name, "eval", r)
        for i, genome in enumerate(population):
            record: dict[str, Any] = {
                "genome": space.encode(genome),
                "params": params_of(program, genome),
                "origin": origins[i],
            }
            if i in diverged:
                record.update({"is": 0.0, "is_std": 0.0, "fid": math.inf, "diverged": True})
            else:
                generate = _generator(searching_g, supernet, ema_s, genome, partners, partner_emas, i if one_to_one else 0)
                record.update(ctx.evaluators["search"].evaluate(generate, int(s["images"]), eval_seed))
                if not math.isfinite(record["fid"]):
                    record["diverged"] = True
            records.append(record)
        F = objective_matrix(records, program.objectives)
        rank = ranks(F)
        best_i = pick(records, F, s["pick"])
        keep = (
            cars_select(records, P // 2, rng)
            if s["selection"] == "cars"
            else nsga2_select(F, P // 2)
        )
        for i, record in enumerate(records):
            record.update({"rank": rank[i], "selected": i in keep, "best": i == best_i})
            ctx.history.candidate(stage.name, r, i, record)
            archive.append((population[i], record))
        ctx.history.round(stage.name, r, records, best_i)
        ctx.report.round_table(stage.name, r, records)
        ctx.samples(f"{stage.name}_round{r + 1:02d}", _generator(searching_g, supernet, ema_s, population[best_i], partners, partner_emas, best_i if one_to_one else 0))
        if r == R - 1:
            break
        # -------------------------------------------- weight-resetting (§4.2, Alg. 1 l.29–30)
        if one_to_one and s["weight_reset"]:
            _reset(partners, partner_opts, partner_emas, best_i)
            ctx.notify("reset", stage=stage.name, round=r, best=best_i, partners=partners)
        # ------------------------------------------------- crossover & mutation (§4.3)
        parents = [population[i] for i in keep]
        if s["strategy"] == "random":
            children = [c for c in offspring([], P - len(keep), space, rng, 0.0, 0.0, taken=parents)]
        else:
            children = offspring(parents, P - len(keep), space, rng, float(s["crossover"]), float(s["mutation"]))
        new_population = parents + [c.genome for c in children]
        origins = ["parent"] * len(parents) + [c.origin for c in children]
        if one_to_one:
            # survivors keep their copy; a child takes a copy of its slot's parent's copy
            order = keep + [keep[j % len(keep)] for j in range(len(children))]
            partners, partner_opts, partner_emas = _reorder(partners, partner_opts, partner_emas, order, trainer, them)
        population = new_population

    from compiler.extract import extract

    genome = population[best_i]
    k = best_i if one_to_one else 0
    return StageResult(
        stage=stage.name,
        searched=net.role,
        genomes={net.role: genome, them_role: opponent_genome},
        modules={net.role: extract(supernet, genome), them_role: copy.deepcopy(partners[k])},
        record=records[best_i] if records else {},
    )


def _input_resolution(program: Program, net: Any) -> int | None:
    if net.role == "generator":
        return int(net.stem[0].get("size")) if net.stem else None
    size = program.data.resolution
    from eagan_dsl.primitives import PRIMITIVES

    for prim in net.stem:
        kind = PRIMITIVES[prim.name].kind_for(dict(prim.args))
        size = size // 2 if kind == "down" else size * 2 if kind == "up" else size
    return size


def _generator(
    searching_g: bool,
    supernet: nn.Module,
    ema_s: EMA | None,
    genome: Genome,
    partners: list[nn.Module],
    partner_emas: list[EMA | None],
    k: int,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The generator that scores a candidate: the candidate itself (stage 1) or, for a D candidate,
    the G it was trained with (§4.2: D is assessed indirectly through its G's IS and FID)."""
    if searching_g:
        net = ema_s.module if ema_s is not None else supernet
        return _EvalWrapper(lambda z: net(z, genome), net)
    ema = partner_emas[k]
    module = ema.module if ema is not None else partners[k]
    return _EvalWrapper(module, module)


class _EvalWrapper(nn.Module):
    """A callable generator that switches its module to eval mode during evaluation."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], module: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        self.inner = module

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fn(z)


def _reset(partners: list[nn.Module], opts: list[torch.optim.Optimizer], emas: list[EMA | None], best: int) -> None:
    """Every copy takes the best copy's weights, optimizer state and EMA (bit-identical)."""
    state = copy.deepcopy(partners[best].state_dict())
    opt_state = copy.deepcopy(opts[best].state_dict())
    ema_state = copy.deepcopy(emas[best].module.state_dict()) if emas[best] is not None else None
    for i in range(len(partners)):
        if i == best:
            continue
        partners[i].load_state_dict(state)
        opts[i].load_state_dict(copy.deepcopy(opt_state))
        if ema_state is not None and emas[i] is not None:
            emas[i].module.load_state_dict(ema_state)  # type: ignore[union-attr]


def _reorder(
    partners: list[nn.Module], opts: list[torch.optim.Optimizer], emas: list[EMA | None],
    order: list[int], trainer: _Trainer, role: str,
) -> tuple[list[nn.Module], list[torch.optim.Optimizer], list[EMA | None]]:
    new_p, new_o, new_e = [], [], []
    used: set[int] = set()
    for src in order:
        if src in used:  # a second slot from the same source: an independent copy
            m = copy.deepcopy(partners[src])
            o = adam(m.parameters(), trainer.lr[role], trainer.betas)  # type: ignore[arg-type]
            o.load_state_dict(copy.deepcopy(opts[src].state_dict()))
            e = copy.deepcopy(emas[src])
        else:
            m, o, e = partners[src], opts[src], emas[src]
            used.add(src)
        new_p.append(m)
        new_o.append(o)
        new_e.append(e)
    return new_p, new_o, new_e


# ------------------------------------------------------------------------- fully-train (§5.1)


def resolve_source(ctx: Context, source: Any, role: str) -> Genome:
    """best(stage) (its pick of `role`), a network name, or a genome string `NET:op,op|...`."""
    if isinstance(source, Best):
        return ctx.results[source.stage].genomes[role]
    if isinstance(source, str) and ":" in source:
        net = source.split(":", 1)[0].strip()
        if net not in ctx.program.networks:
            from eagan_dsl.genome import GenomeError

            raise GenomeError(f"genome '{source}' names no searchable network '{net}' of the spec")
        return GenomeSpace(ctx.program.networks[net]).decode(source)
    if isinstance(source, str) and source not in ctx.program.networks and source not in ctx.program.fixed:
        from eagan_dsl.genome import GenomeError

        raise GenomeError(f"'{source}' is neither a network of the spec nor a genome string NET:op,...|...")
    return genome_of(ctx.program, source)


def run_fully_train(ctx: Context, stage: StageIR) -> tuple[nn.Module, nn.Module, EMA | None, dict[str, Any]]:
    """Train (G*, D*) from scratch with the stage's settings; returns G, D, G's EMA, metrics."""
    s = dict(stage.settings)
    program = ctx.program
    g_genome = resolve_source(ctx, s["g"], "generator")
    d_genome = resolve_source(ctx, s["d"], "discriminator")
    G = build_subnet(program, g_genome, _seed(ctx.seed, stage.name, "G"), ctx.device).train()
    D = build_subnet(program, d_genome, _seed(ctx.seed, stage.name, "D"), ctx.device).train()
    gen = torch.Generator().manual_seed(_seed(ctx.seed, stage.name, "batches"))
    trainer = _Trainer(ctx, s, gen)
    opt_g = adam(G.parameters(), trainer.lr["g"], trainer.betas)  # type: ignore[arg-type]
    opt_d = adam(D.parameters(), trainer.lr["d"], trainer.betas)  # type: ignore[arg-type]
    ema = EMA(G, s["ema"]) if s["ema"] else None
    iters = trainer.iterations_per_epoch()
    epochs = int(s["epochs"])
    ctx.report.stage_start(stage.name, f"fully-train, {epochs} epochs", epochs * iters)
    gp, dp = list(G.parameters()), list(D.parameters())
    t0 = time.perf_counter()
    for epoch in range(epochs):
        for _ in range(iters):
            ld, lg = trainer.iteration(G, D, opt_g, opt_d, gp, dp)
            if ema is not None:
                ema.update(G)
            ctx.report.step(d=ld, g=lg, epoch=epoch)
    final = ema.module if ema is not None else G
    metrics = ctx.evaluators["final"].evaluate(
        _EvalWrapper(final, final), int(s["final_images"]), _seed(ctx.seed, stage.name, "final")
    )
    metrics.update(
        {
            "g_genome": str(g_genome),
            "d_genome": str(d_genome),
            "g_params": params_of(program, g_genome),
            "d_params": params_of(program, d_genome),
            "images": int(s["final_images"]),
            "train_seconds": time.perf_counter() - t0,
        }
    )
    ctx.samples(f"{stage.name}_final", _EvalWrapper(final, final))
    return G, D, ema, metrics


# ------------------------------------------------------------- coupled search (§5.3 ablation)


def run_coupled(ctx: Context, stage: StageIR) -> StageResult:
    """The paper's coupled baseline (§5.3, Fig. 6): G and D architectures evolved together every
    round. Individuals are (G, D) pairs sharing SuperNet-G and SuperNet-D; each iteration trains one
    uniformly drawn pair; a pair is scored by its G's IS and FID and by the size of both networks."""
    s = dict(stage.settings)
    program = ctx.program
    names = {program.networks[n].role: n for n in s["network"]}
    g_net, d_net = program.networks[names["generator"]], program.networks[names["discriminator"]]
    rng = random.Random(_seed(ctx.seed, stage.name, "evolution"))
    gen = torch.Generator().manual_seed(_seed(ctx.seed, stage.name, "batches"))
    g_space = GenomeSpace(g_net, _input_resolution(program, g_net))
    d_space = GenomeSpace(d_net, _input_resolution(program, d_net))
    P, R, E = int(s["population"]), int(s["rounds"]), int(s["epochs"])
    trainer = _Trainer(ctx, s, gen)
    G = build_supernet(program, g_net.name, _seed(ctx.seed, stage.name, "G"), ctx.device)
    D = build_supernet(program, d_net.name, _seed(ctx.seed, stage.name, "D"), ctx.device)
    opt_g = adam(G.parameters(), trainer.lr["g"], trainer.betas)  # type: ignore[arg-type]
    opt_d = adam(D.parameters(), trainer.lr["d"], trainer.betas)  # type: ignore[arg-type]
    ema = EMA(G, s["ema"]) if s["ema"] else None
    gp, dp = list(G.parameters()), list(D.parameters())

    def train(g: Genome, d: Genome) -> tuple[float, float]:
        losses = trainer.iteration(lambda z: G(z, g), lambda x: D(x, d), opt_g, opt_d, gp, dp)
        if ema is not None:
            ema.update(G)
        return losses

    iters = trainer.iterations_per_epoch()
    ctx.report.stage_start(stage.name, f"warm-up, {s['warmup']} epochs", s["warmup"] * iters)
    for epoch in range(int(s["warmup"])):
        for _ in range(iters):
            ld, lg = train(g_space.random(rng), d_space.random(rng))
            ctx.report.step(d=ld, g=lg, epoch=epoch)
    gs, ds = initial_population(g_space, P, rng), initial_population(d_space, P, rng)
    records: list[dict[str, Any]] = []
    best_i = 0
    for r in range(R):
        ctx.report.stage_start(stage.name, f"round {r + 1}/{R}", E * iters)
        diverged: set[int] = set()
        for epoch in range(E):
            for _ in range(iters):
                i = rng.randrange(P)
                if i in diverged:
                    continue
                try:
                    ld, lg = train(gs[i], ds[i])
                except Diverged:
                    diverged.add(i)
                    ld = lg = math.nan
                ctx.report.step(d=ld, g=lg, epoch=epoch)
        records = []
        eval_seed = _seed(ctx.seed, stage.name, "eval", r)
        net = ema.module if ema is not None else G
        for i in range(P):
            record: dict[str, Any] = {
                "genome": g_space.encode(gs[i]) + " / " + d_space.encode(ds[i]),
                "params": params_of(program, gs[i]) + params_of(program, ds[i]),
            }
            if i in diverged:
                record.update({"is": 0.0, "is_std": 0.0, "fid": math.inf, "diverged": True})
            else:
                g_i = gs[i]
                record.update(ctx.evaluators["search"].evaluate(_EvalWrapper(lambda z: net(z, g_i), net), int(s["images"]), eval_seed))
            records.append(record)
        F = objective_matrix(records, program.objectives)
        rank = ranks(F)
        best_i = pick(records, F, s["pick"])
        keep = cars_select(records, P // 2, rng) if s["selection"] == "cars" else nsga2_select(F, P // 2)
        for i, record in enumerate(records):
            record.update({"rank": rank[i], "selected": i in keep, "best": i == best_i})
            ctx.history.candidate(stage.name, r, i, record)
        ctx.history.round(stage.name, r, records, best_i)
        ctx.report.round_table(stage.name, r, records)
        best_g = gs[best_i]
        ctx.samples(f"{stage.name}_round{r + 1:02d}", _EvalWrapper(lambda z: net(z, best_g), net))
        if r == R - 1:
            break
        n_new = P - len(keep)
        cg = offspring([gs[i] for i in keep], n_new, g_space, rng, float(s["crossover"]), float(s["mutation"]))
        cd = offspring([ds[i] for i in keep], n_new, d_space, rng, float(s["crossover"]), float(s["mutation"]))
        gs = [gs[i] for i in keep] + [c.genome for c in cg]
        ds = [ds[i] for i in keep] + [c.genome for c in cd]
    from compiler.extract import extract

    return StageResult(
        stage=stage.name,
        searched="generator",
        genomes={"generator": gs[best_i], "discriminator": ds[best_i]},
        modules={"generator": extract(G, gs[best_i]), "discriminator": extract(D, ds[best_i])},
        record=records[best_i] if records else {},
    )
