"""IS and FID for eagan (design: research/metrics.md §5).

One forward pass of a feature extractor gives FID features and IS logits; statistics stream in
float64; the Fréchet distance uses the symmetric eigenvalue form with a cached √Σ_real.
"""

from __future__ import annotations


class MetricsError(Exception):
    """A user-facing metrics failure (missing weights, bad generator, unreadable statistics).

    The CLI prints the message and exits with status 2.
    """


from runtime.metrics.evaluate import EvalResult, evaluate_generator, run_eval
from runtime.metrics.extractor import FeatureExtractor, to_uint8
from runtime.metrics.frechet import ReferenceStats, frechet_distance
from runtime.metrics.inception import InceptionV3FID, inception_v3_fid
from runtime.metrics.lenet import LeNetDigits, lenet_digits, train_lenet
from runtime.metrics.stats import (
    FeatureStats,
    InceptionScore,
    load_npz_stats,
    reference_stats,
    save_npz_stats,
)

__all__ = [
    "EvalResult",
    "FeatureExtractor",
    "FeatureStats",
    "InceptionScore",
    "InceptionV3FID",
    "LeNetDigits",
    "MetricsError",
    "ReferenceStats",
    "evaluate_generator",
    "frechet_distance",
    "inception_v3_fid",
    "lenet_digits",
    "load_npz_stats",
    "reference_stats",
    "run_eval",
    "save_npz_stats",
    "to_uint8",
    "train_lenet",
]
