"""Streaming statistics (float64) and real-data statistics cached on disk.

* `FeatureStats`: running Σx and Σxxᵀ (via `addmm`) of features, batch by batch, so no feature
  matrix of size N is ever kept; mean and covariance equal `np.mean` / `np.cov` to ~1e-16.
* `InceptionScore`: per-split running sums of Σ_y p log p and of p, in the openai code's
  10 consecutive splits.
* Real statistics: TTUR's npz layout (`mu`, `sigma`, float64) plus a `meta` JSON string, cached
  under `$EAGAN_CACHE/stats` (default `~/.cache/eagan/stats`) with a key made of data set,
  split, resolution, extractor, weights id and quantisation; written atomically, rebuilt when
  stale or unreadable.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runtime.metrics import MetricsError
from runtime.metrics.extractor import FeatureExtractor
from runtime.metrics.frechet import ReferenceStats

STATS_FORMAT = 1
CACHE_ENV = "EAGAN_CACHE"


class FeatureStats:
    """Running mean and covariance of feature vectors, in float64.

    Sums are taken around a shift (the first batch's mean) so that large feature means do not
    cancel digits in `Σxxᵀ − n μμᵀ`.
    """

    def __init__(self, dim: int, device: str | torch.device = "cpu") -> None:
        self.dim = dim
        self.n = 0
        self._shift: torch.Tensor | None = None
        self._s1 = torch.zeros(dim, dtype=torch.float64, device=device)
        self._s2 = torch.zeros(dim, dim, dtype=torch.float64, device=device)

    def update(self, features: torch.Tensor) -> None:
        f = features.detach().reshape(features.shape[0], -1).to(self._s1.device, torch.float64)
        if f.shape[1] != self.dim:
            raise ValueError(f"features of dimension {f.shape[1]}, expected {self.dim}")
        if f.shape[0] == 0:
            return
        if self._shift is None:
            self._shift = f.mean(0)
        x = f - self._shift
        self._s1 += x.sum(0)
        self._s2.addmm_(x.T, x)
        self.n += f.shape[0]

    def mean(self) -> torch.Tensor:
        if self.n == 0 or self._shift is None:
            raise ValueError("no features accumulated")
        return self._shift + self._s1 / self.n

    def cov(self) -> torch.Tensor:
        if self.n < 2:
            raise ValueError("a covariance needs at least 2 samples")
        m = self._s1 / self.n
        c = (self._s2 - self.n * torch.outer(m, m)) / (self.n - 1)
        return (c + c.T) * 0.5

    def to_reference(self, meta: dict[str, Any] | None = None) -> ReferenceStats:
        return ReferenceStats(
            self.mean().cpu().numpy(), self.cov().cpu().numpy(), dict(meta or {}, n=self.n)
        )


def split_bounds(n_total: int, splits: int) -> list[int]:
    """Split k holds samples [k·N//splits, (k+1)·N//splits) — the openai/TTUR IS code's slices."""
    return [k * n_total // splits for k in range(splits + 1)]


class InceptionScore:
    """Streaming IS over `splits` consecutive splits of a known total of `n_total` samples.

    Per split: IS_k = exp(mean_x Σ_y p log p − Σ_y p̄ log p̄) with p̄ the split's mean prediction,
    which is the openai formula exp(mean_x KL(p(y|x) ‖ p̄)). Softmax in float64 from the logits.
    Reported: mean and population std (`np.std`) over the splits.
    """

    def __init__(
        self, n_total: int, num_classes: int, splits: int = 10, device: str | torch.device = "cpu"
    ) -> None:
        if splits < 1 or n_total < splits:
            raise ValueError(f"need n_total >= splits >= 1, got n_total={n_total}, splits={splits}")
        self.n_total = n_total
        self.splits = splits
        self.seen = 0
        self._ends = torch.tensor(split_bounds(n_total, splits)[1:], device=device)
        self._plogp = torch.zeros(splits, dtype=torch.float64, device=device)
        self._p = torch.zeros(splits, num_classes, dtype=torch.float64, device=device)
        self._count = torch.zeros(splits, dtype=torch.float64, device=device)

    def update(self, logits: torch.Tensor) -> None:
        b = logits.shape[0]
        if self.seen + b > self.n_total:
            raise ValueError(f"more than the announced {self.n_total} samples")
        lp = torch.log_softmax(logits.detach().to(self._p.device, torch.float64), dim=1)
        p = lp.exp()
        j = torch.arange(self.seen, self.seen + b, device=self._p.device)
        k = torch.searchsorted(self._ends, j, right=True)
        self._plogp.index_add_(0, k, (p * lp).sum(1))
        self._p.index_add_(0, k, p)
        self._count.index_add_(0, k, torch.ones(b, dtype=torch.float64, device=self._p.device))
        self.seen += b

    def per_split(self) -> np.ndarray:
        if self.seen != self.n_total:
            raise ValueError(f"saw {self.seen} of the announced {self.n_total} samples")
        pbar = self._p / self._count[:, None]
        ent_bar = torch.special.xlogy(pbar, pbar).sum(1)
        return torch.exp(self._plogp / self._count - ent_bar).cpu().numpy()

    def compute(self) -> tuple[float, float]:
        s = self.per_split()
        return float(np.mean(s)), float(np.std(s))


# --------------------------------------------------------------------------- npz files
def save_npz_stats(path: str | os.PathLike[str], stats: ReferenceStats) -> None:
    """Write TTUR-compatible npz (`mu`, `sigma`) plus `meta` (JSON), atomically (temp + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                mu=stats.mu,
                sigma=stats.sigma,
                meta=np.array(json.dumps(stats.meta, sort_keys=True)),
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_npz_stats(path: str | os.PathLike[str]) -> ReferenceStats:
    """Read `mu`/`sigma` from an npz (ours, TTUR's `fid_stats_cifar10_train.npz`, AutoGAN's)."""
    path = Path(path)
    if not path.is_file():
        raise MetricsError(f"statistics file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            mu = np.asarray(z["mu"], dtype=np.float64)
            sigma = np.asarray(z["sigma"], dtype=np.float64)
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {"source": path.name}
        stats = ReferenceStats(mu, sigma, meta)
    except Exception as e:  # BadZipFile, missing key, bad JSON, wrong shapes ...
        raise MetricsError(
            f"{path}: not a readable statistics file with 'mu' and 'sigma' ({type(e).__name__}: {e})"
        ) from e
    if not (np.isfinite(stats.mu).all() and np.isfinite(stats.sigma).all()):
        raise MetricsError(f"{path}: statistics contain NaN or infinity")
    return stats


# --------------------------------------------------------------------------- the cache
def default_cache_dir() -> Path:
    """`$EAGAN_CACHE/stats` if EAGAN_CACHE is set, else `~/.cache/eagan/stats`."""
    root = os.environ.get(CACHE_ENV)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "eagan") / "stats"


def stats_key(
    dataset: str, split: str, resolution: int, extractor: FeatureExtractor
) -> dict[str, Any]:
    """Everything the statistics depend on; a change in any of it means other statistics."""
    return {
        "format": STATS_FORMAT,
        "dataset": dataset,
        "split": split,
        "resolution": int(resolution),
        **extractor.describe(),
    }


def stats_path(key: dict[str, Any], cache_dir: str | os.PathLike[str] | None = None) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return (
        root
        / f"{key['dataset']}-{key['split']}-{key['resolution']}px-{key['extractor']}-{digest}.npz"
    )


@torch.inference_mode()
def compute_feature_stats(
    images: torch.Tensor,
    extractor: FeatureExtractor,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
) -> FeatureStats:
    """Statistics of the extractor's features over a tensor of real images (uint8 or [-1, 1])."""
    dev = torch.device(device) if device is not None else next(extractor.parameters()).device
    extractor.to(dev).eval()
    bs = batch_size or extractor.default_batch_size(dev)
    acc = FeatureStats(extractor.feature_dim, device=dev)
    for i in range(0, len(images), bs):
        feats, _ = extractor(images[i : i + bs].to(dev))
        acc.update(feats)
    return acc


def reference_stats(
    dataset: str,
    extractor: FeatureExtractor,
    *,
    split: str | None = None,
    resolution: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    rebuild: bool = False,
    root: str | None = None,
) -> ReferenceStats:
    """Real statistics of (data set, split, resolution) under `extractor`, cached on disk.
    `root` is where CIFAR-10 / STL-10 are read from (the spec's data root).

    `dataset` is a name known to `runtime.data` (today: `digits`, default split `heldout`,
    default resolution 16) or a path to an `.npz` file with `mu`/`sigma`, which is loaded as is.
    A cache file whose metadata do not match, or that cannot be read, is rebuilt.
    """
    from runtime.data import DATASET_SPLITS, real_images

    if dataset.endswith(".npz"):
        return load_npz_stats(dataset)
    if dataset not in DATASET_SPLITS:
        raise MetricsError(
            f"no real images for data set {dataset!r} (known: {', '.join(sorted(DATASET_SPLITS))}); "
            "pass precomputed statistics as an .npz file instead, e.g. TTUR's "
            "http://bioinf.jku.at/research/ttur/ttur_stats/fid_stats_cifar10_train.npz"
        )
    split = split or DATASET_SPLITS[dataset][0]
    resolution = resolution or extractor.in_resolution or 32
    key = stats_key(dataset, split, resolution, extractor)
    path = stats_path(key, cache_dir)
    if path.exists() and not rebuild:
        try:
            cached = load_npz_stats(path)
        except MetricsError as e:
            warnings.warn(
                f"rebuilding unreadable statistics cache: {e}", RuntimeWarning, stacklevel=2
            )
        else:
            if {k: cached.meta.get(k) for k in key} == key and cached.dim == extractor.feature_dim:
                return cached
            warnings.warn(f"rebuilding stale statistics cache {path}", RuntimeWarning, stacklevel=2)
    try:
        images = real_images(dataset, split, resolution, root=root)
    except ValueError as e:
        raise MetricsError(str(e)) from e
    acc = compute_feature_stats(images, extractor, batch_size, device)
    stats = acc.to_reference(key)
    save_npz_stats(path, stats)
    return stats
