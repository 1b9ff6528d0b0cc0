"""Export of a generator whose cross-cell link feeds a node that is never used (its out-edge is
`none`): the link's weights are kept (as in the subnet) and the output still equals the supernet's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from safetensors.torch import load_file

from compiler.export import export_network
from compiler.params import count_params
from compiler.supernet import SuperNet
from eagan_dsl.checker import load
from eagan_dsl.genome import GenomeSpace

ROOT = Path(__file__).resolve().parent.parent
# cell 3's node 3 feeds nothing (edge 3 -> 4 is none), yet links 1.3 -> 3.3 and 2.3 -> 3.3 exist
GENOME = (
    "G:nearest,nearest,conv1x1,conv3x3,conv1x1,conv1x1,conv1x1|deconv,nearest,conv3x3,conv1x1,dil3x3,skip,skip"
    "|nearest,deconv,conv3x3,skip,conv5x5,conv3x3,none"
)


def test_link_into_an_unused_node(tmp_path: Path) -> None:
    program = load(ROOT / "specs" / "digits.eagan")
    net = program.networks["G"]
    genome = GenomeSpace(net).decode(GENOME)
    supernet = SuperNet(net, seed=3).eval()
    export_network(program, "G", genome, supernet.state_dict(), tmp_path, force=True)
    spec = importlib.util.spec_from_file_location("exported_generator", tmp_path / "generator.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exported = module.Generator()
    exported.load_state_dict(load_file(str(tmp_path / "generator.safetensors")))
    exported.eval()
    z = torch.randn(4, program.latent_dim, generator=torch.Generator().manual_seed(0))
    assert torch.equal(exported(z), supernet(z, genome))
    assert sum(p.numel() for p in exported.parameters()) == count_params(net, genome)
