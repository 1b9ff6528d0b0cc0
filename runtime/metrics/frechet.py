"""Fréchet distance between two Gaussians, by the symmetric eigenvalue form (metrics.md §5.4).

    FD = ‖μ_g − μ_r‖² + tr Σ_g + tr Σ_r − 2 Σ_i √max(λ_i, 0),   λ = eigvalsh(R Σ_g R),  R = √Σ_r

`Σ_r Σ_g` and `R Σ_g R` are similar matrices, so the trace of their square roots is the same; the
second is symmetric positive semi-definite, so its eigenvalues are real and `eigvalsh` is cheap
and never produces complex numbers. With R computed once per reference set this is ~15x faster
than `scipy.linalg.sqrtm(Σ_g Σ_r)` at d = 2048 and agrees with it to ~1e-12 (full rank) or ~1e-7
relative (singular covariances). Always float64: float32 is off by up to 1e-3 relative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch


def _as_f64(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().to(device="cpu", dtype=torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def _sym(a: np.ndarray) -> np.ndarray:
    # running sums and products leave ~1e-16 asymmetry; eigh/eigvalsh read one triangle only
    out: np.ndarray = (a + a.T) * 0.5
    return out


def psd_sqrt(sigma: Any) -> np.ndarray:
    """Symmetric square root of a covariance (float64), eigenvalues clipped at 0."""
    w, v = np.linalg.eigh(_sym(_as_f64(sigma)))
    root: np.ndarray = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    return root


@dataclass(frozen=True, eq=False)
class ReferenceStats:
    """Mean and covariance (float64) of real features, with √Σ computed once and kept.

    `meta` says where the statistics come from (data set, split, resolution, extractor, weights
    id, n) — empty for external files such as TTUR's `fid_stats_cifar10_train.npz`.
    """

    mu: np.ndarray
    sigma: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        mu = np.asarray(self.mu, dtype=np.float64).reshape(-1)
        sigma = np.asarray(self.sigma, dtype=np.float64)
        if sigma.shape != (mu.size, mu.size):
            raise ValueError(f"sigma has shape {sigma.shape}, expected {(mu.size, mu.size)}")
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "sigma", sigma)

    @property
    def dim(self) -> int:
        return int(self.mu.size)

    @cached_property
    def sqrt_sigma(self) -> np.ndarray:
        """√Σ_r (float64); computed on first use (≈1 s at d = 2048 on 2 cores)."""
        return psd_sqrt(self.sigma)

    @cached_property
    def trace_sigma(self) -> float:
        return float(np.trace(self.sigma))


def frechet_distance(
    mu: Any,
    sigma: Any,
    reference: ReferenceStats | tuple[Any, Any],
) -> float:
    """Fréchet distance between N(mu, sigma) and the reference Gaussian, float64.

    `reference` may be a `ReferenceStats` (its √Σ is cached across calls) or a (mu, sigma) pair.
    Non-finite inputs (a generator that produced NaNs) give `nan` rather than an exception, so a
    search can rank such a candidate last.
    """
    ref = reference if isinstance(reference, ReferenceStats) else ReferenceStats(*reference)
    mu_g = _as_f64(mu).reshape(-1)
    sigma_g = _sym(_as_f64(sigma))
    if mu_g.size != ref.dim or sigma_g.shape != (ref.dim, ref.dim):
        raise ValueError(
            f"statistics of dimension {mu_g.size} / {sigma_g.shape} cannot be compared "
            f"with reference statistics of dimension {ref.dim}"
        )
    if not (np.isfinite(mu_g).all() and np.isfinite(sigma_g).all()):
        return math.nan
    # numpy (OpenBLAS/LAPACK) on the CPU: ~1.4x faster than torch's float64 matmul here, and the
    # step is tiny next to feature extraction on any device
    r = ref.sqrt_sigma
    m = _sym(r @ sigma_g @ r)
    lam = np.linalg.eigvalsh(m)
    # eigenvalues of a singular product come out as ±ε‖M‖ noise; clipping at 0 leaves an
    # absolute error of order √(ε‖M‖) per such eigenvalue (≈1e-5 in FD at ‖Σ‖ ~ 200), far below
    # any meaningful FD difference; scipy's sqrtm has errors of the same order there
    tr_sqrt = float(np.sqrt(np.clip(lam, 0, None)).sum())
    diff = mu_g - ref.mu
    return float(diff @ diff) + float(np.trace(sigma_g)) + ref.trace_sigma - 2.0 * tr_sqrt
