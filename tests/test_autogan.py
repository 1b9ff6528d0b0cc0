"""AutoGAN's generator space in the language (issue 19): tied decisions, searchable links, taps
and resampling, the space size, the released networks' parameter counts, located errors, and a
weight-for-weight equivalence of AutoGAN `a` with the released cell written out in plain PyTorch
(shared/research/autogan-space.md, "§x" below)."""

from __future__ import annotations

import collections
import importlib.util
import io
import itertools
import random
import re
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import NOISE, _only_spec_errors, _tokens
from torch import nn

from compiler.export import export_network
from compiler.extract import build_subnet, extract
from compiler.params import count_params, program_params
from compiler.supernet import SuperNet
from eagan_dsl.checker import check_text, load
from eagan_dsl.diagnostics import SpecError
from eagan_dsl.genome import Genome, GenomeError, GenomeSpace
from eagan_dsl.ir import NetworkIR, Program

ROOT = Path(__file__).resolve().parent.parent
DIGITS = (ROOT / "specs" / "autogan_digits.eagan").read_text(encoding="utf-8")
A = "pre,none,nearest,shortcut|pre,none,bilinear,shortcut,skip_in|pre,none,nearest,none,skip_in,skip_in"
E2GAN = (
    "post,bn,bilinear,shortcut|post,bn,deconv,shortcut,none|post,bn,bilinear,shortcut,skip_in,none"
)


@pytest.fixture(scope="module")
def digits() -> Program:
    return check_text(DIGITS, "autogan_digits.eagan")


def _space(program: Program) -> GenomeSpace:
    return GenomeSpace(program.networks["G"])


# ---------------------------------------------------------------------- released networks (§3)
@pytest.mark.parametrize(
    "spec,expected",
    [
        (
            "autogan_cifar10",
            {
                "AutoGAN_a": 4_405_251,
                "AutoGAN_b": 4_471_043,
                "AutoGAN_c": 4_406_275,
                "E2GAN": 4_867_331,
                "AutoGAND": 1_053_824,
            },
        ),
        ("autogan_stl10", {"AutoGAN_a": 5_065_731, "E2GAN": 5_527_811, "AutoGAND": 1_053_824}),
    ],
)
def test_released_networks_have_the_released_parameter_counts(
    spec: str, expected: dict[str, int]
) -> None:
    from runtime.show import describe

    program = load(ROOT / "specs" / f"{spec}.eagan")
    assert {name: program_params(program, name) for name in expected} == expected
    shown = describe(program)
    assert {f["name"]: f["params"] for f in shown["fixed"]} == expected
    g = next(n for n in shown["networks"] if n["name"] == "G")
    assert g["space_size"] == 373_248 and g["genes"] == 15  # 36 · 72 · 144 (§2)


def test_show_prints_the_space_size() -> None:
    from rich.console import Console

    from runtime.show import describe, render

    console = Console(width=200, record=True, color_system=None)
    render(describe(load(ROOT / "specs" / "autogan_cifar10.eagan")), console)
    text = console.export_text()
    assert re.search(r"│ G\s+│ generator\s+│ 15\s+│ 373,248\s+│", text)
    assert "decision" in text and "order: [post, pre]" in text


def test_released_vectors_decode_to_the_named_genomes() -> None:
    """The 14-integer vectors of §2, mapped gene by gene (skip integers as bits, LSB = the most
    recent cell), give the spec's genome strings."""
    program = load(ROOT / "specs" / "autogan_cifar10.eagan")
    space = _space(program)
    vectors = {
        "AutoGAN_a": "1 0 1 1 | 1 0 0 1 1 | 1 0 1 0 3",
        "AutoGAN_b": "1 0 1 1 | 1 0 1 1 1 | 1 0 1 1 3",
        "AutoGAN_c": "1 1 1 1 | 1 0 0 1 1 | 1 0 1 0 3",
        "E2GAN": "0 1 0 1 | 0 1 2 1 0 | 0 1 0 1 2",
    }
    for name, vector in vectors.items():
        cells = [list(map(int, c.split())) for c in vector.split("|")]
        choices = cells[0] + cells[1] + cells[2][:4] + [cells[2][4] >> 1, cells[2][4] & 1]
        assert program.fixed[name].genome == tuple(choices), name
        assert space.encode(Genome("G", tuple(choices)), prefix=False) in DIGITS or name != "a"


# ------------------------------------------------------------------ tied decisions (§1.3)
def _parts(op: object) -> list[str]:
    return [p.name for p in op.parts]  # type: ignore[attr-defined]


def test_one_decision_gene_moves_every_place_that_reads_it(digits: Program) -> None:
    space = _space(digits)
    a = space.decode(A)
    up = next(
        g
        for g, gene in enumerate(space.genes)
        if gene.kind == "decision" and gene.pos == 1 and space.candidates[g][0].name == "bilinear"
    )
    deconv = list(a.choices)
    deconv[up] = 2  # cell 2: bilinear -> deconv
    b = Genome("G", tuple(deconv))
    # the three places of §1.3: the main up-sampler, the shortcut's, the skip-in's resampling
    before, after = space.ops(a, 1), space.ops(b, 1)
    assert _parts(before[0]) == ["skip", "relu", "upsample", "conv"]
    assert _parts(after[0]) == ["skip", "relu", "conv_transpose", "conv"]
    assert _parts(before[2]) == ["upsample", "conv"] and _parts(after[2]) == [
        "conv_transpose",
        "conv",
    ]
    assert _parts(before[1]) == _parts(after[1])  # block 2 does not read `up`
    links_a, links_b = space.link_ops(a), space.link_ops(b)
    assert _parts(links_a[0]) == ["resize", "conv"]
    assert _parts(links_b[0]) == ["conv_transpose", "conv"]  # 8 → 16 (×2): one deconv
    assert links_a[1:] == links_b[1:]  # the links into cell 3 read cell 3's decision
    # norm: both convs of the cell, on the block inputs (pre) or outputs (post)
    norm = up - 1
    bn = list(a.choices)
    bn[norm] = 1
    ops = space.ops(Genome("G", tuple(bn)), 1)
    assert _parts(ops[0])[0] == "bn" and _parts(ops[1])[0] == "bn"
    order = up - 2
    post = list(bn)
    post[order] = 0
    ops = space.ops(Genome("G", tuple(post)), 1)
    assert _parts(ops[0]) == ["upsample", "conv", "bn", "relu"]
    assert _parts(ops[1]) == ["conv", "bn", "relu"]
    # and the built network follows: deconv modules appear in cell 2 and its link only
    sub = build_subnet(digits.networks["G"], b)
    kinds = {k: type(m).__name__ for k, m in sub.named_modules()}
    assert kinds["cells.1.0.2"] == kinds["cells.1.2.0"] == kinds["links.0.0"] == "ConvTranspose2d"
    assert kinds["cells.0.0.2"] == "Upsample"


def test_deconv_skip_in_doubles_once_per_ratio_step(digits: Program) -> None:
    space = _space(digits)
    g = space.decode(
        "pre,none,nearest,shortcut|pre,none,nearest,shortcut,skip_in|pre,none,deconv,none,skip_in,skip_in"
    )
    ops = space.link_ops(g)
    assert _parts(ops[1]) == ["conv_transpose", "conv_transpose", "conv"]  # cell 1 → 3: ×4
    assert _parts(ops[2]) == ["conv_transpose", "conv"]  # cell 2 → 3: ×2
    net = digits.networks["G"]
    supernet = SuperNet(net).eval()
    z = torch.randn(3, net.latent_dim)
    with torch.no_grad():
        assert torch.equal(supernet(z, g), extract(supernet, g)(z))
    assert count_params(net, g) == sum(p.numel() for p in extract(supernet, g).parameters())


def test_mutation_and_crossover_treat_a_tied_decision_as_one_gene(digits: Program) -> None:
    space = _space(digits)
    # one integer per decision, not one per place: 3 decisions + shortcut per cell, 0 + 1 + 2 links
    kinds = collections.Counter(g.kind for g in space.genes)
    assert kinds == {"decision": 9, "edge": 3, "link": 3}
    assert len(space.one_hot(space.decode(A))) == 15
    rng = random.Random(0)
    parent = space.decode(A)
    moved: collections.Counter[int] = collections.Counter()
    for _ in range(600):
        child = space.mutate(parent, rng)
        assert child is not None
        diff = [g for g in range(15) if child.choices[g] != parent.choices[g]]
        assert len(diff) == 1
        moved[diff[0]] += 1
        # every place reading the decision moves with it: the cells' ops all follow the child
        for pos in range(3):
            assert space.ops(child, pos) == [
                space.network.cells[pos].cell.edges[e].candidates[v]
                for e, v in enumerate(space.variants(child, pos))
            ]
    assert set(moved) == set(range(15))  # each gene, decisions and links included, is drawn
    other = space.decode(E2GAN)
    for _ in range(200):
        child = space.crossover(parent, other, rng)
        assert child is not None
        diff = [g for g in range(15) if child.choices[g] != parent.choices[g]]
        assert len(diff) == 1 and child.choices[diff[0]] == other.choices[diff[0]]


# ------------------------------------------------------------------------ space size (§2)
SMALL = """
search small {
  data digits(resolution: 16)
  latent 8 normal
  op g_up = case up { nearest: upsample(mode: nearest) | deconv: conv_transpose(k: 2, padding: 0, output_padding: 0) }
  op g_norm = case norm { none: skip | bn: bn | in: inorm }
  op block1 = case order { post: g_up, conv(k: 3), g_norm, relu | pre: g_norm, relu, g_up, conv(k: 3) }
  op block2 = case order { post: conv(k: 3), g_norm, relu | pre: g_norm, relu, conv(k: 3) }
  op shortcut = g_up, conv(k: 1)
  op skip_in = case up { nearest: resize(mode: nearest), conv(k: 1) | deconv: resize(mode: deconv), conv(k: 1) }
  op plain = upsample(mode: nearest), conv(k: 3)
  choice short_cut = [none, shortcut]
  op xskip = resize(mode: nearest), conv(k: 1)
  choice skip_link = [none, skip_in]
  choice xlink = [none, xskip]
  choice mid = [none, skip, conv1x1]
  op conv1x1 = conv(k: 1)
  cell Cell(order: [post, pre], norm: [none, bn, in], up: [nearest, deconv]) {
    edge 0 -> 1 : block1
    edge 1 -> 2 : block2
    edge 0 -> 2 : short_cut
    output 2
  }
  cell Plain {
    edge 0 -> 1 : plain
    edge 1 -> 2 : mid
    edge 0 -> 2 : short_cut2
    output 2
  }
  op up1 = upsample(mode: nearest), conv(k: 1)
  choice short_cut2 = [none, up1]
  generator G {
    stem project(size: 4)
    cells Plain x 1 (channels: 4)
    cells Cell x 1 (channels: 4)
    link 1.1 -> 2.1 : skip_link
    link 1.2 -> 2.2 : xlink
    head conv(k: 3, out: image), tanh
  }
  op dconv = conv(k: 3, stride: 2)
  cell DStem { edge 0 -> 1 : dconv output 1 }
  discriminator D { cells DStem x 1 (channels: 4) head sum_pool, linear(out: 1) }
  stage s : search { network: G, against: D }
}
"""


def _signature(space: GenomeSpace, g: Genome) -> tuple[object, ...]:
    """What a genome builds: the concrete op of every edge and link (None for `none`)."""
    cells = tuple(
        tuple(None if op.is_none else op.parts for op in space.ops(g, pos))
        for pos in range(len(space.network.cells))
    )
    return cells, tuple(None if op.is_none else op.parts for op in space.link_ops(g))


def test_space_size_equals_an_independent_enumeration() -> None:
    """Every vector of the genes' ranges is tried; the valid ones are counted by the graph rule
    (every node has an active input), written here again, and are all distinct networks."""
    program = check_text(SMALL, "small.eagan")
    net = program.networks["G"]
    space = GenomeSpace(net)
    ranges = [range(len(c)) for c in space.candidates]
    valid: set[tuple[object, ...]] = set()
    count = 0
    for choices in itertools.product(*ranges):
        g = Genome("G", choices)
        ok = all(
            any(
                e.dst == node and not op.is_none
                for e, op in zip(inst.cell.edges, space.ops(g, pos))
            )
            for pos, inst in enumerate(net.cells)
            for node in range(1, inst.cell.num_nodes)
        )
        assert ok == space.is_valid(g)
        if ok:
            count += 1
            valid.add(_signature(space, g))
    # by hand: Plain: `mid` none needs the shortcut on (3·2 − 1 = 5); Cell: 2·3·2 decisions × 2
    # shortcut = 24; two links 2·2: 5 · 24 · 4 = 480
    assert count == len(valid) == space.size() == 480


def test_autogan_space_size_is_373248_from_the_graph(digits: Program) -> None:
    space = _space(digits)
    assert space.size() == 36 * 72 * 144 == 373_248
    assert space.total() == 373_248  # every encoding is valid: the cells always have their convs


# ------------------------------------------------------------------- links on/off (codec)
def test_links_on_and_off_in_the_codec(digits: Program) -> None:
    space = _space(digits)
    net = digits.networks["G"]
    a = space.decode(A)
    assert space.encode(a, prefix=False) == A
    assert space.decode(space.encode(a)) == a
    off = space.decode(A.replace("skip_in,skip_in", "none,skip_in"))
    ops = space.link_ops(off)
    assert ops[1].is_none and not ops[2].is_none
    one_link = 32 * 32 + 32  # a 1×1 conv at width 32
    assert count_params(net, a) - count_params(net, off) == one_link
    sub = build_subnet(net, off)
    assert not any(k.startswith("links.1.") for k in sub.state_dict())
    supernet = SuperNet(net).eval()
    z = torch.randn(2, net.latent_dim)
    with torch.no_grad():
        y_on, y_off = supernet(z, a), supernet(z, off)
        assert not torch.equal(y_on, y_off)
        assert torch.equal(y_off, extract(supernet, off)(z))
    with pytest.raises(GenomeError, match=r"'on' is not a candidate of link 1\.1 -> 3\.1"):
        space.decode(A.replace("skip_in,skip_in", "on,skip_in"))
    with pytest.raises(GenomeError, match="'batch' is not a value of decision norm of cell 1"):
        space.decode(A.replace("pre,none,nearest", "pre,batch,nearest", 1))
    with pytest.raises(GenomeError, match="cell group 3 of the genome has 5 entries"):
        space.decode(A.rsplit(",", 1)[0])


# ------------------------------------------------------------------------ located errors
CELL = (
    "cell AutoGANCell(order: [post, pre], norm: [none, bn, in], up: [bilinear, nearest, deconv]) {"
)
ERRORS = [
    (
        "decision_undeclared",
        CELL,
        "cell AutoGANCell(order: [post, pre], norm: [none, bn, in]) {",
        (
            r"^\d+:19: op 'block1' reads decision 'up' \(case at \d+:\d+\), which cell AutoGANCell "
            r"does not declare"
        ),
    ),
    (
        "decision_value_missing",
        "norm: [none, bn, in]",
        "norm: [none, bn, in, ln]",
        (
            r"^\d+:19: op 'block1': case norm \(at \d+:\d+\) has no branch for ln; decision norm of "
            r"cell AutoGANCell is \[none, bn, in, ln\]"
        ),
    ),
    (
        "case_value_extra",
        "| in: inorm }",
        "| in: inorm | gn: bn }",
        r"^\d+:19: op 'block1': case norm \(at \d+:\d+\) names gn, which the decision lacks",
    ),
    (
        "case_branch_twice",
        "| bn: bn |",
        "| bn: bn | bn: bn |",
        r"^\d+:\d+: case norm has two branches 'bn'",
    ),
    (
        "decision_twice",
        "norm: [none, bn, in], up:",
        "norm: [none, bn, in], norm: [none], up:",
        r"^\d+:62: decision 'norm' of cell AutoGANCell is already declared at \d+:40",
    ),
    (
        "decision_value_twice",
        "norm: [none, bn, in]",
        "norm: [none, bn, bn, in]",
        r"^\d+:57: 'bn' appears twice in decision 'norm'",
    ),
    (
        "decision_unread",
        "up: [bilinear, nearest, deconv])",
        "up: [bilinear, nearest, deconv], width: [narrow, wide])",
        (
            r"^\d+:\d+: decision 'width' of cell AutoGANCell is read by no op of cell 1 of "
            r"generator G"
        ),
    ),
    (
        "branches_of_different_kinds",
        "deconv: conv_transpose(k: 2, padding: 0, output_padding: 0) }",
        "deconv: conv(k: 3) }",
        (
            r"^\d+:3: op 'g_up' is an up op when up is bilinear; a normal op when up is deconv: "
            r"every branch of a case must change the resolution alike"
        ),
    ),
    (
        "case_in_head",
        "head bn, relu, conv(k: 3, out: image), tanh",
        "head g_norm, relu, conv(k: 3, out: image), tanh",
        (
            r"^\d+:10: op 'g_norm' picks its parts by a cell decision \(case\): only cell edges and "
            r"links can use it"
        ),
    ),
    (
        "bad_resize_mode",
        "deconv: resize(mode: deconv)",
        "deconv: resize(mode: transposed)",
        r"^\d+:\d+: mode of resize must be one of nearest, bilinear, deconv",
    ),
    (
        "deconv_upsample_mode",
        "nearest: upsample(mode: nearest)",
        "nearest: upsample(mode: deconv)",
        r"^\d+:\d+: mode of upsample must be one of nearest, bilinear$",
    ),
    (
        "link_choice_down",
        "choice skip_link = [none, skip_in]",
        "choice skip_link = [none, skip_in, d_conv3x3_s2]",
        r"^\d+:23: link op 'd_conv3x3_s2' must keep or resize the resolution",
    ),
    (
        "case_two_value_sets",
        "op block2 = case order { post: conv(k: 3), g_norm, relu | pre: g_norm, relu, conv(k: 3) }",
        (
            "op block2 = case order { post: conv(k: 3), g_norm, relu | pre: g_norm, relu, conv(k: 3) }\n"
            "  op both = block1, case_o\n  op case_o = case order { a: skip | b: skip }"
        ),
        (
            r"^\d+:\d+: case order names a, b, but another case on order in op 'both' \(at "
            r"\d+:\d+\) names post, pre"
        ),
    ),
    (
        "genome_bad_value",
        'genome "pre,none,nearest,shortcut|',
        'genome "pre,layer,nearest,shortcut|',
        r"^\d+:\d+: genome of AutoGAN_a: 'layer' is not a value of decision norm of cell 1",
    ),
    (
        "unclosed_case",
        "| in: inorm }",
        "| in: inorm",
        r"^\d+:\d+: unexpected 'op'; expected",
    ),
]


@pytest.mark.parametrize("name,old,new,pattern", ERRORS, ids=[e[0] for e in ERRORS])
def test_every_new_error_is_located(name: str, old: str, new: str, pattern: str) -> None:
    assert old in DIGITS, f"case {name} no longer applies to autogan_digits.eagan"
    text = DIGITS.replace(old, new, 1)
    with pytest.raises(SpecError) as info:
        check_text(text, "autogan_digits.eagan")
    got = [
        f"{d.line}:{d.column}: {d.header().split(': error: ', 1)[1]}"
        for d in info.value.diagnostics
    ]
    assert any(re.search(pattern, g) for g in got), got
    for d in info.value.diagnostics:
        assert 1 <= d.line <= text.count("\n") + 1 and d.column >= 1, d.header()
    assert "autogan_digits.eagan:" in info.value.render()


@st.composite
def _edited(draw: st.DrawFn) -> str:
    text = DIGITS
    for _ in range(draw(st.integers(1, 3))):
        spans = _tokens(text)
        a, b = spans[draw(st.integers(0, len(spans) - 1))]
        kind = draw(st.sampled_from(["delete", "duplicate", "insert", "replace"]))
        if kind == "delete":
            text = text[:a] + text[b:]
        elif kind == "duplicate":
            text = text[:b] + " " + text[a:b] + text[b:]
        elif kind == "insert":
            text = text[:a] + draw(NOISE) + text[a:]
        else:
            c, d = spans[draw(st.integers(0, len(spans) - 1))]
            text = text[:a] + text[c:d] + text[b:]
    return text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_edited())
def test_random_edits_of_the_autogan_spec_raise_only_spec_errors(text: str) -> None:
    _only_spec_errors(text)


def test_autogan_specs_are_formatted() -> None:
    from eagan_dsl.fmt import format_spec

    for name in ("autogan_cifar10", "autogan_stl10", "autogan_digits"):
        text = (ROOT / "specs" / f"{name}.eagan").read_text(encoding="utf-8")
        assert format_spec(text) == text, name


# ---------------------------------------------- AutoGAN `a`, weight for weight (§1.4, §3.1)
class ReleasedCell(nn.Module):
    """AutoGAN's derived cell (AG:models/building_blocks.py:14-69), pre-activation: n1 → ReLU →
    interpolate ×2 → c1 → (+ skip-ins) → n2 → ReLU → c2 → (+ c_sc(interpolate(x))). The skip-ins
    are added in place in the release, so the exported skip carries them (§1.2 "Aliasing")."""

    def __init__(self, ch: int, num_skip_in: int, up_mode: str, short_cut: bool) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.up_mode = up_mode
        self.skip_in_ops = nn.ModuleList(nn.Conv2d(ch, ch, 1) for _ in range(num_skip_in))
        self.short_cut = short_cut
        if short_cut:
            self.c_sc = nn.Conv2d(ch, ch, 1)

    def forward(
        self, x: torch.Tensor, skip_ft: tuple[torch.Tensor, ...] = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.interpolate(F.relu(x), scale_factor=2, mode=self.up_mode)
        _, _, ht, wt = h.size()
        h = self.c1(h)
        for ft, op in zip(skip_ft, self.skip_in_ops):
            h = h + op(F.interpolate(ft, size=(ht, wt), mode=self.up_mode))
        h_skip_out = h
        final = self.c2(F.relu(h))
        if self.short_cut:
            final = final + self.c_sc(F.interpolate(x, scale_factor=2, mode=self.up_mode))
        return h_skip_out, final


class ReleasedGeneratorA(nn.Module):
    """AG:models/autogan_cifar10_a.py:11-35: l1 → cell1 (nearest, shortcut) → cell2 (bilinear,
    shortcut, skip from 1) → cell3 (nearest, no shortcut, skips from 1 and 2) → to_rgb."""

    def __init__(self, latent: int, ch: int, bw: int, image_channels: int) -> None:
        super().__init__()
        self.ch, self.bw = ch, bw
        self.l1 = nn.Linear(latent, bw * bw * ch)
        self.cell1 = ReleasedCell(ch, 0, "nearest", True)
        self.cell2 = ReleasedCell(ch, 1, "bilinear", True)
        self.cell3 = ReleasedCell(ch, 2, "nearest", False)
        self.to_rgb = nn.Sequential(
            nn.BatchNorm2d(ch), nn.ReLU(), nn.Conv2d(ch, image_channels, 3, 1, 1), nn.Tanh()
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.l1(z).view(-1, self.ch, self.bw, self.bw)
        h1_skip, h1 = self.cell1(h)
        h2_skip, h2 = self.cell2(h1, (h1_skip,))
        _, h3 = self.cell3(h2, (h1_skip, h2_skip))
        out: torch.Tensor = self.to_rgb(h3)
        return out


def _released_to_spec_keys() -> dict[str, str]:
    """Released parameter name → the spec-built subnet's (the edges' parts by position: block 1
    = [norm none = skip, relu, upsample, conv], block 2 = [skip, relu, conv], shortcut =
    [upsample, conv], skip-in = [resize, conv]; links in spec order 1→2, 1→3, 2→3)."""
    keys = {"l1": "project.layers.0", "to_rgb.0": "head.0", "to_rgb.2": "head.2"}
    for k in range(3):
        keys[f"cell{k + 1}.c1"] = f"cells.{k}.0.3"
        keys[f"cell{k + 1}.c2"] = f"cells.{k}.1.2"
    keys["cell1.c_sc"], keys["cell2.c_sc"] = "cells.0.2.1", "cells.1.2.1"
    keys["cell2.skip_in_ops.0"] = "links.0.1"
    keys["cell3.skip_in_ops.0"], keys["cell3.skip_in_ops.1"] = "links.1.1", "links.2.1"
    return keys


def _load_released(sub: nn.Module, released: nn.Module) -> None:
    keys = _released_to_spec_keys()
    state = {}
    for name, value in released.state_dict().items():
        prefix, leaf = name.rsplit(".", 1)
        state[f"{keys[prefix]}.{leaf}"] = value
    sub.load_state_dict(state, strict=True)  # every weight of each side, nothing else


@pytest.mark.parametrize(
    "spec,width,bw",
    [("autogan_cifar10", 256, 4), ("autogan_stl10", 256, 6), ("autogan_digits", 32, 2)],
)
def test_autogan_a_from_the_spec_equals_the_released_cell(spec: str, width: int, bw: int) -> None:
    program = load(ROOT / "specs" / f"{spec}.eagan")
    net: NetworkIR = program.networks["G"]
    released = ReleasedGeneratorA(net.latent_dim, width, bw, net.image_channels)
    if spec != "autogan_digits":
        assert sum(p.numel() for p in released.parameters()) == program_params(program, "AutoGAN_a")
    torch.manual_seed(0)
    with torch.no_grad():  # non-trivial BN statistics and affine parameters
        bn = released.to_rgb[0]
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
    genome = Genome("G", program.fixed["AutoGAN_a"].genome)
    sub = build_subnet(net, genome)
    _load_released(sub, released)
    z = torch.randn(4, net.latent_dim)
    for train in (False, True):
        released.train(train)
        sub.train(train)
        with torch.no_grad():
            assert torch.equal(sub(z), released(z)), f"train={train}"
    # the supernet, holding the same weights on the chosen candidates, computes the same
    supernet = SuperNet(net).eval()
    state = supernet.state_dict()
    sub_state = sub.state_dict()
    from compiler.extract import subnet_keys

    for super_key, sub_key in subnet_keys(net, genome, state).items():
        state[super_key] = sub_state[sub_key]
    supernet.load_state_dict(state)
    released.eval()
    with torch.no_grad():
        assert torch.equal(supernet(z, genome), released(z))


# ------------------------------------------------------------------- export (standalone)
@pytest.mark.parametrize("name", ["AutoGAN_a", "E2GAN_deconv"])
def test_exported_autogan_generators_match_the_subnet(
    digits: Program, tmp_path: Path, name: str
) -> None:
    net = digits.networks["G"]
    space = _space(digits)
    if name == "AutoGAN_a":
        genome, target = Genome("G", digits.fixed["AutoGAN_a"].genome), "AutoGAN_a"
    else:  # post, BN and IN, deconv everywhere, every link on: the other branches
        genome = space.decode(
            "post,bn,deconv,shortcut|post,in,deconv,shortcut,skip_in|pre,bn,deconv,shortcut,skip_in,skip_in"
        )
        target = "G"
    supernet = SuperNet(net, seed=3).train()
    with torch.no_grad():
        supernet(torch.randn(8, net.latent_dim), genome)  # BN running statistics move
    supernet.eval()
    result = export_network(
        digits, target, genome if target == "G" else None, supernet.state_dict(), tmp_path
    )
    assert result.params == count_params(net, genome)
    spec = importlib.util.spec_from_file_location(f"exported_{name}", result.source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    model = module.Generator()
    model.load_state_dict(torch.load(tmp_path / "generator.pt", weights_only=True))
    model.eval()
    assert sum(p.numel() for p in model.parameters()) == result.params
    z = torch.randn(4, net.latent_dim)
    with torch.no_grad():
        assert torch.equal(model(z), supernet(z, genome))


# ------------------------------------------------------- `eagan run` end to end, exported
def test_autogan_digits_runs_both_stages_end_to_end_and_exports(tmp_path: Path) -> None:
    """`eagan run specs/autogan_digits.eagan --quick`: EAGAN's stage 1 (G in AutoGAN's space),
    stage 2 (D) and the fully-train stage, shrunk for a smoke test; the final G is exported
    standalone and its genome is one of AutoGAN's space."""
    import json

    from rich.console import Console

    from runtime.display import Reporter
    from runtime.runner import run

    torch.set_num_threads(1)
    spec = ROOT / "specs" / "autogan_digits.eagan"
    reporter = Reporter(Console(file=io.StringIO(), width=120), live=False)
    out = run(spec, tmp_path / "run", device="cpu", quick=True, reporter=reporter)
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    space = _space(load(spec))
    g_genomes = {h["genome"] for h in history if h.get("stage") == "search_g" and "genome" in h}
    assert g_genomes, "stage 1 evaluated no generator"
    for text in g_genomes:
        assert space.is_valid(space.decode(text))
    assert any(h.get("stage") == "search_d" for h in history)
    source = out / "final" / "generator.py"
    assert source.is_file() and (out / "final" / "generator.pt").is_file()
    module_spec = importlib.util.spec_from_file_location("autogan_digits_final", source)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module
    module_spec.loader.exec_module(module)
    model = module.Generator()
    model.load_state_dict(torch.load(out / "final" / "generator.pt", weights_only=True))
    with torch.no_grad():
        images = model.eval()(torch.randn(2, module.LATENT_DIM))
    assert images.shape == (2, 1, 16, 16) and torch.isfinite(images).all()


def test_deconv_resize_needs_one_ratio_at_the_link() -> None:
    """A deconv resize on a discriminator's link (its nodes shrink, or keep the size: the genome
    decides) has no ratio to write out: an error at the link's op."""
    old = "    cells DownCell x 3 (channels: 32)\n"
    assert old in DIGITS
    text = DIGITS.replace(old, old + "    link 2.1 -> 3.1 : dlink\n", 1).replace(
        "  discriminator D {",
        "  op dlink = resize(mode: deconv), conv(k: 1)\n  discriminator D {",
        1,
    )
    with pytest.raises(SpecError) as info:
        check_text(text, "autogan_digits.eagan")
    line = text.splitlines().index("    link 2.1 -> 3.1 : dlink") + 1
    (diag,) = info.value.diagnostics
    assert (diag.line, diag.column) == (line, 23)
    assert (
        diag.header()
        .split(": error: ", 1)[1]
        .startswith(
            "resize(mode: deconv) on link 2.1 -> 3.1 needs one up-sampling ratio in every "
            "architecture; here log2 of it is -1 or 0"
        )
    )
