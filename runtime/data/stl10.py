"""STL-10: train + unlabeled (100,000 images; code §3.5), read from the published binaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from eagan_dsl.ir import DataIR

from .base import DataError, missing, resize_uint8


def load(data: DataIR) -> torch.Tensor:
    """uint8 (100000, 3, r, r): 96×96 resized to the spec's resolution (paper §5.1: 48×48), from
    `ROOT/stl10_binary/{train,unlabeled}_X.bin`."""
    root = Path(data.root or "data/stl10")
    folder = root / "stl10_binary"
    parts = []
    for name in ("train_X.bin", "unlabeled_X.bin"):
        f = folder / name
        if not f.is_file():
            raise missing(
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
    return resize_uint8(x, data.resolution)
