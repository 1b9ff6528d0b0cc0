"""bench/rank_correlation.py on tiny settings: the ground-truth cache resumes after a kill, the
proxy caches its checkpoints, and the report reads both."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "tiny.eagan"


def _args(tmp: Path, part: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "bench" / "rank_correlation.py"),
        part,
        "--spec",
        str(TINY),
        "--against",
        "FixedD",
        "--reference",
        "",
        "--archs",
        "3",
        "--seeds",
        "0",
        "1",
        "--steps",
        "8",
        "--early",
        "4",
        "--images",
        "64",
        "--checkpoints",
        "2",
        "4",
        "--proxy-images",
        "64",
        "--jobs",
        "1",
        "--threads",
        "1",
        "--truth-cache",
        str(tmp / "truth.json"),
        "--proxy-cache",
        str(tmp / "proxy.json"),
        "--report-file",
        str(tmp / "report.json"),
    ]


def _units(path: Path) -> dict[str, dict[str, object]]:
    return json.loads(path.read_text())["units"] if path.exists() else {}


def test_ground_truth_resumes_after_a_kill(tmp_path: Path) -> None:
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    whole.mkdir()
    cut.mkdir()
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    subprocess.run(_args(whole, "truth"), check=True, capture_output=True, env=env)
    reference = _units(whole / "truth.json")
    assert len(reference) == 6  # 3 architectures × 2 seeds
    proc = subprocess.Popen(_args(cut, "truth"), stdout=subprocess.PIPE, env=env)
    deadline = time.time() + 300
    while len(_units(cut / "truth.json")) < 2 and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = _units(cut / "truth.json")
    assert 2 <= len(kept) < 6, "killed too late to test a resume"
    again = subprocess.run(_args(cut, "truth"), check=True, capture_output=True, text=True, env=env)
    assert f"{len(kept)} cached, {6 - len(kept)} to train" in again.stdout
    resumed = _units(cut / "truth.json")
    assert set(resumed) == set(reference)
    for key, unit in reference.items():
        assert resumed[key]["evals"] == unit["evals"], key  # 1 thread: training is deterministic

    subprocess.run(_args(cut, "proxy"), check=True, capture_output=True, env=env)
    proxy = _units(cut / "proxy.json")
    assert set(proxy) == {"uniform", "fair"}
    assert all(set(u["done"]) == {"2", "4"} for u in proxy.values())  # type: ignore[arg-type]
    report = subprocess.run(
        _args(cut, "report"), check=True, capture_output=True, text=True, env=env
    )
    assert "Kendall" in report.stdout
    data = json.loads((cut / "report.json").read_text())
    assert data["ground_truth"]["n_archs"] == 3
    assert "supernet fair, raw, 4 steps" in data["predictors"]


def test_proxy_resumes_between_checkpoints(tmp_path: Path) -> None:
    """A proxy unit stopped between two checkpoints (after the state it keeps every
    `save_every` steps) and resumed scores exactly what an uninterrupted unit scores."""
    from bench_module import load_bench

    rc = load_bench("rank_correlation")
    genomes = rc.architectures(TINY, 2, reference="")

    def job(name: str, **extra: object) -> dict[str, object]:
        return {
            "key": "fair",
            "setting": "fair",
            "spec": str(TINY),
            "against": "FixedD",
            "genomes": genomes,
            "checkpoints": [2, 5],
            "images": 64,
            "threads": 1,
            "done": {},
            "state": str(tmp_path / f"{name}.pt"),
            "partial": str(tmp_path / f"{name}.partial.json"),
            "config": {},
            "save_every": 1,
            **extra,
        }

    whole = rc.proxy_unit(job("whole"))
    stopped = rc.proxy_unit(job("cut", stop_at=4))
    assert stopped["stopped"] == 4 and set(stopped["done"]) == {"2"}
    resumed = rc.proxy_unit(job("cut"))
    assert set(resumed["done"]) == {"2", "5"}
    assert resumed["done"]["2"] == stopped["done"]["2"]  # kept from the state, not retrained
    for at in ("2", "5"):
        assert resumed["done"][at]["scores"] == whole["done"][at]["scores"], at


def _store_many(cache: str, tag: str, n: int) -> None:
    from bench_module import load_bench

    rc = load_bench("rank_correlation")
    units = rc.read_cache(Path(cache), {"v": 1})  # read once at the start, as a benchmark does
    for i in range(n):
        rc.store(Path(cache), {"v": 1}, units, {"key": f"{tag}{i}", "value": i})


def test_two_processes_sharing_a_cache_lose_no_unit(tmp_path: Path) -> None:
    """Each benchmark process holds the cache it read at its start; storing a unit must not write
    that stale copy over what another process finished meanwhile."""
    from bench_module import load_bench

    rc = load_bench("rank_correlation")
    cache = tmp_path / "c.json"
    mine = rc.read_cache(cache, {"v": 1})  # this process starts: nothing cached yet
    _store_many(str(cache), "other", 1)  # another process finishes a unit
    rc.store(cache, {"v": 1}, mine, {"key": "mine", "value": 0})
    assert set(_units(cache)) == {"other0", "mine"}
    assert set(mine) == {"other0", "mine"}  # the in-memory view is brought up to date

    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_store_many, args=(str(cache), f"p{j}-", 25)) for j in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(_units(cache)) == 2 + 3 * 25
    assert not list(tmp_path.glob("*.tmp"))


def _claiming_walker(cache: str, log: str, go: str, n: int) -> None:
    """One benchmark process walking the same `n` jobs as another, with claims."""
    import os

    from bench_module import load_bench

    rc = load_bench("rank_correlation")
    units = rc.read_cache(Path(cache), {"v": 1})
    jobs = [{"key": f"u{i}"} for i in range(n) if f"u{i}" not in units]

    def work(job: dict[str, object]) -> dict[str, object]:
        with open(log, "a") as f:  # every run of a unit, by whom
            f.write(f"{job['key']} {os.getpid()}\n")
        time.sleep(0.25)
        return {"key": job["key"], "by": os.getpid()}

    while not Path(go).exists():  # start together
        time.sleep(0.01)
    rc.run_units(
        work,
        jobs,
        1,
        lambda r: rc.store(Path(cache), {"v": 1}, units, r),
        rc.Claims(Path(cache), {"v": 1}),
    )


def test_two_processes_walking_one_list_split_it_and_run_no_unit_twice(tmp_path: Path) -> None:
    """Claims: two processes started on the same list take its units one at a time, in order, so
    each does about half, none is run twice, and no claim is left behind."""
    import multiprocessing as mp

    cache, log, go = tmp_path / "c.json", tmp_path / "runs.log", tmp_path / "go"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_claiming_walker, args=(str(cache), str(log), str(go), 12))]
    procs.append(ctx.Process(target=_claiming_walker, args=(str(cache), str(log), str(go), 12)))
    for p in procs:
        p.start()
    time.sleep(3)  # both spawned and waiting
    go.touch()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    runs = [line.split() for line in log.read_text().splitlines()]
    assert sorted(k for k, _ in runs) == sorted(f"u{i}" for i in range(12))  # each once
    by = {pid: sum(1 for _, p in runs if p == pid) for _, pid in runs}
    assert len(by) == 2 and min(by.values()) >= 3, by  # both worked, about half each
    assert set(_units(cache)) == {f"u{i}" for i in range(12)}
    assert not list(tmp_path.glob("c.json.claims/*"))


def test_a_claim_is_respected_while_its_holder_lives_and_taken_over_after(tmp_path: Path) -> None:
    import json
    import os
    import socket

    from bench_module import load_bench

    rc = load_bench("rank_correlation")
    claims = rc.Claims(tmp_path / "c.json", {"v": 1}, match=("spec_sha",))
    job = {"key": "eagan#0", "spec_sha": "new"}
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert claims.take(job, sleeper.pid)
        assert not claims.take(job, os.getpid())  # a live holder keeps it
        held = json.loads(claims.path("eagan#0").read_text())
        held["started"] = "1"  # the same pid, another process (a reused pid): stale
        claims.path("eagan#0").write_text(json.dumps(held))
        assert claims.take(job, os.getpid())
    finally:
        sleeper.kill()
        sleeper.wait()
    claims.release("eagan#0")
    assert claims.take(job, sleeper.pid)  # its holder has exited: stale
    assert claims.take(job, os.getpid())
    claims.path("eagan#0").write_text('{"host": ')  # torn: its writer died mid-write
    assert claims.take(job, os.getpid())
    other = {"key": "eagan#0", "host": socket.gethostname() + "-other", "pid": 1}
    claims.path("eagan#0").write_text(json.dumps(other))
    assert not claims.take(job, os.getpid())  # another host's: respected
    claims.release("eagan#0")
    # finished: the cache holds the unit, with the job's spec; a stale spec's unit is not
    rc.write_cache(
        tmp_path / "c.json", {"v": 1}, {"eagan#0": {"key": "eagan#0", "spec_sha": "old"}}
    )
    assert claims.take(job, os.getpid())
    claims.release("eagan#0")
    rc.write_cache(
        tmp_path / "c.json", {"v": 1}, {"eagan#0": {"key": "eagan#0", "spec_sha": "new"}}
    )
    assert not claims.take(job, os.getpid())


def test_a_unit_that_raises_gives_its_claim_back(tmp_path: Path) -> None:
    import os

    import pytest
    from bench_module import load_bench

    rc = load_bench("rank_correlation")
    claims = rc.Claims(tmp_path / "c.json", {"v": 1})

    def boom(job: dict[str, object]) -> dict[str, object]:
        raise RuntimeError("diverged")

    with pytest.raises(RuntimeError):
        rc.run_units(boom, [{"key": "a"}], 1, lambda r: None, claims)
    assert not claims.path("a").exists()
    assert claims.take({"key": "a"}, os.getpid())


def test_shards_are_disjoint_cover_everything_and_keep_the_order() -> None:
    import argparse

    import pytest
    from bench_module import load_bench

    rc = load_bench("rank_correlation")
    jobs = [{"key": f"G:{i}#{i % 2}"} for i in range(40)]
    shares = [rc.in_shard(jobs, (k, 3)) for k in range(3)]
    keys = [j["key"] for share in shares for j in share]
    assert sorted(keys) == sorted(j["key"] for j in jobs) and len(keys) == len(set(keys))
    assert all(share for share in shares)  # 40 keys: each share gets some
    for share in shares:  # the priority order (picks first) holds within a share
        assert share == sorted(share, key=jobs.index)
    # a later process, with some units already done, still takes only its own
    later = rc.in_shard(jobs[10:], (1, 3))
    assert later == [j for j in shares[1] if j in jobs[10:]]
    assert rc.in_shard(jobs, None) == jobs
    # trainings: both seeds of one (G, D) go to the same share
    trainings = [
        {"key": f"G:{i}#{s}", "genome": f"G:{i}", "against": "D", "seed": s}
        for i in range(20)
        for s in (0, 1)
    ]
    for k in range(2):
        share = rc.in_shard(trainings, (k, 2), rc.training_group)
        assert {j["genome"] for j in share if j["seed"] == 0} == {
            j["genome"] for j in share if j["seed"] == 1
        }
    assert rc.shard_arg("1/2") == (1, 2)
    for bad in ("2/2", "x", "1", "-1/2"):
        with pytest.raises(argparse.ArgumentTypeError):
            rc.shard_arg(bad)


def test_the_failure_auc_is_sklearns_roc_auc() -> None:
    import math
    import random

    import pytest
    from bench_module import load_bench
    from sklearn.metrics import roc_auc_score

    rc = load_bench("rank_correlation")

    rng = random.Random(0)
    for _ in range(30):
        n = rng.randint(3, 20)
        pred = [float(rng.choice([rng.random(), 0.5])) for _ in range(n)]  # ties too
        failed = [rng.random() < 0.4 for _ in range(n)]
        if all(failed) or not any(failed):
            assert math.isnan(rc.failure_auc(pred, failed))
            continue
        # a failing architecture is the positive class, a higher (worse) prediction its score
        assert rc.failure_auc(pred, failed) == pytest.approx(roc_auc_score(failed, pred))
    assert rc.failure_auc([1.0, 2.0, math.inf], [False, True, True]) == 1.0  # unscored: left out


def test_report_flag_names_the_report_part() -> None:
    """`--report` alone prints the tables from the caches (the issue's spelling); naming no part,
    or `--report` beside another, is a usage error, not a silent default."""
    from bench_module import load_bench

    rc = load_bench("rank_correlation")
    ap = argparse.ArgumentParser()
    rc.add_part(ap, ["search", "train", "report", "all"])
    assert rc.part_of(ap, ap.parse_args(["--report"])) == "report"
    assert rc.part_of(ap, ap.parse_args(["report", "--report"])) == "report"
    assert rc.part_of(ap, ap.parse_args(["train"])) == "train"
    for argv in ([], ["search", "--report"]):
        with pytest.raises(SystemExit) as e:
            rc.part_of(ap, ap.parse_args(argv))
        assert e.value.code == 2
