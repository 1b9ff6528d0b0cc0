"""The one loader of an exported generator, for `eagan sample` and `eagan eval`.

A directory holds what `compiler.export` writes (`generator.py` and `generator.safetensors`); a
run directory's is its `final/`. Every bad input raises `ExportedError`, whose message names the
file; the commands print it and exit 2.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


class ExportedError(ValueError):
    """An exported generator that cannot be loaded; the message names the file and the problem."""


@dataclass(frozen=True)
class ExportedGenerator:
    module: nn.Module
    latent_dim: int
    resolution: int
    channels: int
    path: Path


def generator_folder(directory: str | os.PathLike[str]) -> Path:
    """The folder holding the generator: a run directory's `final/`, else `directory` itself."""
    d = Path(directory)
    return d / "final" if (d / "final" / "generator.py").is_file() else d


def load_generator(
    directory: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> ExportedGenerator:
    """Import `DIR/generator.py`, build `Generator()`, load its weights strictly."""
    d = generator_folder(directory)
    if not d.is_dir():
        raise ExportedError(f"generator directory {d} does not exist")
    src = d / "generator.py"
    if not src.is_file():
        raise ExportedError(
            f"{src} is missing: an exported generator directory holds generator.py and its weights"
        )
    name = (
        "eagan_exported_generator_" + hashlib.sha256(str(src.resolve()).encode()).hexdigest()[:12]
    )
    spec = importlib.util.spec_from_file_location(name, src)
    if spec is None or spec.loader is None:
        raise ExportedError(f"{src}: cannot be imported")
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as e:
        raise ExportedError(f"{src}: importing it failed ({type(e).__name__}: {e})") from e
    gen_cls = getattr(mod, "Generator", None)
    if not (isinstance(gen_cls, type) and issubclass(gen_cls, nn.Module)):
        raise ExportedError(f"{src} does not define class Generator(torch.nn.Module)")
    consts: dict[str, int] = {}
    for c in ("LATENT_DIM", "RESOLUTION", "CHANNELS"):
        v = getattr(mod, c, None)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ExportedError(
                f"{src} must define the positive integer constant {c} (found {v!r})"
            )
        consts[c] = v
    try:
        gen = gen_cls()
    except Exception as e:
        raise ExportedError(f"{src}: Generator() failed ({type(e).__name__}: {e})") from e
    st, pt = d / "generator.safetensors", d / "generator.pt"
    try:
        if st.is_file():
            from safetensors.torch import load_file

            wpath, sd = st, load_file(str(st))
        elif pt.is_file():
            wpath, sd = pt, torch.load(pt, map_location="cpu", weights_only=True)
        else:
            raise ExportedError(
                f"no weights in {d}: expected generator.safetensors or generator.pt"
            )
    except ExportedError:
        raise
    except Exception as e:
        raise ExportedError(f"weights in {d} cannot be read ({type(e).__name__}: {e})") from e
    if not isinstance(sd, dict):
        raise ExportedError(f"{wpath}: not a state dict")
    try:
        gen.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ExportedError(f"{wpath}: weights do not fit {src}'s Generator:\n{e}") from e
    return ExportedGenerator(
        gen.to(device).eval(), consts["LATENT_DIM"], consts["RESOLUTION"], consts["CHANNELS"], d
    )
