"""Fully-train with `eval_every` (issue 16 item 2): IS/FID every N epochs, the best-FID G and D in
final/best/ (exported like final/), both in final/metrics.json with the epoch of the best, in
metrics.csv, and kept across an interruption and resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from test_resume import StopAt

from eagan_dsl.checker import load
from runtime.logs import read_csv
from runtime.rundir import RunDir, environment
from runtime.runner import Runner, resume
from runtime.search import Interrupted

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "tiny.eagan"
G = "nearest,bilinear,conv3x3,skip,conv1x1,none,conv3x3"
STAGES = (
    f'  generator FixedG = G with genome "{G}|{G}"\n'
    "  stage fully_train : train { g: FixedG, d: FixedD, epochs: 3, eval_every: 1 }\n}\n"
)
FILES = ("generator.py", "generator.safetensors", "discriminator.py", "discriminator.safetensors")


def _spec(tmp: Path) -> Path:
    text = TINY.read_text()
    text = text[: text.index("  stage search_g")] + STAGES
    path = tmp / "train_only.eagan"
    path.write_text(text)
    return path


def _run(spec: Path, out: Path, reporter: StopAt) -> None:
    torch.set_num_threads(1)
    program = load(spec)
    torch.manual_seed(0)
    run_dir = RunDir.create(out, spec)
    run_dir.write_resolved(program, {**environment("cpu", 0), "quick": False})
    runner = Runner(program, run_dir, torch.device("cpu"), 0, reporter)
    reporter.runner = runner
    runner.run()


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("ft")
    spec = _spec(tmp)
    out = tmp / "run"
    _run(spec, out, StopAt())
    return spec, out


def _metrics(out: Path) -> dict[str, Any]:
    return json.loads((out / "final" / "metrics.json").read_text())


def test_periodic_evaluations_and_the_best_pair(ref: tuple[Path, Path]) -> None:
    _, out = ref
    metrics = _metrics(out)
    evals = metrics["evaluations"]
    assert [e["epoch"] for e in evals] == [1, 2, 3] and metrics["eval_every"] == 1
    assert all(e["images"] == 96 and e["fid"] > 0 for e in evals)
    best = metrics["best"]
    fids = [e["fid"] for e in evals]
    assert best["epoch"] == evals[fids.index(min(fids))]["epoch"]
    assert best["periodic_fid"] == min(fids) and best["images"] == metrics["images"] == 128
    for f in FILES:
        assert (out / "final" / "best" / f).is_file(), f
        assert (out / "final" / f).is_file(), f
    assert json.loads((out / "final" / "best" / "metrics.json").read_text()) == best
    rows = [r for r in read_csv(out) if r["kind"] == "eval"]
    assert [int(r["step"]) for r in rows] == [81, 162, 243]
    assert [float(r["fid"]) for r in rows] == pytest.approx(fids)
    # the best G scores as recorded: exported weights, the same latents
    if best["epoch"] == 3:
        assert best["fid"] == metrics["fid"]


def test_an_interrupted_fully_train_keeps_its_evaluations(
    tmp_path: Path, ref: tuple[Path, Path]
) -> None:
    spec, ref_out = ref
    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        _run(spec, out, StopAt(at=81 + 40))  # in the second epoch, after the first evaluation
    torch.set_num_threads(1)
    resume(out, reporter=StopAt())
    assert _metrics(out) == _metrics(ref_out)
    for f in FILES:
        assert (out / "final" / "best" / f).read_bytes() == (
            ref_out / "final" / "best" / f
        ).read_bytes()
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]
    assert strip(read_csv(out)) == strip(read_csv(ref_out))


def test_without_eval_every_only_the_end(tmp_path: Path) -> None:
    from eagan_dsl.checker import check_text

    program = check_text(TINY.read_text(), str(TINY))
    train = next(s for s in program.stages if s.kind == "train")
    assert train.settings["eval_every"] == 0
