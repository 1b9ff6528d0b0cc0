"""Metrics maths, statistics, cache, the digits LeNet and evaluate_generator.

References are independent plain implementations (scipy sqrtm, numpy np.cov, the openai IS loop)
or closed forms, never numbers produced by the code under test.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from runtime.data import digits_split
from runtime.metrics import (
    FeatureStats,
    InceptionScore,
    MetricsError,
    ReferenceStats,
    evaluate_generator,
    frechet_distance,
    lenet_digits,
    load_npz_stats,
    reference_stats,
    save_npz_stats,
    to_uint8,
    train_lenet,
)
from runtime.metrics.evaluate import LatentStream
from runtime.metrics.frechet import psd_sqrt
from runtime.metrics.lenet import accuracy
from runtime.metrics.stats import stats_key, stats_path

torch.set_num_threads(2)


# --------------------------------------------------------------------------- references
def fid_scipy(mu1, s1, mu2, s2, eps=1e-6):
    """pytorch-fid / TTUR formula with scipy.linalg.sqrtm (the published reference)."""
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = scipy.linalg.sqrtm(s1.dot(s2))
        if not np.isfinite(covmean).all():
            off = np.eye(s1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((s1 + off).dot(s2 + off))
    covmean = np.real(covmean)
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def is_openai(probs: np.ndarray, splits: int) -> tuple[float, float]:
    """openai improved-gan inception_score loop."""
    scores = []
    n = probs.shape[0]
    for i in range(splits):
        part = probs[(i * n // splits) : ((i + 1) * n // splits), :]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        kl = np.mean(np.sum(kl, 1))
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def softmax64(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def random_spd(d: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.standard_normal((d, 2 * d))
    return a @ a.T / (2 * d) + 0.01 * np.eye(d)


# --------------------------------------------------------------------------- Fréchet distance
def test_frechet_matches_sqrtm_on_random_spd():
    rng = np.random.default_rng(1)
    d = 64
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = random_spd(d, rng), random_spd(d, rng)
    ref = fid_scipy(mu1, s1, mu2, s2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = frechet_distance(mu1, s1, ReferenceStats(mu2, s2))
    assert abs(ours - ref) <= 1e-6 * abs(ref)


@pytest.mark.parametrize("n", [20, 63])
def test_frechet_matches_sqrtm_on_rank_deficient_covariances(n):
    # N < d: both covariances singular (rank n-1), as for a collapsed generator or tiny samples
    rng = np.random.default_rng(n)
    d = 64
    x1 = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * 0.3 + 1.0
    x2 = rng.standard_normal((n, d)) * 0.7
    mu1, s1 = x1.mean(0), np.cov(x1, rowvar=False)
    mu2, s2 = x2.mean(0), np.cov(x2, rowvar=False)
    assert np.linalg.matrix_rank(s1) < d
    ref = fid_scipy(mu1, s1, mu2, s2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning / LinAlgWarning may leak
        ours = frechet_distance(mu1, s1, (mu2, s2))
    assert abs(ours - ref) <= 1e-6 * abs(ref)


def test_frechet_near_singular_spectrum():
    rng = np.random.default_rng(3)
    d = 64
    q1, _ = np.linalg.qr(rng.standard_normal((d, d)))
    q2, _ = np.linalg.qr(rng.standard_normal((d, d)))
    s1 = (q1 * np.logspace(0, -14, d)) @ q1.T
    s2 = (q2 * np.logspace(0, -12, d)) @ q2.T
    mu1, mu2 = np.zeros(d), np.full(d, 0.1)
    ref = fid_scipy(mu1, s1, mu2, s2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = frechet_distance(mu1, s1, (mu2, s2))
    assert abs(ours - ref) <= 1e-6 * abs(ref)


def test_frechet_closed_form_for_diagonal_gaussians():
    # diagonal covariances: FD = |mu1 - mu2|^2 + sum (sqrt(v1) - sqrt(v2))^2
    rng = np.random.default_rng(4)
    v1, v2 = rng.uniform(0.1, 2, 32), rng.uniform(0.1, 2, 32)
    mu1, mu2 = rng.standard_normal(32), rng.standard_normal(32)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(v1), (mu2, np.diag(v2))) == pytest.approx(
        expected, rel=1e-12
    )
    assert frechet_distance(mu1, np.diag(v1), (mu1, np.diag(v1))) == pytest.approx(0, abs=1e-10)


def test_reference_sqrt_is_computed_once_and_correct():
    rng = np.random.default_rng(5)
    s = random_spd(16, rng)
    ref = ReferenceStats(np.zeros(16), s)
    r = ref.sqrt_sigma
    assert ref.sqrt_sigma is r
    np.testing.assert_allclose(r @ r, s, atol=1e-12)
    np.testing.assert_allclose(psd_sqrt(s), scipy.linalg.sqrtm(s).real, atol=1e-10)


def test_frechet_nan_statistics_give_nan():
    s = np.eye(4)
    assert math.isnan(frechet_distance(np.full(4, np.nan), s, (np.zeros(4), s)))
    with pytest.raises(ValueError, match="dimension"):
        frechet_distance(np.zeros(3), np.eye(3), (np.zeros(4), s))


# --------------------------------------------------------------------------- Inception Score
@pytest.mark.parametrize("n,splits", [(200, 10), (137, 10), (50, 1), (99, 7)])
def test_is_streaming_matches_openai_loop(n, splits):
    rng = np.random.default_rng(n)
    logits = (rng.standard_normal((n, 13)) * 3).astype(np.float32)
    ref = is_openai(softmax64(logits), splits)
    for bs in (1, 16, n):
        acc = InceptionScore(n, 13, splits)
        for i in range(0, n, bs):
            acc.update(torch.from_numpy(logits[i : i + bs]))
        mean, std = acc.compute()
        assert mean == pytest.approx(ref[0], rel=1e-10)
        assert std == pytest.approx(ref[1], rel=1e-8, abs=1e-12)


def test_is_closed_forms():
    n, c = 100, 10
    acc = InceptionScore(n, c, splits=10)
    acc.update(torch.zeros(n, c))  # p(y|x) uniform: KL = 0
    assert acc.compute() == pytest.approx((1.0, 0.0), abs=1e-12)
    acc = InceptionScore(n, c, splits=10)
    acc.update(torch.nn.functional.one_hot(torch.arange(n) % c, c).double() * 1000)
    assert acc.compute()[0] == pytest.approx(c, rel=1e-9)  # confident and balanced: IS = #classes


def test_is_rejects_wrong_counts():
    acc = InceptionScore(10, 3)
    acc.update(torch.zeros(5, 3))
    with pytest.raises(ValueError):
        acc.compute()
    with pytest.raises(ValueError):
        acc.update(torch.zeros(6, 3))


# --------------------------------------------------------------------------- streaming statistics
@pytest.mark.parametrize("bs", [1, 7, 64, 500])
def test_streaming_stats_equal_numpy(bs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 24)) @ rng.standard_normal((24, 24)) + 1000.0  # large offset
    acc = FeatureStats(24)
    for i in range(0, len(x), bs):
        acc.update(torch.from_numpy(x[i : i + bs]))
    np.testing.assert_allclose(acc.mean().numpy(), x.mean(0), rtol=1e-13)
    np.testing.assert_allclose(acc.cov().numpy(), np.cov(x, rowvar=False), rtol=1e-9, atol=1e-11)
    assert acc.n == 500


# --------------------------------------------------------------------------- quantisation
def test_to_uint8_truncates_or_rounds():
    x = torch.tensor([-2.0, -1.0, -0.999, 0.0, 0.0039, 0.5, 0.99, 1.0, 1.5])
    lin = np.clip(x.numpy().astype(np.float32) * np.float32(127.5) + np.float32(127.5), 0, 255)
    np.testing.assert_array_equal(to_uint8(x, "truncate").numpy(), np.floor(lin).astype(np.uint8))
    np.testing.assert_array_equal(to_uint8(x, "round").numpy(), np.round(lin).astype(np.uint8))
    assert to_uint8(torch.tensor([0.0]))[0] == 127  # 127.5 truncates, as AutoGAN/EAGAN did
    u = torch.arange(0, 256, dtype=torch.uint8)
    assert to_uint8(u) is u


# --------------------------------------------------------------------------- LeNet
def test_shipped_lenet_outputs_and_accuracy():
    m = lenet_digits()
    s = digits_split(16)
    f, logits = m(s.x_heldout)
    assert f.shape == (500, 64) and logits.shape == (500, 10)
    assert (f >= 0).all()  # post-ReLU penultimate features
    acc = accuracy(m, s.x_heldout, s.y_heldout)
    assert acc >= 0.98  # measured: 0.996 (cpu-benchmark.md reports 99.6 %)


def test_retrained_lenet_reaches_heldout_accuracy():
    # the recipe of cpu-benchmark.md §3 (≈8 s on 2 quiet cores); measured 0.996
    _, acc = train_lenet()
    assert acc >= 0.98


# --------------------------------------------------------------------------- cache
def test_stats_key_covers_everything(tmp_path):
    m = lenet_digits()
    base = stats_path(stats_key("digits", "heldout", 16, m), tmp_path)
    m2 = lenet_digits(quantize="truncate")
    assert stats_path(stats_key("digits", "heldout", 16, m2), tmp_path) != base
    assert stats_path(stats_key("digits", "train", 16, m), tmp_path) != base
    assert stats_path(stats_key("digits", "heldout", 32, m), tmp_path) != base
    m.weights_id = "other"
    assert stats_path(stats_key("digits", "heldout", 16, m), tmp_path) != base


def test_reference_stats_cached_rebuilt_when_stale_or_corrupt(tmp_path, monkeypatch):
    import runtime.metrics.stats as stats_mod

    m = lenet_digits()
    monkeypatch.setenv("EAGAN_CACHE", str(tmp_path / "root"))
    first = reference_stats("digits", m)
    files = list((tmp_path / "root" / "stats").glob("*.npz"))
    assert len(files) == 1 and first.meta["n"] == 500
    # against an independent computation
    f, _ = m(digits_split(16).x_heldout)
    f64 = f.double().numpy()
    np.testing.assert_allclose(first.mu, f64.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(first.sigma, np.cov(f64, rowvar=False), rtol=1e-9, atol=1e-10)

    calls = []
    real = stats_mod.compute_feature_stats
    monkeypatch.setattr(
        stats_mod, "compute_feature_stats", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    again = reference_stats("digits", m)
    assert calls == [] and np.array_equal(again.sigma, first.sigma)  # served from the cache

    files[0].write_bytes(b"not a zip file")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        rebuilt = reference_stats("digits", m)
    assert calls == [1] and np.allclose(rebuilt.mu, first.mu)

    stale = ReferenceStats(first.mu, first.sigma, dict(first.meta, weights_id="something else"))
    save_npz_stats(files[0], stale)
    with pytest.warns(RuntimeWarning, match="stale"):
        reference_stats("digits", m)
    assert calls == [1, 1]
    assert load_npz_stats(files[0]).meta["weights_id"] == m.weights_id
    assert not list(files[0].parent.glob("*.tmp"))  # atomic writes leave no temp files


def test_ttur_npz_loads(tmp_path):
    rng = np.random.default_rng(0)
    mu, sigma = rng.standard_normal(8), random_spd(8, rng)
    p = tmp_path / "fid_stats_cifar10_train.npz"
    np.savez(p, mu=mu, sigma=sigma)  # TTUR layout: only mu and sigma
    ref = reference_stats(str(p), lenet_digits())
    assert np.array_equal(ref.mu, mu) and np.array_equal(ref.sigma, sigma)
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(MetricsError, match="bad.npz"):
        load_npz_stats(tmp_path / "bad.npz")
    with pytest.raises(MetricsError, match="does not exist"):
        load_npz_stats(tmp_path / "none.npz")


# --------------------------------------------------------------------------- evaluate_generator
class TinyGen(nn.Module):
    latent_dim = 8

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(8, 256)
        self.bn = nn.BatchNorm1d(256)

    def forward(self, z):
        return torch.tanh(self.bn(self.fc(z))).view(-1, 1, 16, 16)


@pytest.fixture(scope="module")
def lenet_and_ref(tmp_path_factory):
    m = lenet_digits()
    return m, reference_stats("digits", m, cache_dir=tmp_path_factory.mktemp("cache"))


def test_latent_stream_independent_of_batching():
    a = LatentStream(5, seed=3).take(3000)
    s = LatentStream(5, seed=3)
    b = torch.cat([s.take(k) for k in (1, 7, 1500, 1016, 476)])
    assert torch.equal(a, b)
    assert not torch.equal(a, LatentStream(5, seed=4).take(3000))


def test_evaluate_matches_plain_computation(lenet_and_ref):
    m, ref = lenet_and_ref
    g = TinyGen()
    n = 300
    res = evaluate_generator(g, n, m, ref, batch_size=64, seed=1)
    with torch.no_grad():
        g.eval()
        imgs = g(LatentStream(8, 1).take(n))
        f, logits = m(imgs)
    f64 = f.double().numpy()
    fid_ref = fid_scipy(f64.mean(0), np.cov(f64, rowvar=False), ref.mu, ref.sigma)
    is_ref = is_openai(softmax64(logits.double().numpy()), 10)
    assert res.fid == pytest.approx(fid_ref, rel=1e-6)
    assert res.is_mean == pytest.approx(is_ref[0], rel=1e-6)
    assert res.is_std == pytest.approx(is_ref[1], rel=1e-5, abs=1e-9)
    assert (res.n, res.batch_size, res.seed, res.splits) == (n, 64, 1, 10)
    assert res.extractor == m.name and res.weights_id == m.weights_id and res.quantize == "none"
    assert "digits/heldout/16px" in res.reference
    json.dumps(res.to_dict())


def test_evaluate_deterministic_and_batch_size_independent(lenet_and_ref):
    m, ref = lenet_and_ref
    g = TinyGen()
    g.train()
    a = evaluate_generator(g, 400, m, ref, batch_size=50, seed=7)
    assert g.training  # mode restored
    b = evaluate_generator(g, 400, m, ref, batch_size=50, seed=7)
    assert (a.fid, a.is_mean, a.is_std) == (b.fid, b.is_mean, b.is_std)
    c = evaluate_generator(g, 400, m, ref, batch_size=400, seed=7)
    d = evaluate_generator(g, 400, m, ref, batch_size=13, seed=7)
    for r in (c, d):  # measured: equal to ~1e-13 relative on this CPU
        assert r.fid == pytest.approx(a.fid, rel=1e-6)
        assert r.is_mean == pytest.approx(a.is_mean, rel=1e-6)
    e = evaluate_generator(g, 400, m, ref, batch_size=50, seed=8)
    assert e.fid != a.fid


def test_lenet_features_independent_of_batch_size():
    m = lenet_digits()
    x = digits_split(16).x_heldout[:64]
    full, _ = m(x)
    parts = torch.cat([m(x[i : i + k])[0] for i, k in ((0, 1), (1, 5), (6, 58))])
    assert (full - parts).abs().max().item() <= 1e-5 * full.abs().max().item()


def test_real_heldout_images_score_like_real_data(lenet_and_ref):
    m, ref = lenet_and_ref
    ho = digits_split(16).x_heldout
    pos = [0]

    def replay(z):  # a "generator" that returns the held-out images in order
        b = z.shape[0]
        out = ho[pos[0] : pos[0] + b]
        pos[0] += b
        return out

    res = evaluate_generator(replay, 500, m, ref, batch_size=100, latent_dim=4, splits=1)
    # the very same images as the reference; 14 dead LeNet features make the covariance
    # singular, where any matrix square root is accurate to ~√ε·‖Σ‖ only (measured: 6e-6)
    assert abs(res.fid) < 1e-7 * np.trace(ref.sigma)
    assert res.is_mean > 8.5  # cpu-benchmark.md: IS analogue of real held-out images 9.53


def test_evaluate_rejects_bad_generators(lenet_and_ref):
    m, ref = lenet_and_ref
    with pytest.raises(MetricsError, match="16x16"):
        evaluate_generator(lambda z: torch.zeros(z.shape[0], 1, 8, 8), 100, m, ref, latent_dim=2)
    with pytest.raises(MetricsError, match="images"):
        evaluate_generator(lambda z: torch.zeros(z.shape[0], 256), 100, m, ref, latent_dim=2)
    with pytest.raises(MetricsError, match="dimension"):
        evaluate_generator(TinyGen(), 100, m, ReferenceStats(np.zeros(3), np.eye(3)))
