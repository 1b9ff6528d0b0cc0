"""`imagefolder`: any folder of images (sub-folders allowed), resized to the spec's resolution."""

from __future__ import annotations

from pathlib import Path

import torch

from eagan_dsl.ir import DataIR

from .base import DataError, missing


def load(data: DataIR) -> torch.Tensor:
    """uint8 (N, C, r, r) of every .png/.jpg/.jpeg/.bmp/.webp under `root`, in sorted order."""
    from PIL import Image, UnidentifiedImageError

    root = Path(data.root or "data/images")
    if not root.is_dir():
        raise missing("imagefolder", root, "make it a folder of images (sub-folders allowed)")
    files = sorted(
        p for p in root.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
    )
    if not files:
        raise DataError(f"no images (.png, .jpg, .jpeg, .bmp, .webp) under {root}")
    mode = "L" if data.channels == 1 else "RGB"
    out = []
    for path in files:
        try:
            with Image.open(path) as opened:
                size = (data.resolution, data.resolution)
                im = opened.convert(mode).resize(size, Image.Resampling.BILINEAR)
                t = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
        except (OSError, UnidentifiedImageError) as err:
            raise DataError(f"cannot read image {path}: {err}") from None
        out.append(t.view(data.resolution, data.resolution, data.channels).permute(2, 0, 1))
    return torch.stack(out)
