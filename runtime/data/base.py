"""What every loader shares: the error, the training images on the device, the resize."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F


class DataError(Exception):
    """A data set that cannot be loaded; the message names the path and how to get the data."""


@dataclass
class ImageData:
    """Training images on `device`: uint8 (N, C, H, W) or float in [-1, 1]."""

    name: str
    images: torch.Tensor
    reference_split: str  # the split the FID reference statistics come from

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        x = self.images[index]
        if x.dtype == torch.uint8:
            x = x.float().div_(127.5).sub_(1.0)
        return x

    def batches_per_epoch(self, batch_size: int) -> int:
        return max(len(self) // batch_size, 1)


def missing(name: str, root: Path, how: str) -> DataError:
    return DataError(
        f"data set {name} not found under {root}: {how}; or set `root` in the spec's data line "
        "(paths are relative to the spec file)"
    )


def resize_uint8(x: torch.Tensor, resolution: int) -> torch.Tensor:
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    out = []
    for chunk in torch.split(x, 1024):
        y = F.interpolate(
            chunk.float(),
            size=(resolution, resolution),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        out.append(y.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)
