"""CIFAR-10: the 50,000 training images (paper §5.1), read from the published python batches."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from eagan_dsl.ir import DataIR

from .base import DataError, missing, resize_uint8


class SafeUnpickler(pickle.Unpickler):
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


def load(data: DataIR) -> torch.Tensor:
    """uint8 (50000, 3, r, r) from `ROOT/cifar-10-batches-py/data_batch_{1..5}`."""
    root = Path(data.root or "data/cifar10")
    folder = root / "cifar-10-batches-py"
    files = [folder / f"data_batch_{i}" for i in range(1, 6)]
    absent = [f for f in files if not f.is_file()]
    if absent:
        raise missing(
            "cifar10",
            root,
            f"{absent[0]} is missing; extract cifar-10-python.tar.gz "
            "(https://www.cs.toronto.edu/~kriz/cifar.html) there so that it holds cifar-10-batches-py/",
        )
    parts = []
    for f in files:
        try:
            with open(f, "rb") as fh:
                batch = SafeUnpickler(fh, encoding="latin1").load()
            # the published batches are Python 2 pickles (str keys under latin1); a batch re-saved
            # from Python 3 with bytes keys is accepted too
            pixels = batch["data"] if "data" in batch else batch[b"data"]
            parts.append(np.asarray(pixels, dtype=np.uint8).reshape(-1, 3, 32, 32))
        except (
            pickle.UnpicklingError,
            LookupError,  # KeyError, IndexError, an unknown codec
            ValueError,
            EOFError,
            TypeError,
            AttributeError,
            OverflowError,
            MemoryError,  # a crafted shape numpy cannot allocate
        ) as err:
            raise DataError(
                f"{f} is not a CIFAR-10 python batch ({err}); download it again"
            ) from None
    x = torch.from_numpy(np.concatenate(parts))
    return resize_uint8(x, data.resolution)
