"""LeNet domain classifier for the CPU benchmark set `digits` (research/cpu-benchmark.md §2-3).

The Inception network is meaningless on 16x16 grey digits and far too slow on a CPU, so the
`digits` benchmark measures FD on the 64-d penultimate features of a small classifier trained on
the training split, and an IS analogue on its 10 logits. Its weights ship with the package
(`runtime/assets/lenet_digits.safetensors`) so FD values are comparable across machines;
`train_lenet()` is the recipe that made them (`python -m runtime.metrics.lenet` rewrites them).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from runtime.metrics import MetricsError
from runtime.metrics.extractor import FeatureExtractor, QuantizeRule, to_uint8

LENET_ASSET = Path(__file__).resolve().parent.parent / "assets" / "lenet_digits.safetensors"
LENET_RESOLUTION = 16
LENET_FEATURES = 64


class LeNetDigits(FeatureExtractor):
    """conv3x3(1→32)-ReLU-maxpool, conv3x3(32→64)-ReLU-maxpool, fc(1024→128)-ReLU,
    fc(128→64)-ReLU (= the 64-d FD features), fc(64→10) (= the IS logits)."""

    name = "lenet-digits16"
    feature_dim = LENET_FEATURES
    num_classes = 10
    in_channels = 1
    in_resolution = LENET_RESOLUTION

    def __init__(self, quantize: QuantizeRule = "none", weights_id: str = "random-init") -> None:
        super().__init__()
        if quantize not in ("none", "truncate", "round"):
            raise ValueError(f"quantize must be 'none', 'truncate' or 'round', got {quantize!r}")
        # 'none' by default: the digits reference images are 17-level data upsampled bilinearly,
        # not 8-bit pictures, so rounding generated images to 8 bits would be an arbitrary step.
        self.quantize = quantize
        self.weights_id = weights_id
        r = LENET_RESOLUTION // 4
        self.c1 = nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * r * r, 128)
        self.fc2 = nn.Linear(128, LENET_FEATURES)
        self.out = nn.Linear(LENET_FEATURES, 10)

    def default_batch_size(self, device: torch.device) -> int:
        return 2000 if device.type == "cuda" else 500

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 pixels or [-1, 1] floats (N, 1, 16, 16) -> floats in [-1, 1]."""
        if images.shape[-2:] != (LENET_RESOLUTION, LENET_RESOLUTION):
            raise ValueError(
                f"{self.name} takes {LENET_RESOLUTION}x{LENET_RESOLUTION} images, "
                f"got {tuple(images.shape[-2:])}"
            )
        if images.dtype == torch.uint8 or self.quantize != "none":
            x = to_uint8(images, "truncate" if self.quantize == "none" else self.quantize)
            x = x.float() / 127.5 - 1.0
        else:
            x = images.float().clamp(-1.0, 1.0)
        return self._match_channels(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.c1(x)), 2)
        h = F.max_pool2d(F.relu(self.c2(h)), 2)
        h = F.relu(self.fc1(h.flatten(1)))
        return F.relu(self.fc2(h))

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return f, self.out(f)


def shift_aug(x: torch.Tensor, g: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Random integer translation by up to `max_shift` pixels; the border is background (-1)."""
    p = max_shift
    res = x.shape[-1]
    xp = F.pad(x, (p, p, p, p), value=-1.0)
    dx = torch.randint(0, 2 * p + 1, (x.shape[0],), generator=g)
    dy = torch.randint(0, 2 * p + 1, (x.shape[0],), generator=g)
    out = torch.empty_like(x)
    for sy in range(2 * p + 1):
        for sx in range(2 * p + 1):
            m = (dy == sy) & (dx == sx)
            if m.any():
                out[m] = xp[m, :, sy : sy + res, sx : sx + res]
    return out


@torch.no_grad()
def accuracy(model: LeNetDigits, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    _, logits = model(x)
    return float((logits.argmax(1) == y).float().mean())


def train_lenet(
    epochs: int = 30,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 1e-3,
    log: Callable[[str], None] | None = None,
) -> tuple[LeNetDigits, float]:
    """The recipe of cpu-benchmark.md §3: train split only, Adam 1e-3, batch 64, ±1 px shifts,
    30 epochs, seed 0. Returns the model (eval mode) and its held-out accuracy.

    Deterministic for a given seed and thread count (seeded init, shuffling and shifts).
    """
    from runtime.data import digits_split

    data = digits_split(LENET_RESOLUTION)
    torch.manual_seed(seed)  # parameter initialisation
    g = torch.Generator().manual_seed(seed)  # shuffling and shifts
    model = LeNetDigits()
    opt = torch.optim.Adam(model.parameters(), lr)
    n = len(data.x_train)
    t0 = time.perf_counter()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch_size):
            b = perm[i : i + batch_size]
            _, logits = model.features_and_logits(shift_aug(data.x_train[b], g))
            loss = F.cross_entropy(logits, data.y_train[b])
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
        if log is not None:
            log(f"epoch {ep + 1}/{epochs} loss {loss.item():.4f} ({time.perf_counter() - t0:.1f}s)")
    model.eval()
    model.requires_grad_(False)
    return model, accuracy(model, data.x_heldout, data.y_heldout)


def save_lenet(model: LeNetDigits, path: str | os.PathLike[str], heldout_accuracy: float) -> None:
    from safetensors.torch import save_file

    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(
        sd,
        str(path),
        metadata={
            "recipe": "cpu-benchmark.md §3: digits 16x16 train split, 30 epochs, Adam 1e-3, "
            "batch 64, ±1 px shifts, seed 0",
            "heldout_accuracy": f"{heldout_accuracy:.4f}",
            "torch": torch.__version__,
        },
    )


def lenet_digits(
    weights_path: str | os.PathLike[str] | None = None,
    *,
    quantize: QuantizeRule = "none",
    device: str | torch.device = "cpu",
) -> LeNetDigits:
    """The digits LeNet with the shipped weights (or those at `weights_path`)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from runtime.metrics.inception import sha256_file

    path = Path(weights_path) if weights_path is not None else LENET_ASSET
    if not path.is_file():
        raise MetricsError(
            f"LeNet digits weights not found at {path}; rebuild them with "
            "`python -m runtime.metrics.lenet` (trains in ~5 s)"
        )
    try:
        sd = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise MetricsError(f"{path}: not a readable safetensors file ({e})") from e
    model = LeNetDigits(quantize=quantize)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise MetricsError(f"{path}: weights do not fit the digits LeNet:\n{e}") from e
    model.weights_id = f"lenet-digits16:sha256:{sha256_file(path)[:16]}"
    model.eval()
    model.requires_grad_(False)
    return model.to(device)


def build_asset(path: str | os.PathLike[str] = LENET_ASSET) -> float:
    """Train with the recipe and write the shipped weights; returns the held-out accuracy."""
    torch.set_num_threads(2)
    model, acc = train_lenet(log=print)
    save_lenet(model, path, acc)
    print(f"held-out accuracy {acc:.4f}; wrote {path}")
    return acc


if __name__ == "__main__":
    build_asset()
