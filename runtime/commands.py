"""The runtime's CLI commands (`eagan run`, `eagan train`, `eagan sample`), as plain functions with
typer annotations; `runtime/cli.py` registers them. Bad input exits 2 with one clear line, a
failure during the run exits 1; never a traceback for a user's mistake."""

from __future__ import annotations

import dataclasses
import errno
import importlib.util
import os
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

import typer

EXIT_BAD_INPUT = 2


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _user_errors() -> tuple[type[BaseException], ...]:
    from eagan_dsl.genome import GenomeError
    from runtime.data import DataError
    from runtime.metrics import MetricsError
    from runtime.rundir import RunDirError

    errors: list[type[BaseException]] = [GenomeError, DataError, MetricsError, RunDirError]
    try:
        from compiler.export import ExportError

        errors.append(ExportError)
    except ImportError:  # pragma: no cover - the compiler always ships ExportError
        pass
    return tuple(errors)


def _guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from eagan_dsl.diagnostics import SpecError

    try:
        return fn(*args, **kwargs)
    except SpecError as err:
        typer.echo(err.render(), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except _user_errors() as err:
        _fail(str(err))
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None


def run_command(
    spec: Annotated[
        Path | None, typer.Argument(help="the .eagan spec to run (optional with --resume)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="run directory (default runs/<spec name>)")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    seed: Annotated[int | None, typer.Option(help="override the spec's run seed")] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="shrink rounds, epochs and images: a smoke test")
    ] = False,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="continue the run in this directory")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="reuse a non-empty output directory; resume with a changed spec"
        ),
    ] = False,
    inception_weights: Annotated[
        str | None, typer.Option(help="path of pt_inception-2015-12-05-6726825d.pth")
    ] = None,
    nproc: Annotated[
        int,
        typer.Option("--nproc", help="processes on this machine (launches torchrun; one per GPU)"),
    ] = 1,
    resume_if_exists: Annotated[
        bool,
        typer.Option(
            "--resume-if-exists",
            help="resume the run in --out if it holds one (same spec), else start it: for "
            "torchrun --max-restarts and schedulers that requeue the same command",
        ),
    ] = False,
) -> None:
    """Run every stage of SPEC: warm-up, stage 1, stage 2, selection, fully-train, export.
    Ctrl-C saves a checkpoint and exits 130; `--resume DIR` continues from it."""
    from runtime import runner
    from runtime.dist import launched

    if nproc < 1:
        _fail(f"--nproc must be at least 1, not {nproc}")
    if nproc > 1 and not launched():
        raise typer.Exit(_torchrun(nproc))
    from runtime.checkpoint import BadCheckpoint, CheckpointError
    from runtime.search import Interrupted

    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        _fail(f"--device must be auto, cpu or cuda, not {device}")
    if spec is None and resume is None:
        _fail("give a SPEC to run, or --resume DIR to continue a run")
    if resume_if_exists and spec is not None and resume is None:
        resume = _existing_run(out or Path("runs") / spec.stem)
    try:
        if resume is not None:
            _guarded(
                runner.resume,
                resume,
                spec,
                device=None if device == "auto" else device,
                force=force,
                inception_weights=inception_weights,
            )
            target = resume
        else:
            assert spec is not None
            target = out or Path("runs") / spec.stem
            _guarded(
                runner.run,
                spec,
                target,
                device=device,
                seed=seed,
                quick=quick,
                force=force,
                inception_weights=inception_weights,
            )
    except Interrupted:
        raise typer.Exit(130) from None
    except BadCheckpoint as err:  # no checkpoint that can be read: bad input
        _fail(str(err))
    except CheckpointError as err:  # one that cannot be written (a full disk): a failure
        _fail(str(err), code=1)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = resume or out or (Path("runs") / spec.stem if spec is not None else "DIR")
        _fail(
            f"no space left on the device ({err.filename or where}): free some space, then "
            f"resume with  eagan run --resume {where}",
            code=1,
        )
    except ValueError as err:
        _fail(str(err))
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks
        typer.echo(f"run finished: {target}")


def _existing_run(out: Path) -> Path | None:
    """--resume-if-exists: `out` when it holds a run (then resumed, with SPEC checked against the
    run's own spec), else None (a fresh run). Under torchrun rank 0 decides for every rank,
    before any rank writes."""
    from runtime.dist import from_env, launched, on_main
    from runtime.rundir import is_run

    if not launched():
        return out if is_run(out) else None
    return on_main(from_env(), lambda: out if is_run(out) else None)


def _torchrun(nproc: int) -> int:
    """`eagan run --nproc N ...` = `PYTHONSAFEPATH=1 torchrun --standalone --nproc_per_node N
    -m runtime run ...`."""
    import subprocess

    args, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            args.append(arg)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "runtime",
        *args,
    ]
    # The workers import the eagan this process runs, never a `runtime/` or `compiler/` folder in
    # the working directory (PYTHONSAFEPATH: no working directory on sys.path).
    home = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (home, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONSAFEPATH": "1", "PYTHONPATH": path}
    typer.echo("launching: PYTHONSAFEPATH=1 " + " ".join(cmd[1:]), err=True)
    return subprocess.run(cmd, check=False, env=env).returncode


def train_command(
    spec: Annotated[
        Path, typer.Argument(help="the .eagan spec (data, train and evaluate settings)")
    ],
    g: Annotated[
        str, typer.Option("--g", help="generator: a fixed network name or a genome string")
    ],
    d: Annotated[
        str, typer.Option("--d", help="discriminator: a fixed network name or a genome string")
    ],
    out: Annotated[Path | None, typer.Option("--out", help="run directory")] = None,
    epochs: Annotated[int | None, typer.Option(help="override the fully-train epochs")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    seed: Annotated[int | None, typer.Option(help="override the spec's run seed")] = None,
    force: Annotated[bool, typer.Option("--force")] = False,
) -> None:
    """Fully train one (G, D) pair from scratch with the spec's fully-train settings."""
    from runtime import runner

    def go() -> Path:
        from eagan_dsl.checker import load

        program = load(spec)
        stage = next((s for s in program.stages if s.kind == "train"), None)
        settings: dict[str, Any] = dict(stage.settings) if stage else {}
        if stage is None:
            from eagan_dsl.settings import TRAIN_STAGE

            settings = {k.name: k.default for k in TRAIN_STAGE}
            for block in ("train", "evaluate"):
                settings.update(program.blocks[block])
        settings["g"], settings["d"] = g, d
        if epochs is not None:
            settings["epochs"] = epochs
        from eagan_dsl.ir import StageIR

        train_stage = StageIR(
            stage.name if stage else "fully_train", "train", MappingProxyType(settings)
        )
        only = dataclasses.replace(program, stages=(train_stage,))
        return runner.run_program(
            only, spec, out or Path("runs") / f"{spec.stem}-train", device, seed, force
        )

    _guarded(go)


def load_exported(directory: Path, role: str = "generator") -> Any:
    """Import an exported standalone module (`generator.py` + weights) from a directory."""
    import torch

    source = directory / f"{role}.py"
    if not source.is_file():
        raise FileNotFoundError(
            f"{source} not found: expected an exported {role} (eagan export / a run's final/)"
        )
    spec = importlib.util.spec_from_file_location(f"_eagan_exported_{role}", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    cls = getattr(module, role.capitalize())
    net = cls()
    weights = directory / f"{role}.safetensors"
    if weights.is_file():
        from safetensors.torch import load_file

        state = load_file(str(weights))
    else:
        state = torch.load(directory / f"{role}.pt", map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return module, net.eval()


def sample_command(
    run_dir: Annotated[
        Path, typer.Argument(help="a run directory (or a folder with an exported generator.py)")
    ],
    n: Annotated[int, typer.Option("-n", help="number of images")] = 64,
    out: Annotated[Path, typer.Option("--out", help="PNG file to write")] = Path("samples.png"),
    seed: Annotated[int, typer.Option(help="seed of the latent vectors")] = 0,
) -> None:
    """Write a grid of N images from a run's final generator."""
    import torch
    from torchvision.utils import save_image

    folder = run_dir / "final" if (run_dir / "final" / "generator.py").is_file() else run_dir
    try:
        module, net = load_exported(folder)
    except (FileNotFoundError, RuntimeError, OSError) as err:
        _fail(str(err))
        return
    z = torch.randn(n, int(module.LATENT_DIM), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        images = net(z)
    save_image(images * 0.5 + 0.5, out, nrow=max(int(n**0.5), 1))
    typer.echo(f"wrote {n} images to {out}")
