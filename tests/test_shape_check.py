"""Issue 15, items 6, 7, 9: the checker follows sizes and channels, so that a spec `eagan check`
accepts builds and runs; whatever cannot is a located error. Each case fails without its fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from buildcheck import build_and_step

from eagan_dsl.checker import check_text
from eagan_dsl.diagnostics import SpecError

ROOT = Path(__file__).resolve().parent.parent
TINY = (ROOT / "tests" / "data" / "tiny.eagan").read_text()
G_HEAD = "head  bn, relu, conv(k: 3, out: image), tanh"
D_HEAD = "head  relu, sum_pool, linear"


def _edit(edits: list[tuple[str, str]]) -> str:
    text = TINY
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def _errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        check_text(text, "tiny.eagan")
    return [
        f"{d.line}:{d.column}: {d.header().split(': error: ', 1)[1]}"
        for d in info.value.diagnostics
    ]


# (name, edits of tiny.eagan, expected "LINE:COL: message" list)
CASES = [
    (
        "even_kernel",
        [("op conv3x3  = relu, conv(k: 3)", "op conv3x3  = relu, conv(k: 2)")],
        [
            (
                "10:23: conv(k: 2) makes 31×31 from 32×32, but a normal op keeps the size (32×32) "
                "(an even kernel cannot keep the size with symmetric padding: use an odd k)"
            )
        ],
    ),
    (
        "padding",
        [("conv(k: 3, dilation: 2)", "conv(k: 3, dilation: 2, padding: 1)")],
        [
            (
                "11:23: conv(dilation: 2, padding: 1) makes 30×30 from 32×32, but a normal op keeps "
                "the size (32×32) (leave padding out (it defaults to dilation·(k−1)/2 = 2, which "
                "keeps the size))"
            )
        ],
    ),
    (
        "stride_3",
        [("conv(k: 3, stride: 2, sn: true)", "conv(k: 3, stride: 3, sn: true)")],
        [
            (
                "15:27: conv(stride: 3, sn: true) makes 11×11 from 32×32, but a down op halves the "
                "size (16×16) (the language knows ×½ only: use stride: 2)"
            )
        ],
    ),
    (
        "avgpool_3",
        [("avgpool(k: 2), conv(k: 1, sn: true)", "avgpool(k: 3), conv(k: 1, sn: true)")],
        [
            (
                "17:23: avgpool(k: 3) makes 10×10 from 32×32, but a down op halves the size (16×16) "
                "(avgpool(k: 2) halves the size (window = stride = k))"
            )
        ],
    ),
    (
        "odd_size_stride_2",
        [
            ("data digits(resolution: 16)", 'data imagefolder(root: "x", resolution: 20)'),
            ("project(size: 4, split: 2)", "project(size: 5, split: 2)"),
            ("extractor: lenet", "extractor: inception"),
        ],
        [
            (
                "64:11: conv(stride: 2, sn: true) makes 3×3 from 5×5, but a down op halves the size "
                "(2×2) (op 'd_conv3x3_s2' on edge 2 -> 4 of cell 3 (DownCell) of discriminator D) "
                "(a stride-2 conv rounds an odd size up, pooling rounds it down: keep the sizes even "
                "(change the resolution or the number of down-sampling cells))"
            )
        ],
    ),
    (
        "normal_link_across_resolutions",
        [("link  1.3 -> 2.3 : xskip", "link  1.3 -> 2.3 : conv1x1")],
        [
            (
                "58:5: link 1.3 -> 2.3: op 'conv1x1' keeps the size, but the two nodes differ in "
                "resolution (resize on the way, e.g. op xskip = resize(mode: nearest), conv(k: 1))"
            )
        ],
    ),
    (
        "link_from_input_node",
        [("link  1.3 -> 2.3 : xskip", "link  2.0 -> 2.3 : xskip")],
        ["58:5: a link goes from an earlier cell to a later one"],
    ),
    (
        "link_from_input_node_of_a_cell",
        [
            ("cells UpCell x 2 (channels: 8)", "cells UpCell x 2 (channels: 8)"),
            ("link  1.3 -> 2.3 : xskip", "link  1.0 -> 2.3 : xskip"),
        ],
        [
            (
                "58:5: a link reads a node inside a cell, not its input node 0 (cell 1) "
                "(link from a node inside the cell)"
            )
        ],
    ),
    (
        "resize_link_that_pools",
        [
            (
                "op xskip    = resize(mode: bilinear), conv(k: 1)",
                "op xskip    = resize(mode: bilinear), avgpool",
            )
        ],
        [
            "58:24: link op 'xskip' must keep or resize the resolution (use resize(mode: ...))",
        ],
    ),
    (
        "generator_head_upsamples",
        [(G_HEAD, "head  bn, relu, upsample, conv(k: 3, out: image), tanh")],
        [
            (
                "59:21: `upsample` in generator G's head: a generator's head keeps the feature map "
                "the cells made, at the data's resolution (up-sample in the cells)"
            )
        ],
    ),
    (
        "generator_head_pools",
        [(G_HEAD, G_HEAD + ", mean_pool")],
        [
            (
                "59:51: `mean_pool` in generator G's head: a generator's head keeps the feature map "
                "the cells made, at the data's resolution (up-sample in the cells)"
            )
        ],
    ),
    (
        "bn_after_pooling",
        [(D_HEAD, "head  relu, sum_pool, bn, linear")],
        ["65:27: `bn` needs a feature map, but the head already pooled it"],
    ),
    (
        "conv_after_pooling",
        [(D_HEAD, "head  relu, sum_pool, conv(k: 1), linear")],
        ["65:27: `conv` needs a feature map, but the head already pooled it"],
    ),
    (
        "generator_stem_upsamples",
        [("stem  project(size: 4, split: 2)", "stem  project(size: 4, split: 2), upsample")],
        [
            (
                "56:39: `upsample` changes the size in generator G's stem: project's chunks are "
                "added to the cells' inputs at size·2^i (up-sample in the cells)"
            )
        ],
    ),
    (
        "split_chunk_at_the_wrong_size",
        [
            (
                "cells UpCell x 2 (channels: 8)",
                "cells Plain x 1 (channels: 8)\n    cells UpCell x 2 (channels: 8)",
            ),
            (
                "cell DownCell {",
                "cell Plain {\n    edge 0 -> 1 : conv3x3\n    output 1\n  }\n  cell DownCell {",
            ),
            ("link  1.3 -> 2.3 : xskip", ""),
        ],
        [
            (
                "60:11: project(split: 2) adds chunk 2 at 8×8 to cell 2's input, which is 4×4 "
                "(each of the first 1 cell(s) must double the size)"
            )
        ],
    ),
    # item 7: a network without searchable edges is held to the one-pixel floor too
    (
        "fixed_network_below_one_pixel",
        [("cells DownCell x 2 (channels: 8)", "cells DStem x 4 (channels: 8)")],
        [
            (
                "64:11: discriminator D shrinks the feature map below one pixel in cell 5 (DStem), "
                "which receives 1×1 (use fewer down-sampling cells or a higher resolution)"
            )
        ],
    ),
    # item 9: what made `eagan show` crash
    (
        "skip_as_first_edge_of_a_d_cell",
        [("edge 0 -> 1 : d_in_conv3x3", "edge 0 -> 1 : skip")],
        [
            (
                "63:11: cell 1 (DStem) of discriminator D, edge 0 -> 1: op 'skip': the op ends with "
                "1 channels, but the edge needs 8 (it maps 1 → 8); add a conv, e.g. conv(k: 1)"
            )
        ],
    ),
    (
        "depthwise_first_conv_of_a_d_cell",
        [
            (
                "op d_in_conv3x3 = conv(k: 3, sn: true)",
                "op d_in_conv3x3 = conv(k: 3, depthwise: true)",
            )
        ],
        [
            (
                "63:11: cell 1 (DStem) of discriminator D, edge 0 -> 1: op 'd_in_conv3x3': depthwise "
                "conv keeps the channel count, but it is placed between 1 and 8 channels; drop "
                "`depthwise` or put it on an edge whose widths agree"
            )
        ],
    ),
    (
        "node_fed_only_by_none",
        [("edge 1 -> 2 : d_conv3x3", "edge 1 -> 2 : none")],
        [
            (
                "47:8: no assignment of cell DStem's edges is a valid architecture: node 2 of cell "
                "DStem has no active input (every node needs an input edge whose op (or some "
                "candidate) is not `none`)"
            )
        ],
    ),
    (
        "choice_of_only_none",
        [("choice d_normal   = [none, skip, d_conv3x3]", "choice d_normal   = [none]")],
        [
            (
                "36:8: no assignment of cell DownCell's edges is a valid architecture: node 1 of "
                "cell DownCell has no active input (every node needs an input edge whose op (or some "
                "candidate) is not `none`)"
            )
        ],
    ),
]


@pytest.mark.parametrize("name,edits,expected", CASES, ids=[c[0] for c in CASES])
def test_shape_errors_are_located(
    name: str, edits: list[tuple[str, str]], expected: list[str]
) -> None:
    assert _errors(_edit(edits)) == expected


@pytest.mark.parametrize(
    "name,edits",
    [
        # `none` fits any two widths: as the first edge of a D cell it builds and runs
        (
            "none_as_first_edge_of_a_d_cell",
            [
                (
                    "edge 0 -> 1 : d_in_conv3x3\n    edge 1 -> 2",
                    "edge 0 -> 1 : d_in_conv3x3\n    edge 0 -> 2 : none\n    edge 1 -> 2",
                )
            ],
        ),
        ("even_kernel_with_its_padding", [("conv(k: 3, dilation: 2)", "conv(k: 5, padding: 2)")]),
        (
            "transposed_k4",
            [
                (
                    "conv_transpose(k: 3, stride: 2,",
                    "conv_transpose(k: 4, padding: 1, output_padding: 0, stride: 2,",
                )
            ],
        ),
    ],
)
def test_accepted_edits_build_and_run(name: str, edits: list[tuple[str, str]]) -> None:
    build_and_step(check_text(_edit(edits), "tiny.eagan"))


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "specs").glob("*.eagan")) + [ROOT / "tests/data/tiny.eagan"],
    ids=lambda p: p.name,
)
def test_shipped_specs_build_and_run(path: Path) -> None:
    from eagan_dsl.checker import load

    build_and_step(load(path), genomes=1)


# item 7: data and evaluation settings checked against what the loaders and extractors take
DATA_CASES = [
    (
        "digits_with_three_channels",
        [("data digits(resolution: 16)", "data digits(resolution: 16, channels: 3)")],
        ["3:41: data digits has 1 channel(s), not 3 (leave channels out)"],
    ),
    (
        "imagefolder_with_two_channels",
        [
            (
                "data digits(resolution: 16)",
                'data imagefolder(root: "x", resolution: 16, channels: 2)',
            )
        ],
        ["3:57: data imagefolder has 1 or 3 channel(s), not 2"],
    ),
    (
        "lenet_at_another_resolution",
        [
            ("data digits(resolution: 16)", "data digits(resolution: 32)"),
            ("project(size: 4, split: 2)", "project(size: 8, split: 2)"),
        ],
        [
            (
                "73:56: the lenet extractor takes 16×16 images; data digits has 32×32 ones (use "
                "resolution: 16, or extractor: inception)"
            )
        ],
    ),
    (
        "fewer_images_than_splits",
        [
            (
                "images: 96, final_images: 128, extractor: lenet, splits: 1",
                "images: 96, final_images: 128, extractor: lenet, splits: 100",
            )
        ],
        ["73:22: images (96) must be at least splits (100): one image per IS split"],
    ),
    (
        "one_image",
        [("images: 96,", "images: 1,")],
        ["73:22: images must be at least 2 (FID needs a covariance), not 1"],
    ),
    (
        "a_stage_overrides_images_below_splits",
        [
            (
                "network: G, against: FixedD, warmup: 1",
                "network: G, against: FixedD, warmup: 1, splits: 200",
            )
        ],
        [
            "76:9: images (96) must be at least splits (200): one image per IS split",
            "76:9: final_images (128) must be at least splits (200): one image per IS split",
        ],
    ),
]


@pytest.mark.parametrize("name,edits,expected", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_data_and_evaluation_errors_are_located(
    name: str, edits: list[tuple[str, str]], expected: list[str]
) -> None:
    assert _errors(_edit(edits)) == expected


def test_the_reference_example_builds_and_runs() -> None:
    # its discriminator fed the 1-channel image to `skip` and `avgpool` edges of width 8: it
    # checked, then failed to build; the checker now places channels as the compiler does
    doc = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    block = doc.split("```eagan\n", 1)[1].split("```", 1)[0]
    build_and_step(check_text(block, "docs/language.md"))
