"""IS and FID of a generator from one streaming pass (metrics.md §5.2).

Latents come from a seeded `torch.Generator` in fixed blocks, so sample j gets the same z for any
batch size and any device; images are generated, quantised, pushed through the extractor and
dropped batch by batch; only float64 sums are kept (2048² doubles = 32 MiB for Inception).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from runtime.metrics import MetricsError
from runtime.metrics.extractor import FeatureExtractor
from runtime.metrics.frechet import ReferenceStats, frechet_distance
from runtime.metrics.inception import inception_v3_fid
from runtime.metrics.lenet import LENET_RESOLUTION, lenet_digits
from runtime.metrics.stats import FeatureStats, InceptionScore, reference_stats

INCEPTION_DATASETS = ("cifar10", "stl10")
Z_BLOCK = 1024  # latents are drawn in blocks of this many rows, independent of the batch size


@dataclass(frozen=True)
class EvalResult:
    """One evaluation. Values at different `n` are not comparable (FID falls, IS rises with n)."""

    is_mean: float
    is_std: float
    fid: float
    n: int
    extractor: str
    weights_id: str
    quantize: str
    batch_size: int
    seed: int
    splits: int
    reference: str
    device: str
    bf16: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LatentStream:
    """z ~ N(0, I) for samples 0, 1, 2, ... from one seeded CPU generator, in fixed blocks."""

    def __init__(self, latent_dim: int, seed: int) -> None:
        self.latent_dim = latent_dim
        self._g = torch.Generator().manual_seed(seed)
        self._buf = torch.empty(0, latent_dim)

    def take(self, b: int) -> torch.Tensor:
        parts = []
        while b > 0:
            if len(self._buf) == 0:
                self._buf = torch.randn(Z_BLOCK, self.latent_dim, generator=self._g)
            k = min(b, len(self._buf))
            parts.append(self._buf[:k])
            self._buf = self._buf[k:]
            b -= k
        return torch.cat(parts)


@contextlib.contextmanager
def exact_float32(device: torch.device) -> Iterator[None]:
    """TF32 off for matmuls and convolutions while extracting (restored afterwards): TF32 makes
    Inception features depend on the batch size and the GPU (torchmetrics #1620)."""
    restore: list[Callable[[], None]] = []
    prec = torch.get_float32_matmul_precision()
    if prec != "highest":
        torch.set_float32_matmul_precision("highest")
        restore.append(lambda: torch.set_float32_matmul_precision(prec))
    if device.type == "cuda":
        try:  # torch >= 2.9 API
            backends: list[Any] = [torch.backends.cuda.matmul, torch.backends.cudnn.conv]  # type: ignore[attr-defined]
            for obj in backends:
                old = obj.fp32_precision
                obj.fp32_precision = "ieee"

                def undo(obj: Any = obj, old: Any = old) -> None:
                    obj.fp32_precision = old

                restore.append(undo)
        except (AttributeError, RuntimeError):
            m, c = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

            def _legacy() -> None:
                torch.backends.cuda.matmul.allow_tf32 = m
                torch.backends.cudnn.allow_tf32 = c

            restore.append(_legacy)
    try:
        yield
    finally:
        for f in reversed(restore):
            f()


def _module_device(m: nn.Module) -> torch.device | None:
    for t in (*m.parameters(), *m.buffers()):
        return t.device
    return None


def evaluate_generator(
    generate: Callable[[torch.Tensor], torch.Tensor] | nn.Module,
    n_images: int,
    extractor: FeatureExtractor,
    reference_stats: ReferenceStats,
    batch_size: int | None = None,
    seed: int = 0,
    *,
    latent_dim: int | None = None,
    device: str | torch.device | None = None,
    splits: int = 10,
    bf16: bool = False,
) -> EvalResult:
    """IS (mean ± population std over `splits`) and FID of `n_images` generated images.

    `generate(z) -> images` takes z of shape (b, latent_dim) on the evaluation device and returns
    images in [-1, 1], (b, C, H, W). An `nn.Module` is put in eval mode for the pass (and restored)
    and runs on its own device; `latent_dim` defaults to its `latent_dim`/`LATENT_DIM` attribute.
    `batch_size` defaults to the extractor's choice for the device (CPU: Inception 10, LeNet 500);
    keep it fixed when comparing numbers. `bf16=True` runs the extractor under bfloat16 autocast
    (opt-in: faster on GPUs but changes features at the 1e-2 level, so not comparable with
    float32 numbers). The result is deterministic for a given seed, device and batch size.
    """
    t0 = time.perf_counter()
    if n_images < 2:
        raise ValueError(f"n_images must be at least 2, got {n_images}")
    if latent_dim is None:
        latent_dim = getattr(generate, "latent_dim", None) or getattr(generate, "LATENT_DIM", None)
        if latent_dim is None:
            raise ValueError(
                "latent_dim is required for a generator without a latent_dim attribute"
            )
    if isinstance(generate, nn.Module) and device is None:
        dev = _module_device(generate) or torch.device("cpu")
    elif device is not None:
        dev = torch.device(device)
    else:
        dev = _module_device(extractor) or torch.device("cpu")
    if reference_stats.dim != extractor.feature_dim:
        raise MetricsError(
            f"reference statistics have dimension {reference_stats.dim}, but {extractor.name} "
            f"gives {extractor.feature_dim}-d features: statistics of another extractor?"
        )
    if n_images <= extractor.feature_dim:
        warnings.warn(
            f"FID from {n_images} <= {extractor.feature_dim} samples: the covariance is singular "
            "and the value strongly biased upward",
            RuntimeWarning,
            stacklevel=2,
        )
    bs = int(batch_size or extractor.default_batch_size(dev))
    extractor.to(dev).eval()
    feats_acc = FeatureStats(extractor.feature_dim, device=dev)
    is_acc = InceptionScore(n_images, extractor.num_classes, splits, device=dev)
    latents = LatentStream(int(latent_dim), seed)
    was_training = generate.training if isinstance(generate, nn.Module) else False
    if isinstance(generate, nn.Module):
        generate.eval()
    try:
        with torch.inference_mode(), exact_float32(dev):
            done = 0
            while done < n_images:
                b = min(bs, n_images - done)
                images = generate(latents.take(b).to(dev))
                if (
                    not isinstance(images, torch.Tensor)
                    or images.dim() != 4
                    or images.shape[0] != b
                ):
                    got = (
                        tuple(images.shape)
                        if isinstance(images, torch.Tensor)
                        else type(images).__name__
                    )
                    raise MetricsError(
                        f"the generator must return images (b, C, H, W) for b={b}, got {got}"
                    )
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                    try:
                        feats, logits = extractor(images.float())
                    except ValueError as e:
                        raise MetricsError(
                            f"generated images do not suit {extractor.name}: {e}"
                        ) from e
                feats_acc.update(feats)
                is_acc.update(logits)
                done += b
    finally:
        if isinstance(generate, nn.Module):
            generate.train(was_training)
    is_mean, is_std = is_acc.compute()
    fid = frechet_distance(feats_acc.mean(), feats_acc.cov(), reference_stats)
    ref_meta = reference_stats.meta
    reference = (
        f"{ref_meta.get('dataset')}/{ref_meta.get('split')}/{ref_meta.get('resolution')}px n={ref_meta.get('n')}"
        if ref_meta.get("dataset")
        else str(ref_meta.get("source", "external npz"))
    )
    return EvalResult(
        is_mean=is_mean,
        is_std=is_std,
        fid=fid if math.isfinite(fid) else math.nan,
        n=n_images,
        extractor=extractor.name,
        weights_id=extractor.weights_id,
        quantize=extractor.quantize,
        batch_size=bs,
        seed=seed,
        splits=splits,
        reference=reference,
        device=str(dev),
        bf16=bf16,
        seconds=time.perf_counter() - t0,
    )


# ------------------------------------------------------------------ `eagan eval`'s library form
def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MetricsError(f"device {device!r} requested, but CUDA is not available")
    try:
        return torch.device(device)
    except RuntimeError as e:
        raise MetricsError(f"unknown device {device!r}") from e


def extractor_and_reference(
    dataset: str,
    resolution: int,
    channels: int,
    device: torch.device,
    *,
    inception_weights: str | os.PathLike[str] | None = None,
    allow_download: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[FeatureExtractor, ReferenceStats]:
    """`digits` → the LeNet and held-out statistics; `cifar10`/`stl10`/a `.npz` → Inception."""
    if dataset == "digits":
        if (resolution, channels) != (LENET_RESOLUTION, 1):
            raise MetricsError(
                f"digits needs 1-channel {LENET_RESOLUTION}x{LENET_RESOLUTION} images; the generator "
                f"makes {channels}-channel {resolution}x{resolution} ones"
            )
        ext: FeatureExtractor = lenet_digits(device=device)
        return ext, reference_stats("digits", ext, cache_dir=cache_dir, device=device)
    if dataset in INCEPTION_DATASETS or dataset.endswith(".npz"):
        if channels not in (1, 3):
            raise MetricsError(
                f"Inception needs 1- or 3-channel images, the generator makes {channels}"
            )
        ext = inception_v3_fid(inception_weights, allow_download=allow_download, device=device)
        ref = reference_stats(
            dataset, ext, resolution=resolution, cache_dir=cache_dir, device=device
        )
        return ext, ref
    raise MetricsError(
        f"unknown data set {dataset!r}: use digits, {', '.join(INCEPTION_DATASETS)} or a .npz statistics file"
    )


def run_eval(
    generator_dir: str | os.PathLike[str],
    dataset: str = "digits",
    n_images: int = 5000,
    *,
    batch_size: int | None = None,
    seed: int = 0,
    device: str = "auto",
    inception_weights: str | os.PathLike[str] | None = None,
    allow_download: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    splits: int = 10,
    bf16: bool = False,
) -> EvalResult:
    """Library form of `eagan eval` on an exported generator or a run directory; raises
    `MetricsError` (or `ExportedError` for the generator) for bad input."""
    if n_images < max(2, splits):
        raise MetricsError(
            f"--images must be at least {max(2, splits)} (one per IS split), got {n_images}"
        )
    dev = _device(device)
    from runtime.exported import load_generator

    gen = load_generator(generator_dir, dev)
    ext, ref = extractor_and_reference(
        dataset, gen.resolution, gen.channels, dev,
        inception_weights=inception_weights, allow_download=allow_download, cache_dir=cache_dir,
    )  # fmt: skip
    return evaluate_generator(
        gen.module, n_images, ext, ref, batch_size, seed,
        latent_dim=gen.latent_dim, device=dev, splits=splits, bf16=bf16,
    )  # fmt: skip
