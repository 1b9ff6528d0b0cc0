"""The estimator of the search (issue «The search must rank architectures»): what a stage hands on
is what it scored; one-to-one merges at Algorithm 1's rate; fair sampling; mutation draws the edge
first; the rank statistics of `bench/rank_correlation.py` against scipy."""

from __future__ import annotations

import collections
import random
from pathlib import Path
from typing import Any

import pytest
import scipy.stats
import torch
from bench_module import load_bench
from rich.console import Console

from eagan_dsl.checker import check_text, load
from eagan_dsl.genome import Genome, GenomeSpace
from runtime.display import Reporter
from runtime.evaluator import Evaluator
from runtime.runner import run_program
from runtime.search import EvalWrapper, derive_seed, input_resolution
from runtime.search.one_to_one import merge_changes

TINY = Path(__file__).parent / "data" / "tiny.eagan"


def _tiny_text(**edits: str) -> str:
    text = TINY.read_text()
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def _quiet() -> Reporter:
    return Reporter(Console(file=open("/dev/null", "w"), width=120), live=False)


# ----------------------------------------------------------------------------- the hand-off
@pytest.mark.parametrize("score", ["ema", "raw"])
def test_each_stage_hands_on_the_networks_it_scored(tmp_path: Path, score: str) -> None:
    """Re-evaluating what `best(stage)` holds, with the recorded seed and image count, gives the
    recorded FD and IS exactly — for stage 1 (a G through the supernet, BN re-estimated) and for
    stage 2 (the G copy that scored the picked D)."""
    torch.set_num_threads(1)
    text = _tiny_text(
        **{
            "train { lr: 2e-4, betas: (0.0, 0.9), batch: 16 }": (
                "train { lr: 2e-4, betas: (0.0, 0.9), batch: 16, ema: 0.9 }"
            ),
            "splits: 1 }": "splits: 1, recalibrate_bn: 2 }",
        }
    )
    text = text.replace("warmup: 1 }", f"warmup: 1, score: {score} }}")
    spec = tmp_path / "tiny.eagan"
    spec.write_text(text)
    program = load(spec)
    results: dict[str, Any] = {}

    def observe(event: str, d: dict[str, Any]) -> None:
        if event == "result":
            results[d["stage"]] = d["result"]

    run_program(program, spec, tmp_path / "run", device="cpu", reporter=_quiet(), observe=observe)
    assert set(results) == {"search_g", "search_d"}
    for stage_ir in program.stages:
        if stage_ir.kind != "search":
            continue
        s = stage_ir.settings
        evaluator = Evaluator(program, s, torch.device("cpu"))
        result = results[stage_ir.name]
        g = result.modules["generator"]
        seed = derive_seed(0, stage_ir.name, "eval", int(s["rounds"]) - 1)
        again = evaluator.evaluate(EvalWrapper(g, g), int(s["images"]), seed)
        assert again["fid"] == result.record["fid"], stage_ir.name
        assert again["is"] == result.record["is"], stage_ir.name
        assert all(p.requires_grad for p in g.parameters())  # it trains on in the next stage


# ----------------------------------------------------------------------------- the merge
def _toy_pairs() -> tuple[dict[str, torch.Tensor], list[dict[str, torch.Tensor]], list[set[str]]]:
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.randn(3, 2, generator=gen) for k in ("a", "b", "c")}
    uses = [{"a", "b"}, {"b", "c"}, {"a", "b", "c"}]  # overlapping paths, as in a supernet
    coeffs = [{k: torch.randn(3, 2, generator=gen) for k in u} for u in uses]
    return state, coeffs, uses


def _sgd(weights: dict[str, torch.Tensor], coeff: dict[str, torch.Tensor], steps: int) -> None:
    """Plain SGD on the linear loss Σ c·w of the keys the pair uses."""
    params = {k: weights[k].clone().requires_grad_(True) for k in coeff}
    opt = torch.optim.SGD(list(params.values()), lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        loss = sum((params[k] * coeff[k]).sum() for k in coeff)
        assert isinstance(loss, torch.Tensor)
        loss.backward()
        opt.step()
    for k, p in params.items():
        weights[k] = p.detach()


def test_merge_sum_equals_sequential_training_on_a_toy() -> None:
    state, coeffs, _ = _toy_pairs()
    sequential = {k: v.clone() for k, v in state.items()}
    for c in coeffs:  # Algorithm 1: the pairs train one shared supernet in turn
        _sgd(sequential, c, steps=5)
    privates = []
    for c in coeffs:  # the runtime: each pair trains a private copy of its path
        private = {k: v.clone() for k, v in state.items()}
        _sgd(private, c, steps=5)
        privates.append({k: private[k] for k in c})
    merged = {k: v.clone() for k, v in state.items()}
    merge_changes(merged, privates, set(state), "sum")
    for k in state:
        torch.testing.assert_close(merged[k], sequential[k], rtol=0, atol=1e-6)
    mean = {k: v.clone() for k, v in state.items()}
    merge_changes(mean, privates, set(state), "mean")
    assert not torch.allclose(mean["b"], sequential["b"], atol=1e-3)  # k× too slow on shared "b"


def test_merge_keeps_unused_weights_and_averages_buffers() -> None:
    state = {"w": torch.zeros(2), "running_mean": torch.zeros(2), "n": torch.tensor(3)}
    privates = [
        {"running_mean": torch.tensor([1.0, 1.0]), "n": torch.tensor(9)},
        {"running_mean": torch.tensor([3.0, 5.0])},
    ]
    merge_changes(state, privates, {"w"}, "sum")
    assert state["w"].tolist() == [0.0, 0.0]
    assert state["running_mean"].tolist() == [2.0, 3.0]
    assert int(state["n"]) == 3


def test_merge_sums_are_exact_so_split_and_order_do_not_matter() -> None:
    """Stage 2's merge on several ranks: each rank adds the copies it holds and the sums are
    all-reduced. The sums are exact (fixed-point integers), so splitting the contributions over
    ranks, or reordering them, gives the same bits; a float32 running sum would not."""
    gen = torch.Generator().manual_seed(1)
    state = {"w": torch.randn(64, generator=gen), "running_mean": torch.randn(64, generator=gen)}
    scales = (1.0, 1e-3, 1e-6, 3e2)  # changes of very different sizes
    contributions = [
        {k: v + s * torch.randn(64, generator=gen) for k, v in state.items()} for s in scales
    ]

    def merged(groups: list[list[int]]) -> dict[str, torch.Tensor]:
        """The merge as `len(groups)` ranks do it, each rank holding one group of contributions
        (the all-reduce: a sum or max over the ranks' tensors, run in lock-step on threads)."""
        from concurrent.futures import ThreadPoolExecutor
        from threading import Barrier

        W = len(groups)
        slots: list[list[torch.Tensor | None]] = [[None] * W for _ in range(2)]
        calls = [0] * W
        barrier = Barrier(W)

        def rank(r: int) -> dict[str, torch.Tensor]:
            def all_reduce(t: torch.Tensor, op: str) -> None:
                slot = slots[calls[r]]
                calls[r] += 1
                slot[r] = t.clone()
                barrier.wait()
                parts = [x for x in slot if x is not None]
                out = torch.stack(parts).amax(0) if op == "max" else torch.stack(parts).sum(0)
                barrier.wait()
                t.copy_(out)

            mine = {k: v.clone() for k, v in state.items()}
            counts = {k: len(contributions) for k in state}
            merge_changes(
                mine, [contributions[i] for i in groups[r]], {"w"}, "sum", counts, all_reduce
            )
            return mine

        with ThreadPoolExecutor(W) as pool:
            results = list(pool.map(rank, range(W)))
        for other in results[1:]:  # every rank ends with the same supernet
            for k in state:
                assert torch.equal(other[k], results[0][k])
        return results[0]

    one = merged([[0, 1, 2, 3]])
    for groups in ([[0, 2], [1, 3]], [[3], [1, 0, 2]], [[2], [0], [3], [1]]):
        two = merged(groups)
        for k in state:
            assert torch.equal(one[k], two[k]), (groups, k)
    # the reference in float64: w + Σ (w_j − w) for the parameter, the mean for the buffer
    base = state["w"].double()
    exact_w = base + sum((c["w"] - state["w"]).double() for c in contributions)
    exact_mean = sum(c["running_mean"].double() for c in contributions) / len(contributions)
    torch.testing.assert_close(one["w"], exact_w.float())
    torch.testing.assert_close(one["running_mean"], exact_mean.float())


# ----------------------------------------------------------------------------- fair sampling
EQUAL = """
search equal {
  data digits(resolution: 16)
  latent 16 normal
  op nearest  = upsample(mode: nearest), relu, conv(k: 1)
  op bilinear = upsample(mode: bilinear), relu, conv(k: 1)
  op deconv   = relu, conv_transpose(k: 3, stride: 2, depthwise: true, bias: false), conv(k: 1)
  op conv1x1  = relu, conv(k: 1)
  op conv3x3  = relu, conv(k: 3)
  choice up     = [nearest, bilinear, deconv]
  choice normal = [skip, conv1x1, conv3x3]
  cell UpCell {
    edge 0 -> 1 : up
    edge 1 -> 2 : normal
    edge 0 -> 2 : up
    output 2
  }
  generator G {
    stem  project(size: 4)
    cells UpCell x 2 (channels: 4)
    head  bn, relu, conv(k: 3, out: image), tanh
  }
  op dpool = avgpool(k: 2), conv(k: 1)
  cell DCell {
    edge 0 -> 1 : dpool
    output 1
  }
  discriminator D {
    cells DCell x 1 (channels: 4)
    head  relu, sum_pool, linear(out: 1)
  }
  objectives { fid: min, is: max, params: min }
  stage s : search { network: G, against: D }
}
"""


def _space(program: Any, name: str) -> GenomeSpace:
    net = program.networks[name]
    return GenomeSpace(net, input_resolution(program, net))


def test_fair_paths_use_every_op_of_every_edge_exactly_once() -> None:
    space = _space(check_text(EQUAL, "equal.eagan"), "G")
    rng = random.Random(1)
    for _ in range(50):
        paths = space.fair_paths(rng)
        assert len(paths) == 3 and all(space.is_valid(p) for p in paths)
        for e in range(len(space.genes)):
            assert sorted(p.choices[e] for p in paths) == [0, 1, 2]


def test_fair_paths_are_valid_and_balanced_on_the_digits_spaces() -> None:
    program = load(Path(__file__).parent.parent / "specs" / "digits.eagan")
    for name in ("G", "D"):
        space = _space(program, name)
        usable = space.usable_ops()
        paths = space.fair_paths(random.Random(0))
        k = max(len(u) for u in usable)
        assert len(paths) == k and all(space.is_valid(p) for p in paths)
        for e, ops in enumerate(usable):
            counts = collections.Counter(p.choices[e] for p in paths)
            assert set(counts) == set(ops)  # every usable op trained in every step
            assert max(counts.values()) - min(counts.values()) <= 1


def test_fair_warm_up_step_trains_every_path_in_one_update(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.search import SearchStage
    from runtime.search.protocol import Context

    text = _tiny_text(
        **{
            "stage search_g : search { network: G, against: FixedD, warmup: 1 }": (
                "stage search_g : search { network: G, against: FixedD, warmup: 1, "
                "warmup_sampling: fair }"
            )
        }
    )
    program = check_text(text, "tiny.eagan")
    from runtime.data import load_training_data
    from runtime.rundir import History

    ctx = Context(
        program=program,
        data=load_training_data(program.data, torch.device("cpu")),
        device=torch.device("cpu"),
        seed=0,
        evaluators={},
        report=_quiet(),
        history=History(None),
        samples=lambda name, g: None,
    )
    stage = SearchStage(ctx, program.stages[0])
    seen: list[tuple[Genome, int]] = []
    forward = type(stage.supernet.module).forward

    def spy(self: Any, x: torch.Tensor, genome: Any) -> torch.Tensor:
        seen.append((genome, len(x)))
        return forward(self, x, genome)

    monkeypatch.setattr(type(stage.supernet.module), "forward", spy)
    steps: list[int] = []
    step = stage.supernet.opt.step

    def count(*a: Any, **k: Any) -> Any:
        steps.append(1)
        return step(*a, **k)

    monkeypatch.setattr(stage.supernet.opt, "step", count)
    stage.warm_step()
    usable = stage.space.usable_ops()
    k = max(len(u) for u in usable)
    g_calls = seen[-k:]  # the G step's forward: one share per path
    assert len(steps) == 1  # one update of SuperNet-G
    assert sum(n for _, n in g_calls) == int(program.stages[0].settings["batch"]["g"])
    for e, ops in enumerate(usable):
        assert {g.choices[e] for g, _ in g_calls} == set(ops)


def test_fair_rounds_train_every_candidate_equally(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.search import SearchStage

    text = _tiny_text(
        **{
            "evolution { population: 4, rounds: 2, epochs: 1 }": (
                "evolution { population: 4, rounds: 2, epochs: 3 }"
            ),
            "stage search_g : search { network: G, against: FixedD, warmup: 1 }": (
                "stage search_g : search { network: G, against: FixedD, warmup: 1, "
                "round_sampling: fair }"
            ),
        }
    )
    trained: collections.Counter[tuple[int, int]] = collections.Counter()
    real = SearchStage._train_candidate

    def spy(self: Any, i: int) -> tuple[float, float]:
        if self.stage.name == "search_g":
            trained[(self.round, i)] += 1
        return real(self, i)

    monkeypatch.setattr(SearchStage, "_train_candidate", spy)
    spec = Path(__file__).parent / "data" / "_fair_rounds.eagan"
    try:
        spec.write_text(text)
        program = load(spec)
        run_program(
            program, spec, spec.parent / "_fair_rounds_run", device="cpu", reporter=_quiet()
        )
    finally:
        spec.unlink(missing_ok=True)
        import shutil

        shutil.rmtree(spec.parent / "_fair_rounds_run", ignore_errors=True)
    for r in range(2):
        counts = [trained[(r, i)] for i in range(4)]
        assert max(counts) - min(counts) <= 1 and sum(counts) > 4


# ----------------------------------------------------------------------------- mutation
def test_mutation_changes_one_edge_drawn_uniformly() -> None:
    program = load(Path(__file__).parent.parent / "specs" / "digits.eagan")
    space = _space(program, "G")
    rng = random.Random(0)
    parent = space.random(rng)
    edges: collections.Counter[int] = collections.Counter()
    n = 6000
    for _ in range(n):
        child = space.mutate(parent, rng)
        assert child is not None and space.is_valid(child)
        diff = [e for e in range(len(space.genes)) if child.choices[e] != parent.choices[e]]
        assert len(diff) == 1
        edges[diff[0]] += 1
    # 21 edges, 3 or 7 candidates each: drawing (edge, op) pairs would favour the 7-op edges
    # 3× over the 3-op ones; drawing the edge first gives each edge about n/21
    expected = n / len(space.genes)
    assert set(edges) == set(range(len(space.genes)))
    assert all(abs(c - expected) < 0.25 * expected for c in edges.values()), edges


# ----------------------------------------------------------------------------- statistics
@pytest.fixture(scope="module")
def rc() -> Any:
    return load_bench("rank_correlation")


def test_rank_statistics_match_scipy(rc: Any) -> None:
    rng = random.Random(3)
    for _ in range(20):
        n = rng.randrange(5, 30)
        x = [float(rng.randrange(8)) for _ in range(n)]  # ties on purpose
        y = [float(rng.randrange(8)) for _ in range(n)]
        assert rc.kendall(x, y) == pytest.approx(scipy.stats.kendalltau(x, y).statistic, abs=1e-12)
        assert rc.spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y).statistic, abs=1e-12)


def test_partial_kendall_and_top_overlap(rc: Any) -> None:
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    z = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    y = [2.0, 1.0, 4.0, 3.0, 6.0, 5.0]
    txy, txz, tyz = (
        scipy.stats.kendalltau(x, y).statistic,
        scipy.stats.kendalltau(x, z).statistic,
        scipy.stats.kendalltau(y, z).statistic,
    )
    w = [3.0, 1.0, 2.0, 6.0, 4.0, 5.0]
    expected = (
        scipy.stats.kendalltau(w, y).statistic - scipy.stats.kendalltau(w, z).statistic * tyz
    ) / ((1 - scipy.stats.kendalltau(w, z).statistic ** 2) * (1 - tyz**2)) ** 0.5
    assert rc.partial_kendall(w, y, z) == pytest.approx(expected)
    assert txy == pytest.approx(rc.kendall(x, y)) and txz == pytest.approx(1.0)
    assert rc.top_overlap([1, 2, 3, 9, 8, 7], [3, 2, 1, 7, 8, 9], k=3) == 3
    assert rc.top_overlap([1, 2, 3, 9, 8, 7], [9, 8, 7, 1, 2, 3], k=3) == 0
    lo, hi = rc.bootstrap(rc.kendall, x, y, n=200)
    assert lo <= rc.kendall(x, y) <= hi


def test_seed_agreement_and_collapse_count(rc: Any) -> None:
    """The noise ceiling pairs each architecture's seed-0 FD with its own seed-1 FD (rows with one
    seed left out), and the collapse count uses 10 × the median run."""
    rows = [
        {"fd_per_seed": {"0": 20.0, "1": 24.0}},
        {"fd_per_seed": {"0": 30.0, "1": 22.0}},
        {"fd_per_seed": {"0": 900.0, "1": 25.0}},
        {"fd_per_seed": {"0": 800.0, "1": 850.0}},
        {"fd_per_seed": {"0": 26.0}},
    ]
    agree = rc.seed_agreement(rows)
    a, b = [20.0, 30.0, 900.0, 800.0], [24.0, 22.0, 25.0, 850.0]
    assert agree["n"] == 4
    assert agree["kendall"] == pytest.approx(scipy.stats.kendalltau(a, b).statistic)
    fail = rc.collapsed(rows)
    assert fail["threshold"] == pytest.approx(260.0)  # the median of the 9 runs is 26
    assert (fail["runs"], fail["failed"]) == (9, 3)
    assert (fail["archs_all_seeds_failed"], fail["archs_some_seeds_failed"]) == (1, 1)
    assert fail["archs_with_seeds"] == 4
