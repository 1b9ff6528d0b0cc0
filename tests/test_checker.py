"""The checker: every shipped spec is valid; every error class is reported at its exact place."""

from __future__ import annotations

from pathlib import Path

import pytest

from eagan_dsl.checker import check_text, load
from eagan_dsl.diagnostics import SpecError
from eagan_dsl.genome import GenomeSpace

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.eagan"))
TINY = (ROOT / "tests" / "data" / "tiny.eagan").read_text()


@pytest.mark.parametrize("path", SPECS + [ROOT / "tests/data/tiny.eagan"], ids=lambda p: p.name)
def test_shipped_specs_are_valid(path: Path) -> None:
    program = load(path)
    assert program.stages, "every shipped spec has stages"
    assert {n.role for n in program.networks.values()} == {"generator", "discriminator"}


def test_search_space_sizes_match_the_released_code() -> None:
    # official-eagan.md §1.1/§1.2, from the released samplers' constraints: per G cell
    # 3·3 (up) × 48 (genes 2-3 not both none) × 342 (genes 4-6 not all none) = 147,744;
    # per D cell 6 (gene 0 ≠ none) × 48 × 48 × 37 (6·6 down pairs + "no down") = 511,488.
    program = load(ROOT / "specs/cifar10.eagan")
    assert GenomeSpace(program.networks["G"]).size() == (3 * 3 * 48 * 342) ** 3
    assert GenomeSpace(program.networks["D"]).size() == (6 * 48 * 48 * 37) ** 3


def test_fixed_genomes_decode_to_the_released_arrays() -> None:
    # official-eagan.md §1.3: best_G.npy, in the released code's op order
    program = load(ROOT / "specs/cifar10.eagan")
    g = program.fixed["GStar"].genome
    assert g == (1, 1, 1, 0, 2, 3, 1) + (1, 1, 0, 1, 3, 0, 5) + (0, 1, 0, 3, 0, 0, 3)
    # cifar10_D.npy [3,0,3,0,2,0,0]/[1,0,3,0,1,-1,-1]/[3,0,3,0,1,-1,-1]; -1 ("no down") is `skip`,
    # the last candidate of d_down here
    d = program.fixed["DStarC10"].genome
    assert d == (3, 0, 3, 0, 2, 0, 0) + (1, 0, 3, 0, 1, 6, 6) + (3, 0, 3, 0, 1, 6, 6)


def test_stage_settings_resolve_defaults_and_overrides() -> None:
    program = load(ROOT / "specs/cifar10.eagan")
    stages = {s.name: s.settings for s in program.stages}
    assert stages["search_g"]["pairing"] == "many_to_one"
    assert stages["search_d"]["n_critic"] == 5  # the stage's own
    assert stages["search_g"]["n_critic"] == 1  # from the train block
    assert stages["search_g"]["batch"] == {"g": 80, "d": 40}
    assert stages["fully_train"]["ema"] == 0.999
    assert stages["search_d"]["weight_reset"] is True
    assert program.blocks["evaluate"]["extractor"] == "inception"
    assert load(ROOT / "specs/digits.eagan").blocks["evaluate"]["extractor"] == "lenet"


# (name, text replaced in tests/data/tiny.eagan, replacement, expected "LINE:COL: message" list)
CASES = [
    ("syntax", "edge 0 -> 1 : up", "edge 0 -> 1 up", ["26:17: unexpected 'up'; expected ':'"]),
    (
        "unknown_op",
        "[nearest, bilinear, deconv]",
        "[nearest, bilinaer, deconv]",
        ["19:29: unknown op 'bilinaer' in choice 'up' (did you mean 'bilinear'?)"],
    ),
    (
        "unknown_choice",
        "edge 1 -> 3 : normal",
        "edge 1 -> 3 : normall",
        ["28:19: unknown op or choice 'normall' (did you mean 'normal'?)"],
    ),
    (
        "unknown_cell",
        "cells UpCell x 2",
        "cells UpCel x 2",
        ["57:11: unknown cell 'UpCel' (did you mean 'UpCell'?)"],
    ),
    (
        "unknown_network",
        "against: FixedD",
        "against: FixD",
        ["76:50: unknown network 'FixD' (did you mean 'FixedD'?)"],
    ),
    (
        "unknown_stage",
        "with: best(search_g)",
        "with: best(search_q)",
        ["77:47: unknown stage 'search_q' (did you mean 'search_g'?)"],
    ),
    (
        "duplicate",
        "op dil3x3   = relu, conv(k: 3, dilation: 2)",
        "op conv3x3  = relu, conv(k: 3, dilation: 2)",
        [
            "11:6: op or choice 'conv3x3' is already defined at 10:6",
            "20:50: unknown op 'dil3x3' in choice 'normal'",
        ],
    ),
    (
        "backwards",
        "edge 3 -> 4 : normal",
        "edge 4 -> 3 : normal",
        [
            "32:5: edge 4 -> 3 points backwards: cells are DAGs, edges go from a lower to a higher node"
        ],
    ),
    (
        "missing_node",
        "edge 3 -> 4 : normal",
        "edge 3 -> 5 : normal",
        ["32:5: node 5 does not exist: cell UpCell has nodes 0..4 (output 4)"],
    ),
    (
        "no_input",
        "    edge 1 -> 3 : normal\n    edge 2 -> 3 : normal\n",
        "",
        ["25:8: node 3 of cell UpCell has no input edge"],
    ),
    (
        "no_path",
        "    edge 3 -> 4 : normal\n",
        "",
        ["25:8: node 3 of cell UpCell has no path to the output node 4"],
    ),
    (
        "up_on_normal_edge",
        "edge 1 -> 3 : normal",
        "edge 1 -> 3 : up",
        [
            (
                "28:5: edge 1 -> 3 is an up edge (choice 'up'), but node 3's other input (2 -> 3) "
                "arrives at another resolution"
            )
        ],
    ),
    (
        "down_in_generator",
        "edge 1 -> 3 : normal",
        "edge 1 -> 3 : d_down",
        [
            "57:11: cell UpCell edge 1 -> 3: 'avgpool' down-samples, in generator G: generators only up-sample"
        ],
    ),
    (
        "resolution",
        "project(size: 4, split: 2)",
        "project(size: 8, split: 2)",
        [
            (
                "56:11: generator G makes 8×2^2 = 32 pixels, but data digits has resolution 16 "
                "(set project(size: 4) or change the cells)"
            )
        ],
    ),
    (
        "probability",
        "epochs: 1 }\n  train",
        "epochs: 1, mutation: 1.5 }\n  train",
        ["71:62: probability mutation (evolution block) must be in [0, 1], not 1.5"],
    ),
    (
        "population_odd",
        "population: 4",
        "population: 5",
        ["71:27: population must be an even number ≥ 4 (P/2 parents are kept), not 5"],
    ),
    (
        "population_small",
        "population: 4",
        "population: 2",
        ["71:27: population (evolution block) must be at least 4, not 2"],
    ),
    (
        "genome_length",
        'genome "d_conv3x3,none,d_conv3x3,none,s_conv1x1,avgpool,avgpool|',
        'genome "d_conv3x3,none,d_conv3x3,none,s_conv1x1,avgpool|',
        [
            "68:40: genome of FixedD: cell group 1 of the genome has 6 op(s), network 'D' has 7 searchable edge(s) there"
        ],
    ),
    (
        "genome_op",
        'genome "d_conv3x3,none,d_conv3x3,none,s_conv1x1,avgpool,avgpool|',
        'genome "d_conv3x3,none,d_conv5x5,none,s_conv1x1,avgpool,avgpool|',
        [
            (
                "68:40: genome of FixedD: 'd_conv5x5' is not a candidate of edge 1 -> 2 in cell 2 "
                "(choice 'd_normal': none, skip, d_conv3x3)"
            )
        ],
    ),
    (
        "genome_invalid",
        'genome "d_conv3x3,none,d_conv3x3,none,s_conv1x1,avgpool,avgpool|',
        'genome "none,none,d_conv3x3,none,s_conv1x1,avgpool,avgpool|',
        [
            "68:40: genome of FixedD is not a valid architecture: cell 2: node 1 of cell DownCell has no active input"
        ],
    ),
    ("stage_network", "network: D,", "network: E,", ["77:38: unknown network 'E'"]),
    (
        "stage_later",
        "with: best(search_g)",
        "with: best(fully_train)",
        [
            "77:47: stage fully_train runs after stage search_d; best() can only name an earlier stage"
        ],
    ),
    (
        "missing_data",
        "  data digits(resolution: 16)\n",
        "",
        ["2:8: search tiny has no `data` line (add one, e.g. data digits(resolution: 16))"],
    ),
    (
        "unknown_setting",
        "betas: (0.0, 0.9)",
        "beta: (0.0, 0.9)",
        ["72:21: unknown setting 'beta' in train block (did you mean 'betas'?)"],
    ),
    (
        "unknown_argument",
        "conv(k: 3, dilation: 2)",
        "conv(kernel: 3, dilation: 2)",
        [
            "11:28: unknown argument 'kernel' of conv; conv takes k, stride, dilation, padding, depthwise, bias, sn, out"
        ],
    ),
    # issue 20 item 8: messages that were wrong
    ("lr_range", "lr: 2e-4", "lr: -1", ["72:15: lr (train block) must be ≥ 0, not -1"]),
    (
        "lr_pair",
        "lr: 2e-4",
        "lr: (g: 2e-4)",
        ["72:15: lr (train block) needs both g and d, e.g. (g: 1e-4, d: 4e-4)"],
    ),
    (
        "output_past_the_edges",
        "    edge 3 -> 4 : normal\n    output 4",
        "    edge 3 -> 4 : normal\n    output 5",
        ["33:5: no edge of cell UpCell ends at its output node 5 (did you mean output 4?)"],
    ),
    (
        "unterminated_string",
        'genome "d_conv3x3',
        'genome "d_conv3x3,none\n',
        ["68:40: unterminated string: close it with '\"' on the same line"],
    ),
    (
        "ema_not_a_number",
        "epochs: 1 }\n}",
        "epochs: 1, ema: on }\n}",
        ["78:85: ema (stage fully_train) must be a decay in [0, 1], e.g. 0.999, or off"],
    ),
    (
        "unclosed_cell",
        "    output 4\n  }\n\n  cell DownCell",
        "    output 4\n\n  cell DownCell",
        ["35:3: unexpected 'cell'; expected 'edge', 'output' or '}'"],
    ),
]


@pytest.mark.parametrize("name,old,new,expected", CASES, ids=[c[0] for c in CASES])
def test_error_is_reported_at_its_place(name: str, old: str, new: str, expected: list[str]) -> None:
    assert old in TINY, f"case {name} no longer applies to tiny.eagan"
    with pytest.raises(SpecError) as info:
        check_text(TINY.replace(old, new, 1), "tiny.eagan")
    got = [
        f"{d.line}:{d.column}: {d.header().split(': error: ', 1)[1]}"
        for d in info.value.diagnostics
    ]
    assert got == expected
    rendered = info.value.render()
    assert rendered.startswith(f"tiny.eagan:{expected[0].split(': ')[0]}: error: ")
    assert "^" in rendered  # the caret under the span


def test_all_errors_are_collected_in_one_pass() -> None:
    text = (
        TINY.replace("population: 4", "population: 5")
        .replace("beta", "bta")
        .replace("against: FixedD", "against: FixD")
    )
    with pytest.raises(SpecError) as info:
        check_text(text, "tiny.eagan")
    assert len(info.value.diagnostics) == 3


def test_unclosed_brace_at_end_of_file_names_the_block() -> None:
    with pytest.raises(SpecError) as info:
        check_text(TINY.rstrip()[:-1], "tiny.eagan")
    message = info.value.diagnostics[0].message
    assert message == "expected '}' to close search tiny opened at 2:13"
