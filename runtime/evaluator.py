"""IS, FID and size of candidates: the objectives of selection (paper §4.3, §5.1).

Wraps `runtime.metrics` with the spec's evaluation settings: the extractor (LeNet for digits,
Inception otherwise), the real-data reference statistics (a `stats:` file, or computed once and
cached), the number of images and the IS splits. Every candidate of a round is scored on the same
latent vectors (one seed per round), so the comparison is fair.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from eagan_dsl.ir import Program
from runtime.metrics import FeatureExtractor, ReferenceStats, evaluate_generator, reference_stats


class Evaluator:
    def __init__(
        self,
        program: Program,
        settings: Mapping[str, Any],
        device: torch.device,
        inception_weights: str | None = None,
    ) -> None:
        self.program = program
        self.device = device
        self.splits = int(settings["splits"])
        self.batch = int(settings["eval_batch"])
        self.settings = settings
        self.extractor = self._extractor(
            str(settings["extractor"]), str(settings["quantize"]), inception_weights
        )
        self.reference = self._reference(settings.get("stats"))

    def _extractor(self, name: str, quantize: str, weights: str | None) -> FeatureExtractor:
        if name == "lenet":
            from runtime.metrics import lenet_digits

            return lenet_digits(device=self.device)
        from runtime.metrics import inception_v3_fid

        return inception_v3_fid(weights, quantize=quantize, device=self.device)  # type: ignore[arg-type]

    def _reference(self, stats: str | None) -> ReferenceStats:
        if stats:
            path = Path(stats)
            if not path.is_absolute():
                path = Path(self.program.file).parent / path  # relative to the spec file
            return reference_stats(str(path), self.extractor)
        data = self.program.data
        return reference_stats(
            data.name,
            self.extractor,
            resolution=data.resolution,
            device=self.device,
            root=data.root,
        )

    def protocol(self, n: int, seed: int) -> dict[str, Any]:
        """What `eagan eval` needs to reproduce a score of `evaluate(generate, n, seed)` exactly
        (recorded in final/metrics.json; `eagan eval RUN/final` uses it by default)."""
        stats = self.settings.get("stats")
        return {
            "images": n,
            "seed": seed,
            "splits": self.splits,
            "batch_size": self.batch,
            "extractor": str(self.settings["extractor"]),
            "quantize": str(self.settings["quantize"]),
            # the real statistics: a data set's name, or the spec's `stats:` file
            "reference": str(stats) if stats else self.program.data.name,
        }

    def evaluate(
        self, generate: Callable[[torch.Tensor], torch.Tensor], n: int, seed: int
    ) -> dict[str, float]:
        result = evaluate_generator(
            generate,
            n,
            self.extractor,
            self.reference,
            batch_size=self.batch,
            seed=seed,
            latent_dim=self.program.latent_dim,
            device=self.device,
            splits=self.splits,
        )
        fid = result.fid if math.isfinite(result.fid) else math.inf
        return {"is": result.is_mean, "is_std": result.is_std, "fid": fid}
