"""The FID Inception port: weight loading (offline, random weights through the real loader),
TF1 pre-processing, output heads and batch-size independence."""

from __future__ import annotations

import hashlib
import urllib.error

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from runtime.metrics import MetricsError, ReferenceStats, evaluate_generator, inception_v3_fid
from runtime.metrics.inception import (
    INCEPTION_ENV,
    INCEPTION_FILE,
    INCEPTION_FILE_FIDELITY,
    INCEPTION_URL,
    InceptionV3FID,
    random_inception_state_dict,
    tf1_resize_bilinear,
)
from runtime.metrics.stats import FeatureStats

torch.set_num_threads(2)


def tf1_resize_loop(img: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """TF1 resize_bilinear (align_corners=False, half_pixel_centers=False), pixel by pixel,
    transcribed from tensorflow/core/kernels/image/resize_bilinear_op.cc (float32 throughout)."""
    h, w = img.shape
    img = img.astype(np.float32)
    hs, ws = np.float32(h) / np.float32(oh), np.float32(w) / np.float32(ow)
    out = np.zeros((oh, ow), np.float32)
    for y in range(oh):
        in_y = np.float32(y) * hs
        y0 = max(int(np.floor(in_y)), 0)
        y1 = min(int(np.ceil(in_y)), h - 1)
        yl = np.float32(in_y - np.floor(in_y))
        for x in range(ow):
            in_x = np.float32(x) * ws
            x0 = max(int(np.floor(in_x)), 0)
            x1 = min(int(np.ceil(in_x)), w - 1)
            xl = np.float32(in_x - np.floor(in_x))
            top = img[y0, x0] + (img[y0, x1] - img[y0, x0]) * xl
            bottom = img[y1, x0] + (img[y1, x1] - img[y1, x0]) * xl
            out[y, x] = top + (bottom - top) * yl
    return out


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("w") / "random_inception.pth"
    torch.save(random_inception_state_dict(seed=0), p)
    return p


@pytest.fixture(scope="module")
def net(weights_file):
    return inception_v3_fid(weights_file, allow_download=False)


@pytest.fixture
def no_weights_anywhere(tmp_path, monkeypatch):
    monkeypatch.delenv(INCEPTION_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints"


# --------------------------------------------------------------------------- pre-processing
def test_tf1_resize_known_answer():
    # TF1 maps dst -> src = dst * in/out (no half pixel): [0, 10] -> [0, 5, 10, 10]
    x = torch.tensor([[[[0.0, 10.0]]]])
    assert tf1_resize_bilinear(x, (1, 4)).flatten().tolist() == [0.0, 5.0, 10.0, 10.0]


@pytest.mark.parametrize("shape,out", [((5, 7), (299, 299)), ((4, 6), (13, 11)), ((9, 9), (4, 3))])
def test_tf1_resize_matches_loop(shape, out):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, shape).astype(np.float32)
    ours = tf1_resize_bilinear(torch.from_numpy(img)[None, None], out)[0, 0].numpy()
    np.testing.assert_array_equal(ours, tf1_resize_loop(img, *out))
    if out[0] > shape[0]:  # and it is not PyTorch's half-pixel bilinear
        pt = F.interpolate(
            torch.from_numpy(img)[None, None], size=out, mode="bilinear", align_corners=False
        )
        assert not np.allclose(ours, pt[0, 0].numpy(), atol=1.0)


def test_preprocess_quantises_resizes_and_normalises(net):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 6, 5, generator=g) * 2.2 - 1.1  # also outside [-1, 1]
    u8 = (x * 127.5 + 127.5).clamp(0, 255).floor()  # truncation
    expected = np.stack(
        [[tf1_resize_loop(u8[i, c].numpy(), 299, 299) for c in range(3)] for i in range(2)]
    )
    got = net.preprocess(x)
    assert got.shape == (2, 3, 299, 299)
    np.testing.assert_allclose(got.numpy(), (expected - 128) / 128, rtol=0, atol=1e-6)
    assert torch.equal(net.preprocess(u8.to(torch.uint8)), got)  # uint8 input: same path
    grey = x[:, :1]
    assert torch.equal(net.preprocess(grey), net.preprocess(grey.expand(-1, 3, -1, -1)))
    rounded = InceptionV3FID(quantize="round").preprocess(x)
    assert not torch.equal(rounded, got)


# --------------------------------------------------------------------------- network and weights
def test_loads_strictly_and_gives_pool3_and_unbiased_logits(net, weights_file):
    assert len(net.state_dict()) == 566  # the layout of pt_inception-2015-12-05-6726825d.pth
    sha = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert net.weights_id.endswith(sha[:16])
    sd = torch.load(weights_file, weights_only=True)
    assert torch.equal(net.fc.weight, sd["fc.weight"]) and net.fc.weight.shape == (1008, 2048)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    f, logits = net(x)
    assert f.shape == (3, 2048) and logits.shape == (3, 1008)
    assert (f >= 0).all()  # average of ReLU outputs
    torch.testing.assert_close(logits, f @ sd["fc.weight"].T)  # no bias, as the TF IS code
    assert not torch.allclose(logits, F.linear(f, sd["fc.weight"], sd["fc.bias"]))


def test_tf_graph_differences_matter(net):
    # the TF graph's pool branches differ from torchvision's blocks with the same weights:
    # average pools without padded zeros (A, C, E1) and a max pool in Mixed_7c
    from torchvision.models.inception import InceptionA, InceptionC, InceptionE

    def compare(plain, ours, x, k, pool):
        plain.eval().load_state_dict(ours.state_dict())
        a, b = plain(x), ours(x)
        torch.testing.assert_close(a[:, :-k], b[:, :-k], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(b[:, -k:], plain.branch_pool(pool(x)), rtol=1e-4, atol=1e-4)
        assert (a[:, -k:] - b[:, -k:]).abs().max() > 1e-2  # and torchvision's block differs

    def avg(x):
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)

    def mx(x):
        return F.max_pool2d(x, 3, stride=1, padding=1)

    g = torch.Generator().manual_seed(0)
    compare(
        InceptionA(288, pool_features=64),
        net.Mixed_5d,
        torch.rand(1, 288, 8, 8, generator=g),
        64,
        avg,
    )
    compare(
        InceptionC(768, channels_7x7=192),
        net.Mixed_6e,
        torch.rand(1, 768, 6, 6, generator=g),
        192,
        avg,
    )
    compare(InceptionE(1280), net.Mixed_7b, torch.rand(1, 1280, 4, 4, generator=g), 192, avg)
    compare(InceptionE(2048), net.Mixed_7c, torch.rand(1, 2048, 4, 4, generator=g), 192, mx)


def test_features_independent_of_batch_size(net):
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    net.train()  # must stay in eval mode: BN on running statistics
    assert not net.training
    full, _ = net(x)
    parts = torch.cat([net(x[i:j])[0] for i, j in ((0, 1), (1, 3), (3, 6))])
    # measured on this CPU: max |Δ| ≈ 1e-7 relative (float32 kernels differ by batch shape)
    assert (full - parts).abs().max() <= 1e-5 * full.abs().max()


def test_state_dict_without_num_batches_tracked_loads(tmp_path):
    sd = {
        k: v
        for k, v in random_inception_state_dict(1).items()
        if not k.endswith("num_batches_tracked")
    }
    p = tmp_path / "w.pth"
    torch.save(sd, p)
    assert inception_v3_fid(p, allow_download=False).weights_id.startswith("inception-2015-12-05")


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda sd: sd.update({"fc.weight": torch.zeros(1000, 2048)}), "fc.weight: shape"),
        (
            lambda sd: sd.update({"Mixed_5b.renamed": sd.pop("Mixed_5b.branch1x1.conv.weight")}),
            "missing keys",
        ),
        (lambda sd: sd.update({"AuxLogits.fc.weight": torch.zeros(1)}), "unexpected keys"),
    ],
)
def test_weights_that_do_not_fit_are_reported(tmp_path, edit, message):
    sd = random_inception_state_dict(2)
    edit(sd)
    p = tmp_path / "bad.pth"
    torch.save(sd, p)
    with pytest.raises(MetricsError, match=message):
        inception_v3_fid(p, allow_download=False)


def test_unreadable_weight_file(tmp_path):
    p = tmp_path / "junk.pth"
    p.write_bytes(b"junk")
    with pytest.raises(MetricsError, match="cannot be read"):
        inception_v3_fid(p, allow_download=False)


# --------------------------------------------------------------------------- where weights come from
def test_offline_error_lists_every_place(no_weights_anywhere):
    with pytest.raises(MetricsError) as e:
        inception_v3_fid(allow_download=False)
    msg = str(e.value)
    for needle in (INCEPTION_FILE, INCEPTION_FILE_FIDELITY, INCEPTION_URL, INCEPTION_ENV,
                   "--inception-weights", str(no_weights_anywhere), "not allowed"):  # fmt: skip
        assert needle in msg


def test_failed_download_is_a_clear_error(no_weights_anywhere, monkeypatch):
    calls = []

    def offline(url, **kw):
        calls.append((url, kw.get("file_name"), kw.get("check_hash")))
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(MetricsError, match="download failed") as e:
        inception_v3_fid()
    assert calls == [(INCEPTION_URL, INCEPTION_FILE, True)]  # the download's hash is checked
    assert "no network" in str(e.value) and INCEPTION_ENV in str(e.value)


def test_resolution_order(no_weights_anywhere, weights_file, monkeypatch, tmp_path):
    # hub cache, under torch-fidelity's file name
    no_weights_anywhere.mkdir(parents=True)
    (no_weights_anywhere / INCEPTION_FILE_FIDELITY).write_bytes(weights_file.read_bytes())
    assert inception_v3_fid(allow_download=False).fc.weight.shape == (1008, 2048)
    # the environment variable comes before the hub cache: a missing file there is an error
    monkeypatch.setenv(INCEPTION_ENV, str(tmp_path / "missing.pth"))
    with pytest.raises(MetricsError, match=INCEPTION_ENV):
        inception_v3_fid(allow_download=False)
    # an explicit path comes first
    assert inception_v3_fid(weights_file, allow_download=False) is not None
    with pytest.raises(MetricsError, match="does not exist"):
        inception_v3_fid(tmp_path / "nope.pth")


# --------------------------------------------------------------------------- end to end
class RGBGen(nn.Module):
    latent_dim = 4

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(4, 3 * 32 * 32)

    def forward(self, z):
        return torch.tanh(self.fc(z)).view(-1, 3, 32, 32)


@pytest.mark.filterwarnings("ignore:FID from")
def test_evaluate_with_inception_is_batch_size_independent(net):
    ref = ReferenceStats(np.zeros(2048), np.eye(2048) * 0.01)
    a = evaluate_generator(RGBGen(), 10, net, ref, batch_size=10, seed=0)
    b = evaluate_generator(RGBGen(), 10, net, ref, batch_size=4, seed=0)
    assert a.quantize == "truncate" and a.extractor == net.name
    assert b.fid == pytest.approx(a.fid, rel=1e-6)
    assert b.is_mean == pytest.approx(a.is_mean, rel=1e-5)
    # and equal to the features of the same images computed in one go
    from runtime.metrics.evaluate import LatentStream

    with torch.no_grad():
        f, _ = net(RGBGen()(LatentStream(4, 0).take(10)))
    acc = FeatureStats(2048)
    acc.update(f)
    d = (
        (acc.mean().numpy() ** 2).sum()
        + np.trace(acc.cov().numpy())
        + 20.48
        - 2 * np.sqrt(np.clip(np.linalg.eigvalsh(acc.cov().numpy() * 0.01), 0, None)).sum()
    )
    assert a.fid == pytest.approx(d, rel=1e-6)
