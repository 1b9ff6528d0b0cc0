"""Scale-out on torch.distributed: the digits spec with tiny settings on 2 CPU processes (gloo).

- `torchrun --nproc_per_node 2` completes and rank 0 writes a complete run directory;
- stage 2's per-pair results (every candidate's genome, IS and FD in every round) equal those of a
  1-process run with the same seed, bit for bit (its pairs are independent within a round);
- a stop requested on one rank in the middle of a stage-2 round stops every rank, the checkpoint
  holds the pairs in progress on both ranks, and `--resume` with 2 processes ends byte-identical to
  the uninterrupted 2-process run.

Stage 2 searches D against the fixed GNearest with no warm-up, so that it does not inherit stage 1's
data-parallel weights (those equal the 1-process run's only up to float summation order).
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch.multiprocessing as mp

ROOT = Path(__file__).resolve().parent.parent

TINY_EDITS = [
    ("population: 8", "population: 4"),
    ("rounds: 3", "rounds: 2"),
    ("epochs: 5 ", "epochs: 1 "),
    ("images: 1000", "images: 128"),
    ("final_images: 5000", "final_images: 256"),
    ("channels: 32", "channels: 16"),
    ("warmup: 50 ", "warmup: 1 "),
    ("with: best(search_g)\n", "with: GNearest\n"),
    ("warmup: 15 ", "warmup: 0 "),
    ("epochs: 60", "epochs: 1"),
]


def tiny_digits(folder: Path) -> Path:
    text = (ROOT / "specs" / "digits.eagan").read_text()
    for old, new in TINY_EDITS:
        assert old in text, f"specs/digits.eagan changed: {old!r} not found"
        text = text.replace(old, new)
    spec = folder / "digits_tiny.eagan"
    spec.write_text(text)
    return spec


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _records(run: Path, stage: str) -> list[tuple[Any, ...]]:
    lines = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]
    return [
        (r["round"], r["index"], r["genome"], r["is"], r["fid"], r["params"])
        for r in lines
        if r["kind"] == "candidate" and r["stage"] == stage
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("dist")
    spec = tiny_digits(folder)
    one, two = folder / "one", folder / "two"
    base = [sys.executable, "-m", "runtime.cli", "run", str(spec), "--device", "cpu"]
    subprocess.run(
        [*base, "--out", str(one)], cwd=ROOT, env=_env(), check=True, capture_output=True
    )
    # `eagan run --nproc 2` launches PYTHONSAFEPATH=1 torchrun --standalone --nproc_per_node 2 -m runtime run ...
    proc = subprocess.run(
        [*base, "--out", str(two), "--nproc", "2"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("run finished") == 1  # rank 0 speaks
    return {"spec": spec, "one": one, "two": two, "folder": folder}


def test_two_processes_write_a_complete_run_directory(runs: dict[str, Path]) -> None:
    two = runs["two"]
    resolved = json.loads((two / "resolved.json").read_text())
    assert resolved["environment"]["world_size"] == 2
    for stage in ("search_g", "search_d"):
        assert len(_records(two, stage)) == 2 * 4
        assert (two / "plots" / f"{stage}_pareto_round02.png").is_file()
        assert (two / "samples" / f"{stage}_round02.png").is_file()
    metrics = json.loads((two / "final" / "metrics.json").read_text())
    assert metrics["fid"] > 0 and metrics["is"] >= 1.0
    for f in (
        "generator.py",
        "discriminator.py",
        "generator.safetensors",
        "discriminator.safetensors",
    ):
        assert (two / "final" / f).is_file(), f
    assert sorted(p.suffix for p in (two / "checkpoints").iterdir()) == [
        ".json",
        ".json",
        ".pt",
        ".pt",
    ]


def test_stage2_pairs_equal_the_one_process_run(runs: dict[str, Path]) -> None:
    one, two = _records(runs["one"], "search_d"), _records(runs["two"], "search_d")
    assert len(one) == 8 and one == two
    # stage 1 is data-parallel: the same candidates, scores equal up to float summation order
    g1, g2 = _records(runs["one"], "search_g"), _records(runs["two"], "search_g")
    assert [r[2] for r in g1[:4]] == [r[2] for r in g2[:4]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, spec: str, out: str, stop_after: int) -> None:
    """One rank, as torchrun would start it; rank 1 asks to stop after `stop_after` stage-2 pair
    iterations (SIGTERM to itself, as a pre-empting scheduler would)."""
    os.environ.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    import torch
    from rich.console import Console

    torch.set_num_threads(1)
    from runtime import runner, search
    from runtime.display import Reporter

    quiet = Reporter(Console(file=io.StringIO()), live=False)
    if stop_after:
        step = search.SearchStage._pair_step
        count = [0]

        def counting(self: Any, j: int, job: dict[str, Any]) -> tuple[float, float]:
            count[0] += 1
            if rank == 1 and count[0] == stop_after:
                os.kill(os.getpid(), signal.SIGTERM)
            return step(self, j, job)

        search.SearchStage._pair_step = counting  # type: ignore[method-assign]
        try:
            runner.run(Path(spec), Path(out), device="cpu", reporter=quiet)
        except search.Interrupted:
            return
        raise AssertionError("the run was not interrupted")
    runner.resume(Path(out), reporter=quiet)


def test_stop_on_one_rank_mid_stage2_then_resume(runs: dict[str, Path]) -> None:
    out = runs["folder"] / "stopped"
    # rank 1 trains pairs 1 and 3, 5 iterations each per round: its 18th pair iteration is in
    # round 2, in the middle of the second block (pairs 0 and 1 done, 2 and 3 in progress)
    mp.spawn(_worker, args=(2, _free_port(), str(runs["spec"]), str(out), 18), nprocs=2)
    meta = json.loads(max((out / "checkpoints").glob("*.json")).read_text())
    assert (
        meta["reason"] == "interrupted" and meta["stage"] == "search_d" and meta["world_size"] == 2
    )
    assert not (out / "final" / "metrics.json").exists()
    from runtime import checkpoint

    stage = checkpoint.load_latest(out / "checkpoints").state["stage_state"]
    assert stage["round"] == 1 and sorted(stage["pairs_done"]) == [0, 1]
    assert {j: s["it"] for j, s in stage["jobs"].items()} == {
        2: 3,
        3: 3,
    }  # both ranks' pairs in progress
    mp.spawn(_worker, args=(2, _free_port(), str(runs["spec"]), str(out), 0), nprocs=2)
    assert (out / "history.jsonl").read_text() == (runs["two"] / "history.jsonl").read_text()
    assert (out / "final" / "metrics.json").read_text() == (
        runs["two"] / "final" / "metrics.json"
    ).read_text()


def _run_bounded(
    cmd: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """`cmd` (torchrun), stopped when it outlives `timeout`: SIGTERM, on which torchrun stops its
    workers, then SIGKILL; a hang fails the test. torchrun stays in the test's process group, so
    that a signal to the group (`timeout`, CI) reaches it too."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"torchrun still running after {timeout:.0f} s:\n{err[-6000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_rank_killed_under_torchrun_max_restarts_resume_if_exists(runs: dict[str, Path]) -> None:
    """`--resume-if-exists` under `torchrun --max-restarts 1`: rank 1 is SIGKILLed in the middle of
    stage 2's second round; torchrun stops rank 0 and restarts both ranks with the same command,
    which resumes from the last checkpoint, and the run ends with the uninterrupted run's history.
    (The restarted ranks join the process group under keys of their own attempt in torchrun's
    store, `runtime.dist._attempt_store`; under the first attempt's keys they connected to the
    dead rank's address.) A worker that hangs prints its stacks and exits after 420 s, and
    torchrun is stopped after 600 s."""
    out = runs["folder"] / "killed"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "--max-restarts", "1", str(ROOT / "tests" / "kill_rank.py"),
        "run", str(runs["spec"]), "--out", str(out), "--device", "cpu", "--resume-if-exists",
    ]  # fmt: skip
    env = {
        **_env(),
        "EAGAN_TEST_KILL_AFTER": "18",
        "EAGAN_TEST_HANG_S": "420",
        "PYTHONSAFEPATH": "1",
    }
    proc = _run_bounded(cmd, env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    # rank 1's 18th pair iteration is in stage 2's second round (as in the test above)
    assert "exitcode: -9" in proc.stderr, proc.stderr[-4000:]
    assert "from ckpt-000004.pt (search_d round 1)" in proc.stderr, proc.stderr[-4000:]
    assert proc.stdout.count("run finished") == 1
    assert (out / "history.jsonl").read_text() == (runs["two"] / "history.jsonl").read_text()
    assert (out / "final" / "metrics.json").read_text() == (
        runs["two"] / "final" / "metrics.json"
    ).read_text()
