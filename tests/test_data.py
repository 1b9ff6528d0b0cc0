"""The real loaders on small local files in the published formats, and their errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from eagan_dsl.ir import DataIR
from runtime.data import DataError, digits_split, load_digits, load_training_data


def _cifar(root: Path, n: int = 4, protocol: int = 2, key: str | bytes = "data") -> np.ndarray:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, n, 3, 32, 32), dtype=np.uint8)
    for i in range(5):
        batch = {key: images[i].reshape(n, -1), "labels": [0] * n}
        (folder / f"data_batch_{i + 1}").write_bytes(pickle.dumps(batch, protocol=protocol))
    return images.reshape(-1, 3, 32, 32)


@pytest.mark.parametrize(("protocol", "key"), [(2, "data"), (4, "data"), (5, "data"), (5, b"data")])
def test_cifar10_reads_the_python_batches(tmp_path: Path, protocol: int, key: str | bytes) -> None:
    expected = _cifar(tmp_path, protocol=protocol, key=key)
    data = load_training_data(DataIR("cifar10", str(tmp_path), 32, 3), torch.device("cpu"))
    assert data.images.dtype == torch.uint8
    assert torch.equal(data.images, torch.from_numpy(expected))
    batch = data.batch(torch.tensor([0, 1]))
    assert batch.min() >= -1 and batch.max() <= 1
    assert torch.allclose(batch[0], torch.from_numpy(expected[0]).float() / 127.5 - 1)


def test_cifar10_missing_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_training_data(DataIR("cifar10", str(tmp_path / "nowhere"), 32, 3), torch.device("cpu"))
    assert "nowhere" in str(info.value) and "cifar-10-batches-py" in str(info.value)


def test_cifar10_rejects_a_pickle_that_runs_code(tmp_path: Path) -> None:
    _cifar(tmp_path)

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps({"data": Evil()}))
    with pytest.raises(DataError, match="data_batch_3"):
        load_training_data(DataIR("cifar10", str(tmp_path), 32, 3), torch.device("cpu"))


def test_stl10_reads_binary_and_resizes(tmp_path: Path) -> None:
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, size=(3, 3, 96, 96), dtype=np.uint8)  # (N, C, H, W)
    # the published files are column-major: write (N, C, W, H)
    imgs.transpose(0, 1, 3, 2).tofile(folder / "train_X.bin")
    imgs[:1].transpose(0, 1, 3, 2).tofile(folder / "unlabeled_X.bin")
    full = load_training_data(DataIR("stl10", str(tmp_path), 96, 3), torch.device("cpu"))
    assert torch.equal(full.images[:3], torch.from_numpy(imgs))
    small = load_training_data(DataIR("stl10", str(tmp_path), 48, 3), torch.device("cpu"))
    assert small.images.shape == (4, 3, 48, 48)


def test_imagefolder(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "a").mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 20, 3), 40 * i, dtype=np.uint8)).save(
            tmp_path / "a" / f"{i}.png"
        )
    data = load_training_data(DataIR("imagefolder", str(tmp_path), 8, 3), torch.device("cpu"))
    assert data.images.shape == (3, 3, 8, 8)
    assert int(data.images[2, 0, 4, 4]) == 80
    (tmp_path / "a" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="bad.png"):
        load_training_data(DataIR("imagefolder", str(tmp_path), 8, 3), torch.device("cpu"))


def test_digits_is_the_embedded_default() -> None:
    data = load_training_data(DataIR("digits", None, 16, 1), torch.device("cpu"))
    assert data.images.shape == (1297, 1, 16, 16)


def test_digits_split_protocol():
    s = digits_split(16)
    assert s.x_train.shape == (1297, 1, 16, 16) and s.x_heldout.shape == (500, 1, 16, 16)
    assert torch.bincount(s.y_heldout).tolist() == [50] * 10
    assert s.x_train.min() >= -1 and s.x_train.max() <= 1 and s.x_train.dtype == torch.float32
    # the held-out images are real digits, not in the training split
    from sklearn.datasets import load_digits as sk

    raw = torch.tensor(sk().images, dtype=torch.float32)[:, None] / 16
    up = (
        torch.nn.functional.interpolate(raw, size=(16, 16), mode="bilinear", align_corners=False)
        * 2
        - 1
    )
    flat = up.flatten(1)
    tr, ho = load_digits(16)
    assert torch.equal(tr, s.x_train)
    idx_ho = [int((flat == h.flatten()).all(1).nonzero()[0]) for h in ho[:20]]
    idx_tr = {int((flat == t.flatten()).all(1).nonzero()[0]) for t in tr[:200]}
    assert not set(idx_ho) & idx_tr
