"""The interface every feature extractor of the metrics implements.

One forward pass gives both outputs: the features for the Fréchet distance and the class logits
for the Inception Score, so an evaluation never runs the network twice.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

QuantizeRule = Literal["truncate", "round", "none"]
QUANTIZE_RULES: tuple[str, ...] = ("truncate", "round", "none")


def to_uint8(images: torch.Tensor, rule: QuantizeRule = "truncate") -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8 pixels, as the evaluation code of the paper did.

    `truncate` (default): `x·127.5 + 127.5`, clamped to [0, 255], then cast — the cast truncates.
    This is the AutoGAN/EAGAN line (`G(z).mul_(127.5).add_(127.5).clamp_(0, 255).to(uint8)`) whose
    images went into the TF Inception graph, so our numbers stay comparable with theirs.
    `round`: round to nearest (ties to even) instead; the mean pixel is 0.5 higher than `truncate`.
    """
    if images.dtype == torch.uint8:
        return images
    x = images.float().mul(127.5).add(127.5).clamp(0.0, 255.0)
    if rule == "round":
        x = torch.round(x)
    elif rule != "truncate":
        raise ValueError(f"quantize must be 'truncate' or 'round' here, got {rule!r}")
    return x.to(torch.uint8)


class FeatureExtractor(nn.Module):
    """Base class: `forward(images) -> (features, logits)`.

    `images`: uint8 pixels (0..255) or floats in [-1, 1] (generator output), shape (N, C, H, W).
    `features`: (N, feature_dim), used for the Fréchet distance.
    `logits`: (N, num_classes), whose softmax feeds the Inception Score.
    Subclasses set the attributes below and implement `preprocess` and `features_and_logits`.
    """

    name: str = "extractor"
    feature_dim: int = 0
    num_classes: int = 0
    weights_id: str = "unknown"
    quantize: QuantizeRule = "none"
    in_channels: int = 3
    in_resolution: int | None = None  # None: any input size (resized inside)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.dim() != 4:
            raise ValueError(
                f"{self.name}: expected images (N, C, H, W), got shape {tuple(images.shape)}"
            )
        return self.features_and_logits(self.preprocess(images))

    def default_batch_size(self, device: torch.device) -> int:
        return 500 if device.type == "cuda" else 50

    def describe(self) -> dict[str, object]:
        """What a result must record to be comparable: name, weights, quantisation."""
        return {
            "extractor": self.name,
            "weights_id": self.weights_id,
            "feature_dim": self.feature_dim,
            "quantize": self.quantize,
        }

    def _match_channels(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.in_channels:
            return x
        if c == 1 and self.in_channels == 3:
            return x.expand(-1, 3, -1, -1)  # grey -> RGB, as image libraries convert 'L' to 'RGB'
        if c == 3 and self.in_channels == 1:
            raise ValueError(f"{self.name} takes 1-channel images, got 3 channels")
        raise ValueError(f"{self.name} takes {self.in_channels}-channel images, got {c}")
