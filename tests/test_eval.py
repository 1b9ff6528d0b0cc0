"""`eagan eval` and the one loader of an exported generator (digits + LeNet; runs in ~1 s)."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
import typer
from typer.testing import CliRunner

from runtime.commands import eval_command
from runtime.exported import ExportedError, load_generator
from runtime.metrics import (
    MetricsError,
    evaluate_generator,
    lenet_digits,
    reference_stats,
    run_eval,
)

torch.set_num_threads(2)

GENERATOR_PY = textwrap.dedent(
    """
    # exported by eagan (test fixture): imports only torch
    import torch
    from torch import nn

    LATENT_DIM = 8
    RESOLUTION = 16
    CHANNELS = 1


    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(LATENT_DIM, CHANNELS * RESOLUTION * RESOLUTION)

        def forward(self, z):
            return torch.tanh(self.fc(z)).view(-1, CHANNELS, RESOLUTION, RESOLUTION)
    """
)


@pytest.fixture
def gen_dir(tmp_path):
    from safetensors.torch import save_file

    d = tmp_path / "final"
    d.mkdir()
    (d / "generator.py").write_text(GENERATOR_PY)
    torch.manual_seed(0)
    fc = torch.nn.Linear(8, 256)
    save_file(
        {"fc.weight": fc.weight.detach().contiguous(), "fc.bias": fc.bias.detach()},
        str(d / "generator.safetensors"),
    )
    return d


@pytest.fixture
def app():
    a = typer.Typer()
    a.command("eval")(eval_command)  # how the lead registers it
    a.command("other")(lambda: None)  # keep typer in multi-command mode, like the real app
    return a


def test_eval_command_prints_and_writes_json(app, gen_dir, tmp_path):
    out = tmp_path / "m.json"
    cache = tmp_path / "cache"
    r = CliRunner().invoke(app, ["eval", str(gen_dir), "--images", "200", "--seed", "3",
                                 "--device", "cpu", "--cache-dir", str(cache), "--json-out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "FID" in r.output and "IS" in r.output
    data = json.loads(out.read_text())
    # the same numbers as the library call with the same generator, extractor, stats and seed
    g = load_generator(gen_dir)
    m = lenet_digits()
    direct = evaluate_generator(
        g.module, 200, m, reference_stats("digits", m, cache_dir=cache), seed=3, latent_dim=8
    )
    assert data["fid"] == pytest.approx(direct.fid, rel=1e-9)
    assert data["is_mean"] == pytest.approx(direct.is_mean, rel=1e-9)
    assert data["n"] == 200 and data["seed"] == 3 and data["dataset"] == "digits"
    assert data["weights_id"] == m.weights_id


def test_weights_as_pt_file(gen_dir):
    from safetensors.torch import load_file

    sd = load_file(str(gen_dir / "generator.safetensors"))
    (gen_dir / "generator.safetensors").unlink()
    torch.save(sd, gen_dir / "generator.pt")
    g = load_generator(gen_dir)
    assert g.latent_dim == 8 and torch.equal(g.module.fc.weight, sd["fc.weight"])


@pytest.mark.parametrize(
    "breakage,message",
    [
        (lambda d: (d / "generator.py").unlink(), "generator.py is missing"),
        (lambda d: (d / "generator.safetensors").unlink(), "no weights"),
        (lambda d: (d / "generator.safetensors").write_bytes(b"junk"), "cannot be read"),
        (
            lambda d: (d / "generator.py").write_text(
                GENERATOR_PY.replace("LATENT_DIM = 8", "LATENT_DIM = 9")
            ),
            "do not fit",
        ),
        (
            lambda d: (d / "generator.py").write_text(GENERATOR_PY.replace("CHANNELS = 1\n", "")),
            "CHANNELS",
        ),
        (
            lambda d: (d / "generator.py").write_text("import nonexistent_module_xyz\n"),
            "importing it failed",
        ),
    ],
)
def test_bad_generator_directories(gen_dir, breakage, message):
    breakage(gen_dir)
    with pytest.raises(ExportedError, match=message):
        load_generator(gen_dir)


def test_bad_input_exits_2(app, tmp_path, gen_dir):
    r = CliRunner().invoke(app, ["eval", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = CliRunner().invoke(app, ["eval", str(gen_dir), "--data", "mnist"])
    assert r.exit_code == 2 and "unknown data set" in r.output


def test_cifar10_without_images_or_stats_is_a_clear_error(gen_dir, tmp_path, monkeypatch):
    (gen_dir / "generator.py").write_text(
        GENERATOR_PY.replace("RESOLUTION = 16", "RESOLUTION = 32").replace(
            "CHANNELS = 1", "CHANNELS = 3"
        )
    )
    torch.manual_seed(0)
    fc = torch.nn.Linear(8, 3 * 32 * 32)
    torch.save(
        {"fc.weight": fc.weight.detach(), "fc.bias": fc.bias.detach()}, gen_dir / "generator.pt"
    )
    (gen_dir / "generator.safetensors").unlink()
    monkeypatch.delenv("EAGAN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(MetricsError, match="EAGAN_INCEPTION_WEIGHTS"):
        run_eval(gen_dir, "cifar10", 100, device="cpu", allow_download=False)
    with pytest.raises(MetricsError, match="digits needs 1-channel 16x16"):
        run_eval(gen_dir, "digits", 100, device="cpu")


@pytest.mark.filterwarnings("ignore:FID from")
def test_eval_with_inception_against_npz_stats(app, gen_dir, tmp_path):
    import numpy as np

    from runtime.metrics.inception import random_inception_state_dict

    (gen_dir / "generator.py").write_text(
        GENERATOR_PY.replace("CHANNELS = 1", "CHANNELS = 3").replace(
            "RESOLUTION = 16", "RESOLUTION = 8"
        )
    )
    torch.manual_seed(0)
    fc = torch.nn.Linear(8, 3 * 8 * 8)
    torch.save(
        {"fc.weight": fc.weight.detach(), "fc.bias": fc.bias.detach()}, gen_dir / "generator.pt"
    )
    (gen_dir / "generator.safetensors").unlink()
    w = tmp_path / "random_inception.pth"
    torch.save(random_inception_state_dict(0), w)
    stats = tmp_path / "fid_stats_test.npz"
    np.savez(stats, mu=np.zeros(2048), sigma=np.eye(2048))  # TTUR layout
    out = tmp_path / "r.json"
    r = CliRunner().invoke(app, ["eval", str(gen_dir), "--data", str(stats), "--images", "10", "--device", "cpu",
                                 "--inception-weights", str(w), "--no-download", "--json-out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["extractor"].startswith("inception") and data["quantize"] == "truncate"
    assert data["reference"] == "fid_stats_test.npz" and np.isfinite(data["fid"])
