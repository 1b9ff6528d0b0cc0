"""The paper's ablations (§5.3) as specs run end to end on the tiny spec: coupled search, D first
(one-to-one over G candidates), and the random-search baseline."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from test_resume import StopAt

from eagan_dsl.checker import check_text
from runtime.runner import run_program

TINY = Path(__file__).parent / "data" / "tiny.eagan"
BASE = TINY.read_text()
STAGES = BASE[BASE.index("  stage search_g") : BASE.rindex("}")]


def _run(tmp_path: Path, stages: str) -> list[dict]:
    text = BASE.replace(STAGES, stages)
    spec = tmp_path / "ablation.eagan"
    spec.write_text(text)
    torch.set_num_threads(1)
    out = tmp_path / "run"
    run_program(check_text(text, str(spec)), spec, out, device="cpu", reporter=StopAt())
    assert json.loads((out / "final" / "metrics.json").read_text())["fid"] > 0
    return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]


def test_coupled_search(tmp_path: Path) -> None:
    history = _run(
        tmp_path,
        """  stage coupled : search { network: (G, D), warmup: 1 }
  stage fully_train : train { g: best(coupled), d: best(coupled), epochs: 1 }
""",
    )
    cands = [r for r in history if r["kind"] == "candidate"]
    assert len(cands) == 2 * 4 and all(" / D:" in r["genome"] for r in cands)


def test_d_first_then_g_one_to_one(tmp_path: Path) -> None:
    genome = "G:nearest,nearest,conv3x3,none,none,skip,conv3x3|nearest,nearest,conv3x3,none,none,skip,conv3x3"
    history = _run(
        tmp_path,
        f"""  generator GFixed = G with genome "{genome}"
  stage search_d : search {{ network: D, against: GFixed, pairing: many_to_one, warmup: 1 }}
  stage search_g : search {{ network: G, with: best(search_d), pairing: one_to_one, warmup: 1 }}
  stage fully_train : train {{ g: best(search_g), d: best(search_d), epochs: 1 }}
""",
    )
    stages = [r["stage"] for r in history if r["kind"] == "round"]
    assert stages == ["search_d", "search_d", "search_g", "search_g"]


def test_random_search_baseline(tmp_path: Path) -> None:
    history = _run(
        tmp_path,
        """  stage search_g : search { network: G, against: FixedD, warmup: 1, strategy: random }
  stage fully_train : train { g: best(search_g), d: FixedD, epochs: 1 }
""",
    )
    first = [r for r in history if r["kind"] == "candidate" and r["round"] == 0]
    second = [r for r in history if r["kind"] == "candidate" and r["round"] == 1]
    # a real random search keeps no parents: round 2 is all new random architectures
    assert {r["origin"] for r in second} == {"random"}
    assert not {r["genome"] for r in first} & {r["genome"] for r in second}
