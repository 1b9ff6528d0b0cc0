"""What `eagan check` promises (issue 15): a spec it accepts builds its supernets and runs one
forward and backward pass, and `eagan show` describes it. Shared by the shape tests and the
build fuzzer."""

from __future__ import annotations

import random

import torch

from compiler.supernet import SuperNet
from eagan_dsl.genome import Genome
from eagan_dsl.ir import Program


def build_and_step(program: Program, genomes: int = 2, batch: int = 2) -> None:
    """Every searchable network (a few random valid genomes) and every fixed one: forward on tiny
    random data, backward, finite outputs; then the description `eagan show` prints."""
    from runtime.show import describe

    rng = random.Random(0)
    data = program.data
    for name, net in program.networks.items():
        supernet = SuperNet(net)
        picks = (
            [supernet.random_genome(rng) for _ in range(genomes)] if net.searchable_edges else [()]
        )
        picks += [Genome(name, fx.genome) for fx in program.fixed.values() if fx.base == name]
        for genome in picks:
            if net.role == "generator":
                x = torch.randn(batch, net.latent_dim)
            else:
                x = torch.randn(batch, data.channels, data.resolution, data.resolution)
            out = supernet(x, genome)
            if net.role == "generator":
                assert out.shape == (batch, data.channels, data.resolution, data.resolution), (
                    name,
                    genome,
                    out.shape,
                )
            else:
                assert out.shape[0] == batch and out.numel() == batch, (name, genome, out.shape)
            assert torch.isfinite(out).all()
            out.float().mean().backward()
            supernet.zero_grad(set_to_none=True)
    describe(program)
