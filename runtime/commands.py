"""The runtime's CLI commands (`eagan run`, `train`, `sample`, `eval`), as plain functions with
typer annotations; `runtime/cli.py` registers them. Bad input exits 2 with one clear line, a
failure during the run exits 1; never a traceback for a user's mistake."""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path
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
    threads: Annotated[int | None, typer.Option("--threads", help=THREADS_HELP)] = None,
) -> None:
    """Run every stage of SPEC: warm-up, stage 1, stage 2, selection, fully-train, export.
    Ctrl-C saves a checkpoint and exits 130; `--resume DIR` continues from it."""
    # every argument is checked before torch is imported (seconds under load)
    if nproc < 1:
        _fail(f"--nproc must be at least 1, not {nproc}")
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        _fail(f"--device must be auto, cpu or cuda, not {device}")
    if spec is None and resume is None:
        _fail("give a SPEC to run, or --resume DIR to continue a run")
    _check_spec_file(spec)
    _check_seed(seed)
    _check_threads(threads)
    if resume is not None:
        given = {"--seed": seed is not None, "--quick": quick, "--threads": threads is not None}
        given["--out"] = out is not None and out.resolve() != resume.resolve()
        if any(given.values()):
            flags = " and ".join(flag for flag, on in given.items() if on)
            _fail(
                f"{flags} cannot be combined with --resume: a resumed run keeps the settings it "
                f"started with ({resume / 'resolved.json'}); drop {flags}"
            )
    from runtime.dist import launched

    if nproc > 1 and not launched():
        raise typer.Exit(_torchrun(nproc))
    from runtime import runner
    from runtime.checkpoint import BadCheckpoint, CheckpointError
    from runtime.search import Interrupted

    _set_threads(threads)
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
    force: Annotated[
        bool, typer.Option("--force", help="start over in a directory that holds a previous run")
    ] = False,
    threads: Annotated[int | None, typer.Option("--threads", help=THREADS_HELP)] = None,
) -> None:
    """Fully train one (G, D) pair from scratch with the spec's fully-train settings.
    Ctrl-C saves a checkpoint and exits 130; `eagan run --resume DIR` continues it."""
    if epochs is not None and epochs < 1:
        _fail(f"--epochs must be at least 1, not {epochs}")
    _check_seed(seed)
    _check_spec_file(spec)
    _check_threads(threads)
    from runtime import runner
    from runtime.search import Interrupted

    _set_threads(threads)

    def go() -> Path:
        from eagan_dsl.checker import load

        only = runner.train_program(load(spec), g, d, epochs)
        return runner.run_program(
            only,
            spec,
            out or Path("runs") / f"{spec.stem}-train",
            device,
            seed,
            force,
            train={"g": g, "d": d, "epochs": epochs},
        )

    try:
        _guarded(go)
    except Interrupted:
        raise typer.Exit(130) from None


THREADS_HELP = "torch CPU threads (recorded in resolved.json; a resume uses the same count)"


def _check_threads(threads: int | None) -> None:
    if threads is not None and threads < 1:
        _fail(f"--threads must be at least 1, not {threads}")


def _set_threads(threads: int | None) -> None:
    """Before the run directory exists, so that resolved.json records the count."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _check_spec_file(spec: Path | None) -> None:
    """A missing spec is reported as `eagan check` reports it (`error: X: no such file`)."""
    if spec is not None and not spec.is_file():
        _fail(f"{spec}: no such file" if not spec.exists() else f"{spec}: not a file")


def _check_seed(seed: int | None) -> None:
    """The range the spec language allows for `run { seed: ... }`."""
    if seed is not None and not 0 <= seed < 2**63:
        _fail(f"--seed must be in [0, 2**63 - 1] (as the spec's run seed), not {seed}")


def sample_command(
    run_dir: Annotated[
        Path, typer.Argument(help="a run directory (or a folder with an exported generator)")
    ],
    n: Annotated[int, typer.Option("-n", help="number of images")] = 64,
    out: Annotated[Path, typer.Option("--out", help="PNG file to write")] = Path("samples.png"),
    seed: Annotated[int, typer.Option(help="seed of the latent vectors")] = 0,
) -> None:
    """Write a grid of N images from a run's final generator."""
    if n < 1:
        _fail(f"-n must be at least 1, not {n}")
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        _fail(f"--out {out}: give a .png (or .jpg) file name")
    if not out.parent.is_dir():
        _fail(f"--out {out}: the folder {out.parent} does not exist")
    import torch

    from runtime.exported import ExportedError, load_generator

    try:
        gen = load_generator(run_dir)
    except ExportedError as err:
        _fail(str(err))
        return
    z = torch.randn(n, gen.latent_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        images = gen.module(z)
    from runtime.grids import save_grid

    factor = save_grid(images, out, nrow=max(int(n**0.5), 1))
    shown = f", each pixel shown as {factor}×{factor}" if factor > 1 else ""
    typer.echo(f"wrote {n} images to {out}{shown}")


def _result_table(result: Any, title: str = "eagan eval") -> Any:
    from rich.table import Table

    from eagan_dsl.settings import distance_name

    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("IS", f"{result.is_mean:.4f} ± {result.is_std:.4f}")
    t.add_row(distance_name(str(result.extractor)), f"{result.fid:.4f}")
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


def _recorded_eval(directory: Path) -> dict[str, Any]:
    """The evaluation settings a run recorded with its final generator (`final/metrics.json`,
    key "eval"), or {} for an exported generator without them."""
    for path in (directory / "metrics.json", directory / "final" / "metrics.json"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found = record.get("eval") if isinstance(record, dict) else None
        if isinstance(found, dict):
            return found
    return {}


def eval_command(
    generator_dir: Annotated[
        Path, typer.Argument(help="an exported generator's directory, or a run directory")
    ],
    dataset: Annotated[
        str | None,
        typer.Option(
            "--data",
            "-d",
            help="digits, cifar10, stl10, or a .npz file with mu/sigma (default: the run's, else digits)",
        ),
    ] = None,
    n_images: Annotated[
        int | None,
        typer.Option("--images", "-n", help="generated images (default: the run's, else 5000)"),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size", help="default: the run's, else the extractor's per-device choice"
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="seed of the latent vectors (default: the run's, else 0)"),
    ] = None,
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
    splits: Annotated[
        int | None, typer.Option("--splits", help="IS splits (default: the run's, else 10)")
    ] = None,
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
    """IS and FID of an exported generator against a real data set. On a run's `final/` (or the
    run directory), the settings the run scored it with are the defaults, so that the run's own
    numbers are reproduced exactly."""
    from rich.console import Console

    from eagan_dsl.settings import distance_name
    from runtime.exported import ExportedError
    from runtime.metrics import MetricsError, run_eval

    recorded = _recorded_eval(generator_dir)
    if dataset is None:
        dataset = str(recorded.get("reference", "digits"))
    n_images = int(recorded.get("images", 5000)) if n_images is None else n_images
    seed = int(recorded.get("seed", 0)) if seed is None else seed
    splits = int(recorded.get("splits", 10)) if splits is None else splits
    if batch_size is None and "batch_size" in recorded:
        batch_size = int(recorded["batch_size"])
    if recorded:
        typer.echo(
            f"using the run's evaluation settings (data {dataset}, {n_images} images, seed "
            f"{seed}, {splits} IS split(s)); options override them",
            err=True,
        )
    try:
        result = run_eval(
            generator_dir, dataset, n_images, batch_size=batch_size, seed=seed, device=device,
            inception_weights=inception_weights, allow_download=allow_download,
            cache_dir=cache_dir, splits=splits, bf16=bf16,
        )  # fmt: skip
    except (MetricsError, ExportedError) as e:
        _fail(str(e))
        return
    Console().print(_result_table(result))
    if json_out is not None:
        payload: dict[str, Any] = {
            "generator": str(generator_dir),
            "dataset": dataset,
            **result.to_dict(),
            "distance": distance_name(str(result.extractor)),
        }
        json_out.parent.mkdir(parents=True, exist_ok=True)
        tmp = json_out.with_name(json_out.name + ".tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        os.replace(tmp, json_out)
