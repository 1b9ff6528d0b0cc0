"""SuperNet-G / SuperNet-D, subnet extraction and parameter counts (issue "The compiler")."""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch
from conftest import ROOT
from torch import nn

from compiler.extract import SubNet, build_subnet, extract
from compiler.params import count_params, param_range, program_params, supernet_params
from compiler.supernet import SuperNet
from eagan_dsl.checker import check, load
from eagan_dsl.genome import Genome
from eagan_dsl.ir import NetworkIR, Program
from eagan_dsl.parser import parse

# The structure of specs/cifar10.eagan at width 8 and resolution 8.
TINY = """
search tiny {
  data digits(resolution: 8)
  latent 12 normal

  op nearest  = upsample(mode: nearest), relu, conv(k: 1)
  op bilinear = upsample(mode: bilinear), relu, conv(k: 1)
  op deconv   = relu, conv_transpose(k: 3, stride: 2, depthwise: true, bias: false), conv(k: 1, bias: false)
  op conv1x1  = relu, conv(k: 1)
  op conv3x3  = relu, conv(k: 3)
  op dil3x3   = relu, conv(k: 3, dilation: 2)
  op xskip    = resize(mode: bilinear), conv(k: 1)
  op d_conv3x3 = relu, conv(k: 3, sn: true)
  op s_conv1x1 = conv(k: 1, sn: true)
  op d_conv3x3_s2 = relu, conv(k: 3, stride: 2, sn: true)
  op d_in_conv3x3 = conv(k: 3, sn: true)
  op d_pool_conv1x1 = avgpool(k: 2), conv(k: 1, sn: true)

  choice up     = [nearest, bilinear, deconv]
  choice normal = [none, skip, conv1x1, conv3x3, dil3x3]
  choice d_normal   = [none, skip, d_conv3x3]
  choice d_shortcut = [none, skip, s_conv1x1]
  choice d_down     = [avgpool, maxpool, d_conv3x3_s2, skip]

  cell UpCell {
    edge 0 -> 1 : up
    edge 0 -> 2 : up
    edge 1 -> 3 : normal
    edge 2 -> 3 : normal
    edge 1 -> 4 : normal
    edge 2 -> 4 : normal
    edge 3 -> 4 : normal
    output 4
  }

  cell DownCell {
    edge 0 -> 1 : d_normal
    edge 0 -> 2 : d_normal
    edge 1 -> 2 : d_normal
    edge 1 -> 3 : d_normal
    edge 0 -> 3 : d_shortcut
    edge 2 -> 4 : d_down
    edge 3 -> 4 : d_down
    output 4
  }

  cell DStem {
    edge 0 -> 1 : d_in_conv3x3
    edge 1 -> 2 : d_conv3x3
    edge 2 -> 3 : avgpool
    edge 0 -> 3 : d_pool_conv1x1
    output 3
  }

  generator G {
    stem  project(size: 2, split: 2)
    cells UpCell x 2 (channels: 8)
    link  1.3 -> 2.3 : xskip
    head  bn, relu, conv(k: 3, out: image), tanh
  }

  discriminator D {
    cells DStem x 1 (channels: 8)
    cells DownCell x 2 (channels: 8)
    head  relu, sum_pool, linear(out: 1, bias: false, sn: true)
  }

  discriminator SimpleD {
    stem conv(k: 4, stride: 2, out: 6), bn, lrelu(slope: 0.2), conv(k: 4, stride: 2, out: 8)
    head sum_pool, linear(out: 1, bias: false, sn: true)
  }

  discriminator FixedD = D with genome "d_conv3x3,none,d_conv3x3,none,s_conv1x1,avgpool,avgpool|d_conv3x3,none,d_conv3x3,none,skip,skip,skip"
  generator FixedG = G with genome "bilinear,bilinear,skip,none,conv1x1,conv3x3,skip|nearest,deconv,none,conv3x3,none,none,conv3x3"

  objectives { fid: min, is: max, params: min }
  evolution { population: 4, rounds: 2, epochs: 1 }
  train { lr: 2e-4, betas: (0.0, 0.9), batch: 16 }
  evaluate { images: 64, final_images: 128, extractor: inception, splits: 1 }

  stage search_g : search { network: G, against: FixedD, warmup: 1 }
  stage search_d : search { network: D, with: best(search_g), warmup: 1 }
  stage fully_train : train { g: best(search_g), d: best(search_d), epochs: 1 }
}
"""


def tiny_program(text: str = TINY) -> Program:
    return check(parse(text, "tiny.eagan"))


@pytest.fixture(scope="module")
def tiny() -> Program:
    return tiny_program()


@pytest.fixture(scope="module")
def cifar10() -> Program:
    return load(ROOT / "specs" / "cifar10.eagan")


def inputs(net: NetworkIR, n: int = 3, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if net.role == "generator":
        return torch.randn(n, net.latent_dim, generator=gen)
    return torch.randn(n, net.image_channels, net.resolution, net.resolution, generator=gen)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------- parameter counts
def test_counts_equal_the_released_networks(cifar10: Program) -> None:
    # research notes §1.3 / §2 / §9: counts measured on the authors' released modules
    assert program_params(cifar10, "GStar") == 7_142_403
    assert program_params(cifar10, "DStarC10") == 906_240
    assert program_params(cifar10, "AutoGAND") == 1_053_824
    assert program_params(cifar10, "SimpleD") == 921_920
    assert supernet_params(cifar10.networks["G"]) == 72_776_963
    assert supernet_params(cifar10.networks["D"]) == 23_806_592


def test_cifar10_param_range_brackets_released_subnets(cifar10: Program) -> None:
    lo, hi = param_range(cifar10.networks["G"])
    # research notes §1.1: five random valid subnets had 12.65M-20.26M parameters; G* 7.14M
    assert lo <= 7_142_403 and 20_260_000 <= hi < 72_776_963
    # the all-`skip` genome (no conv on a normal edge, any up op) is the smallest G
    assert lo == count_params(cifar10.networks["G"], (0, 0, 1, 1, 1, 1, 1) * 3)


def test_count_matches_built_modules(tiny: Program) -> None:
    rng = random.Random(3)
    for name in ("G", "D"):
        net = tiny.networks[name]
        supernet = SuperNet(net)
        assert n_params(supernet) == supernet_params(net)
        for _ in range(6):
            genome = supernet.random_genome(rng)
            assert n_params(extract(supernet, genome)) == count_params(net, genome)
            assert n_params(build_subnet(net, genome)) == count_params(net, genome)
    simple = tiny.networks["SimpleD"]
    # conv 1→6 k4, bn 6, conv 6→8 k4, linear 8→1 without bias: counted by hand
    assert (
        count_params(simple)
        == n_params(build_subnet(simple))
        == (16 * 6 + 6) + 12 + (16 * 6 * 8 + 8) + 8
    )


MICRO = """
search micro {
  data digits(resolution: 8)
  latent 4 normal
  op c1 = relu, conv(k: 1)
  op c3 = relu, conv(k: 3)
  op up = upsample(mode: nearest), conv(k: 1)
  choice n = [none, skip, c1, c3]
  choice u = [up, deconv]
  op deconv = conv_transpose(k: 3, stride: 2)
  cell C {
    edge 0 -> 1 : u
    edge 1 -> 2 : n
    edge 0 -> 2 : up
    edge 1 -> 3 : n
    edge 2 -> 3 : n
    output 3
  }
  generator G { stem project(size: 2) cells C x 2 (channels: 3) head conv(k: 1, out: image), tanh }
  discriminator D { head sum_pool, linear(out: 1) }
  objectives { fid: min }
  stage s : search { network: G, against: D }
}
"""


def test_param_range_equals_brute_force() -> None:
    net = tiny_program(MICRO).networks["G"]
    supernet = SuperNet(net)
    counts = [
        count_params(net, g)
        for g in itertools.product(
            *(range(len(net.candidates(i))) for i in range(len(net.searchable_edges)))
        )
        if supernet.space.is_valid(Genome(net.name, g))
    ]
    assert len(counts) == supernet.space.size()
    assert param_range(net) == (min(counts), max(counts))


# ----------------------------------------------------------------------- execution
@pytest.mark.parametrize("name", ["G", "D"])
def test_extracted_subnet_equals_supernet_bitwise(tiny: Program, name: str) -> None:
    net = tiny.networks[name]
    supernet = SuperNet(net, seed=1).eval()
    rng = random.Random(0)
    x = inputs(net)
    for _ in range(8):
        genome = supernet.random_genome(rng)
        sub = extract(supernet, genome)
        assert isinstance(sub, SubNet) and not sub.training
        with torch.no_grad():
            assert torch.equal(sub(x), supernet(x, genome))


def test_fixed_genomes_run_and_shapes(tiny: Program) -> None:
    g = tiny.network("FixedG")
    out = SuperNet(g)(inputs(g), tiny.fixed["FixedG"].genome)
    assert out.shape == (3, 1, 8, 8) and out.abs().max() <= 1  # tanh image
    d = tiny.network("FixedD")
    assert SuperNet(d)(inputs(d), tiny.fixed["FixedD"].genome).shape == (3, 1)


def test_extract_copies_weights(tiny: Program) -> None:
    net = tiny.networks["D"]
    supernet = SuperNet(net)
    genome = supernet.random_genome(random.Random(1))
    sub = extract(supernet, genome)
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    opt = torch.optim.SGD(sub.parameters(), lr=0.1)
    sub(inputs(net)).sum().backward()
    opt.step()
    assert all(torch.equal(before[k], v) for k, v in supernet.state_dict().items())


def test_only_the_chosen_ops_run(tiny: Program) -> None:
    net = tiny.networks["G"]
    supernet = SuperNet(net)
    calls: list[str] = []
    for name, module in supernet.named_modules():
        if name.count(".") == 5 and ".ops." in name:  # cells.p.edges.e.ops.c
            module.register_forward_hook(lambda m, i, o, name=name: calls.append(name))
    # cell 1: skip on 1->3, none elsewhere except 3->4 conv3x3; both up edges bilinear
    genome = supernet.space.decode(
        "bilinear,bilinear,skip,none,none,none,conv3x3|nearest,nearest,skip,skip,none,none,skip"
    )
    supernet(inputs(net), genome)
    # cell 1, node 2 feeds only `none` edges: its up op is not computed
    assert calls == [
        "cells.0.edges.0.ops.1",
        "cells.0.edges.2.ops.1",
        "cells.0.edges.6.ops.3",
        "cells.1.edges.0.ops.0",
        "cells.1.edges.1.ops.0",
        "cells.1.edges.2.ops.1",
        "cells.1.edges.3.ops.1",
        "cells.1.edges.6.ops.1",
    ]


def test_project_split_feeds_each_cell(tiny: Program) -> None:
    net = tiny.networks["G"]
    supernet = SuperNet(net)
    assert [tuple(layer.weight.shape) for layer in supernet.project.layers] == [
        (8 * 2 * 2, 6),
        (8 * 4 * 4, 6),
    ]
    z = inputs(net).requires_grad_(True)
    genome = supernet.random_genome(random.Random(0))
    maps = supernet.project(z)
    assert [tuple(m.shape[1:]) for m in maps] == [(8, 2, 2), (8, 4, 4)]
    maps[1].sum().backward()
    assert z.grad is not None and z.grad[:, :6].abs().sum() == 0 and z.grad[:, 6:].abs().sum() > 0
    # both chunks reach the image
    z2 = inputs(net).requires_grad_(True)
    supernet(z2, genome).sum().backward()
    assert z2.grad is not None and (z2.grad[:, :6] != 0).any() and (z2.grad[:, 6:] != 0).any()


def test_invalid_genome_is_refused(tiny: Program) -> None:
    net = tiny.networks["G"]
    with pytest.raises(ValueError, match="no active input"):
        SuperNet(net)(inputs(net), (0, 0, 0, 0, 1, 1, 1) + (0, 0, 1, 1, 1, 1, 1))


def test_construction_is_deterministic_and_keeps_global_rng(tiny: Program) -> None:
    net = tiny.networks["D"]
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = SuperNet(net, seed=5), SuperNet(net, seed=5), SuperNet(net, seed=6)
    assert torch.equal(torch.rand(1), expected)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_init_follows_released_code(tiny: Program) -> None:
    supernet = SuperNet(tiny.networks["G"])
    convs = [m for m in supernet.modules() if type(m) is nn.Conv2d]
    for conv in convs:
        fan_out, fan_in = conv.weight.shape[0] * conv.weight[0, 0].numel(), conv.weight[0].numel()
        bound = math.sqrt(6 / (fan_in + fan_out))  # xavier_uniform, gain 1
        assert conv.weight.abs().max() <= bound
    big = [c for c in convs if c.weight.numel() >= 500]
    assert big and all(
        c.weight.abs().max()
        > 0.8 * math.sqrt(6 / (c.weight[0].numel() + c.weight.shape[0] * c.weight[0, 0].numel()))
        for c in big
    )
    bns = [m for m in supernet.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        assert (bn.weight - 1).abs().max() < 0.1 and (bn.weight != 1).any() and (bn.bias == 0).all()


def test_spectral_norm_on_discriminator_convs(tiny: Program) -> None:
    supernet = SuperNet(tiny.networks["D"])
    genome = supernet.random_genome(random.Random(0))
    sub = extract(supernet, genome).eval()
    for m in sub.modules():
        if isinstance(m, nn.Conv2d):
            w = m.weight.detach().flatten(1)
            assert torch.linalg.matrix_norm(w, ord=2) == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("name", ["G", "D"])
def test_autocast_bf16_channels_last(tiny: Program, name: str) -> None:
    net = tiny.networks[name]
    supernet = SuperNet(net).to(memory_format=torch.channels_last)
    x = inputs(net, n=4)
    if x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    rng = random.Random(2)
    for _ in range(3):
        genome = supernet.random_genome(rng)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = supernet(x, genome)
        assert torch.isfinite(out.float()).all()
        out.float().sum().backward()


@pytest.mark.parametrize("name", ["G", "D"])
def test_forward_mixed_runs_every_candidate(tiny: Program, name: str) -> None:
    net = tiny.networks[name]
    supernet = SuperNet(net).eval()
    genome = supernet.random_genome(random.Random(4))
    x = inputs(net)
    mixed = supernet.forward_mixed(x, genome)
    assert mixed.shape == supernet(x, genome).shape and torch.isfinite(mixed).all()
    mixed.sum().backward()
    trained = [p for p in supernet.parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    # every candidate with weights of the reference genome's kind gets a gradient
    assert len(trained) > 0.8 * len(list(supernet.parameters()))


def test_params_module_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, compiler.params; assert 'torch' not in sys.modules"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
