"""An independent check of the FID Inception port against torch-fidelity (issue 17, item 6).

Offline: one random state dict in the real `pt_inception-2015-12-05` layout is saved to a file
and loaded by both implementations (ours through `inception_v3_fid`, strict; torch-fidelity's
`FeatureExtractorInceptionV3` through its `feature_extractor_weights_path`). Skipped when
torch-fidelity is not installed (it is in the `test` extra)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from runtime.metrics import inception_v3_fid
from runtime.metrics.inception import (
    INCEPTION_SIZE,
    InceptionV3FID,
    random_inception_state_dict,
    tf1_resize_bilinear,
)
from runtime.metrics.stats import InceptionScore

fidelity_inception = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
fidelity_resize = pytest.importorskip("torch_fidelity.interpolate_compat_tensorflow")
fidelity_isc = pytest.importorskip("torch_fidelity.metric_isc")

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("w") / "pt_inception-2015-12-05-random.pth"
    torch.save(random_inception_state_dict(seed=7), path)
    return path


@pytest.fixture(scope="module")
def both(weights_file: Path) -> tuple[InceptionV3FID, torch.nn.Module]:
    ours = inception_v3_fid(weights_file, allow_download=False)
    theirs = fidelity_inception.FeatureExtractorInceptionV3(
        "inception-v3-compat",
        ["2048", "logits_unbiased"],
        feature_extractor_weights_path=str(weights_file),
    )
    return ours, theirs


@pytest.mark.parametrize(
    ("shape", "size"),
    [((32, 32), (299, 299)), ((16, 24), (299, 299)), ((96, 64), (299, 299)), ((512, 400), (299, 299)),
     ((32, 32), (7, 13))],
)  # fmt: skip
def test_tf1_resize_bit_identical(shape: tuple[int, int], size: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(shape[0] * 1000 + shape[1])
    x = torch.randint(0, 256, (2, 3, *shape), generator=g, dtype=torch.uint8).float()
    theirs = fidelity_resize.interpolate_bilinear_2d_like_tensorflow1x(
        x, size=size, align_corners=False
    )
    assert torch.equal(tf1_resize_bilinear(x, size), theirs)


def test_pool3_and_unbiased_logits_match(both: tuple[InceptionV3FID, torch.nn.Module]) -> None:
    ours, theirs = both
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (4, 3, 32, 32), generator=g, dtype=torch.uint8)
    pool3, logits = ours.features_and_logits(ours.preprocess(images))
    their_pool3, their_logits = theirs(images)
    assert pool3.shape == (4, 2048) and logits.shape == (4, 1008)
    # float tolerance: our port runs channels_last, so convolutions sum in another order
    torch.testing.assert_close(pool3, their_pool3, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logits, their_logits, rtol=1e-4, atol=1e-4)
    # the logits are bias-free in both (the TF graph's softmax/logits/MatMul)
    assert not torch.allclose(logits, logits + ours.fc.bias, atol=1e-3)


def test_inception_input_size_is_the_graphs() -> None:
    assert fidelity_inception.FeatureExtractorInceptionV3.INPUT_IMAGE_SIZE == INCEPTION_SIZE


@pytest.mark.parametrize(("n", "splits", "batch"), [(1000, 10, 64), (257, 3, 50), (10, 10, 3)])
def test_inception_score_matches_unshuffled(n: int, splits: int, batch: int) -> None:
    g = torch.Generator().manual_seed(n)
    # peaked, varied predictions, so that IS is far from 1 and the splits differ
    logits = 4.0 * torch.randn(n, 1008, generator=g, dtype=torch.float32)
    score = InceptionScore(n, 1008, splits=splits)
    for start in range(0, n, batch):
        score.update(logits[start : start + batch])
    mean, std = score.compute()
    ref = fidelity_isc.isc_features_to_metric(logits, splits=splits, shuffle=False)
    assert mean == pytest.approx(ref[fidelity_isc.KEY_METRIC_ISC_MEAN], rel=1e-12)
    assert std == pytest.approx(ref[fidelity_isc.KEY_METRIC_ISC_STD], rel=1e-9, abs=1e-12)
    assert mean > 2.0 or n == splits  # one sample per split: IS is 1 by definition
