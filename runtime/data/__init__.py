"""Real image data sets: the training images of a run and the real images of the metrics.

One loader per data set, each in its own module: `digits` ships inside scikit-learn (the embedded
default, no download); `cifar10` and `stl10` are read from their published files under a local
`root` (never downloaded); `imagefolder` is any folder of images. Training images are scaled to
[-1, 1]; a data set is held as uint8 (or float for digits) on the device, and a batch is an index
gather, so the loader never starves a step. The metrics read the same images through
`real_images` for their reference statistics.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from eagan_dsl.ir import DataIR

from . import cifar10, imagefolder, stl10
from .base import DataError, ImageData
from .digits import DIGITS_HELDOUT_PER_CLASS, LabelledSplit, digits_split, load_digits

__all__ = [
    "DATASET_SPLITS",
    "DEFAULT_ROOTS",
    "DIGITS_HELDOUT_PER_CLASS",
    "DataError",
    "ImageData",
    "LabelledSplit",
    "digits_split",
    "load_digits",
    "load_training_data",
    "real_images",
]

# The loaders of the data sets read from files: spec data line → uint8 (N, C, r, r).
LOADERS: dict[str, Callable[[DataIR], torch.Tensor]] = {
    "cifar10": cifar10.load,
    "stl10": stl10.load,
    "imagefolder": imagefolder.load,
}

# Splits each data set can serve for reference statistics; the first one is the default.
DATASET_SPLITS: dict[str, tuple[str, ...]] = {
    "digits": ("heldout", "train"),
    "cifar10": ("train",),  # TTUR's fid_stats_cifar10_train.npz: the 50,000 training images
    "stl10": ("train",),  # AutoGAN's stl10 48px statistics: train+unlabeled
}
# Where the metrics look for them, relative to the working directory (the spec sets its own root)
DEFAULT_ROOTS = {"cifar10": "data/cifar10", "stl10": "data/stl10"}


def load_training_data(data: DataIR, device: torch.device) -> ImageData:
    """The training split of the spec's data set, on `device`."""
    if data.name == "digits":
        train, _ = load_digits(data.resolution)  # research cpu-benchmark §3: 1297 train images
        return ImageData("digits", train.to(device), reference_split="heldout")
    if data.name not in LOADERS:
        raise DataError(f"unknown data set {data.name}")
    images = LOADERS[data.name](data)
    return ImageData(data.name, images.to(device), reference_split="train")


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
        data = DataIR(
            name=name, root=root or DEFAULT_ROOTS[name], resolution=resolution, channels=3
        )
        return load_training_data(data, torch.device("cpu")).images  # uint8, as Inception wants
    raise ValueError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASET_SPLITS))}")
