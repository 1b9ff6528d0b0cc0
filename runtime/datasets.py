"""Real image data sets for training and for the metrics' reference statistics.

For now only the CPU benchmark set `digits` (research/cpu-benchmark.md §2-3): scikit-learn's
1797 handwritten 8x8 digits, shipped inside the scikit-learn wheel, so nothing is downloaded.
CIFAR-10 / STL-10 loaders are to be added here by the runtime (the metrics read them through
`real_images`).
"""

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


# Splits each data set can serve for reference statistics; the first one is the default.
DATASET_SPLITS: dict[str, tuple[str, ...]] = {
    "digits": ("heldout", "train"),
    "cifar10": ("train",),  # TTUR's fid_stats_cifar10_train.npz: the 50,000 training images
    "stl10": ("train",),  # AutoGAN's stl10 48px statistics: train+unlabeled
}
# Where torchvision looks for them, relative to the working directory (the spec sets its own root)
DEFAULT_ROOTS = {"cifar10": "data/cifar10", "stl10": "data/stl10"}


def real_images(name: str, split: str, resolution: int, root: str | None = None) -> torch.Tensor:
    """Real images of a registered data set, shape (N, C, H, W): float in [-1, 1] (digits) or
    uint8 (CIFAR-10, STL-10, read from `root`)."""
    if name == "digits":
        train, heldout = load_digits(resolution)
        if split == "train":
            return train
        if split == "heldout":
            return heldout
        raise ValueError(f"digits has splits 'train' and 'heldout', not {split!r}")
    if name in DEFAULT_ROOTS:
        from eagan_dsl.ir import DataIR
        from runtime.data import load_training_data

        data = DataIR(
            name=name, root=root or DEFAULT_ROOTS[name], resolution=resolution, channels=3
        )
        return load_training_data(data, torch.device("cpu")).images  # uint8, as Inception wants
    raise ValueError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASET_SPLITS))}")
