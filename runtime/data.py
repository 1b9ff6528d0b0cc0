"""Training data: whole data sets as one tensor on the device, batches drawn by index.

`digits` ships inside scikit-learn (the embedded default); `cifar10` and `stl10` come from
torchvision's loaders reading a local `root` (never downloading); `imagefolder` is any folder of
class sub-folders of images. Images are scaled to [-1, 1]. The data set is held as uint8 (or
float for digits) on the device, and a batch is an index gather, so the loader never starves a step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
        y = F.interpolate(chunk.float(), size=(resolution, resolution), mode="bilinear",
                          align_corners=False, antialias=True)
        out.append(y.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def _cifar10(data: DataIR) -> torch.Tensor:
    from torchvision.datasets import CIFAR10

    root = Path(data.root or "data/cifar10")
    try:
        ds = CIFAR10(str(root), train=True, download=False)
    except RuntimeError:
        raise _missing(
            "cifar10", root,
            "put the extracted 'cifar-10-batches-py' folder there (from cifar-10-python.tar.gz, "
            "https://www.cs.toronto.edu/~kriz/cifar.html)",
        ) from None
    x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # paper §5.1: 50,000 train images
    return _resize_uint8(x, data.resolution)


def _stl10(data: DataIR) -> torch.Tensor:
    from torchvision.datasets import STL10

    root = Path(data.root or "data/stl10")
    try:
        ds = STL10(str(root), split="train+unlabeled", download=False)
    except RuntimeError:
        raise _missing(
            "stl10", root,
            "put the extracted 'stl10_binary' folder there (from stl10_binary.tar.gz, "
            "https://cs.stanford.edu/~acoates/stl10/)",
        ) from None
    x = torch.from_numpy(ds.data)  # (N, 3, 96, 96); paper §5.1: resized to 48×48
    return _resize_uint8(x, data.resolution)


def _imagefolder(data: DataIR) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    root = Path(data.root or "data/images")
    if not root.is_dir():
        raise _missing("imagefolder", root, "make it a folder of images (sub-folders allowed)")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".webp"})
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
