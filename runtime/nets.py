"""Networks for the runtime, built by the compiler: supernets, fixed networks, subnets."""

from __future__ import annotations

import torch
from torch import nn

from compiler.extract import extract
from compiler.params import count_params
from compiler.supernet import SuperNet
from eagan_dsl.genome import Genome
from eagan_dsl.ir import Program


def build_supernet(program: Program, name: str, seed: int, device: torch.device) -> SuperNet:
    """SuperNet-G or SuperNet-D of a searchable network (weights shared by all its genomes)."""
    return SuperNet(program.networks[name], seed=seed).to(device)


def genome_of(program: Program, name: str) -> Genome:
    """The architecture a network name stands for: a fixed network's genome, or the empty genome
    of a network without searchable edges."""
    if name in program.fixed:
        fx = program.fixed[name]
        return Genome(fx.base, fx.genome)
    net = program.networks[name]
    if net.genes:
        raise ValueError(f"{name} is searchable: name one of its fixed networks")
    return Genome(name, ())


def build_fixed(program: Program, name: str, seed: int, device: torch.device) -> nn.Module:
    """A fresh (newly initialised) module of a fixed network, holding only its ops."""
    genome = genome_of(program, name)
    net = build_supernet(program, genome.network, seed, device)
    return extract(net, genome).to(device)


def build_subnet(program: Program, genome: Genome, seed: int, device: torch.device) -> nn.Module:
    """A fresh module of one architecture (the fully-train stage trains from scratch, §5.1)."""
    net = build_supernet(program, genome.network, seed, device)
    return extract(net, genome).to(device)


def params_of(program: Program, genome: Genome) -> int:
    return count_params(program.networks[genome.network], genome)
