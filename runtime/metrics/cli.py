"""`eagan eval`: IS and FID of an exported standalone generator.

The library function is `run_eval` (raises `MetricsError` on bad input); `eval_command` is the
thin typer-compatible layer the CLI registers with `app.command("eval")(eval_command)`: it
prints a rich table, writes JSON on request, and turns a `MetricsError` into a message and exit 2.

Exported generator contract: `DIR/generator.py` defines `class Generator(torch.nn.Module)`
(constructed without arguments) and module constants `LATENT_DIM`, `RESOLUTION`, `CHANNELS`;
weights in `DIR/generator.safetensors` or `DIR/generator.pt` (a state dict).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich.console import Console
from rich.table import Table
from torch import nn

from runtime.metrics import MetricsError
from runtime.metrics.evaluate import EvalResult, evaluate_generator
from runtime.metrics.extractor import FeatureExtractor
from runtime.metrics.frechet import ReferenceStats
from runtime.metrics.inception import inception_v3_fid
from runtime.metrics.lenet import LENET_RESOLUTION, lenet_digits
from runtime.metrics.stats import reference_stats

INCEPTION_DATASETS = ("cifar10", "stl10")


@dataclass(frozen=True)
class ExportedGenerator:
    module: nn.Module
    latent_dim: int
    resolution: int
    channels: int
    path: Path


def load_exported_generator(
    directory: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> ExportedGenerator:
    """Import `DIR/generator.py`, build `Generator()`, load its weights strictly."""
    d = Path(directory)
    if not d.is_dir():
        raise MetricsError(f"generator directory {d} does not exist")
    src = d / "generator.py"
    if not src.is_file():
        raise MetricsError(
            f"{src} is missing: an exported generator directory holds generator.py and its weights"
        )
    name = (
        "eagan_exported_generator_" + hashlib.sha256(str(src.resolve()).encode()).hexdigest()[:12]
    )
    spec = importlib.util.spec_from_file_location(name, src)
    if spec is None or spec.loader is None:
        raise MetricsError(f"{src}: cannot be imported")
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as e:
        raise MetricsError(f"{src}: importing it failed ({type(e).__name__}: {e})") from e
    gen_cls = getattr(mod, "Generator", None)
    if not (isinstance(gen_cls, type) and issubclass(gen_cls, nn.Module)):
        raise MetricsError(f"{src} does not define class Generator(torch.nn.Module)")
    consts: dict[str, int] = {}
    for c in ("LATENT_DIM", "RESOLUTION", "CHANNELS"):
        v = getattr(mod, c, None)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise MetricsError(f"{src} must define the positive integer constant {c} (found {v!r})")
        consts[c] = v
    try:
        gen = gen_cls()
    except Exception as e:
        raise MetricsError(f"{src}: Generator() failed ({type(e).__name__}: {e})") from e
    st, pt = d / "generator.safetensors", d / "generator.pt"
    try:
        if st.is_file():
            from safetensors.torch import load_file

            wpath, sd = st, load_file(str(st))
        elif pt.is_file():
            wpath, sd = pt, torch.load(pt, map_location="cpu", weights_only=True)
        else:
            raise MetricsError(f"no weights in {d}: expected generator.safetensors or generator.pt")
    except MetricsError:
        raise
    except Exception as e:
        raise MetricsError(f"weights in {d} cannot be read ({type(e).__name__}: {e})") from e
    if not isinstance(sd, dict):
        raise MetricsError(f"{wpath}: not a state dict")
    try:
        gen.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise MetricsError(f"{wpath}: weights do not fit {src}'s Generator:\n{e}") from e
    return ExportedGenerator(
        gen.to(device).eval(), consts["LATENT_DIM"], consts["RESOLUTION"], consts["CHANNELS"], d
    )


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
    """Library form of `eagan eval`; raises `MetricsError` for bad input."""
    if n_images < max(2, splits):
        raise MetricsError(
            f"--images must be at least {max(2, splits)} (one per IS split), got {n_images}"
        )
    dev = _device(device)
    gen = load_exported_generator(generator_dir, dev)
    ext, ref = extractor_and_reference(
        dataset, gen.resolution, gen.channels, dev,
        inception_weights=inception_weights, allow_download=allow_download, cache_dir=cache_dir,
    )  # fmt: skip
    return evaluate_generator(
        gen.module, n_images, ext, ref, batch_size, seed,
        latent_dim=gen.latent_dim, device=dev, splits=splits, bf16=bf16,
    )  # fmt: skip


def result_table(result: EvalResult, title: str = "eagan eval") -> Table:
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("IS", f"{result.is_mean:.4f} ± {result.is_std:.4f}")
    t.add_row("FID", f"{result.fid:.4f}")
    for k in (
        "n",
        "splits",
        "extractor",
        "weights_id",
        "reference",
        "quantize",
        "batch_size",
        "seed",
        "device",
    ):
        t.add_row(k, str(getattr(result, k)))
    t.add_row("seconds", f"{result.seconds:.1f}")
    return t


def eval_command(
    generator_dir: Annotated[
        Path, typer.Argument(help="exported generator directory (generator.py + weights)")
    ],
    dataset: Annotated[
        str,
        typer.Option("--data", "-d", help="digits, cifar10, stl10, or a .npz file with mu/sigma"),
    ] = "digits",
    n_images: Annotated[
        int, typer.Option("--images", "-n", help="number of generated images")
    ] = 5000,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="default: the extractor's per-device choice")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the latent vectors")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda")] = "auto",
    inception_weights: Annotated[
        Path | None,
        typer.Option(
            "--inception-weights",
            help="pt_inception-2015-12-05-6726825d.pth (else $EAGAN_INCEPTION_WEIGHTS, else torch hub cache)",
        ),
    ] = None,
    allow_download: Annotated[
        bool,
        typer.Option("--download/--no-download", help="fetch the Inception weights if not found"),
    ] = True,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="real statistics cache (default $EAGAN_CACHE/stats or ~/.cache/eagan/stats)",
        ),
    ] = None,
    splits: Annotated[int, typer.Option("--splits", help="IS splits")] = 10,
    bf16: Annotated[
        bool,
        typer.Option(
            "--bf16",
            help="bfloat16 autocast in the extractor (not comparable with float32 numbers)",
        ),
    ] = False,
    json_out: Annotated[
        Path | None, typer.Option("--json-out", help="write the result as JSON here")
    ] = None,
) -> None:
    """IS and FID of an exported generator against a real data set."""
    try:
        result = run_eval(
            generator_dir, dataset, n_images, batch_size=batch_size, seed=seed, device=device,
            inception_weights=inception_weights, allow_download=allow_download,
            cache_dir=cache_dir, splits=splits, bf16=bf16,
        )  # fmt: skip
    except MetricsError as e:
        Console(stderr=True).print(f"error: {e}", markup=False, highlight=False, style="red")
        raise typer.Exit(2) from None
    Console().print(result_table(result))
    if json_out is not None:
        payload: dict[str, Any] = {
            "generator": str(generator_dir),
            "dataset": dataset,
            **result.to_dict(),
        }
        json_out.parent.mkdir(parents=True, exist_ok=True)
        tmp = json_out.with_name(json_out.name + ".tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        os.replace(tmp, json_out)


if __name__ == "__main__":  # python -m runtime.metrics.cli DIR ...
    typer.run(eval_command)
    sys.exit(0)
