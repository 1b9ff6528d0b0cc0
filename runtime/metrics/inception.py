"""The FID Inception-v3: TensorFlow's `inception-2015-12-05` graph, ported onto torchvision's blocks.

Every published IS/FID (TTUR, openai improved-gan, AutoGAN, EAGAN) comes from that TF graph, not
from torchvision's ImageNet Inception (research/metrics.md §1-2). The graph differs from
torchvision's `Inception3` in four places (documented by pytorch-fid, whose weight file we load):

* the average-pool branch of the A, C and first E blocks ignores padded zeros
  (`count_include_pad=False`);
* the last E block (`Mixed_7c`) pools its pool branch with a 3x3 *max* pool;
* BatchNorm eps is 1e-3 (torchvision's `BasicConv2d` already uses it);
* the classifier has 1008 classes.

Parameter names are torchvision's, so `pt_inception-2015-12-05-6726825d.pth` (pytorch-fid) and
`weights-inception-2015-12-05-6726825d.pth` (torch-fidelity, same layout) load with `strict=True`.

Pre-processing is the TF graph's own: uint8 pixels -> TF1 `resize_bilinear` to 299x299
(asymmetric mapping, not PyTorch's half-pixel one) -> `(x - 128) / 128`.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.inception import (
    BasicConv2d,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
)

from runtime.metrics import MetricsError
from runtime.metrics.extractor import FeatureExtractor, QuantizeRule, to_uint8

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_FILE_FIDELITY = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + INCEPTION_FILE
)
INCEPTION_ENV = "EAGAN_INCEPTION_WEIGHTS"
INCEPTION_FLAG = "--inception-weights"
INCEPTION_SIZE = 299
NUM_CLASSES = 1008  # the TF graph's classifier: 1000 ImageNet classes + 8 unused
DOWNLOAD_TIMEOUT_S = 20.0


# --------------------------------------------------------------------------- pre-processing
def _tf1_axis(in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices and weights of TF1 resize_bilinear (align_corners=False, no half pixel).

    TF computes in float32: scale = in/out, src = dst * scale, lower = floor(src),
    upper = min(ceil(src), in - 1), lerp = src - floor(src).
    """
    scale = torch.tensor(in_size, dtype=torch.float32) / torch.tensor(out_size, dtype=torch.float32)
    src = torch.arange(out_size, dtype=torch.float32) * scale
    floor = torch.floor(src)
    lower = floor.to(torch.int64).clamp(min=0)
    upper = torch.ceil(src).to(torch.int64).clamp(max=in_size - 1)
    return lower, upper, src - floor


def tf1_resize_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize exactly as TensorFlow 1's `tf.image.resize_bilinear` (float32).

    The interpolation order and formula are TF's: `top = tl + (tr - tl)·xl`,
    `bottom = bl + (br - bl)·xl`, `out = top + (bottom - top)·yl`. Interpolating along x on the
    input rows first and then gathering rows gives the same floats, with less work.
    """
    x = x.float()
    out_h, out_w = size
    in_h, in_w = x.shape[-2], x.shape[-1]
    ylo, yhi, yl = (t.to(x.device) for t in _tf1_axis(in_h, out_h))
    xlo, xhi, xl = (t.to(x.device) for t in _tf1_axis(in_w, out_w))
    left = x.index_select(-1, xlo)
    right = x.index_select(-1, xhi)
    rows = left + (right - left) * xl  # (N, C, in_h, out_w)
    top = rows.index_select(-2, ylo)
    bottom = rows.index_select(-2, yhi)
    return top + (bottom - top) * yl[:, None]


# --------------------------------------------------------------------------- the network
class _InceptionA(InceptionA):  # type: ignore[misc]
    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        # TF graph: the average pool ignores padded zeros
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return [b1, b5, b3, bp]


class _InceptionC(InceptionC):  # type: ignore[misc]
    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            bd = layer(bd)
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return [b1, b7, bd, bp]


class _InceptionE(InceptionE):  # type: ignore[misc]
    """E block; `max_pool=True` is the last block of the TF graph (Mixed_7c)."""

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__(in_channels)
        self.max_pool = max_pool

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.max_pool:
            pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            pooled = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        return [b1, b3, bd, self.branch_pool(pooled)]


class InceptionV3FID(FeatureExtractor):
    """TF Inception-v3 (2015-12-05): pool3 (2048) for FID and bias-free logits (1008) for IS.

    Built with random weights; use `inception_v3_fid()` to get the standard weights. Always in
    eval mode (BatchNorm uses running statistics, so features never depend on the batch).
    """

    name = "inception-v3-tf-2015-12-05"
    feature_dim = 2048
    num_classes = NUM_CLASSES
    in_channels = 3
    in_resolution = None

    def __init__(
        self, quantize: QuantizeRule = "truncate", weights_id: str = "random-init"
    ) -> None:
        super().__init__()
        if quantize not in ("truncate", "round"):
            raise ValueError(f"quantize must be 'truncate' or 'round', got {quantize!r}")
        self.quantize = quantize
        self.weights_id = weights_id
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = _InceptionA(192, pool_features=32)
        self.Mixed_5c = _InceptionA(256, pool_features=64)
        self.Mixed_5d = _InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = _InceptionC(768, channels_7x7=128)
        self.Mixed_6c = _InceptionC(768, channels_7x7=160)
        self.Mixed_6d = _InceptionC(768, channels_7x7=160)
        self.Mixed_6e = _InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = _InceptionE(1280, max_pool=False)
        self.Mixed_7c = _InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, NUM_CLASSES)
        # channels_last: 1.5-1.8x faster on CPU (metrics.md §4), features equal to float32 rounding
        self.to(memory_format=torch.channels_last)
        self.eval()
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> InceptionV3FID:
        return super().train(False)  # never leaves eval mode: BN must use running statistics

    def default_batch_size(self, device: torch.device) -> int:
        return 250 if device.type == "cuda" else 10  # batch 10 was fastest on the 2-core CPU

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or [-1, 1] float (N, C, H, W) -> TF graph input (N, 3, 299, 299) in [-1, 1)."""
        x = to_uint8(images, self.quantize).float()
        x = self._match_channels(x)
        if x.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = tf1_resize_bilinear(x, (INCEPTION_SIZE, INCEPTION_SIZE))
        x = (x - 128.0) / 128.0
        return x.contiguous(memory_format=torch.channels_last)

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.fc.weight.dtype)
        x = self.Conv2d_1a_3x3(x)
        x = self.Conv2d_2a_3x3(x)
        x = self.Conv2d_2b_3x3(x)
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_3b_1x1(x)
        x = self.Conv2d_4a_3x3(x)
        x = F.max_pool2d(x, 3, stride=2)
        for block in (
            self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
            self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c,
        ):  # fmt: skip
            x = block(x)
        pool3 = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        # IS uses pool3 · W without the bias, as the TF code (softmax/logits/MatMul)
        logits_unbiased = pool3 @ self.fc.weight.T
        return pool3, logits_unbiased


# --------------------------------------------------------------------------- weights
def _hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _not_found(looked: list[str], reason: str) -> MetricsError:
    places = "\n".join(f"  - {p}" for p in looked)
    return MetricsError(
        f"Inception-v3 FID weights: {reason}.\nLooked at:\n{places}\n"
        f"Fetch {INCEPTION_FILE} from {INCEPTION_URL} on a machine with internet, then pass it "
        f"with {INCEPTION_FLAG} PATH (weights_path=...) or set {INCEPTION_ENV}=PATH, or put it "
        f"into {_hub_checkpoints()}."
    )


def resolve_inception_weights(
    weights_path: str | os.PathLike[str] | None = None,
    *,
    allow_download: bool = True,
    timeout_s: float = DOWNLOAD_TIMEOUT_S,
) -> Path:
    """Find the weight file: explicit path, then $EAGAN_INCEPTION_WEIGHTS, then the torch hub
    cache (pytorch-fid's and torch-fidelity's file names), then — if allowed — a download into
    the hub cache. Anything else raises `MetricsError` listing every place looked at."""
    looked: list[str] = []
    if weights_path is not None:
        p = Path(weights_path).expanduser()
        if p.is_file():
            return p
        looked.append(f"{INCEPTION_FLAG} / weights_path: {p} (no such file)")
        raise _not_found(looked, "the given weights file does not exist")
    looked.append(f"{INCEPTION_FLAG} / weights_path: not given")
    env = os.environ.get(INCEPTION_ENV)
    if env:
        p = Path(env).expanduser()
        if p.is_file():
            return p
        looked.append(f"${INCEPTION_ENV}={env} (no such file)")
        raise _not_found(looked, f"${INCEPTION_ENV} points to a missing file")
    looked.append(f"${INCEPTION_ENV}: not set")
    hub = _hub_checkpoints()
    for name in (INCEPTION_FILE, INCEPTION_FILE_FIDELITY):
        p = hub / name
        if p.is_file():
            return p
        looked.append(f"{p} (no such file)")
    if not allow_download:
        looked.append(f"download from {INCEPTION_URL}: not allowed (allow_download=False)")
        raise _not_found(looked, "not found and downloading is off")
    old = socket.getdefaulttimeout()
    try:
        # torch.hub's urlopen has no timeout argument; never hang on an offline machine
        socket.setdefaulttimeout(timeout_s)
        torch.hub.load_state_dict_from_url(
            INCEPTION_URL,
            model_dir=str(hub),
            map_location="cpu",
            progress=False,
            file_name=INCEPTION_FILE,
            weights_only=True,
            # the file name's "-6726825d" is its SHA-256 prefix: a corrupted or substituted
            # download is refused (and removed) instead of being cached as the FID network
            check_hash=True,
        )
    except Exception as e:  # URLError, timeout, HTTP 404, a truncated file ...
        looked.append(f"download from {INCEPTION_URL}: failed ({type(e).__name__}: {e})")
        raise _not_found(looked, "not found and the download failed") from e
    finally:
        socket.setdefaulttimeout(old)
    return hub / INCEPTION_FILE


def _check_state_dict(model: nn.Module, sd: object, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise MetricsError(f"{path}: not a state dict of tensors")
    want = {k: v.shape for k, v in model.state_dict().items()}
    optional = {k for k in want if k.endswith("num_batches_tracked")}
    missing = sorted(set(want) - set(sd) - optional)
    unexpected = sorted(set(sd) - set(want))
    wrong = sorted(k for k in set(sd) & set(want) if sd[k].shape != want[k])
    if missing or unexpected or wrong:
        lines = [
            f"{path}: does not fit the TF Inception-v3 ({len(want)} tensors expected, {len(sd)} found)"
        ]
        if missing:
            lines.append(
                f"  missing keys ({len(missing)}): {', '.join(missing[:5])}"
                + (" ..." if len(missing) > 5 else "")
            )
        if unexpected:
            lines.append(
                f"  unexpected keys ({len(unexpected)}): {', '.join(unexpected[:5])}"
                + (" ..." if len(unexpected) > 5 else "")
            )
        for k in wrong[:5]:
            lines.append(f"  {k}: shape {tuple(sd[k].shape)}, expected {tuple(want[k])}")
        raise MetricsError("\n".join(lines))
    return sd


def inception_v3_fid(
    weights_path: str | os.PathLike[str] | None = None,
    *,
    allow_download: bool = True,
    quantize: QuantizeRule = "truncate",
    device: str | torch.device = "cpu",
    timeout_s: float = DOWNLOAD_TIMEOUT_S,
) -> InceptionV3FID:
    """The standard FID Inception with its weights (see `resolve_inception_weights`).

    `weights_id` records the file's SHA-256 prefix, so statistics made with other weights (or
    with random test weights) never mix with these.
    """
    path = resolve_inception_weights(
        weights_path, allow_download=allow_download, timeout_s=timeout_s
    )
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any reader failure is the user's file
        from compiler.export import weights_problem

        raise MetricsError(
            f"{path}: cannot be read as a PyTorch weight file: {weights_problem(e)}"
        ) from None
    model = InceptionV3FID(quantize=quantize)
    model.load_state_dict(_check_state_dict(model, sd, path), strict=True)
    model.weights_id = f"inception-2015-12-05:sha256:{sha256_file(path)[:16]}"
    return model.to(device)


def random_inception_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the real layout and random, well-scaled values (He-normal convs,
    running mean 0 / var 1): for tests and benchmarks without the real weights."""
    g = torch.Generator().manual_seed(seed)
    model = InceptionV3FID()
    sd = {}
    for k, v in model.state_dict().items():
        if k.endswith("conv.weight"):
            fan_in = v[0].numel()
            sd[k] = torch.randn(v.shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif k.endswith("bn.weight"):
            sd[k] = 1.0 + 0.1 * torch.randn(v.shape, generator=g)
        elif k.endswith("bn.bias"):
            sd[k] = 0.1 * torch.randn(v.shape, generator=g)
        elif k == "fc.weight":
            sd[k] = torch.randn(v.shape, generator=g) * (1.0 / v.shape[1]) ** 0.5
        elif k == "fc.bias":
            sd[k] = torch.randn(v.shape, generator=g)
        else:
            sd[k] = v.clone()  # running_mean 0, running_var 1, num_batches_tracked 0
    return sd
