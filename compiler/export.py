"""Export one architecture as standalone Python source that imports only torch, plus its weights.

STYLE lesson 7 (generated code stands alone and points back): `generator.py` / `discriminator.py`
define one class, `Generator` / `Discriminator`, with the architecture written out line by line
(no genome interpreter), module-level `LATENT_DIM`, `RESOLUTION`, `CHANNELS`, and a header naming
the spec and genome. The weights go to `generator.safetensors` / `discriminator.safetensors`, keyed
for that class, and the same to `generator.pt` / `discriminator.pt`, which torch alone loads. The forward reproduces `compiler.extract.SubNet` term by term, in the same order,
so the exported network's output equals the supernet's bit for bit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from eagan_dsl.genome import Genome, GenomeError
from eagan_dsl.ir import NetworkIR, Op, Program

from .extract import SubNet, build_subnet
from .params import (
    Part,
    count_params,
    edge_channels,
    genome_space,
    head_parts,
    node_channels,
    stem_parts,
    walk,
)
from .supernet import as_genome, live_nodes

__all__ = ["ExportError", "ExportResult", "export_command", "export_network", "render_source"]

_MODULE_PRIMS = {
    "skip", "conv", "conv_transpose", "upsample", "avgpool", "maxpool", "bn", "inorm", "relu",
    "lrelu", "tanh", "linear",
}  # fmt: skip


_WIDTH = 100  # the project's line length (pyproject.toml [tool.ruff])
_INIT_INDENT = 8  # statements inside __init__ / forward


def _split_args(text: str) -> list[str]:
    args, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
    if text[start:].strip():
        args.append(text[start:].strip())
    return args


def _call_lines(lead: str, call: str, trail: str, indent: int) -> list[str]:
    """`lead + call + trail`, wrapped as ruff format would wrap it at `_WIDTH` columns: the
    arguments on one indented line if they fit, else one per line with a trailing comma."""
    if indent + len(lead + call + trail) <= _WIDTH or "(" not in call or not call.endswith(")"):
        return [lead + call + trail]
    name, inner = call[: call.index("(") + 1], call[call.index("(") + 1 : -1]
    args = _split_args(inner)
    head, tail = lead + name, ")" + trail
    if len(args) == 1:
        return [head, *("    " + x for x in _call_lines("", args[0], "", indent + 4)), tail]
    if indent + 4 + len(", ".join(args)) <= _WIDTH:
        return [head, "    " + ", ".join(args), tail]
    body = [line for a in args for line in _call_lines("", a, ",", indent + 4)]
    return [head, *("    " + x for x in body), tail]


class ExportError(ValueError):
    """Bad input to an export; the message says which input and what to do."""


@dataclass(frozen=True)
class ExportResult:
    source: Path
    weights: Path
    genome: str
    params: int


# ------------------------------------------------------------------------------ rendering
def _module_expr(part: Part) -> str:
    p, cin, cout = part.prim, part.in_channels, part.out_channels
    name = p.name
    if name in ("conv", "conv_transpose"):
        k = int(p.get("k"))
        stride = int(p.get("stride", 1 if name == "conv" else 2))
        groups = cin if p.get("depthwise") else 1
        args = [str(cin), str(cout), f"kernel_size={k}"]
        if stride != 1:
            args.append(f"stride={stride}")
        if name == "conv":
            dilation = int(p.get("dilation", 1))
            pad = p.get("padding")
            pad = dilation * (k - 1) // 2 if pad is None else int(pad)
            args += [f"padding={pad}"] + ([f"dilation={dilation}"] if dilation != 1 else [])
        else:
            pad = p.get("padding")
            out_pad = p.get("output_padding")
            args.append(f"padding={(k - 1) // 2 if pad is None else int(pad)}")
            args.append(f"output_padding={stride - 1 if out_pad is None else int(out_pad)}")
        if groups != 1:
            args.append(f"groups={groups}")
        if not p.get("bias", True):
            args.append("bias=False")
        cls = "nn.Conv2d" if name == "conv" else "nn.ConvTranspose2d"
        expr = f"{cls}({', '.join(args)})"
        return f"spectral_norm({expr})" if p.get("sn") else expr
    if name == "linear":
        expr = f"nn.Linear({cin}, {cout}{'' if p.get('bias', True) else ', bias=False'})"
        return f"spectral_norm({expr})" if p.get("sn") else expr
    if name == "upsample":
        mode = p.get("mode", "nearest")
        corners = ", align_corners=False" if mode == "bilinear" else ""
        return f"nn.Upsample(scale_factor=2, mode={_literal(mode)}{corners})"
    simple = {
        "skip": "nn.Identity()",
        "avgpool": f"nn.AvgPool2d({p.get('k', 2)})",
        "maxpool": f"nn.MaxPool2d({p.get('k', 2)})",
        "bn": f"nn.BatchNorm2d({cin})",
        "inorm": f"nn.InstanceNorm2d({cin})",
        "relu": "nn.ReLU()",
        "lrelu": f"nn.LeakyReLU({p.get('slope', 0.2)})",
        "tanh": "nn.Tanh()",
    }
    return simple[name]


def _plain(text: str) -> bool:
    """Printable ASCII only: nothing that could end a comment's line (newline, `\\r`, form feed,
    U+2028 and the other line separators) or a string literal."""
    return all(" " <= ch <= "~" for ch in text)


def _comment(text: str) -> str:
    """User-controlled text (a spec path, a name) for a `#` comment of generated code: as it is
    when plain, else as its quoted `ascii()` literal, so that it can never start a line of code."""
    return text if _plain(text) else ascii(text)


def _literal(value: object) -> str:
    """A value as a Python literal of generated code (never pasted in as code)."""
    if isinstance(value, str):
        return (
            '"' + value + '"'
            if _plain(value) and '"' not in value and "\\" not in value
            else ascii(value)
        )
    return repr(value)


def _docstring(text: str) -> str:
    if _plain(text) and '"' not in text and "\\" not in text:
        return '"""' + text + '"""'
    return ascii(text)


def _inline(part: Part, x: str, target: str | None) -> str:
    name = part.prim.name
    if name == "resize":
        mode = part.prim.get("mode", "nearest")
        corners = ", align_corners=False" if mode == "bilinear" else ""
        return f"F.interpolate({x}, size={target}.shape[-2:], mode={_literal(mode)}{corners})"
    if name == "sum_pool":
        return f"{x}.sum(dim=(2, 3))"
    if name == "mean_pool":
        return f"{x}.mean(dim=(2, 3))"
    raise ExportError(f"primitive '{name}' cannot be exported inline")


@dataclass
class _Writer:
    init: list[str] = field(default_factory=list)
    forward: list[str] = field(default_factory=list)
    keys: list[tuple[str, str]] = field(default_factory=list)  # (subnet prefix, export prefix)

    def module(
        self, attr: str, subnet_prefix: str, parts: Sequence[tuple[int, Part]], comment: str
    ) -> None:
        """`self.attr = ...` for a run of module parts; records how the weights are renamed."""
        if comment:
            self.init.append(f"# {_comment(comment)}")
        if len(parts) == 1:
            i, part = parts[0]
            self.init += _call_lines(f"self.{attr} = ", _module_expr(part), "", _INIT_INDENT)
            self.keys.append((f"{subnet_prefix}.{i}", attr))
            return
        self.init.append(f"self.{attr} = nn.Sequential(")
        for j, (i, part) in enumerate(parts):
            self.init += [
                "    " + line for line in _call_lines("", _module_expr(part), ",", _INIT_INDENT + 4)
            ]
            self.keys.append((f"{subnet_prefix}.{i}", f"{attr}.{j}"))
        self.init.append(")")

    def op(
        self,
        attr: str,
        subnet_prefix: str,
        parts: Sequence[Part],
        x: str,
        target: str | None,
        comment: str,
        assign: str | None = None,
    ) -> str:
        """The expression applying an op's parts to `x`; modules are declared in `init`. With
        `assign`, each step is written as its own line `assign = step(assign)` instead."""
        if all(p.prim.name == "skip" for p in parts):
            return x  # identity: no module
        steps: list[Part | list[tuple[int, Part]]] = []
        for i, part in enumerate(parts):
            if part.prim.name not in _MODULE_PRIMS:
                steps.append(part)
            elif steps and isinstance(steps[-1], list):
                steps[-1].append((i, part))
            else:
                steps.append([(i, part)])
        n_runs = sum(isinstance(step, list) for step in steps)
        expr, r = x, 0
        for step in steps:
            if isinstance(step, Part):
                expr = _inline(step, expr, target)
            else:
                name = attr if n_runs == 1 else f"{attr}_{r}"
                self.module(name, subnet_prefix, step, comment if r == 0 else "")
                expr = f"self.{name}({expr})"
                r += 1
            if assign is not None:
                self.forward.append(f"{assign} = {expr}")
                expr = assign
        return expr


def render_source(
    sub: SubNet, spec_file: str, genome_text: str, title: str
) -> tuple[str, list[tuple[str, str]]]:
    """The exported source for a subnet and the (subnet prefix → export prefix) weight renames."""
    network = sub.network
    is_g = network.role == "generator"
    w = _Writer()
    body = w.forward
    x_in = "z" if is_g else "x"
    h = x_in
    shapes = list(sub.project.shapes) if sub.project is not None else []
    if sub.project is not None:
        h = _render_project(network, shapes, w)
    if any(p.name != "project" for p in network.stem):
        h = w.op("stem", "stem", stem_parts(network), h, None, "stem", assign="h")
    for pos in range(len(network.cells)):
        node0 = f"{h} + m{pos}" if 0 < pos < len(shapes) else h  # chunk pos → cell pos+1's input
        h = _render_cell(sub, pos, node0, w)
    head = head_parts(network)
    out = w.op("head", "head", head, h, None, "head", assign="h") if head else h
    body.append(f"return {out}")
    return _assemble(network, spec_file, genome_text, title, w, x_in), w.keys


def _render_project(network: NetworkIR, shapes: Sequence[tuple[int, int]], w: _Writer) -> str:
    project = next(p for p in network.stem if p.name == "project")
    w.init.append(f"# stem: {_comment(str(project))}")
    w.init.append("# z is cut into chunks; chunk i's map is added to cell i+1's input")
    chunks = ["z"] if len(shapes) == 1 else [f"z{i}" for i in range(len(shapes))]
    if len(shapes) > 1:
        w.forward.append(f"{', '.join(chunks)} = z.chunk({len(shapes)}, dim=1)")
    bias = "" if project.get("bias", True) else ", bias=False"
    latent = network.latent_dim // len(shapes)
    for i, (c, s) in enumerate(shapes):
        lin = f"nn.Linear({latent}, {c * s * s}{bias})"
        w.init.append(f"self.project{i} = {f'spectral_norm({lin})' if project.get('sn') else lin}")
        w.keys.append((f"project.layers.{i}", f"project{i}"))
        w.forward.append(f"m{i} = self.project{i}({chunks[i]}).view(-1, {c}, {s}, {s})")
    return "m0"


def _render_cell(sub: SubNet, pos: int, node0: str, w: _Writer) -> str:
    network = sub.network
    inst = network.cells[pos]
    cell, k = inst.cell, pos + 1
    w.init.append(
        f"# cell {k}: {_comment(cell.name)}, {inst.in_channels} -> {inst.channels} channels"
    )
    w.forward.append(f"# cell {k}: {_comment(cell.name)}")
    w.forward.append(f"c{k}_n0 = {node0}")
    active = {e for e in range(len(cell.edges)) if sub.edge(pos, e) is not None}
    sources = {link.src_node for link in network.links if link.src_cell == k}
    live = live_nodes(cell, active, sources)
    for node in range(1, cell.num_nodes):
        terms = []
        for e, edge in enumerate(cell.edges):
            if edge.dst != node or e not in active:
                continue
            op = _edge_op(sub, pos, e)
            cin, cout = edge_channels(inst, edge.src)
            parts = walk(op.parts, cin, cout, network.image_channels, op.name)
            comment = f"edge {edge.src} -> {edge.dst}: {op.name}"
            if node not in live:
                comment += " (its node feeds no active edge: not computed, kept for the weights)"
                w.op(f"cell{k}_e{e}", f"cells.{pos}.{e}", parts, "_", None, comment)
                continue
            x = f"c{k}_n{edge.src}"
            terms.append(w.op(f"cell{k}_e{e}", f"cells.{pos}.{e}", parts, x, None, comment))
        if node not in live:
            for i, link in enumerate(network.links):
                if (link.dst_cell, link.dst_node) == (k, node):
                    _render_link(sub, i, None, w)  # declared for the weights, never run
            continue
        var = f"c{k}_n{node}"
        w.forward.append(f"{var} = {' + '.join(terms)}")
        for i, link in enumerate(network.links):
            if (link.dst_cell, link.dst_node) == (k, node):
                _render_link(sub, i, var, w)
    return f"c{k}_n{cell.output}"


def _render_link(sub: SubNet, i: int, var: str | None, w: _Writer) -> None:
    """A cross-cell link added into `var`; with `var` None (its node feeds nothing) only the
    modules are declared, so that the weights load and the parameter count is the subnet's."""
    network = sub.network
    link = network.links[i]
    if i in sub.links_off:
        return  # a searched link that this architecture leaves out
    op = _link_op(sub, i)
    src, dst = network.cells[link.src_cell - 1], network.cells[link.dst_cell - 1]
    cin, cout = node_channels(src, link.src_node), node_channels(dst, link.dst_node)
    parts = walk(op.parts, cin, cout, network.image_channels, op.name)
    where = f"link {link.src_cell}.{link.src_node} -> {link.dst_cell}.{link.dst_node}: {op.name}"
    if var is None:
        w.op(
            f"link{i}",
            f"links.{i}",
            parts,
            "_",
            None,
            where + " (its node feeds no active edge: not computed, kept for the weights)",
        )
        return
    w.forward.append(f"s = c{link.src_cell}_n{link.src_node}")
    w.op(f"link{i}", f"links.{i}", parts, "s", var, where, assign="s")
    w.forward.append(f"{var} = {var} + s")


def _edge_op(sub: SubNet, pos: int, e: int) -> Op:
    edge = sub.network.cells[pos].cell.edges[e]
    return edge.candidates[genome_space(sub.network).variants(sub.genome, pos)[e]]


def _link_op(sub: SubNet, i: int) -> Op:
    link = sub.network.links[i]
    return link.candidates[genome_space(sub.network).link_variants(sub.genome)[i]]


def _assemble(
    network: NetworkIR, spec_file: str, genome_text: str, title: str, w: _Writer, x_in: str
) -> str:
    is_g = network.role == "generator"
    cls = "Generator" if is_g else "Discriminator"
    params = count_params(network, _genome_of(network, genome_text))
    code = "\n".join(w.init + w.forward)
    shape = "(N, CHANNELS, RESOLUTION, RESOLUTION)"
    maps = (
        f"latent (N, LATENT_DIM) -> images {shape}" if is_g else f"images {shape} -> scores (N, 1)"
    )
    lines = [
        f"# {_comment(title)}: a standalone {network.role} generated by eagan; do not edit by hand.",
        f"# spec: {_comment(spec_file)}",
        "# genome:",
        f"#   {_comment(genome_text or '(none: the network has no searchable edges)')}",
        f"# parameters: {params:,}",
        "# Imports only torch. Load the weights written next to this file with torch alone",
        f"#   model = {cls}()",
        f'#   model.load_state_dict(torch.load("{network.role}.pt", weights_only=True))',
        "# or, with the safetensors package, the same weights from",
        f'#   model.load_state_dict(safetensors.torch.load_file("{network.role}.safetensors"))',
        "",
        "import torch",
    ]
    if "F." in code:
        lines.append("import torch.nn.functional as F")
    lines.append("from torch import nn")
    if "spectral_norm(" in code:
        lines.append("from torch.nn.utils.parametrizations import spectral_norm")
    lines += [
        "",
        f"LATENT_DIM = {network.latent_dim if is_g else 0}",
        f"RESOLUTION = {network.resolution}",
        f"CHANNELS = {network.image_channels}",
        "",
        "",
        f"class {cls}(nn.Module):",
        f"    {_docstring(f'{title}: {maps}.')}",
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
    ]
    lines += [f"        {line}" for line in w.init]
    lines += ["", f"    def forward(self, {x_in}: torch.Tensor) -> torch.Tensor:"]
    lines += [f"        {line}" for line in w.forward]
    return "\n".join(lines) + "\n"


def _genome_of(network: NetworkIR, text: str) -> Genome:
    return genome_space(network).decode(text) if text else Genome(network.name, ())


# ------------------------------------------------------------------------------ weights
def _to_subnet_state(
    network: NetworkIR, genome: Genome, state: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Accept a SuperNet state dict (keys `cells.p.edges.e.ops.c.*`: the chosen candidates are
    kept) or a SubNet state dict (kept as is)."""
    if not any(".edges." in k and k.startswith("cells.") for k in state):
        return dict(state)
    space = genome_space(network)
    chosen = {
        (pos, e): v
        for pos in range(len(network.cells))
        for e, v in enumerate(space.variants(genome, pos))
    }
    links = space.link_variants(genome)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "cells" and len(parts) > 5 and parts[2] == "edges" and parts[4] == "ops":
            pos, e, c = int(parts[1]), int(parts[3]), int(parts[5])
            if chosen.get((pos, e), 0) != c:
                continue
            key = ".".join(["cells", parts[1], parts[3], *parts[6:]])
        elif parts[0] == "links" and len(parts) > 3 and parts[2] == "ops":
            if links[int(parts[1])] != int(parts[3]):
                continue
            key = ".".join(["links", parts[1], *parts[4:]])
        out[key] = value
    return out


def _fit(sub: SubNet, state: Mapping[str, torch.Tensor]) -> None:
    expected = sub.state_dict()
    label = genome_space(sub.network).encode(sub.genome) if sub.genome.choices else sub.network.name
    for key, value in expected.items():
        if key not in state:
            raise ExportError(
                f"the weights do not fit {label}: missing '{key}'; export the weights "
                f"of the same network and genome (a supernet or subnet state dict)"
            )
        if tuple(state[key].shape) != tuple(value.shape):
            raise ExportError(
                f"the weights do not fit {label}: '{key}' has shape "
                f"{tuple(state[key].shape)}, the network needs {tuple(value.shape)}"
            )
    for key in state:
        if key not in expected:
            raise ExportError(
                f"the weights do not fit {label}: unexpected '{key}'; they belong to "
                f"another architecture"
            )
    sub.load_state_dict(dict(state))


def _rename(
    state: Mapping[str, torch.Tensor], keys: Sequence[tuple[str, str]]
) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for old, new in keys:
            if key.startswith(old + "."):
                out[new + key[len(old) :]] = value.detach().cpu().contiguous().clone()
                break
        else:
            raise ExportError(f"internal: no exported name for weight '{key}'")
    return out


# ------------------------------------------------------------------------------ entry points
def resolve(
    program: Program, name: str, genome: Genome | str | None
) -> tuple[NetworkIR, Genome, str]:
    """(network, genome, display name) for a searchable network + genome or a fixed network."""
    if name in program.fixed:
        fixed = program.fixed[name]
        network = program.networks[fixed.base]
        if genome is None:
            return network, Genome(network.name, fixed.genome), name
    elif name in program.networks:
        network = program.networks[name]
    else:
        known = ", ".join([*program.networks, *program.fixed])
        raise ExportError(f"unknown network '{name}' in {program.file}; known: {known}")
    space = genome_space(network)
    if genome is None:
        if space.genes:
            raise ExportError(
                f"network '{name}' is searchable: give a genome, e.g. {space.encode(space.random(__import__('random').Random(0)))}"
            )
        return network, Genome(network.name, ()), name
    if isinstance(genome, str):
        try:
            genome = space.decode(genome)
        except GenomeError as err:
            raise ExportError(f"bad genome for {network.name}: {err}") from None
    genome = as_genome(network, genome)
    problem = space.problem(genome)
    if problem is not None:
        raise ExportError(f"genome is not a valid architecture of {network.name}: {problem}")
    return network, genome, name


def export_network(
    program: Program,
    network_name_or_fixed: str,
    genome: Genome | str | None,
    weights_state_dict: Mapping[str, torch.Tensor] | None,
    out_dir: Path | str,
    force: bool = False,
) -> ExportResult:
    """Write `<role>.py`, `<role>.safetensors`, the same weights as `<role>.pt` (for torch
    alone) and `<role>.json` (the spec and genome, as data)
    into `out_dir`. Weights: a SuperNet or SubNet
    state dict; None exports freshly initialised weights (seed 0)."""
    network, g, title = resolve(program, network_name_or_fixed, genome)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise ExportError(
            f"output directory {out} exists and is not empty; choose another or pass --force"
        )
    sub = build_subnet(network, g)
    if weights_state_dict is not None:
        _fit(sub, _to_subnet_state(network, g, weights_state_dict))
    text = genome_space(network).encode(g) if g.choices else ""
    source, keys = render_source(sub, program.file, text, title)
    out.mkdir(parents=True, exist_ok=True)
    role = network.role
    src_path, w_path = out / f"{role}.py", out / f"{role}.safetensors"
    src_path.write_text(source)
    state = _rename(sub.state_dict(), keys)
    w_path.write_bytes(_safetensors_bytes(state, {"spec": program.file, "genome": text}))
    # the same weights for torch alone (`torch.load(..., weights_only=True)` runs no code)
    torch.save({k: v.contiguous() for k, v in state.items()}, out / f"{role}.pt")
    _write_record(out / f"{role}.json", program, network, title, text)
    return ExportResult(src_path, w_path, text, count_params(network, g))


def _safetensors_bytes(state: Mapping[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """The safetensors file with its JSON header's keys sorted: safetensors writes them in hash
    order, so two identical exports would differ byte for byte."""
    from safetensors.torch import save

    raw = save(dict(state), metadata=metadata)
    size = int.from_bytes(raw[:8], "little")
    header = json.dumps(json.loads(raw[8 : 8 + size]), sort_keys=True, separators=(",", ":"))
    encoded = header.encode()
    encoded += b" " * (-len(encoded) % 8)  # the data stays 8-byte aligned, as safetensors keeps it
    return len(encoded).to_bytes(8, "little") + encoded + raw[8 + size :]


def _write_record(
    path: Path, program: Program, network: NetworkIR, title: str, genome_text: str
) -> None:
    """`<role>.json`: the spec's text and the genome as data, so that `eagan sample` and `eagan
    eval` rebuild the network from them and load the weights without running `<role>.py`."""
    spec = Path(program.file)
    record = {
        "format": "eagan-export/1",
        "role": network.role,
        "network": network.name,
        "name": title,
        "genome": genome_text,
        "spec_file": program.file,
        "spec": spec.read_text(encoding="utf-8") if spec.is_file() else None,
    }
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def weights_problem(err: BaseException) -> str:
    """What is wrong with a weights file that torch or safetensors cannot read, in eagan's words:
    never the readers' advice to load it unsafely (`weights_only=False` runs the file's code)."""
    import pickle

    text = str(err)
    if isinstance(err, pickle.UnpicklingError):
        if "can still be loaded" in text or "GLOBAL" in text or "Unsupported global" in text:
            return (
                "it holds Python objects besides tensors; eagan loads only tensors, so that no "
                "code in a weights file ever runs: save a plain state dict"
            )
        return "it is not a PyTorch weights file, or it is damaged"
    if "zip archive" in text or "central directory" in text:
        return "it is damaged or truncated (not a complete PyTorch zip archive)"
    if type(err).__name__ == "SafetensorError":
        return f"it is not a valid safetensors file, or it is damaged ({(text.splitlines() or [''])[0][:200]})"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(err).__name__}: {first[:200]}"


def _load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ExportError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any reader failure is the user's file
        raise ExportError(f"cannot read weights file {path}: {weights_problem(err)}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ExportError(
            f"weights file {path} is not a state dict (a mapping of names to tensors)"
        )
    return state


def _pick_network(program: Program, genome: str) -> tuple[str, str | None]:
    """(network name, genome text or None) from a command line's genome argument."""
    text = genome.strip()
    if text in program.fixed or text in program.networks:
        return text, None
    if ":" in text:
        return text.split(":", 1)[0].strip(), text
    if text.isidentifier():  # a name, not a genome: the nearest known one
        import difflib

        names = [*program.networks, *program.fixed]
        close = difflib.get_close_matches(text, names, n=1)
        if close:
            raise ExportError(
                f"the spec has no network named '{text}'; did you mean '{close[0]}'? "
                f"(networks: {', '.join(names)})"
            )
    fits, errors = [], []
    for name, net in program.networks.items():
        space = genome_space(net)
        if not space.genes:
            continue
        try:
            space.decode(text)
            fits.append(name)
        except GenomeError as err:
            errors.append(f"{name}: {err}")
    if len(fits) == 1:
        return fits[0], text
    if not fits:
        raise ExportError("the genome fits no network of the spec (" + "; ".join(errors) + ")")
    raise ExportError(
        f"the genome fits several networks ({', '.join(fits)}); prefix it, e.g. {fits[0]}:..."
    )


def export_command(
    spec: Path, genome: str, out: Path, weights: Path | None = None, force: bool = False
) -> ExportResult:
    """`eagan export SPEC --genome STR --out DIR [--weights FILE] [--force]`: GENOME is a genome
    string (`G:bilinear,...`, the prefix optional when only one network fits) or the name of a
    fixed network of the spec (`GStar`). Raises ExportError or SpecError, never anything else
    for bad input."""
    from eagan_dsl.checker import load

    program = load(spec)
    name, text = _pick_network(program, genome)
    state = _load_weights(Path(weights)) if weights is not None else None
    return export_network(program, name, text, state, out, force)
