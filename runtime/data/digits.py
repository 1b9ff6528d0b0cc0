"""`digits`, the embedded CPU benchmark set (research/cpu-benchmark.md §2-3): scikit-learn's 1797
handwritten 8×8 digits, shipped inside the scikit-learn wheel, so nothing is downloaded."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

DIGITS_HELDOUT_PER_CLASS = 50  # cpu-benchmark.md §3: 50 per class -> 1297 train / 500 held-out


@dataclass(frozen=True)
class LabelledSplit:
    """Images in [-1, 1], shape (N, C, H, W), with integer class labels."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_heldout: torch.Tensor
    y_heldout: torch.Tensor


def digits_split(resolution: int = 16, seed: int = 0) -> LabelledSplit:
    """scikit-learn digits, `x/16`, bilinear 8 -> `resolution`, mapped to [-1, 1].

    Stratified split: for each class (in order 0..9) a seeded permutation picks 50 held-out
    images; the rest, in their original order, are the training split. This is exactly the
    protocol of cpu-benchmark.md (its `common.load_images`), so the shipped LeNet weights and the
    published FD floors refer to these very images.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    if resolution < 1:
        raise ValueError(f"resolution must be positive, got {resolution}")
    d = _sk_load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0  # levels 0..16 -> [0, 1]
    y = torch.tensor(d.target, dtype=torch.int64)
    if resolution != x.shape[-1]:
        x = F.interpolate(
            x,
            size=(resolution, resolution),
            mode="bilinear",
            align_corners=False,
            antialias=resolution < x.shape[-1],
        )
    x = (x * 2 - 1).clamp(-1, 1)
    g = torch.Generator().manual_seed(seed)
    held: list[torch.Tensor] = []
    for c in range(10):
        idx = (y == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        held.append(idx[:DIGITS_HELDOUT_PER_CLASS])
    held_idx = torch.cat(held)
    mask = torch.ones(len(y), dtype=torch.bool)
    mask[held_idx] = False
    return LabelledSplit(x[mask], y[mask], x[held_idx], y[held_idx])


def load_digits(resolution: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, heldout) images of `digits`: float32 in [-1, 1], shapes (1297,1,r,r), (500,1,r,r)."""
    s = digits_split(resolution)
    return s.x_train, s.x_heldout
