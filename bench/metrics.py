"""Benchmark of the metrics: Fréchet step (eigen form vs scipy sqrtm) and feature extraction.

    python bench/metrics.py [--json out.json] [--threads 2] [--inception-batches 3]

Run on a quiet machine: with other jobs on the same 2 cores, BLAS timings get 3-40x slower and
erratic (research/metrics.md §4).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import scipy.linalg
import torch
from rich.console import Console
from rich.table import Table

from runtime.metrics import ReferenceStats, frechet_distance, inception_v3_fid, lenet_digits
from runtime.metrics.inception import random_inception_state_dict

ROUND_EVALS, ROUND_IMAGES = 32, 5000  # one stage-1 round: population 32 x 5,000 images


def synthetic_features(n: int, d: int, rng: np.random.Generator, shift: float) -> np.ndarray:
    """Non-negative, correlated features with a decaying spectrum, shaped like pool3."""
    basis = rng.standard_normal((d, d)) / np.sqrt(d)
    scales = 1.0 / (1.0 + np.arange(d)) ** 0.7
    z = rng.standard_normal((n, d)) * scales
    return np.maximum(z @ basis + 0.3 + shift, 0).astype(np.float32)


def fid_sqrtm(mu1, s1, mu2, s2):
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = scipy.linalg.sqrtm(s1.dot(s2))
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(covmean)))


def bench_frechet(d: int, n: int, reps: int) -> dict:
    rng = np.random.default_rng(0)
    f1 = synthetic_features(n, d, rng, 0.0).astype(np.float64)
    f2 = synthetic_features(n, d, rng, 0.05).astype(np.float64)
    mu1, s1 = f1.mean(0), np.cov(f1, rowvar=False)
    mu2, s2 = f2.mean(0), np.cov(f2, rowvar=False)
    t_eig_full, t_eig_pre, t_sqrtm = [], [], []
    for _ in range(reps):  # interleaved, so background load hits both alike
        t = time.perf_counter()
        ref = ReferenceStats(mu2, s2)
        _ = ref.sqrt_sigma
        t_sqrt = time.perf_counter() - t
        t = time.perf_counter()
        ours = frechet_distance(mu1, s1, ref)
        t_eig_pre.append(time.perf_counter() - t)
        t_eig_full.append(t_eig_pre[-1] + t_sqrt)
        t = time.perf_counter()
        ref_val = fid_sqrtm(mu1, s1, mu2, s2)
        t_sqrtm.append(time.perf_counter() - t)
    med = lambda v: float(np.median(v))
    return {
        "d": d,
        "n": n,
        "reps": reps,
        "fid_sqrtm": ref_val,
        "fid_eigen": ours,
        "abs_diff": abs(ours - ref_val),
        "rel_diff": abs(ours - ref_val) / abs(ref_val),
        "s_sqrtm": med(t_sqrtm),
        "s_eigen_precomputed_sqrt": med(t_eig_pre),
        "s_eigen_including_sqrt": med(t_eig_full),
        "speedup_precomputed": med(t_sqrtm) / med(t_eig_pre),
        "speedup_including_sqrt": med(t_sqrtm) / med(t_eig_full),
    }


@torch.inference_mode()
def throughput(extractor, images: torch.Tensor, batch: int, batches: int) -> float:
    extractor(images[:batch])  # warm-up
    t = time.perf_counter()
    for i in range(batches):
        extractor(images[i * batch : (i + 1) * batch])
    return batch * batches / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frechet-reps", type=int, default=3)
    ap.add_argument("--inception-batch", type=int, default=10)
    ap.add_argument("--inception-batches", type=int, default=3)
    ap.add_argument("--inception-res", type=int, default=32)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    res: dict = {"threads": a.threads, "torch": torch.__version__, "cpu_count": os.cpu_count()}

    res["frechet"] = bench_frechet(2048, 5000, a.frechet_reps)

    g = torch.Generator().manual_seed(0)
    lenet = lenet_digits()
    x16 = torch.rand(5000, 1, 16, 16, generator=g) * 2 - 1
    res["lenet_img_s"] = throughput(lenet, x16, 500, 10)

    with tempfile.TemporaryDirectory() as tmp:
        w = Path(tmp) / "random_inception.pth"
        torch.save(random_inception_state_dict(0), w)
        inc = inception_v3_fid(w, allow_download=False)
    r = a.inception_res
    n = a.inception_batch * (a.inception_batches + 1)
    xr = torch.rand(n, 3, r, r, generator=g) * 2 - 1
    res["inception_img_s"] = throughput(inc, xr, a.inception_batch, a.inception_batches)
    res["inception_batch"] = a.inception_batch
    res["inception_input"] = f"{r}x{r} -> TF1 resize 299"

    per_round = ROUND_EVALS * ROUND_IMAGES
    fre = res["frechet"]["s_eigen_precomputed_sqrt"]
    res["round_projection"] = {
        "evaluations": ROUND_EVALS,
        "images_each": ROUND_IMAGES,
        "inception_s": per_round / res["inception_img_s"] + ROUND_EVALS * fre,
        "lenet_s": per_round / res["lenet_img_s"],
    }

    t = Table(title=f"eagan metrics bench ({a.threads} threads, torch {torch.__version__})")
    t.add_column("measurement")
    t.add_column("value", justify="right")
    f = res["frechet"]
    t.add_row(f"Fréchet d={f['d']}: scipy sqrtm(Σ1Σ2)", f"{f['s_sqrtm']:.2f} s")
    t.add_row("Fréchet: eigen form, √Σ_r precomputed", f"{f['s_eigen_precomputed_sqrt']:.2f} s")
    t.add_row("Fréchet: eigen form incl. √Σ_r", f"{f['s_eigen_including_sqrt']:.2f} s")
    t.add_row(
        "speed-up (precomputed / incl. √Σ_r)",
        f"{f['speedup_precomputed']:.1f}x / {f['speedup_including_sqrt']:.1f}x",
    )
    t.add_row(
        "FID sqrtm vs eigen: value / |diff| / rel",
        f"{f['fid_sqrtm']:.6f} / {f['abs_diff']:.1e} / {f['rel_diff']:.1e}",
    )
    t.add_row("LeNet 16x16 features, batch 500", f"{res['lenet_img_s']:,.0f} img/s")
    t.add_row(
        f"Inception {res['inception_input']}, batch {a.inception_batch}",
        f"{res['inception_img_s']:.1f} img/s",
    )
    p = res["round_projection"]
    t.add_row(
        f"one stage-1 round ({ROUND_EVALS} x {ROUND_IMAGES:,}), Inception",
        f"{p['inception_s'] / 3600:.1f} h",
    )
    t.add_row(
        f"one stage-1 round ({ROUND_EVALS} x {ROUND_IMAGES:,}), LeNet", f"{p['lenet_s']:.1f} s"
    )
    Console().print(t)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
