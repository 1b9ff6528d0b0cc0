"""The run directory (shared/DESIGN.md): spec copy, resolved settings, history, samples, plots, final.

Every file is written atomically (temporary file, flush, fsync, rename), so a crash never leaves a
half-written file behind; `history.jsonl` is appended line by line and flushed.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from eagan_dsl.ir import Best, Program


class RunDirError(Exception):
    """A run directory that cannot be used; the message says what to do."""


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def jsonable(value: Any) -> Any:
    if isinstance(value, Best):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def dumps(value: Any) -> str:
    return json.dumps(jsonable(value), sort_keys=True)


class History:
    """`history.jsonl`: one JSON object per evaluated candidate and per round. Without a path (the
    ranks other than 0 of a distributed run) the records are kept in memory only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []
        if path is not None and path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    self.records.append(json.loads(line))

    def truncate(self, lines: int) -> None:
        """Drop records written after a checkpoint (a resumed run writes them again)."""
        self.records = self.records[:lines]
        if self.path is None:
            return
        text = "".join(dumps(r) + "\n" for r in self.records)
        atomic_write(self.path, text.encode())

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(jsonable(record))
        if self.path is None:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def candidate(self, stage: str, round_: int, index: int, record: Mapping[str, Any]) -> None:
        self.write({"kind": "candidate", "stage": stage, "round": round_, "index": index, **record})

    def round(
        self, stage: str, round_: int, records: Sequence[Mapping[str, Any]], best: int
    ) -> None:
        front = [r["genome"] for r in records if r.get("rank") == 0]
        self.write(
            {
                "kind": "round",
                "stage": stage,
                "round": round_,
                "best": records[best]["genome"],
                "best_is": records[best]["is"],
                "best_fid": records[best]["fid"],
                "best_params": records[best]["params"],
                "front": front,
            }
        )


LOCK = ".lock"
# What a run writes, folder by folder: all that `--force` may remove (never a user's own file or
# folder that happens to sit in the run directory).
RUN_FILES: dict[str, tuple[str, ...]] = {
    ".": ("spec.eagan", "resolved.json", "history.jsonl", "metrics.csv", ".*.tmp"),
    "checkpoints": ("ckpt-*.pt", "ckpt-*.json", ".ckpt-*.tmp"),
    "samples": ("*.png", ".*.tmp"),
    "plots": ("*.png", "*.pdf", ".*.tmp"),
    "final": (
        "generator.py",
        "generator.safetensors",
        "generator.json",
        "generator.pt",
        "discriminator.py",
        "discriminator.safetensors",
        "discriminator.json",
        "discriminator.pt",
        "metrics.json",
        ".*.tmp",
    ),
    "final/best": (
        "generator.py",
        "generator.safetensors",
        "discriminator.py",
        "discriminator.safetensors",
        "metrics.json",
        ".*.tmp",
    ),
    "tb": ("events.out.tfevents.*",),
}


def is_run(root: Path) -> bool:
    """A previous run: a directory holding both `spec.eagan` and `resolved.json`."""
    return (root / "spec.eagan").is_file() and (root / "resolved.json").is_file()


def clear_run_files(root: Path) -> None:
    """Remove the files a previous run wrote (and only those; folders stay)."""
    for sub, patterns in RUN_FILES.items():
        folder = root / sub
        if not folder.is_dir() or folder.is_symlink():
            continue
        for pattern in patterns:
            for path in folder.glob(pattern):
                if path.is_file() or path.is_symlink():
                    path.unlink(missing_ok=True)


def discard_run(root: Path, remove_root: bool) -> None:
    """Undo a run that failed before its first real checkpoint: its files go, then the folders it
    made when they are empty, the lock when nothing else is left, and ROOT itself when
    `remove_root` (this run created it) and it is empty; a user's own files stay."""
    clear_run_files(root)
    for sub in ("final/best", "final", "samples", "plots", "checkpoints", "tb"):
        folder = root / sub
        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()
    if root.is_dir() and all(p.name == LOCK for p in root.iterdir()):
        (root / LOCK).unlink(missing_ok=True)
        if remove_root:
            root.rmdir()


class RunLock:
    """An exclusive `fcntl.flock` on `DIR/.lock`, held while a process runs or resumes the run
    (released by `release`, or by the system when the process ends, however it ends)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        import fcntl

        if self.fd is not None:
            return self
        path = self.root / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunDirError(
                f"{self.root} is in use by process {holder} (another eagan run or resume); wait "
                "for it to finish or stop it, then try again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


class RunDir:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.samples = root / "samples"
        self.plots = root / "plots"
        self.final = root / "final"
        self.checkpoints = root / "checkpoints"

    @classmethod
    def create(
        cls, root: Path, spec_path: Path, force: bool = False, lock: RunLock | None = None
    ) -> RunDir:
        """A new run in ROOT. A non-empty ROOT is refused; with `force`, a previous run there
        (spec.eagan and resolved.json) is replaced: the files it wrote are removed, nothing
        else. `lock`, when given, is taken before anything is written."""
        if root.exists() and not root.is_dir():
            raise RunDirError(f"{root} is a file, not a directory; choose another --out")
        used = root.is_dir() and any(p.name != LOCK for p in root.iterdir())
        if used:
            if (root / "spec.eagan").exists() and not force:
                raise RunDirError(
                    f"{root} already holds a run; resume it with --resume {root}, "
                    "or pass --force to start over there"
                )
            if not force:
                raise RunDirError(
                    f"{root} exists and is not empty; choose another --out or pass --force"
                )
            if not is_run(root):
                raise RunDirError(
                    f"{root} is not empty and holds no previous run (spec.eagan and "
                    "resolved.json): --force replaces only a previous run, never other files; "
                    "choose another --out"
                )
        root.mkdir(parents=True, exist_ok=True)
        if lock is not None:
            lock.acquire()
        if used:
            clear_run_files(root)
        run = cls(root)
        for d in (root, run.samples, run.plots, run.final, run.checkpoints):
            d.mkdir(parents=True, exist_ok=True)
        atomic_write(root / "spec.eagan", spec_path.read_bytes())
        return run

    def history(self) -> History:
        return History(self.root / "history.jsonl")

    def write_resolved(self, program: Program, env: Mapping[str, Any]) -> None:
        resolved = {
            "spec": program.name,
            "file": program.file,
            "data": program.data,
            "latent": {"dim": program.latent_dim, "distribution": program.latent_distribution},
            "objectives": [list(o) for o in program.objectives],
            "blocks": program.blocks,
            "stages": [
                {"name": s.name, "kind": s.kind, "settings": s.settings} for s in program.stages
            ],
            "environment": env,
        }
        atomic_write(
            self.root / "resolved.json",
            (json.dumps(jsonable(resolved), indent=2, sort_keys=True) + "\n").encode(),
        )

    def write_json(self, relative: str, value: Any) -> None:
        atomic_write(
            self.root / relative,
            (json.dumps(jsonable(value), indent=2, sort_keys=True) + "\n").encode(),
        )


# The libraries whose versions a run records (distribution names, as pip knows them).
RECORDED_PACKAGES = (
    "torch", "torchvision", "numpy", "pymoo", "lark", "pydantic", "scipy", "rich", "typer",
)  # fmt: skip


def package_versions() -> dict[str, str | None]:
    """The installed version of each of `RECORDED_PACKAGES` (None where one is not installed)."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(root: Path | None = None) -> dict[str, Any] | None:
    """The commit of the checkout eagan's code runs from (`root`: the folder above the package),
    and whether its tracked files differ from it; None when eagan is not run from a git checkout
    (an installed wheel) or git is missing. Never raises: a run must not fail for its metadata."""
    import subprocess

    root = root or Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():  # a folder, or a file in a worktree
        return None

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def environment(device: str, seed: int) -> dict[str, Any]:
    import torch

    from runtime import __version__

    return {
        "eagan": __version__,
        "git": git_commit(),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "device": device,
        "cuda": torch.cuda.get_device_name(0)
        if device.startswith("cuda") and torch.cuda.is_available()
        else None,
        "threads": torch.get_num_threads(),
        "seed": seed,
    }
