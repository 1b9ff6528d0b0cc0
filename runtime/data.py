"""Training data: whole data sets as one tensor on the device, batches drawn by index.

`digits` ships inside scikit-learn (the embedded default); `cifar10` and `stl10` are read from
their published files under a local `root` (never downloaded); `imagefolder` is any folder of
class sub-folders of images. Images are scaled to [-1, 1]. The data set is held as uint8 (or
float for digits) on the device, and a batch is an index gather, so the loader never starves a step.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from eagan_dsl.ir import DataIR


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


def _missing(name: str, root: Path, how: str) -> DataError:
    return DataError(
        f"data set {name} not found under {root}: {how}; or set `root` in the spec's data line "
        "(paths are relative to the spec file)"
    )


def _resize_uint8(x: torch.Tensor, resolution: int) -> torch.Tensor:
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    out = []
    for chunk in x.split(1024):
        y = F.interpolate(
            chunk.float(),
            size=(resolution, resolution),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        out.append(y.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


class _SafeUnpickler(pickle.Unpickler):
    """CIFAR-10's python batches are pickles; allow only what they contain (numpy arrays, dicts,
    lists, bytes), so a tampered file cannot run code."""

    ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.numeric", "_frombuffer"),  # numpy arrays pickled with protocol 5
            ("numpy._core.numeric", "_frombuffer"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR-10 batch")


def _cifar10(data: DataIR) -> torch.Tensor:
    """The 50,000 training images (paper §5.1) from `ROOT/cifar-10-batches-py/data_batch_{1..5}`."""
    root = Path(data.root or "data/cifar10")
    folder = root / "cifar-10-batches-py"
    files = [folder / f"data_batch_{i}" for i in range(1, 6)]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise _missing(
            "cifar10",
            root,
            f"{missing[0]} is missing; extract cifar-10-python.tar.gz "
            "(https://www.cs.toronto.edu/~kriz/cifar.html) there so that it holds cifar-10-batches-py/",
        )
    parts = []
    for f in files:
        try:
            with open(f, "rb") as fh:
                batch = _SafeUnpickler(fh, encoding="latin1").load()
            # the published batches are Python 2 pickles (str keys under latin1); a batch re-saved
            # from Python 3 with bytes keys is accepted too
            pixels = batch["data"] if "data" in batch else batch[b"data"]
            parts.append(np.asarray(pixels, dtype=np.uint8).reshape(-1, 3, 32, 32))
        except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as err:
            raise DataError(
                f"{f} is not a CIFAR-10 python batch ({err}); download it again"
            ) from None
    x = torch.from_numpy(np.concatenate(parts))
    return _resize_uint8(x, data.resolution)


def _stl10(data: DataIR) -> torch.Tensor:
    """train + unlabeled (100,000 images; code §3.5), 96×96 resized to the spec's resolution
    (paper §5.1: 48×48), from `ROOT/stl10_binary/{train,unlabeled}_X.bin`."""
    root = Path(data.root or "data/stl10")
    folder = root / "stl10_binary"
    parts = []
    for name in ("train_X.bin", "unlabeled_X.bin"):
        f = folder / name
        if not f.is_file():
            raise _missing(
                "stl10",
                root,
                f"{f} is missing; extract stl10_binary.tar.gz (https://cs.stanford.edu/~acoates/stl10/) there",
            )
        raw = np.fromfile(f, dtype=np.uint8)
        if raw.size % (3 * 96 * 96):
            raise DataError(
                f"{f} is truncated ({raw.size} bytes is not a whole number of 96×96 images)"
            )
        # stored column-major per channel: (N, 3, 96, 96) with height and width swapped
        parts.append(raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2))
    x = torch.from_numpy(np.ascontiguousarray(np.concatenate(parts)))
    return _resize_uint8(x, data.resolution)


def _imagefolder(data: DataIR) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    root = Path(data.root or "data/images")
    if not root.is_dir():
        raise _missing("imagefolder", root, "make it a folder of images (sub-folders allowed)")
    files = sorted(
        p for p in root.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
    )
    if not files:
        raise DataError(f"no images (.png, .jpg, .jpeg, .bmp, .webp) under {root}")
    mode = "L" if data.channels == 1 else "RGB"
    out = []
    for path in files:
        try:
            with Image.open(path) as im:
                im = im.convert(mode).resize((data.resolution, data.resolution), Image.BILINEAR)
                t = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
        except (OSError, UnidentifiedImageError) as err:
            raise DataError(f"cannot read image {path}: {err}") from None
        out.append(t.view(data.resolution, data.resolution, data.channels).permute(2, 0, 1))
    return torch.stack(out)


def load_training_data(data: DataIR, device: torch.device) -> ImageData:
    """The training split of the spec's data set, on `device`."""
    if data.name == "digits":
        from runtime.datasets import load_digits

        train, _ = load_digits(data.resolution)  # research cpu-benchmark §3: 1297 train images
        return ImageData("digits", train.to(device), reference_split="heldout")
    loaders = {"cifar10": _cifar10, "stl10": _stl10, "imagefolder": _imagefolder}
    if data.name not in loaders:
        raise DataError(f"unknown data set {data.name}")
    images = loaders[data.name](data)
    return ImageData(data.name, images.to(device), reference_split="train")
