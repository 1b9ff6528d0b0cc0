"""Crash-safe checkpoints: atomic, checksummed, the last two kept.

A checkpoint is two files in `DIR/checkpoints/`: `ckpt-NNNNNN.pt` (the state, written with
`torch.save` to a temporary file, flushed, fsynced and renamed) and `ckpt-NNNNNN.json` (position,
SHA-256 of the .pt, written the same way, after it). The .json is the commit record: a crash between
the two leaves the previous checkpoint as the newest intact one. Loading uses `weights_only=True`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

KEEP = 2


class CheckpointError(Exception):
    """A checkpoint that cannot be written or read; the message says what happened and what to do."""


class BadCheckpoint(CheckpointError):
    """No checkpoint that can be read (missing, damaged, crafted): bad input, exit 2."""


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _check_record(seq: int, meta: Any) -> dict[str, Any]:
    """The commit record of checkpoint `seq`, every field checked: its `file` must be exactly the
    .pt of the same number inside `checkpoints/` (never a path), so that a crafted record cannot
    point elsewhere."""
    if not isinstance(meta, dict):
        raise TypeError("its record is not a JSON object")
    if meta.get("file") != f"ckpt-{seq:06d}.pt":
        raise ValueError(
            f"its record names the file {meta.get('file')!r}, not ckpt-{seq:06d}.pt next to it"
        )
    if not isinstance(meta.get("sha256"), str) or not _SHA256.fullmatch(meta["sha256"]):
        raise ValueError("its record has no valid sha256")
    for key in ("seq", "history_lines", "stage_index", "world_size"):
        value = meta.get(key)
        if key in meta and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValueError(f"its record's {key} is {value!r}, not a count ≥ 0")
    if meta.get("seq", seq) != seq:
        raise ValueError(f"its record says it is checkpoint {meta['seq']}")
    return meta


@dataclass(frozen=True)
class Loaded:
    state: dict[str, Any]
    meta: dict[str, Any]
    path: Path
    skipped: tuple[str, ...]  # newer checkpoints that were corrupt, with why


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _write_atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _disk_full(err: BaseException, folder: Path) -> bool:
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    if isinstance(err, RuntimeError) and "No space left" in str(err):
        return True
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return isinstance(err, RuntimeError) and st.f_bavail * st.f_frsize < 1 << 20


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    out = []
    for meta in folder.glob("ckpt-*.json"):
        try:
            out.append((int(meta.stem.split("-")[1]), meta))
        except (IndexError, ValueError):
            continue
    return sorted(out)


def save(folder: Path, state: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write a new checkpoint after the newest one; keep the last two. A full disk leaves the
    previous checkpoints intact and raises CheckpointError."""
    folder.mkdir(parents=True, exist_ok=True)
    existing = checkpoints(folder)
    seq = existing[-1][0] + 1 if existing else 1
    pt = folder / f"ckpt-{seq:06d}.pt"
    try:
        _write_atomic(pt, lambda f: torch.save(state, f))
        record = {**meta, "seq": seq, "file": pt.name, "sha256": _sha256(pt)}
        _write_atomic(
            folder / f"ckpt-{seq:06d}.json",
            lambda f: f.write(json.dumps(record, indent=2).encode()),
        )
    except (OSError, RuntimeError) as err:
        # torch.save writes through its zip writer, which turns the OSError of a full disk into a
        # RuntimeError ("unexpected pos ..."), the OSError kept only as its context
        pt.unlink(missing_ok=True)
        if _disk_full(err, folder):
            raise CheckpointError(
                f"no space left on the device to write a checkpoint in {folder}; the previous "
                "checkpoint is intact: free some space, then resume"
            ) from None
        raise CheckpointError(
            f"cannot write a checkpoint in {folder}: {err}; the previous checkpoint is intact"
        ) from None
    for old_seq, old_meta in checkpoints(folder)[:-KEEP]:
        old_meta.unlink(missing_ok=True)
        (folder / f"ckpt-{old_seq:06d}.pt").unlink(missing_ok=True)
    return pt


def load_latest(folder: Path) -> Loaded:
    """The newest intact checkpoint (checksum verified); corrupt newer ones are reported and
    skipped. Raises CheckpointError when none is intact."""
    skipped: list[str] = []
    for seq, meta_path in reversed(checkpoints(folder)):
        try:
            meta = _check_record(seq, json.loads(meta_path.read_text()))
            pt = folder / meta["file"]
            if not pt.is_file():
                raise ValueError(f"{pt.name} is missing")
            if _sha256(pt) != meta["sha256"]:
                raise ValueError(f"{pt.name} does not match its checksum (truncated or corrupted)")
            state = torch.load(pt, map_location="cpu", weights_only=True)
        except (
            OSError,
            ValueError,
            RuntimeError,
            KeyError,
            TypeError,
            EOFError,
            MemoryError,
            OverflowError,
            pickle.UnpicklingError,
        ) as err:
            # any unreadable checkpoint: fall back to the previous one
            skipped.append(f"checkpoint {seq}: {err}")
            continue
        return Loaded(state, meta, pt, tuple(skipped))
    if skipped:
        raise BadCheckpoint(f"no intact checkpoint in {folder}: " + "; ".join(skipped))
    run = folder.parent
    raise BadCheckpoint(
        f"no checkpoint in {folder} yet: the run stopped before its first one; start it again "
        f"with  eagan run SPEC --out {run} --force  (it replaces only what the run wrote)"
    )
