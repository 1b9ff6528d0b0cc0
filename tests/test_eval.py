"""`eagan eval`, `eagan sample` and their one loader of an exported generator, which rebuilds the
network from the recorded spec and genome and never runs the directory's Python (digits + LeNet;
a few seconds)."""

from __future__ import annotations

import importlib.util
import json
import pickle
import shutil
import struct
import sys
from pathlib import Path

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

TINY = Path(__file__).resolve().parent / "data" / "tiny.eagan"
GENOME = "G:nearest,nearest,conv3x3,none,none,skip,conv3x3|nearest,nearest,conv3x3,none,none,skip,conv3x3"
OTHER = GENOME.replace("conv3x3,none,none,skip,conv3x3|", "conv3x3,conv3x3,none,skip,conv3x3|")
LATENT = 16  # tiny.eagan's latent


def _export(out: Path, spec_text: str | None = None) -> Path:
    """`eagan export` of tiny.eagan's G (fresh weights) into `out`; `spec_text` replaces the spec."""
    from compiler.export import export_network
    from eagan_dsl.checker import load

    spec = TINY
    if spec_text is not None:
        spec = out.parent / "changed.eagan"
        spec.write_text(spec_text)
    torch.manual_seed(0)
    export_network(load(spec), "G", GENOME, None, out, force=True)
    return out


@pytest.fixture
def gen_dir(tmp_path: Path) -> Path:
    return _export(tmp_path / "final")


def _rgb(gen_dir: Path) -> None:
    """Re-export gen_dir as a 3-channel 16×16 generator (the same spec on CIFAR-10 data)."""
    text = TINY.read_text().replace("data digits(resolution: 16)", "data cifar10(resolution: 16)")
    shutil.rmtree(gen_dir)
    _export(gen_dir, text)


@pytest.fixture
def app() -> typer.Typer:
    a = typer.Typer()
    a.command("eval")(eval_command)  # how the CLI registers it
    a.command("other")(lambda: None)  # keep typer in multi-command mode, like the real app
    return a


def _import_exported(d: Path):
    """The exported generator.py, imported as a user would (trusted code, in the test only)."""
    spec = importlib.util.spec_from_file_location(
        f"_exported_{abs(hash(str(d)))}", d / "generator.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from safetensors.torch import load_file

    net = module.Generator()
    net.load_state_dict(load_file(str(d / "generator.safetensors")))
    return net.eval()


def test_eval_command_prints_and_writes_json(app, gen_dir, tmp_path):
    out = tmp_path / "m.json"
    cache = tmp_path / "cache"
    r = CliRunner().invoke(app, ["eval", str(gen_dir), "--images", "200", "--seed", "3",
                                 "--device", "cpu", "--cache-dir", str(cache), "--json-out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "FD" in r.output and "FID" not in r.output and "IS" in r.output  # LeNet: FD
    data = json.loads(out.read_text())
    # the same numbers as the library call with the same generator, extractor, stats and seed
    g = load_generator(gen_dir)
    m = lenet_digits()
    direct = evaluate_generator(
        g.module, 200, m, reference_stats("digits", m, cache_dir=cache), seed=3, latent_dim=LATENT
    )
    assert data["fid"] == pytest.approx(direct.fid, rel=1e-9)
    assert data["is_mean"] == pytest.approx(direct.is_mean, rel=1e-9)
    assert data["n"] == 200 and data["seed"] == 3 and data["dataset"] == "digits"
    assert data["weights_id"] == m.weights_id


def test_rebuilt_generator_equals_the_exported_module(gen_dir):
    g = load_generator(gen_dir)
    assert (g.latent_dim, g.resolution, g.channels) == (LATENT, 16, 1)
    z = torch.randn(5, LATENT, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(g.module(z), _import_exported(gen_dir)(z))


def test_loader_never_runs_the_exported_python(gen_dir, tmp_path):
    marker = tmp_path / "ran"
    (gen_dir / "generator.py").write_text(
        f"open({str(marker)!r}, 'w').write('code ran')\nraise SystemExit(3)\n"
    )
    before = set(sys.modules)
    g = load_generator(gen_dir)
    assert not marker.exists() and g.latent_dim == LATENT
    assert not [m for m in set(sys.modules) - before if "exported" in m]
    (gen_dir / "generator.py").unlink()  # not needed at all
    assert load_generator(gen_dir).resolution == 16


def test_a_run_directory_and_its_final_without_a_record(gen_dir, tmp_path):
    """A run's final/ exported before the record existed: the run's spec.eagan and the genome
    in final/metrics.json rebuild it."""
    run = gen_dir.parent
    shutil.copy(TINY, run / "spec.eagan")
    (gen_dir / "metrics.json").write_text(json.dumps({"fid": 1.0, "g_genome": GENOME}))
    expected = load_generator(gen_dir).module
    (gen_dir / "generator.json").unlink()
    for where in (run, gen_dir):
        g = load_generator(where)
        assert g.path == gen_dir
        z = torch.randn(3, LATENT, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            assert torch.equal(g.module(z), expected(z))


def test_weights_as_pt_file(gen_dir):
    from safetensors.torch import load_file

    sd = load_file(str(gen_dir / "generator.safetensors"))
    (gen_dir / "generator.safetensors").unlink()
    torch.save(sd, gen_dir / "generator.pt")
    g = load_generator(gen_dir)
    z = torch.randn(2, LATENT, generator=torch.Generator().manual_seed(0))
    (gen_dir / "generator.pt").unlink()
    _export(gen_dir)
    with torch.no_grad():
        assert torch.equal(g.module(z), load_generator(gen_dir).module(z))


def _record_edit(d: Path, **changes) -> None:
    path = d / "generator.json"
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record))


@pytest.mark.parametrize(
    "breakage,message",
    [
        (lambda d: (d / "generator.json").unlink(), "holds no exported generator"),
        (lambda d: [(d / f"generator.{x}").unlink() for x in ("safetensors", "pt")], "no weights"),
        (lambda d: (d / "generator.safetensors").write_bytes(b"junk"), "cannot be read"),
        (lambda d: _record_edit(d, genome=OTHER), "do not fit"),
        (lambda d: _record_edit(d, genome="G:nearest"), "bad genome"),
        (lambda d: _record_edit(d, network="FixedD", genome=""), "not a generator"),
        (lambda d: _record_edit(d, network=["G"]), "'network' must be a string"),
        (lambda d: _record_edit(d, spec="search x {"), "the recorded spec does not check"),
        (lambda d: (d / "generator.json").write_text("{"), "cannot be read as JSON"),
        (lambda d: (d / "generator.json").write_text("[1]"), "not an export record"),
    ],
)
def test_bad_generator_directories(gen_dir, breakage, message):
    breakage(gen_dir)
    with pytest.raises(ExportedError, match=message) as err:
        load_generator(gen_dir)
    assert str(gen_dir) in str(err.value)  # located: the message names the folder or its file


class _RunsCode:
    def __reduce__(self):
        return (print, ("pickle code ran",))


CRAFTED = {
    "random bytes": bytes(range(256)) * 8,
    "2^40 header length": struct.pack("<Q", 2**40) + b'{"a": 1}' + bytes(64),
    "a pickle": pickle.dumps(_RunsCode()),
}


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("as_pt", [False, True], ids=["safetensors", "pt"])
@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_crafted_weights_one_clean_line_exit_2(gen_dir, tmp_path, kind, as_pt):
    """issue 15 item 15: sample and eval, on the same damaged or crafted weights, both print one
    located line and exit 2; no traceback, and nothing in the file runs."""
    from runtime.cli import app as eagan

    (gen_dir / "generator.safetensors").unlink()
    (gen_dir / ("generator.pt" if as_pt else "generator.safetensors")).write_bytes(CRAFTED[kind])
    runner = CliRunner()
    for args in (
        ["sample", str(gen_dir), "-n", "4", "--out", str(tmp_path / "g.png")],
        ["eval", str(gen_dir), "-n", "20", "--device", "cpu", "--splits", "2"],
    ):
        r = runner.invoke(eagan, args)
        output = r.output if r.stderr_bytes is None else r.stdout + r.stderr
        assert r.exit_code == 2, (args, output)
        assert r.exception is None or isinstance(r.exception, SystemExit)
        assert "Traceback" not in output and "code ran" not in output
        lines = [line for line in output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and str(gen_dir) in lines[0]
    assert not (tmp_path / "g.png").exists()


@pytest.mark.filterwarnings("ignore:FID from")
def test_sample_and_eval_share_one_loader(gen_dir, tmp_path, monkeypatch):
    import runtime.exported
    from runtime.cli import app as eagan

    calls = []
    real = runtime.exported.load_generator

    def spy(directory, *args, **kwargs):
        calls.append(Path(directory))
        return real(directory, *args, **kwargs)

    monkeypatch.setattr(runtime.exported, "load_generator", spy)
    runner = CliRunner()
    r = runner.invoke(eagan, ["sample", str(gen_dir), "-n", "4", "--out", str(tmp_path / "g.png")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(eagan, ["eval", str(gen_dir), "-n", "20", "--device", "cpu", "--splits", "2",
                              "--cache-dir", str(tmp_path / "cache")])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert calls == [gen_dir, gen_dir]


def test_bad_input_exits_2(app, tmp_path, gen_dir):
    r = CliRunner().invoke(app, ["eval", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = CliRunner().invoke(app, ["eval", str(gen_dir), "--data", "mnist"])
    assert r.exit_code == 2 and "unknown data set" in r.output


def test_cifar10_without_images_or_stats_is_a_clear_error(gen_dir, tmp_path, monkeypatch):
    _rgb(gen_dir)
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

    _rgb(gen_dir)
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
