"""The settings schema: every key a block or stage accepts, its type, default and source.

One table drives the checker (types, ranges, unknown keys), `eagan show` (every resolved value,
defaults included) and the language reference. Defaults are the paper's values (§5.1) unless the
paper is silent, then the released code's (shared/research/official-eagan.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ValueType = Literal[
    "int",  # integer ≥ minimum
    "float",  # real number within [minimum, maximum]
    "prob",  # real number in [0, 1]
    "bool",  # on | off | true | false
    "enum",  # one of `choices`
    "pair",  # a number, or a record (g: x, d: y) — one value per network
    "int_pair",  # an integer, or a record (g: n, d: m)
    "betas",  # a tuple of two numbers in [0, 1)
    "optional_float",  # off, or a number within [minimum, maximum]
    "string",  # a string, or off
    "network",  # the name of a network (searchable or fixed)
    "networks",  # a network name or a tuple of names (coupled search)
    "source",  # a network name or best(stage)
]


@dataclass(frozen=True)
class Key:
    name: str
    type: ValueType
    default: Any
    doc: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False
    example: str = ""  # a valid value, shown in messages: "e.g. (g: 1e-4, d: 4e-4)"
    noun: str = "a number"  # what an optional_float is: "ema must be a decay in [0, 1] … or off"


def _k(name: str, type_: ValueType, default: Any, doc: str, **kw: Any) -> Key:
    return Key(name, type_, default, doc, **kw)


EVOLUTION = (
    _k("population", "int", 32, "P, individuals per population; even, ≥ 4 (paper §5.1)", minimum=4),
    _k("rounds", "int", 18, "search rounds R (paper §5.1)", minimum=1),
    _k("epochs", "int", 10, "training epochs E per round (paper §5.1)", minimum=1),
    _k("crossover", "prob", 0.3, "probability of crossover when making offspring (paper §4.3)"),
    _k("mutation", "prob", 0.5, "probability of mutation when making offspring (paper §4.3)"),
    _k(
        "selection",
        "enum",
        "nsga2",
        "nsga2: non-dominated sorting + crowding (paper §4.3); cars: the released code's pNSGA-III",
        choices=("nsga2", "cars"),
    ),
    _k(
        "pick",
        "enum",
        "lowest_fid",
        "the individual a stage hands on: lowest FID / highest IS / fewest params on the first front",
        choices=("lowest_fid", "highest_is", "smallest"),
    ),
    _k(
        "strategy",
        "enum",
        "evolution",
        "evolution (paper) or random: the random-search baseline with the same budget (every "
        "round P new random architectures, no parents)",
        choices=("evolution", "random"),
    ),
)

TRAIN = (
    _k("loss", "enum", "hinge", "GAN loss (paper §5.1: hinge)", choices=("hinge",)),
    _k("optimizer", "enum", "adam", "optimizer (paper §5.1: Adam)", choices=("adam",)),
    _k(
        "lr",
        "pair",
        {"g": 2e-4, "d": 2e-4},
        "learning rate, or (g: x, d: y) (paper §5.1)",
        minimum=0,
        example="(g: 1e-4, d: 4e-4)",
    ),
    _k("betas", "betas", (0.0, 0.9), "Adam betas (released code; paper silent)"),
    _k(
        "batch",
        "int_pair",
        {"g": 80, "d": 40},
        "batch size, or (g: n, d: m) (released code)",
        minimum=1,
        example="(g: 80, d: 40)",
    ),
    _k("n_critic", "int", 1, "D steps per G step (released code)", minimum=1),
    _k(
        "ema",
        "optional_float",
        None,
        "EMA decay of G's weights, or off",
        minimum=0,
        maximum=1,
        example="0.999",
        noun="a decay",
    ),
    _k(
        "grad_clip",
        "optional_float",
        None,
        "gradient-norm clip for G and D, or off",
        minimum=0,
        example="10",
        noun="a norm",
    ),
)


def distance_name(extractor: str) -> str:
    """The Fréchet distance's name: "FID" only with Inception features (what papers report);
    "FD" with the digits LeNet (`lenet`, `lenet-digits16`), not comparable with any FID.
    metrics.json keeps the key `fid` for both and says which in "distance"."""
    return "FD" if extractor.startswith("lenet") else "FID"


EVALUATE = (
    _k("images", "int", 5000, "images per IS/FID evaluation during search (paper §5.1)", minimum=1),
    _k("final_images", "int", 50000, "images for the final IS/FID (paper §5.1)", minimum=1),
    _k(
        "extractor",
        "enum",
        "auto",
        "inception (TF 2015-12-05 Inception-v3), lenet (digits, 16×16 only), or auto: lenet for 16×16 digits",
        choices=("auto", "inception", "lenet"),
    ),
    _k("splits", "int", 10, "IS splits (the original IS code: 10)", minimum=1),
    _k(
        "stats",
        "string",
        None,
        "real-data statistics (.npz with mu, sigma), or off to compute them",
    ),
    _k("eval_batch", "int", 100, "evaluation batch size (the original code: 100)", minimum=1),
    _k(
        "recalibrate_bn",
        "int",
        10,
        "batches (of eval_batch) to re-estimate a weight-shared candidate's BatchNorm statistics "
        "before it is scored; 0 scores with the supernet's running statistics, as the released code",
        minimum=0,
    ),
    _k(
        "quantize",
        "enum",
        "truncate",
        "generated images → uint8: truncate x·127.5+127.5 (TF-era code) or round",
        choices=("truncate", "round"),
    ),
)

RUN = (
    _k(
        "seed",
        "int",
        0,
        "seed of every random generator (fits in 64 bits)",
        minimum=0,
        maximum=2**63 - 1,
    ),
    _k(
        "checkpoint_every",
        "int",
        5,
        "checkpoint every N epochs of warm-up and fully-train",
        minimum=1,
    ),
    _k("device", "enum", "auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda")),
    _k(
        "sync_bn",
        "bool",
        False,
        "on many processes, data-parallel steps normalise by the global batch's BatchNorm "
        "statistics (SyncBatchNorm) instead of each rank's slice; off: per slice, averaged after",
    ),
    _k(
        "log_every",
        "int",
        10,
        "write the D and G losses to metrics.csv (and TensorBoard) every N training iterations",
        minimum=1,
    ),
)

SEARCH_STAGE = (
    _k(
        "network",
        "networks",
        None,
        "the network searched (a tuple of two for coupled search)",
        required=True,
    ),
    _k("against", "network", None, "a fixed opponent network (paper §4.1: stage 1's fixed D)"),
    _k("with", "source", None, "the opponent: best(stage) or a network (paper §4.2: copies of G*)"),
    _k(
        "pairing",
        "enum",
        None,
        "many_to_one (paper §4.1), one_to_one (§4.2) or coupled (§5.3 ablation); default by role",
        choices=("many_to_one", "one_to_one", "coupled"),
    ),
    _k(
        "weight_reset",
        "bool",
        True,
        "copy the best G into all P generators after each round (§4.2)",
    ),
    _k("warmup", "int", 50, "warm-up epochs before the first round (paper §5.1)", minimum=0),
    _k(
        "warmup_sampling",
        "enum",
        "uniform",
        "uniform: one random valid path per warm-up step (the released code); fair: FairNAS's "
        "strict fairness, every step trains a set of valid paths that together use every "
        "candidate op of every edge, each on its share of the batch, in one update",
        choices=("uniform", "fair"),
    ),
    _k(
        "round_sampling",
        "enum",
        "uniform",
        "uniform: each round iteration trains a uniformly drawn candidate (Alg. 1 l.8); fair: "
        "candidates in shuffled turns, so every candidate trains the same number of iterations",
        choices=("uniform", "fair"),
    ),
    _k(
        "score",
        "enum",
        "ema",
        "what scores a weight-shared candidate: ema (the EMA of the supernet, restarted at the end "
        "of warm-up) or raw (the supernet's weights); BatchNorm re-estimated in both "
        "(recalibrate_bn)",
        choices=("ema", "raw"),
    ),
    _k(
        "merge",
        "enum",
        "sum",
        "one-to-one rounds: the supernet takes the sum of the pairs' weight changes (Alg. 1's "
        "rate: one shared supernet updated by every pair) or their mean",
        choices=("sum", "mean"),
    ),
)

TRAIN_STAGE = (
    _k("g", "source", None, "the generator: a network or best(stage)", required=True),
    _k("d", "source", None, "the discriminator: a network or best(stage)", required=True),
    _k("epochs", "int", 600, "fully-train epochs (paper §5.1)", minimum=1),
    _k(
        "eval_every",
        "int",
        0,
        "IS/FID (with `images` images) every N epochs and at the last, keeping the best-FID G "
        "and D in final/best/ (the released code validates periodically); 0: only at the end",
        minimum=0,
    ),
)

BLOCKS: dict[str, tuple[Key, ...]] = {
    "evolution": EVOLUTION,
    "train": TRAIN,
    "evaluate": EVALUATE,
    "run": RUN,
}

# A stage accepts its own keys and overrides of these blocks' keys.
STAGES: dict[str, tuple[tuple[Key, ...], tuple[str, ...]]] = {
    "search": (SEARCH_STAGE, ("evolution", "train", "evaluate")),
    "train": (TRAIN_STAGE, ("train", "evaluate")),
}

OBJECTIVES = {"fid": "min", "is": "max", "params": "min"}
DIRECTIONS = ("min", "max")

DATASETS: dict[str, dict[str, Any]] = {
    # name: default resolution and channels; root default "data/<name>" (relative to the spec)
    "cifar10": {"resolution": 32, "channels": 3, "needs_root": True},
    "stl10": {"resolution": 48, "channels": 3, "needs_root": True},  # paper §5.1: 96 → 48
    "digits": {"resolution": 16, "channels": 1, "needs_root": False},  # research cpu-benchmark §3
    "imagefolder": {"resolution": None, "channels": 3, "needs_root": True},
}
DATA_ARGS = ("root", "resolution", "channels")
LATENT_DISTRIBUTIONS = ("normal", "uniform")
