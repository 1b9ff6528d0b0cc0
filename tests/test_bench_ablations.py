"""bench/ablations.py without running a search: the variant specs pass the checker with equal
budgets, a changed base spec fails loudly, and the aggregation, comparison and curves plot of fake
run directories (written in the runtime's format) give the numbers computed here with numpy."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bench_module import load_bench
from PIL import Image
from rich.console import Console

from eagan_dsl.checker import check_text

sq = load_bench("ablations")
BASE = sq.SPEC.read_text(encoding="utf-8")


def test_every_variant_passes_the_checker_with_equal_budgets() -> None:
    texts = sq.variant_specs(BASE)
    assert list(texts) == list(sq.CONFIGS)
    budgets = sq.check_variants(texts)
    for name, text in texts.items():
        program = check_text(text, f"{name}.eagan")
        assert tuple(s.name for s in program.stages) == sq.STAGES[name]
    stages = {n: {s.name: s.settings for s in check_text(t).stages} for n, t in texts.items()}
    assert (
        stages["random"]["search_g"]["strategy"]
        == stages["random"]["search_d"]["strategy"]
        == "random"
    )
    assert stages["eagan"]["search_g"]["strategy"] == "evolution"
    assert stages["eagan"]["search_d"]["weight_reset"] is True
    assert stages["no_reset"]["search_d"]["weight_reset"] is False
    assert stages["fixed"]["fully_train"]["g"] == "GNearest"
    assert stages["fixed"]["fully_train"]["d"] == "AutoGAND"
    assert stages["coupled"]["coupled"]["network"] == ("G", "D")
    assert stages["d_first"]["search_d"]["against"] == "GNearest"
    assert stages["d_first"]["search_g"]["pairing"] == "one_to_one"
    assert texts["eagan"].endswith(BASE)  # the paper's configuration is the spec as is
    # digits.eagan: search_g 50 warm-up + 3 rounds × 5 epochs, search_d 15 + 3 × 5; 3 × 8
    # candidates each
    searching = {n: b for n, b in budgets.items() if n != "fixed"}
    assert all(
        b == {"search_epochs": 95, "evaluations": 48, "fully_train_epochs": 60}
        for b in searching.values()
    )
    assert budgets["fixed"] == {"search_epochs": 0, "evaluations": 0, "fully_train_epochs": 60}


def test_a_changed_base_spec_fails_loudly() -> None:
    with pytest.raises(ValueError, match="weight_reset: on"):
        sq.variant_specs(BASE.replace("weight_reset: on", "weight_reset: true"))
    with pytest.raises(ValueError, match="expected the stages"):
        sq.variant_specs(
            BASE.replace("stage search_d", "stage search_x").replace(
                "best(search_d)", "best(search_x)"
            )
        )


def test_unequal_budgets_are_refused() -> None:
    texts = sq.variant_specs(BASE)
    texts["random"] = texts["random"].replace("warmup: 15", "warmup: 14", 1)
    with pytest.raises(ValueError, match="unequal budgets"):
        sq.check_variants(texts)


def _fake_run(
    rundir: Path, fid: float, is_: float, curves: dict[str, list[tuple[Any, float]]], wall: float
) -> None:
    """A finished run directory as the runtime writes it (the keys the benchmark reads)."""
    (rundir / "final").mkdir(parents=True)
    metrics = {
        "fid": fid,
        "is": is_,
        "is_std": 0.0,
        "g_genome": "G:x",
        "d_genome": "AutoGAND",
        "g_params": 1000 * int(fid),
        "d_params": 500,
        "images": 5000,
        "epochs": 60,
        "ema": 0.995,
    }
    (rundir / "final" / "metrics.json").write_text(json.dumps(metrics))
    stages = [
        {
            "name": s,
            "kind": "search",
            "settings": {"warmup": 15, "rounds": len(c), "epochs": 5, "population": 8},
        }
        for s, c in curves.items()
    ]
    stages.append({"name": "fully_train", "kind": "train", "settings": {"epochs": 60}})
    (rundir / "resolved.json").write_text(
        json.dumps({"stages": stages, "environment": {"quick": False, "seed": 0}})
    )
    lines = []
    for stage, rounds in curves.items():
        for r, (best_fid, best_is) in enumerate(rounds):
            lines.append(
                {"kind": "candidate", "stage": stage, "round": r, "index": 0, "fid": 1e9, "is": 0.0}
            )
            lines.append(
                {
                    "kind": "round",
                    "stage": stage,
                    "round": r,
                    "best": "G:x",
                    "best_fid": best_fid,
                    "best_is": best_is,
                    "best_params": 1,
                    "front": ["G:x"],
                }
            )
    if lines:
        (rundir / "history.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    rundir.with_name(rundir.name + ".wall.json").write_text(
        json.dumps({"wall_s": wall, "attempts": 1})
    )


@pytest.fixture
def fake_out(tmp_path: Path) -> Path:
    eagan = {0: (30.0, 5.0), 1: (34.0, 5.5), 2: (41.0, 4.0)}
    rand = {0: (45.0, 4.1), 1: (52.0, 3.9), 2: (47.0, 4.4)}
    for seed, (fid, is_) in eagan.items():
        g = [(400.0 - 10 * seed, 3.0), (380.0, 3.2 + seed)]
        d = [(800.0, 2.0), ("inf" if seed == 1 else 700.0, 2.1)]
        _fake_run(
            tmp_path / "eagan" / f"seed{seed}",
            fid,
            is_,
            {"search_g": g, "search_d": d},
            60.0 + seed,
        )
    for seed, (fid, is_) in rand.items():
        _fake_run(
            tmp_path / "random" / f"seed{seed}",
            fid,
            is_,
            {"search_g": [(500.0, 2.0), (450.0, 2.5)], "search_d": [(900.0, 1.0), (850.0, 1.5)]},
            50.0,
        )
    _fake_run(tmp_path / "fixed" / "seed0", 60.0, 3.0, {}, 10.0)  # seeds 1 and 2 never finished
    (tmp_path / "fixed" / "seed1" / "checkpoints").mkdir(parents=True)
    for seed, fid in ((0, 70.0), (1, 80.0)):  # worse than EAGAN: a positive ΔFD in the ablations
        _fake_run(tmp_path / "coupled" / f"seed{seed}", fid, 2.0, {"coupled": [(600.0, 2.0)]}, 40.0)
    return tmp_path


def test_aggregation_matches_numpy(fake_out: Path) -> None:
    result = sq.aggregate(fake_out, ["eagan", "random", "fixed"], [0, 1, 2])
    e, r, f = (result["configs"][n] for n in ("eagan", "random", "fixed"))
    fids = np.array([30.0, 34.0, 41.0])
    assert e["fid"]["per_seed"] == [30.0, 34.0, 41.0]
    assert e["fid"]["mean"] == pytest.approx(fids.mean())
    assert e["fid"]["std"] == pytest.approx(fids.std(ddof=1))
    assert e["is"]["std"] == pytest.approx(np.std([5.0, 5.5, 4.0], ddof=1))
    assert e["g_params_mean"] == pytest.approx(np.mean([30000, 34000, 41000]))
    assert e["wall_s_mean"] == pytest.approx(61.0)
    assert e["budget"] == {"search_epochs": 50, "evaluations": 32, "fully_train_epochs": 60}
    assert (f["n"], f["fid"]["mean"], f["fid"]["std"]) == (1, 60.0, None)
    assert result["missing"] == ["fixed seed 1", "fixed seed 2"]
    # best FD per round: mean / min / max over seeds; an "inf" round stays infinite
    g = e["curves_mean"]["search_g"]
    assert g["round"] == [1, 2]
    assert g["fid_mean"] == pytest.approx([np.mean([400.0, 390.0, 380.0]), 380.0])
    assert (g["fid_min"], g["fid_max"]) == ([380.0, 380.0], [400.0, 380.0])
    assert g["is_mean"] == pytest.approx([3.0, 4.2])
    assert math.isinf(e["curves_mean"]["search_d"]["fid_mean"][1])
    assert e["runs"][1]["curves"]["search_d"]["best_fid"][1] == math.inf
    # EAGAN against random search: 48 − 35 lower, in pooled stds and as Welch's t
    rf = np.array([45.0, 52.0, 47.0])
    cmp = result["comparisons"]["eagan_vs_random"]
    pooled = math.sqrt((fids.var(ddof=1) + rf.var(ddof=1)) / 2)
    assert cmp["delta_fid"] == pytest.approx(rf.mean() - fids.mean())
    assert cmp["delta_in_stds"] == pytest.approx((rf.mean() - fids.mean()) / pooled)
    assert cmp["welch_t"] == pytest.approx(
        (rf.mean() - fids.mean()) / math.sqrt(fids.var(ddof=1) / 3 + rf.var(ddof=1) / 3)
    )
    assert sq.verdict(result, "random").startswith("EAGAN beat random search")
    assert "no std" in sq.verdict(result, "fixed")
    swapped = sq.compare(r, e)
    assert swapped is not None and swapped["delta_fid"] == pytest.approx(-cmp["delta_fid"])
    json.dumps(sq._json_safe(result), allow_nan=False)  # the JSON written is strict JSON


def test_tables_print_the_ablation_in_the_right_direction(fake_out: Path) -> None:
    result = sq.aggregate(fake_out, ["eagan", "random", "fixed", "coupled"], [0, 1, 2])
    (ablation,) = result["ablations"]
    assert (ablation["paper"], ablation["variant"]) == ("eagan", "coupled")
    assert ablation["delta_fid"] == pytest.approx(75.0 - 35.0)  # variant − paper
    console = Console(record=True, width=250)
    sq.print_tables(result, console)
    text = console.export_text()
    assert "+40.00" in text and "35.00 ± 5.57" in text and "30.0, 34.0, 41.0" in text
    assert "EAGAN beat random search" in text and "not finished (left out): fixed seed 1" in text


def test_curves_png_is_written(fake_out: Path, tmp_path: Path) -> None:
    result = sq.aggregate(fake_out, ["eagan", "random", "fixed", "coupled"], [0, 1, 2])
    path = tmp_path / "plots" / "curves.png"
    assert sq.plot_curves(result, path)
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.size[0] > img.size[1]  # G, D and coupled panels side by side; FD and IS rows
        assert len(img.convert("RGB").getcolors(1 << 16) or []) > 3  # something was drawn
    assert not path.with_suffix(".pdf").exists()
    only_fixed = sq.aggregate(fake_out, ["fixed"], [0])
    assert not sq.plot_curves(only_fixed, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
