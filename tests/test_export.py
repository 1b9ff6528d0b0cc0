"""Standalone export: source that imports only torch, weights in safetensors (STYLE lesson 7)."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from test_compiler_supernet import TINY, inputs, tiny_program

from compiler.export import ExportError, export_command, export_network
from compiler.extract import extract
from compiler.params import program_params
from compiler.supernet import SuperNet
from eagan_dsl.diagnostics import SpecError
from eagan_dsl.ir import Program

RUNNER = textwrap.dedent(
    """
    import importlib, importlib.util, os, sys
    # run with `python -S`: site-packages are added by hand, without their .pth files, so an
    # editable install of this project (a .pth finder) cannot leak in
    sys.path[:0] = os.environ["EXPORT_SITE"].split(os.pathsep)
    sys.path.insert(0, os.getcwd())
    import torch
    from safetensors.torch import load_file
    assert importlib.util.find_spec("compiler") is None, "compiler must not be importable"
    assert importlib.util.find_spec("eagan_dsl") is None, "eagan_dsl must not be importable"
    torch.set_num_threads(1)
    module = importlib.import_module(sys.argv[1])
    model = getattr(module, sys.argv[2])()
    model.load_state_dict(load_file(sys.argv[1] + ".safetensors"))
    model.eval()
    x, expected = torch.load("io.pt")
    with torch.no_grad():
        out = model(x)
    print("EQUAL" if torch.equal(out, expected) else f"DIFF {(out - expected).abs().max()}")
    print(module.LATENT_DIM, module.RESOLUTION, module.CHANNELS)
    """
)
# issue 20 item 12: the header's torch-only way, in a process where safetensors cannot be imported
TORCH_ONLY = RUNNER.replace(
    "from safetensors.torch import load_file", 'sys.modules["safetensors"] = None'
).replace(
    'model.load_state_dict(load_file(sys.argv[1] + ".safetensors"))',
    'model.load_state_dict(torch.load(sys.argv[1] + ".pt", weights_only=True))',
)


@pytest.fixture(scope="module")
def tiny() -> Program:
    return tiny_program()


def trained_supernet(program: Program, name: str) -> SuperNet:
    """A supernet whose BN statistics and spectral-norm vectors have moved off their init."""
    net = program.networks[name]
    supernet = SuperNet(net, seed=7)
    rng = random.Random(0)
    with torch.no_grad():
        for _ in range(3):
            supernet(inputs(net, n=4, seed=rng.randrange(100)), supernet.random_genome(rng))
    return supernet.eval()


def clean_env() -> dict[str, str]:
    import safetensors

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    sites = {str(Path(m.__file__).resolve().parent.parent) for m in (torch, safetensors)}  # type: ignore[arg-type]
    env["EXPORT_SITE"] = os.pathsep.join(sorted(sites))
    return env


@pytest.mark.parametrize("name", ["G", "D"])
def test_exported_module_reproduces_the_supernet(tiny: Program, name: str, tmp_path: Path) -> None:
    supernet = trained_supernet(tiny, name)
    rng = random.Random(5)
    for i in range(2):
        genome = supernet.random_genome(rng)
        out_dir = tmp_path / f"export{i}"
        result = export_network(tiny, name, genome, supernet.state_dict(), out_dir)
        role = supernet.network.role
        assert sorted(p.name for p in out_dir.iterdir()) == [
            f"{role}.{x}" for x in ("json", "pt", "py", "safetensors")
        ]
        source_text = result.source.read_text()
        assert f'torch.load("{role}.pt", weights_only=True)' in source_text
        source = result.source.read_text()
        assert supernet.space.encode(genome) in source and "tiny.eagan" in source
        imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
        assert all(line.split()[1].split(".")[0] == "torch" for line in imports)
        assert source.count("\nclass ") == 1 and "genome" not in source.split("class ")[1]
        x = inputs(supernet.network, n=3, seed=i)
        torch.set_num_threads(1)
        try:
            with torch.no_grad():
                expected = supernet(x, genome)
        finally:
            torch.set_num_threads(max(1, os.cpu_count() or 1))
        torch.save((x, expected), out_dir / "io.pt")
        cls = "Generator" if role == "generator" else "Discriminator"
        for runner in (RUNNER, TORCH_ONLY) if i == 0 else (RUNNER,):
            run = subprocess.run(
                [sys.executable, "-S", "-c", runner, role, cls],
                cwd=out_dir,
                env=clean_env(),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert run.returncode == 0, run.stderr
            lines = run.stdout.split("\n")
            assert lines[0] == "EQUAL"
            net = supernet.network
            assert lines[1] == f"{net.latent_dim} {net.resolution} {net.image_channels}"


def test_two_identical_exports_are_byte_identical(tiny: Program, tmp_path: Path) -> None:
    supernet = trained_supernet(tiny, "G")
    genome = supernet.random_genome(random.Random(1))
    for name in ("a", "b"):
        export_network(tiny, "G", genome, supernet.state_dict(), tmp_path / name)
    for file in ("generator.safetensors", "generator.pt", "generator.py", "generator.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file


def test_export_of_fixed_and_cell_free_networks(tiny: Program, tmp_path: Path) -> None:
    result = export_network(tiny, "FixedD", None, None, tmp_path / "d")
    assert "class Discriminator(nn.Module)" in result.source.read_text()
    assert result.params == program_params(tiny, "FixedD")
    assert f"# parameters: {result.params:,}" in result.source.read_text()
    simple = export_network(tiny, "SimpleD", None, None, tmp_path / "s")
    assert "(none: the network has no searchable edges)" in simple.source.read_text()


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed")
def test_exported_source_is_formatted(tiny: Program, tmp_path: Path) -> None:
    result = export_network(tiny, "FixedG", None, None, tmp_path)
    check = subprocess.run(
        ["ruff", "format", "--check", "--line-length", "100", str(result.source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_bad_genomes_are_export_errors(tiny: Program, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="has 1 cell group"):
        export_network(tiny, "G", "nearest,nearest,skip,skip,skip,skip,skip", None, tmp_path / "a")
    with pytest.raises(ExportError, match="'conv9x9' is not a candidate of edge 1 -> 3 in cell 1"):
        export_network(
            tiny,
            "G",
            "nearest,nearest,conv9x9,skip,skip,skip,skip|" + "nearest," * 2 + "skip," * 4 + "skip",
            None,
            tmp_path / "b",
        )
    with pytest.raises(ExportError, match="not a valid architecture"):
        export_network(
            tiny,
            "G",
            "nearest,nearest,none,none,skip,skip,skip|" + "nearest," * 2 + "skip," * 4 + "skip",
            None,
            tmp_path / "c",
        )
    with pytest.raises(ExportError, match="unknown network 'Q'"):
        export_network(tiny, "Q", None, None, tmp_path / "d")


def test_weights_that_do_not_fit_are_named(tiny: Program, tmp_path: Path) -> None:
    d = SuperNet(tiny.networks["D"])
    with pytest.raises(ExportError, match="missing 'project.layers.0.weight'"):
        export_network(tiny, "FixedG", None, d.state_dict(), tmp_path / "a")
    g = SuperNet(tiny.networks["G"])
    genome = g.space.decode(
        "bilinear,bilinear,skip,none,conv1x1,conv3x3,skip|nearest,deconv,none,conv3x3,none,none,conv3x3"
    )
    other = g.space.decode(
        "bilinear,bilinear,skip,conv1x1,conv1x1,conv3x3,skip|nearest,deconv,none,conv3x3,none,none,conv3x3"
    )
    state = extract(g, other).state_dict()
    with pytest.raises(ExportError, match="unexpected 'cells.0.3.1.weight'"):
        export_network(tiny, "G", genome, state, tmp_path / "b")
    state = extract(g, genome).state_dict()
    state["head.2.weight"] = torch.zeros(1, 8, 1, 1)
    with pytest.raises(
        ExportError,
        match=r"'head.2.weight' has shape \(1, 8, 1, 1\), the network needs \(1, 8, 3, 3\)",
    ):
        export_network(tiny, "G", genome, state, tmp_path / "c")


def test_output_directory_must_be_empty_unless_forced(tiny: Program, tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(
        ExportError, match="exists and is not empty; choose another or pass --force"
    ):
        export_network(tiny, "FixedD", None, None, tmp_path)
    assert export_network(tiny, "FixedD", None, None, tmp_path, force=True).weights.is_file()


def test_export_command(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.eagan"
    spec.write_text(TINY)
    program = tiny_program()
    g = SuperNet(program.networks["G"])
    weights = tmp_path / "g.safetensors"
    save_file({k: v.contiguous() for k, v in g.state_dict().items()}, str(weights))
    genome = "bilinear,bilinear,skip,none,conv1x1,conv3x3,skip|nearest,deconv,none,conv3x3,none,none,conv3x3"
    result = export_command(spec, genome, tmp_path / "out", weights, False)
    assert result.source.name == "generator.py" and result.genome == "G:" + genome
    assert (
        export_command(spec, "FixedD", tmp_path / "out2", None, False).source.name
        == "discriminator.py"
    )
    with pytest.raises(ExportError, match="does not exist"):
        export_command(spec, genome, tmp_path / "out3", tmp_path / "missing.pt", False)
    with pytest.raises(ExportError, match="fits no network"):
        export_command(spec, "nonsense", tmp_path / "out4", None, False)
    bad = tmp_path / "bad.eagan"
    bad.write_text(TINY.replace("cells UpCell x 2", "cells UpCel x 2"))
    with pytest.raises(SpecError):
        export_command(bad, genome, tmp_path / "out5", None, False)
