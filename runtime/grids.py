"""Sample grids a person can see: a 16×16 digit grid is 146 px wide at its own size, so grids
are enlarged by a whole factor with nearest-neighbour sampling (each generated pixel an exact
square: nothing invented, nothing smoothed) until they are at least `MIN_WIDTH` wide. The images
at their true size are what the generator returns (`eagan sample`'s seed reproduces them)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

MIN_WIDTH = 512  # px: a grid of 16×16 digits at 4×, of 32×32 CIFAR images at 2×


def scale_for(width: int, min_width: int = MIN_WIDTH) -> int:
    """The smallest whole factor that makes `width` at least `min_width` (1 when it already is)."""
    return max(1, math.ceil(min_width / max(width, 1)))


def save_grid(images: torch.Tensor, path: Path, nrow: int, min_width: int = MIN_WIDTH) -> int:
    """Write images in [-1, 1] as one grid PNG (or JPEG), enlarged by nearest-neighbour to at
    least `min_width` px wide; returns the factor."""
    from torchvision.utils import make_grid, save_image

    grid = make_grid((images.float() * 0.5 + 0.5).clamp(0, 1), nrow=nrow)
    factor = scale_for(grid.shape[-1], min_width)
    if factor > 1:
        grid = F.interpolate(grid[None], scale_factor=factor, mode="nearest")[0]
    save_image(grid, path)
    return factor
