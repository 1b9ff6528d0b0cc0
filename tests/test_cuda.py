"""The code paths that touch a device, run on every device this machine has: on CUDA they check that
the GPU computes what the CPU computes; the same bodies run on the CPU everywhere, so they cannot
rot unseen on a machine without a GPU (the CUDA cases skip there). `bash bench/gpu_check.sh` runs
them on a lent GPU."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_compiler_supernet import inputs

from compiler.export import export_network
from compiler.supernet import SuperNet
from eagan_dsl.checker import load
from eagan_dsl.ir import Program
from runtime.metrics import (
    FeatureStats,
    InceptionScore,
    ReferenceStats,
    evaluate_generator,
    frechet_distance,
    lenet_digits,
)
from runtime.metrics.evaluate import exact_float32
from runtime.nets import build_fixed
from runtime.train import adam, d_step, g_step

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "tiny.eagan"

NO_CUDA = not torch.cuda.is_available()
CUDA = pytest.param("cuda", marks=pytest.mark.skipif(NO_CUDA, reason="needs a CUDA device"))
DEVICES = ["cpu", CUDA]


@pytest.fixture(scope="module")
def tiny() -> Program:
    return load(TINY)


def _grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad.detach().cpu() for k, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["G", "D"])
def test_supernet_forward_backward_matches_cpu(tiny: Program, name: str, device: str) -> None:
    net = tiny.networks[name]
    ref = SuperNet(net, seed=3).train()
    dev_net = copy.deepcopy(ref).to(device)
    rng = random.Random(0)
    with exact_float32(torch.device(device)):  # TF32 off: CUDA agrees with the CPU to fp32 rounding
        for i in range(2):
            genome = ref.random_genome(rng)
            x = inputs(net, n=4, seed=i)
            ref.zero_grad(set_to_none=True)
            dev_net.zero_grad(set_to_none=True)
            y_ref = ref(x, genome)
            y_ref.square().mean().backward()
            y = dev_net(x.to(device), genome)
            y.square().mean().backward()
            assert y.device.type == device
            torch.testing.assert_close(y.detach().cpu(), y_ref.detach(), rtol=1e-4, atol=1e-5)
            g_ref, g_dev = _grads(ref), _grads(dev_net)
            assert g_ref and g_ref.keys() == g_dev.keys()
            for k in g_ref:
                torch.testing.assert_close(g_dev[k], g_ref[k], rtol=1e-3, atol=1e-5, msg=k)
    # BatchNorm statistics and spectral-norm vectors moved alike
    for (k, b_ref), b_dev in zip(ref.state_dict().items(), dev_net.state_dict().values()):
        if b_ref.is_floating_point():
            torch.testing.assert_close(b_dev.cpu(), b_ref, rtol=1e-3, atol=1e-5, msg=k)


@pytest.mark.parametrize("device", DEVICES)
def test_training_step_matches_cpu(tiny: Program, device: str) -> None:
    """One D step and one G step (runtime/train.py) of SuperNet-G on a genome against the fixed D."""
    torch.manual_seed(0)
    cpu = torch.device("cpu")
    G = SuperNet(tiny.networks["G"], seed=1).train()
    D = build_fixed(tiny, "FixedD", 2, cpu).train()
    genome = G.random_genome(random.Random(1))
    G_dev, D_dev = copy.deepcopy(G).to(device), copy.deepcopy(D).to(device)
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(8, 1, 16, 16, generator=gen) * 2 - 1
    z_d, z_g = torch.randn(8, 16, generator=gen), torch.randn(16, 16, generator=gen)
    losses = {}
    dev = torch.device(device)
    with exact_float32(dev):
        for key, g_mod, d_mod, where in (("cpu", G, D, cpu), ("dev", G_dev, D_dev, dev)):
            g_opt, d_opt = (
                adam(g_mod.parameters(), 2e-4, (0.0, 0.9)),
                adam(d_mod.parameters(), 2e-4, (0.0, 0.9)),
            )

            def g_fn(z: torch.Tensor, g_mod: SuperNet = g_mod) -> torch.Tensor:
                return g_mod(z, genome)

            ld = d_step(g_fn, d_mod, real.to(where), z_d.to(where), d_opt)
            lg = g_step(g_fn, d_mod, z_g.to(where), g_opt)
            losses[key] = (ld, lg)
    for a, b in zip(losses["cpu"], losses["dev"]):
        assert math.isfinite(b) and b == pytest.approx(a, rel=1e-4, abs=1e-5)
    start = SuperNet(tiny.networks["G"], seed=1).state_dict()
    moved = 0
    for (k, p), p_dev in zip(G.state_dict().items(), G_dev.state_dict().values()):
        assert p_dev.device.type == device
        # Adam's first step moves a weight by about ±lr: a gradient of ~0 may take either sign
        torch.testing.assert_close(p_dev.cpu(), p, rtol=0, atol=5e-4, msg=k)
        moved += int(not torch.equal(p_dev.cpu(), start[k]))
    assert moved > 0


@pytest.mark.parametrize("device", DEVICES)
def test_statistics_on_device(device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(300, 8, generator=gen) * 3 + 1
    logits = torch.randn(300, 5, generator=gen) * 2
    acc = FeatureStats(8, device=device)
    is_acc = InceptionScore(300, 5, splits=3, device=device)
    for chunk, lchunk in zip(feats.split(70), logits.split(70)):
        acc.update(chunk.to(device))
        is_acc.update(lchunk.to(device))
    x = feats.double().numpy()
    np.testing.assert_allclose(acc.mean().cpu().numpy(), x.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(acc.cov().cpu().numpy(), np.cov(x, rowvar=False), rtol=0, atol=1e-10)
    cpu_is = InceptionScore(300, 5, splits=3)
    cpu_is.update(logits)
    np.testing.assert_allclose(is_acc.per_split(), cpu_is.per_split(), rtol=1e-12)
    ref = ReferenceStats(np.zeros(8), np.eye(8))
    on_dev = frechet_distance(acc.mean(), acc.cov(), ref)  # tensors on the device are accepted
    assert on_dev == pytest.approx(
        frechet_distance(x.mean(0), np.cov(x, rowvar=False), ref), rel=1e-10
    )


@pytest.mark.parametrize("device", DEVICES)
def test_evaluation_on_device_matches_cpu(tiny: Program, device: str) -> None:
    """IS and FID of a generator evaluated on the device equal the CPU's (same z, same batches)."""
    net = tiny.networks["G"]
    G = SuperNet(net, seed=4).eval()
    genome = G.random_genome(random.Random(2))
    d = lenet_digits().feature_dim
    rng = np.random.default_rng(0)
    a = rng.standard_normal((d, 2 * d)) / math.sqrt(2 * d)
    ref = ReferenceStats(rng.standard_normal(d) * 0.1, a @ a.T)
    results = {}
    for where in ("cpu", device):
        g = copy.deepcopy(G).to(where)
        r = evaluate_generator(
            lambda z, g=g: g(z, genome),
            4 * d,
            lenet_digits(device=where),
            ref,
            batch_size=50,
            seed=0,
            latent_dim=net.latent_dim,
            device=where,
            splits=2,
        )
        assert r.device.startswith(where)
        results[where] = r
    assert results[device].is_mean == pytest.approx(results["cpu"].is_mean, rel=1e-4)
    assert results[device].fid == pytest.approx(results["cpu"].fid, rel=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_export_of_device_weights_loads_on_cpu(tiny: Program, device: str, tmp_path: Path) -> None:
    net = tiny.networks["G"]
    supernet = SuperNet(net, seed=5).to(device).train()
    rng = random.Random(3)
    with torch.no_grad():  # move BN statistics off their initial values, on the device
        for i in range(3):
            supernet(inputs(net, n=4, seed=i).to(device), supernet.random_genome(rng))
    genome = supernet.random_genome(rng)
    assert next(iter(supernet.state_dict().values())).device.type == device
    result = export_network(tiny, "G", genome, supernet.state_dict(), tmp_path / "export")
    spec = importlib.util.spec_from_file_location(f"exported_generator_{device}", result.source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.Generator()
    weights = load_file(str(result.weights))  # onto the CPU
    assert all(t.device.type == "cpu" for t in weights.values())
    model.load_state_dict(weights)
    model.eval()
    supernet.eval()
    x = inputs(net, n=3, seed=9)
    with torch.no_grad(), exact_float32(torch.device(device)):
        expected = supernet(x.to(device), genome).cpu()
        got = model(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", [pytest.param("cpu", marks=pytest.mark.slow), CUDA])
def test_quick_run_from_the_cli(device: str, tmp_path: Path) -> None:
    """`eagan run tests/data/tiny.eagan --quick --device DEVICE` as a process, end to end.
    (On the CPU the same run is covered by test_runtime; here it is slow-marked.)"""
    out = tmp_path / "run"
    env = {**os.environ, "NO_COLOR": "1", "EAGAN_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime.cli",
            "run",
            str(TINY),
            "--quick",
            "--device",
            device,
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    resolved = json.loads((out / "resolved.json").read_text())
    assert resolved["environment"]["device"].startswith(device)
    assert resolved["environment"]["quick"] is True
    metrics = json.loads((out / "final" / "metrics.json").read_text())
    assert math.isfinite(metrics["fid"]) and metrics["is"] >= 1.0
    assert (out / "final" / "generator.safetensors").is_file()
