"""`eagan`: the command line, thin over the library.

`check`, `show` and `fmt` only need the language (`eagan_dsl`), so this module imports nothing of
torch, the compiler or the runtime at import time: `eagan check` runs as a whole process in well
under a second. What `show` prints is built by `runtime.show`; `run`, `train`, `sample` and `eval`
live in `runtime.commands`, which imports their modules inside each command.

Exit codes: 0 success, 1 runtime failure (or `fmt --check` finding unformatted files), 2 bad input
(spec, path, genome). A bad spec never shows a traceback: every diagnostic is printed as
`FILE:LINE:COL: error: message`, its source line and a caret.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from runtime import commands

if TYPE_CHECKING:
    from rich.console import Console


EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2

app = typer.Typer(
    name="eagan",
    help="EAGAN: two-stage evolutionary architecture search for GANs, from a .eagan spec.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _hide_flag_types() -> None:
    """typer ≥ 0.2x prints a `<bool>` placeholder after every flag (`--quick <bool>`), though a
    flag takes no value; older versions print nothing there, as this makes every version do."""
    option = getattr(typer.core, "TyperOption", None)
    shown = getattr(option, "display_type_rich", None)
    if option is None or shown is None:
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if getattr(self, "is_flag", False) else shown(self, ctx)

    option.display_type_rich = display_type_rich


_hide_flag_types()


def _print_version(value: bool) -> None:
    if value:
        from runtime import __version__

        typer.echo(f"eagan {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    pass


# ------------------------------------------------------------------------------------ output


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    # rich honours NO_COLOR and drops styles when not writing to a terminal; a pipe gets a wide
    # console so that tables are not squeezed to 80 columns.
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, highlight=False, width=None if probe.is_terminal else 160)


def _error(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


@contextmanager
def _spec_errors() -> Iterator[None]:
    """A SpecError → its diagnostics on stderr, exit 2; anything else unexpected → one line, exit 1
    (never a traceback)."""
    from eagan_dsl.diagnostics import SpecError

    try:
        yield
    except SpecError as err:
        typer.echo(err.render(), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except (typer.Exit, typer.Abort, typer.BadParameter, KeyboardInterrupt):
        raise
    except Exception as err:  # noqa: BLE001 - the last line of defence for the user
        typer.echo(f"internal error: {type(err).__name__}: {err}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None


def _missing(paths: list[Path]) -> bool:
    """Report every path that is not a file; True when any is missing."""
    bad = [p for p in paths if not p.is_file()]
    for path in bad:
        _error(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    return bool(bad)


# ------------------------------------------------------------------------------------- check


@app.command()
def check(
    specs: Annotated[list[Path], typer.Argument(help="one or more .eagan files")],
) -> None:
    """Parse and check specs: silent when valid; every error located, exit 2."""
    from eagan_dsl.checker import load
    from eagan_dsl.diagnostics import SpecError

    failed = _missing(specs)
    for path in specs:
        if not path.is_file():
            continue
        with _spec_errors():
            try:
                from compiler.memory import check_memory

                check_memory(load(path), path.read_text(encoding="utf-8", errors="replace"))
            except SpecError as err:
                typer.echo(err.render(), err=True)
                failed = True
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


# -------------------------------------------------------------------------------------- show


@app.command()
def show(
    spec: Annotated[Path, typer.Argument(help="a .eagan file")],
    as_json: Annotated[
        bool, typer.Option("--json", help="one JSON object instead of tables")
    ] = False,
) -> None:
    """Ops, choice sets, cells, networks (search-space size, parameters), every resolved setting."""
    from eagan_dsl.checker import load

    if _missing([spec]):
        raise typer.Exit(EXIT_BAD_INPUT)
    with _spec_errors():
        from runtime.show import describe, render

        info = describe(load(spec))
        if as_json:
            typer.echo(json.dumps(info, indent=2, ensure_ascii=False))
        else:
            render(info, _console())


# --------------------------------------------------------------------------------------- fmt


@app.command()
def fmt(
    specs: Annotated[list[Path], typer.Argument(help="one or more .eagan files")],
    check_only: Annotated[
        bool,
        typer.Option("--check", help="write nothing; exit 1 listing the files that would change"),
    ] = False,
) -> None:
    """Rewrite specs in the canonical layout (comments kept)."""
    from eagan_dsl.diagnostics import SpecError
    from eagan_dsl.fmt import format_file

    bad = _missing(specs)
    changed: list[Path] = []
    for path in specs:
        if not path.is_file():
            continue
        with _spec_errors():
            try:
                text, formatted = format_file(path)
            except SpecError as err:
                typer.echo(err.render(), err=True)
                bad = True
                continue
        if text == formatted:
            continue
        changed.append(path)
        if not check_only:
            path.write_text(formatted, encoding="utf-8")
    for path in changed:
        typer.echo(f"would reformat {path}" if check_only else f"reformatted {path}")
    if bad:
        raise typer.Exit(EXIT_BAD_INPUT)
    if check_only and changed:
        raise typer.Exit(EXIT_FAILURE)


# ----------------------------------------------------------------- run, train, sample, eval, export

app.command("run")(commands.run_command)
app.command("train")(commands.train_command)
app.command("sample")(commands.sample_command)
app.command("eval")(commands.eval_command)


@app.command("export")
def export(
    spec: Annotated[Path, typer.Option("--spec", help="the .eagan spec the genome belongs to")],
    genome: Annotated[
        str,
        typer.Option("--genome", help="a genome string (G:bilinear,...) or a fixed network's name"),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="directory to write the module and weights to")
    ],
    weights: Annotated[
        Path | None, typer.Option("--weights", help="supernet or subnet weights")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="write into a non-empty directory")
    ] = False,
) -> None:
    """Export one architecture as a standalone PyTorch module (needs only torch) and its weights."""
    from compiler.export import ExportError, export_command

    if _missing([spec]):
        raise typer.Exit(EXIT_BAD_INPUT)
    with _spec_errors():
        try:
            result = export_command(spec, genome, out, weights, force)
        except ExportError as err:
            _error(str(err))
            raise typer.Exit(EXIT_BAD_INPUT) from None
    typer.echo(
        f"wrote {result.source} and {result.weights} ({result.genome}, {result.params:,} params)"
    )
    if weights is None:
        typer.echo(
            "note: without --weights these are untrained weights (freshly initialised); give "
            "--weights RUN/final/generator.safetensors (or a supernet checkpoint) for trained ones",
            err=True,
        )


@app.command("report")
def report(
    runs: Annotated[list[Path], typer.Argument(help="run directories (several: a comparison)")],
    as_json: Annotated[bool, typer.Option("--json", help="the summaries as JSON")] = False,
) -> None:
    """Summarize a run directory (stages, picks, final and best metrics, wall time, files), or
    compare several; reads only the run directories."""
    from runtime.report import report as write_report
    from runtime.rundir import RunDirError

    try:
        write_report(runs, _console(), as_json)
    except RunDirError as err:
        _error(str(err))
        raise typer.Exit(EXIT_BAD_INPUT) from None


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (`eagan = runtime.cli:main`)."""
    app(args=argv, prog_name="eagan")


if __name__ == "__main__":
    main(sys.argv[1:])
