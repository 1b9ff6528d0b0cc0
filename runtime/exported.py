"""The one loader of an exported generator, for `eagan sample` and `eagan eval`.

It never imports or runs the directory's Python (`generator.py` is code, to be trusted like any
other): the network is rebuilt from the recorded spec and genome and the safetensors weights are
loaded into it. An export directory records them in `generator.json` (written by
`compiler.export`); a run directory's `final/` also has them in the run's `spec.eagan` and
`final/metrics.json`. Every bad input (missing files, a damaged or crafted record or weights file,
weights of another network) raises `ExportedError`, whose message names the file; the commands
print it and exit 2.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROLE = "generator"


class ExportedError(ValueError):
    """An exported generator that cannot be loaded; the message names the file and the problem."""


@dataclass(frozen=True)
class ExportedGenerator:
    module: nn.Module
    latent_dim: int
    resolution: int
    channels: int
    path: Path


@dataclass(frozen=True)
class _Record:
    """Where the generator comes from: the spec's text, its network and genome."""

    spec: str
    spec_file: str
    network: str
    genome: str  # the genome string; "" for a network without searchable edges
    source: Path  # the file the record was read from, for messages


def generator_folder(directory: str | os.PathLike[str]) -> Path:
    """The folder holding the generator: a run directory's `final/`, else `directory` itself.
    A run (its directory or its `final/`) that has not finished is refused in those words."""
    d = Path(directory)
    if (d / "spec.eagan").is_file():
        run = d
    elif d.name == "final" and (d.parent / "spec.eagan").is_file():
        run = d.parent
    else:
        return d
    if not (run / "final" / "metrics.json").is_file():  # written when fully-train is done
        raise ExportedError(
            f"{run}: this run has not finished (no final generator yet); continue it with  "
            f"eagan run --resume {run}"
        )
    return run / "final"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ExportedError(f"{path}: cannot be read as JSON ({err})") from None


def _text(value: Any, path: Path, key: str) -> str:
    if not isinstance(value, str):
        raise ExportedError(f"{path}: '{key}' must be a string, not {type(value).__name__}")
    return value


def _record(d: Path) -> _Record:
    if not d.is_dir():
        raise ExportedError(f"generator directory {d} does not exist")
    exported = d / f"{ROLE}.json"
    if exported.is_file():
        data = _read_json(exported)
        if not isinstance(data, dict):
            raise ExportedError(f"{exported}: not an export record (a JSON object)")
        if data.get("role", ROLE) != ROLE:
            raise ExportedError(f"{exported}: records a {data.get('role')!r}, not a generator")
        spec = data.get("spec")
        spec_file = _text(data.get("spec_file", str(exported)), exported, "spec_file")
        if spec is None and (d.parent / "spec.eagan").is_file():
            spec = (d.parent / "spec.eagan").read_text(encoding="utf-8", errors="replace")
        if spec is None:
            raise ExportedError(
                f"{exported}: the spec's text is not recorded (it was exported from {spec_file!r}); "
                "export it again with eagan export"
            )
        return _Record(
            _text(spec, exported, "spec"),
            spec_file,
            _text(data.get("network"), exported, "network"),
            _text(data.get("genome", ""), exported, "genome"),
            exported,
        )
    spec_path, metrics = d.parent / "spec.eagan", d / "metrics.json"
    if spec_path.is_file() and metrics.is_file():  # a run's final/, exported before records
        data = _read_json(metrics)
        genome = data.get("g_genome") if isinstance(data, dict) else None
        genome = _text(genome, metrics, "g_genome")
        network, _, _ = genome.partition(":")
        try:
            spec = spec_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ExportedError(f"{spec_path}: cannot be read ({err})") from None
        return _Record(spec, str(spec_path), network, genome if ":" in genome else "", metrics)
    raise ExportedError(
        f"{d} holds no exported generator: expected {ROLE}.json and {ROLE}.safetensors "
        "(eagan export), or a run directory"
    )


def _build(record: _Record) -> tuple[Any, list[tuple[str, str]]]:
    """The generator as a compiler SubNet, and its (subnet prefix → exported prefix) renames."""
    from compiler.export import ExportError, render_source, resolve
    from compiler.extract import build_subnet
    from eagan_dsl.checker import check_text
    from eagan_dsl.diagnostics import SpecError

    where = record.source
    try:
        program = check_text(record.spec, record.spec_file)
    except SpecError as err:
        first = err.diagnostics[0] if err.diagnostics else None
        detail = f"{first.line}:{first.column}: {first.message}" if first else str(err)
        raise ExportedError(f"{where}: the recorded spec does not check ({detail})") from None
    except RecursionError:
        raise ExportedError(f"{where}: the recorded spec does not check") from None
    try:
        network, genome, title = resolve(program, record.network, record.genome or None)
    except (ExportError, KeyError) as err:
        raise ExportedError(f"{where}: {err}") from None
    if network.role != ROLE:
        raise ExportedError(f"{where}: network '{record.network}' is not a generator")
    sub = build_subnet(network, genome)
    _, keys = render_source(sub, record.spec_file, record.genome, title)
    return sub, keys


def _weights(d: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    st, pt = d / f"{ROLE}.safetensors", d / f"{ROLE}.pt"
    path = st if st.is_file() else pt if pt.is_file() else None
    if path is None:
        raise ExportedError(f"no weights in {d}: expected {ROLE}.safetensors or {ROLE}.pt")
    try:
        if path == st:
            from safetensors.torch import load_file

            state = load_file(str(st))
        else:  # a state dict saved by torch; weights_only: no code runs
            state = torch.load(pt, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any reader failure is the user's file
        from compiler.export import weights_problem

        raise ExportedError(f"{path}: the weights cannot be read: {weights_problem(err)}") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ExportedError(f"{path}: not a state dict (a mapping of names to tensors)")
    return path, state


def _to_subnet(
    state: dict[str, torch.Tensor], keys: list[tuple[str, str]], path: Path
) -> dict[str, torch.Tensor]:
    """Exported names back to the SubNet's (`compiler.export` renames them the other way)."""
    by_length = sorted(keys, key=lambda k: len(k[1]), reverse=True)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for old, new in by_length:
            if key.startswith(new + "."):
                out[old + key[len(new) :]] = value
                break
        else:
            raise ExportedError(f"{path}: the weights do not fit the recorded generator: '{key}'")
    return out


def load_generator(
    directory: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> ExportedGenerator:
    """Rebuild the generator of an export or run directory and load its weights strictly."""
    d = generator_folder(directory)
    record = _record(d)
    sub, keys = _build(record)
    path, state = _weights(d)
    expected = sub.state_dict()
    state = _to_subnet(state, keys, path)
    for key, value in state.items():
        if key not in expected or tuple(value.shape) != tuple(expected[key].shape):
            raise ExportedError(
                f"{path}: the weights do not fit the recorded generator ('{key}', shape "
                f"{tuple(value.shape)})"
            )
    try:
        sub.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ExportedError(
            f"{path}: the weights do not fit the recorded generator: {err}"
        ) from None
    net = sub.network
    return ExportedGenerator(
        sub.to(device).eval(), net.latent_dim, net.resolution, net.image_channels, d
    )
