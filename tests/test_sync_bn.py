"""SyncBatchNorm for the data-parallel stages (issue 17, item 4): with `run { sync_bn: on }` a
data-parallel training iteration on 2 gloo processes equals the same iteration in one process on the
whole batch, to float tolerance; without it, per-slice BatchNorm statistics make them differ."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.multiprocessing as mp
from torch import nn

from eagan_dsl.checker import check_text
from runtime.data import ImageData

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _nets() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    g = nn.Sequential(
        nn.Linear(8, 8 * 4 * 4),
        nn.Unflatten(1, (8, 4, 4)),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Upsample(scale_factor=2),
        nn.Conv2d(8, 8, 3, padding=1, bias=False),  # no bias before a BN: its gradient is 0
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 3, 3, padding=1),
        nn.Tanh(),
    )
    d = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 1),
    )
    for m in (*g.modules(), *d.modules()):
        if isinstance(m, nn.BatchNorm2d):  # away from the identity, so that statistics matter
            nn.init.normal_(m.weight, 1.0, 0.3)
            nn.init.normal_(m.bias, 0.0, 0.3)
    return g, d


def _iteration(sync_bn: bool, out: str) -> None:
    """Two training iterations (n_critic 2) of the data-parallel Trainer; rank 0 saves G and D."""
    from runtime.dist import from_env
    from runtime.search.members import Member, Trainer

    torch.set_num_threads(1)
    dist = from_env()
    g, d = _nets()
    images = torch.Generator().manual_seed(3)
    data = ImageData("fake", torch.rand(64, 3, 8, 8, generator=images) * 2 - 1, "train")
    program = SimpleNamespace(
        latent_dim=8, latent_distribution="normal", blocks={"run": {"sync_bn": sync_bn}}
    )
    ctx: Any = SimpleNamespace(dist=dist, data=data, device=torch.device("cpu"), program=program)
    s = {"batch": {"g": 16, "d": 16}, "n_critic": 2, "lr": 1e-2, "betas": (0.0, 0.9),
         "grad_clip": None}  # fmt: skip
    trainer = Trainer(ctx, s, torch.Generator().manual_seed(1))
    gm, dm = Member(g, 1e-2, (0.0, 0.9), None), Member(d, 1e-2, (0.0, 0.9), None)
    for _ in range(2):
        trainer.iteration(g, d, gm, dm)
    if dist.main:
        torch.save({"g": g.state_dict(), "d": d.state_dict()}, out)
    dist.close()


def _rank(rank: int, world: int, port: int, sync_bn: bool, out: str) -> None:
    os.environ.update(
        {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
         "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    )  # fmt: skip
    _iteration(sync_bn, out)


def _two(sync_bn: bool, out: Path) -> dict[str, Any]:
    mp.spawn(_rank, args=(2, _free_port(), sync_bn, str(out)), nprocs=2, join=True)
    return dict(torch.load(out, weights_only=True))


def _differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    return {
        f"{net}.{k}": float((a[net][k].double() - b[net][k].double()).abs().max())
        for net in ("g", "d")
        for k in a[net]
        if a[net][k].is_floating_point()
    }


def test_sync_bn_setting() -> None:
    text = (ROOT / "tests" / "data" / "tiny.eagan").read_text()
    assert "run { seed: 0 }" in text
    program = check_text(text.replace("run { seed: 0 }", "run { seed: 0, sync_bn: on }"))
    assert program.blocks["run"]["sync_bn"] is True
    assert check_text(text).blocks["run"]["sync_bn"] is False


def test_two_processes_with_sync_bn_match_one(tmp_path: Path) -> None:
    _iteration(True, str(tmp_path / "one.pt"))  # one process: plain BatchNorm on the whole batch
    one = dict(torch.load(tmp_path / "one.pt", weights_only=True))
    synced = _differences(one, _two(True, tmp_path / "synced.pt"))
    per_slice = _differences(one, _two(False, tmp_path / "per_slice.pt"))
    assert max(synced.values()) < 1e-5, synced
    # without it the per-slice statistics (and the gradients through them) differ
    assert max(per_slice.values()) > 1e-3, per_slice
    assert synced["g.2.running_var"] < 1e-5 < per_slice["g.2.running_var"]
