"""`eagan`: the command line, thin over the library.

`check`, `show` and `fmt` only need the language (`eagan_dsl`), so this module imports nothing of
torch, the compiler or the runtime at import time: `eagan check` runs as a whole process in well
under a second. Commands that train or export import their modules inside the command; `eval`
(whose module imports torch at the top) is loaded only when it is invoked or listed in --help.

Exit codes: 0 success, 1 runtime failure (or `fmt --check` finding unformatted files), 2 bad input
(spec, path, genome). A bad spec never shows a traceback: every diagnostic is printed as
`FILE:LINE:COL: error: message`, its source line and a caret.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from runtime import commands

if TYPE_CHECKING:
    from rich.console import Console

    from eagan_dsl.ir import Program

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2

# name → (module, function, one-line help): commands whose modules import torch at the top.
_LAZY: dict[str, tuple[str, str, str]] = {
    "eval": ("runtime.metrics.cli", "eval_command", "IS and FID of an exported generator."),
}


class _LazyGroup(TyperGroup):
    """Loads the commands in `_LAZY` only when asked for, keeping `import runtime.cli` torch-free."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in _LAZY if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in _LAZY and cmd_name not in self.commands:
            module, function, help_text = _LAZY[cmd_name]
            single = typer.Typer(add_completion=False)
            fn = getattr(importlib.import_module(module), function)
            single.command(cmd_name, help=fn.__doc__ or help_text)(fn)
            command = typer.main.get_command(single)
            command.name = cmd_name
            self.commands[cmd_name] = command
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    cls=_LazyGroup,
    name="eagan",
    help="EAGAN: two-stage evolutionary architecture search for GANs, from a .eagan spec.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
                load(path)
            except SpecError as err:
                typer.echo(err.render(), err=True)
                failed = True
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


# -------------------------------------------------------------------------------------- show


def _value(value: Any) -> Any:
    """A resolved setting as JSON: mappings → objects, tuples → lists, best(stage) → its text."""
    if isinstance(value, Mapping):
        return {str(k): _value(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _prim(prim: Any) -> str:
    """A primitive with the arguments that differ from its defaults, as a spec would say it."""
    from eagan_dsl.primitives import PRIMITIVES

    spec = PRIMITIVES.get(prim.name)
    shown = []
    for key, value in prim.args:
        arg = spec.arg(key) if spec else None
        # the kernel size names a conv (conv3x3), so it is shown even at its default
        if value is None or (arg is not None and value == arg.default and key != "k"):
            continue
        shown.append(f"{key}: {str(value).lower() if isinstance(value, bool) else value}")
    return f"{prim.name}({', '.join(shown)})" if shown else prim.name


def _prims(prims: Any) -> str:
    return ", ".join(_prim(p) for p in prims)


def _params_module() -> Any | None:
    try:
        return importlib.import_module("compiler.params")
    except ImportError:
        return None


def _cells(program: Program) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for net in program.networks.values():
        for inst in net.cells:
            cell = inst.cell
            if cell.name in seen:
                continue
            seen[cell.name] = {
                "name": cell.name,
                "nodes": cell.num_nodes,
                "output": cell.output,
                "edges": [
                    {
                        "src": e.src,
                        "dst": e.dst,
                        "op": e.choice if e.searchable else e.candidates[0].name,
                        "searchable": e.searchable,
                        "candidates": [op.name for op in e.candidates],
                    }
                    for e in cell.edges
                ],
            }
    return list(seen.values())


def _network(program: Program, name: str, params: Any | None) -> dict[str, Any]:
    from eagan_dsl.genome import GenomeSpace

    net = program.networks[name]
    size = GenomeSpace(net).size()
    out: dict[str, Any] = {
        "name": name,
        "role": net.role,
        "stem": _prims(net.stem),
        "cells": [
            {
                "cell": i.cell.name,
                "index": i.index,
                "in_channels": i.in_channels,
                "channels": i.channels,
            }
            for i in net.cells
        ],
        "links": [
            f"{ln.src_cell}.{ln.src_node} -> {ln.dst_cell}.{ln.dst_node} : {ln.op.name}"
            for ln in net.links
        ],
        "head": _prims(net.head),
        "genes": len(net.searchable_edges),
        "space_size": size,
        "space_log10": round(math.log10(size), 2) if size > 0 else None,
    }
    if params is not None:
        counted = params.program_params(program, name)
        lo, hi = counted if isinstance(counted, tuple) else (counted, counted)
        out["params"] = {"min": lo, "max": hi}
    return out


def _fixed(program: Program, name: str, params: Any | None) -> dict[str, Any]:
    from eagan_dsl.genome import Genome, GenomeSpace

    fixed = program.fixed[name]
    space = GenomeSpace(program.networks[fixed.base])
    out: dict[str, Any] = {
        "name": name,
        "role": fixed.role,
        "base": fixed.base,
        "genome": space.encode(Genome(fixed.base, fixed.genome)),
    }
    if params is not None:
        out["params"] = params.program_params(program, name)
    return out


def describe(program: Program) -> dict[str, Any]:
    """Everything `eagan show` prints, as plain JSON-ready data."""
    params = _params_module()
    data = program.data
    return {
        "name": program.name,
        "file": program.file,
        "data": {
            "name": data.name,
            "root": data.root,
            "resolution": data.resolution,
            "channels": data.channels,
        },
        "latent": {"dim": program.latent_dim, "distribution": program.latent_distribution},
        "ops": [
            {"name": op.name, "parts": _prims(op.parts), "kind": op.kind}
            for op in program.ops.values()
        ],
        "choices": [
            {"name": n, "candidates": [op.name for op in ops]} for n, ops in program.choices.items()
        ],
        "cells": _cells(program),
        "networks": [_network(program, n, params) for n in program.networks],
        "fixed": [_fixed(program, n, params) for n in program.fixed],
        "params_note": None
        if params
        else "compiler.params is not available: parameter counts skipped",
        "objectives": {k: d for k, d in program.objectives},
        "blocks": {b: _value(v) for b, v in program.blocks.items()},
        "stages": [
            {"name": s.name, "kind": s.kind, "settings": _value(s.settings)} for s in program.stages
        ],
    }


def _off_keys() -> set[str]:
    """Keys whose unset value the spec writes as `off` (others print `-`)."""
    from eagan_dsl import settings

    tables = [*settings.BLOCKS.values(), *(own for own, _ in settings.STAGES.values())]
    return {
        k.name for table in tables for k in table if k.type in ("optional_float", "string", "bool")
    }


def _show_value(value: Any, key: str = "") -> str:
    if value is None:
        return "off" if key in _off_keys() else "-"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k}: {_show_value(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list):
        return "(" + ", ".join(_show_value(v) for v in value) + ")"
    return str(value)


def _render_show(info: dict[str, Any], console: Console) -> None:
    from rich.table import Table

    console.print(
        f"[bold]search {info['name']}[/bold]  data {info['data']['name']} "
        f"{info['data']['resolution']}×{info['data']['resolution']}×{info['data']['channels']}  "
        f"latent {info['latent']['dim']} {info['latent']['distribution']}"
    )
    ops = Table("op", "parts", "kind", title="op library", title_justify="left")
    for op in info["ops"]:
        ops.add_row(op["name"], op["parts"], op["kind"])
    choices = Table("choice", "candidates", title="choice sets", title_justify="left")
    for ch in info["choices"]:
        choices.add_row(ch["name"], ", ".join(ch["candidates"]))
    console.print(ops, choices)
    for cell in info["cells"]:
        t = Table(
            "edge",
            "op / choice",
            "searchable",
            title=f"cell {cell['name']} (output {cell['output']})",
            title_justify="left",
        )
        for e in cell["edges"]:
            t.add_row(f"{e['src']} → {e['dst']}", e["op"], "yes" if e["searchable"] else "")
        console.print(t)
    with_params = info["params_note"] is None
    nets = Table(
        "network",
        "role",
        "genes",
        "search space (valid genomes)",
        "≈",
        title="networks",
        title_justify="left",
    )
    if with_params:
        nets.add_column("params min", justify="right")
        nets.add_column("params max", justify="right")
    for n in info["networks"]:
        log = f"10^{n['space_log10']}" if n["space_log10"] is not None else "-"
        row = [n["name"], n["role"], str(n["genes"]), str(n["space_size"]), log]
        if with_params:
            row += [f"{n['params']['min']:,}", f"{n['params']['max']:,}"]
        nets.add_row(*row)
    nets.columns[3].no_wrap = True
    console.print(nets)
    for n in info["networks"]:
        t = Table(
            "part", "", title=f"{n['role']} {n['name']}", title_justify="left", show_header=False
        )
        t.add_row("stem", n["stem"] or "-")
        t.add_row(
            "cells",
            ", ".join(
                f"{c['index']}: {c['cell']} ({c['in_channels']} → {c['channels']})"
                for c in n["cells"]
            )
            or "-",
        )
        for link in n["links"]:
            t.add_row("link", link)
        t.add_row("head", n["head"] or "-")
        console.print(t)
    fixed = Table(
        "fixed network", "role", "base", "genome", title="fixed networks", title_justify="left"
    )
    fixed.columns[3].overflow = "fold"
    if with_params:
        fixed.add_column("params", justify="right")
    for f in info["fixed"]:
        fixed.add_row(
            f["name"],
            f["role"],
            f["base"],
            f["genome"],
            *([f"{f['params']:,}"] if with_params else []),
        )
    console.print(fixed)
    if not with_params:
        console.print(f"note: {info['params_note']}")
    console.print("objectives: " + ", ".join(f"{k}: {d}" for k, d in info["objectives"].items()))
    blocks = Table(
        "block", "setting", "value", title="blocks (defaults filled in)", title_justify="left"
    )
    for name, values in info["blocks"].items():
        for key, value in values.items():
            blocks.add_row(name, key, _show_value(value, key))
    console.print(blocks)
    stages = Table(
        "setting",
        *(f"{st['name']} : {st['kind']}" for st in info["stages"]),
        title="stages (every resolved setting, defaults included)",
        title_justify="left",
    )
    keys = list(dict.fromkeys(k for st in info["stages"] for k in st["settings"]))
    for key in keys:
        stages.add_row(
            key,
            *(
                _show_value(st["settings"][key], key) if key in st["settings"] else ""
                for st in info["stages"]
            ),
        )
    console.print(stages)


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
        info = describe(load(spec))
        if as_json:
            typer.echo(json.dumps(info, indent=2, ensure_ascii=False))
        else:
            _render_show(info, _console())


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


# ---------------------------------------------------------------------- run, train, sample, export

app.command("run")(commands.run_command)
app.command("train")(commands.train_command)
app.command("sample")(commands.sample_command)


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


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (`eagan = runtime.cli:main`)."""
    app(args=argv, prog_name="eagan")


if __name__ == "__main__":
    main(sys.argv[1:])
