"""What `eagan show` says about a program: `describe` (plain JSON-ready data, the `--json` dump)
and `render` (the same as rich tables). Every default the runtime applies is visible here.

Imports only the language at the top; parameter counts come from `compiler.params` when it is
importable (it needs torch), else they are skipped with a note.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from eagan_dsl.ir import Program


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
                "decisions": [{"name": d.name, "options": list(d.options)} for d in cell.decisions],
                "edges": [
                    {
                        "src": e.src,
                        "dst": e.dst,
                        "op": e.choice if e.searchable else e.candidates[0].name,
                        "searchable": e.searchable,
                        "candidates": [op.name for op in e.options],
                        "reads": [cell.decisions[d].name for d in e.depends],
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
            f"{ln.src_cell}.{ln.src_node} -> {ln.dst_cell}.{ln.dst_node} : "
            + (
                f"{ln.choice} (searched: {', '.join(o.name for o in ln.options)})"
                if ln.choice
                else ln.op.name
            )
            for ln in net.links
        ],
        "head": _prims(net.head),
        "genes": len(net.genes),
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
        ]
        + [
            {"name": name, "parts": text, "kind": kind}
            for name, (text, kind) in program.case_ops.items()
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


def render(info: dict[str, Any], console: Console) -> None:
    """`describe`'s data as the tables `eagan show` prints."""
    from rich.table import Table

    console.print(
        f"[bold]search {info['name']}[/bold]  data {info['data']['name']} "
        f"{info['data']['resolution']}×{info['data']['resolution']}×{info['data']['channels']}  "
        f"latent {info['latent']['dim']} {info['latent']['distribution']}"
    )
    ops = Table("op", "parts", "kind", title="op library", title_justify="left")
    from rich.markup import escape

    for op in info["ops"]:
        ops.add_row(op["name"], escape(op["parts"]), op["kind"])
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
        for d in cell.get("decisions", []):
            values = escape(f"[{', '.join(d['options'])}]")
            t.add_row("decision", f"{d['name']}: {values}", "yes (one gene)")
        for e in cell["edges"]:
            reads = f" (reads {', '.join(e['reads'])})" if e.get("reads") else ""
            t.add_row(f"{e['src']} → {e['dst']}", e["op"] + reads, "yes" if e["searchable"] else "")
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
        row = [n["name"], n["role"], str(n["genes"]), f"{n['space_size']:,}", log]
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
