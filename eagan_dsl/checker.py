"""The checker: AST → `ir.Program`, collecting every error of a spec in one pass.

Each problem becomes a `Diagnostic` located at the offending token; names that are close to a known
one get "did you mean". The walk goes definitions → ops → choice sets → cells → networks → fixed
networks → blocks → stages, and keeps going after an error (a broken definition is dropped, and
later uses of it are not reported twice).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from math import prod
from pathlib import Path
from types import MappingProxyType
from typing import Any

from . import ast, ir, settings, shapes
from .diagnostics import Diagnostic, SpecError, did_you_mean
from .genome import GenomeError, GenomeSpace
from .parser import parse_file
from .primitives import MODES, PRIMITIVES, RESIZE_MODES, Kind

BOOLS = {"on": True, "true": True, "off": False, "false": False}
NETWORK_KINDS = ("global", "vector", "latent", "resize")
# Upper bounds (the language reference lists them): far above any GAN of the paper, low enough
# that checking, building and showing a spec stays fast and within memory.
MAX_COUNT = 1_000_000_000  # any count setting without a bound of its own
MAX_SEED = 2**63 - 1  # a seed fits in 64 bits (torch.manual_seed)
MAX_NODES = 64  # node numbers of a cell
MAX_REPEAT = 64  # `cells X x N`
MAX_WIDTH = 4096  # channels, latent dimension
MAX_RESOLUTION = 1024
MAX_ERRORS = 100  # diagnostics collected; the rest are counted
MAX_SUGGESTIONS = 100  # "did you mean" for the first unknown names only
# the channel counts each loader makes (runtime/data.py, runtime/datasets.py)
DATA_CHANNELS = {"cifar10": (3,), "stl10": (3,), "digits": (1,), "imagefolder": (1, 3)}
LENET_RESOLUTION = 16  # runtime/metrics/lenet.py: the digits LeNet takes 16×16 images
MAP_ONLY = ("conv", "conv_transpose", "bn", "inorm")  # normal primitives that need a feature map
MAX_VARIANTS = 4096  # variants of one edge or link (own options × decision values read)
# AutoGAN's deconv skip-in (research/autogan-space.md §1.2): ConvTranspose2d(k 2, s 2), no padding
DECONV_STEP = (("k", 2), ("stride", 2), ("padding", 0), ("output_padding", 0))


@dataclass(frozen=True)
class _Case:
    """A checked `case DECISION { label: parts | ... }`: one branch of items per label."""

    decision: str
    span: ast.Span
    labels: tuple[str, ...]
    branches: tuple[tuple[_Item, ...], ...]


_Item = tuple[ir.Prim, Kind] | _Case


@dataclass(frozen=True)
class _Template:
    """An op whose parts depend on cell decisions (it holds a case, or uses an op that does).
    `decisions`: each decision it reads with the values its cases name, in first-use order."""

    name: str
    items: tuple[_Item, ...]
    decisions: tuple[tuple[str, tuple[str, ...], ast.Span], ...]
    kind: Kind
    span: ast.Span

    def parts(self, values: dict[str, str]) -> tuple[ir.Prim, ...]:
        return tuple(p for p, _ in _flatten(self.items, values))


def _flatten(items: Sequence[_Item], values: dict[str, str]) -> list[tuple[ir.Prim, Kind]]:
    out: list[tuple[ir.Prim, Kind]] = []
    for item in items:
        if isinstance(item, _Case):
            out += _flatten(item.branches[item.labels.index(values[item.decision])], values)
        else:
            out.append(item)
    return out


def _cases(items: Sequence[_Item]) -> list[_Case]:
    out: list[_Case] = []
    for item in items:
        if isinstance(item, _Case):
            out.append(item)
            for branch in item.branches:
                out += _cases(branch)
    return out


Candidate = ir.Op | _Template


class _Checker:
    def __init__(self, spec: ast.Spec) -> None:
        self.spec = spec
        self.file = spec.file
        self.errors: list[Diagnostic] = []
        self.ops: dict[str, ir.Op] = {}
        self.choices: dict[str, tuple[ir.Op, ...]] = {}
        self.choice_options: dict[str, tuple[Candidate, ...]] = {}
        self.templates: dict[str, _Template] = {}
        self.link_choices: set[str] = set()
        self.reported_unread: set[tuple[str, int]] = set()
        self.cells: dict[str, ir.CellIR] = {}
        self.cell_scales: dict[str, int | None] = {}
        self.cell_info: dict[str, shapes.CellShapes] = {}
        self.network_spans: dict[str, ast.Span] = {}
        self.networks: dict[str, ir.NetworkIR] = {}
        self.fixed: dict[str, ir.FixedNetworkIR] = {}
        self.roles: dict[str, str] = {}  # every network name (searchable or fixed) → role
        self.bad_names: set[str] = set()  # defined but broken: uses are not reported again
        self.data: ir.DataIR | None = None
        self.latent: ast.Latent | None = None
        self.omitted = 0  # diagnostics beyond MAX_ERRORS
        self.suggested = 0
        self.op_defs: dict[str, ast.OpDef] | None = None

    # ----------------------------------------------------------------------------- helpers
    def error(self, span: ast.Span, message: str, hint: str | None = None) -> None:
        if len(self.errors) >= MAX_ERRORS:
            self.omitted += 1
            return
        self.errors.append(Diagnostic(message, span, self.file, hint))

    def unknown(
        self, span: ast.Span, what: str, name: str, known: Iterable[str], where: str = ""
    ) -> None:
        self.suggested += 1
        hint = did_you_mean(name, known) if self.suggested <= MAX_SUGGESTIONS else None
        self.error(span, f"unknown {what} '{name}'{where}", hint)

    # ------------------------------------------------------------------------------ entry
    def run(self) -> ir.Program:
        items = self.spec.items
        self.check_duplicates(items)
        datas = [i for i in items if isinstance(i, ast.Data)]
        latents = [i for i in items if isinstance(i, ast.Latent)]
        for extra in datas[1:]:
            self.error(extra.span, "a second `data` line; a spec searches on one data set")
        for extra_latent in latents[1:]:
            self.error(extra_latent.span, "a second `latent` line; a spec has one latent space")
        if datas:
            self.data = self.check_data(datas[0])
        else:
            self.error(
                self.spec.name_span,
                f"search {self.spec.name} has no `data` line",
                "add one, e.g. data digits(resolution: 16)",
            )
        self.latent = latents[0] if latents else None
        if self.latent is not None:
            if self.latent.dim < 1:
                self.error(self.latent.span, "the latent dimension must be at least 1")
            elif self.latent.dim > MAX_WIDTH:
                self.error(
                    self.latent.span,
                    f"the latent dimension must be at most {MAX_WIDTH}, not {self.latent.dim:,}",
                )
            dist = self.latent.distribution
            if dist is not None and dist.name not in settings.LATENT_DISTRIBUTIONS:
                self.unknown(
                    dist.span, "latent distribution", dist.name, settings.LATENT_DISTRIBUTIONS
                )

        for item in items:
            if isinstance(item, ast.OpDef):
                self.check_op_def(item, items)
        # a choice set that only links use may hold resize ops (a searchable link: [none, xskip])
        used_by = [
            (isinstance(stmt, ast.Link), stmt.op.name)
            for item in items
            if isinstance(item, ast.NetworkDef)
            for stmt in item.body
            if isinstance(stmt, ast.Link)
        ] + [
            (False, e.op.name)
            for item in items
            if isinstance(item, ast.CellDef)
            for e in item.edges
        ]
        self.link_choices = {n for is_link, n in used_by if is_link} - {
            n for is_link, n in used_by if not is_link
        }
        for item in items:
            if isinstance(item, ast.ChoiceDef):
                self.check_choice(item)
        for item in items:
            if isinstance(item, ast.CellDef):
                self.check_cell(item)
        networks = [i for i in items if isinstance(i, ast.NetworkDef)]
        fixed = [i for i in items if isinstance(i, ast.FixedNetwork)]
        for net in networks:
            self.roles[net.name] = net.role
        for fx in fixed:
            self.roles[fx.name] = fx.role
        if any(n.role == "generator" for n in networks) and self.latent is None:
            self.error(
                self.spec.name_span,
                f"search {self.spec.name} has a generator but no `latent` line",
                "add one, e.g. latent 128 normal",
            )
        for net in networks:
            self.check_network(net)
        for fx in fixed:
            self.check_fixed(fx)
        for role in ("generator", "discriminator"):
            if not any(r == role for r in self.roles.values()):
                self.error(
                    self.spec.name_span,
                    f"search {self.spec.name} defines no {role}",
                    f"add a `{role} NAME {{ ... }}` block",
                )
        blocks = self.check_blocks([i for i in items if isinstance(i, ast.Block)])
        objectives = self.check_objectives([i for i in items if isinstance(i, ast.Block)])
        stages = self.check_stages([i for i in items if isinstance(i, ast.Stage)], blocks)
        if not stages and not any(isinstance(i, ast.Stage) for i in items):
            self.error(
                self.spec.name_span,
                f"search {self.spec.name} has no stage",
                "add e.g. stage search_g : search { network: G, against: FixedD }",
            )
        if self.errors:
            raise SpecError(self.errors, omitted=self.omitted)
        assert self.data is not None
        return ir.Program(
            name=self.spec.name,
            file=self.file,
            data=self.data,
            latent_dim=self.latent.dim if self.latent else 0,
            latent_distribution=(
                self.latent.distribution.name
                if self.latent and self.latent.distribution
                else "normal"
            ),
            networks=MappingProxyType(self.networks),
            fixed=MappingProxyType(self.fixed),
            objectives=objectives,
            blocks=MappingProxyType({k: MappingProxyType(v) for k, v in blocks.items()}),
            stages=tuple(stages),
            ops=MappingProxyType(self.ops),
            choices=MappingProxyType(self.choices),
            case_ops=MappingProxyType(
                {
                    op.name: (_op_text(op), self.templates[op.name].kind)
                    for op in self.spec.items
                    if isinstance(op, ast.OpDef) and op.name in self.templates
                }
            ),
        )

    # ---------------------------------------------------------------------- definitions
    def check_duplicates(self, items: tuple[ast.Item, ...]) -> None:
        spaces = {
            "op or choice": (ast.OpDef, ast.ChoiceDef),
            "cell": (ast.CellDef,),
            "network": (ast.NetworkDef, ast.FixedNetwork),
            "stage": (ast.Stage,),
        }
        for what, types in spaces.items():
            seen: dict[str, ast.Span] = {}
            for item in items:
                if not isinstance(item, types):
                    continue
                name, span = item.name, item.name_span
                if name in seen:
                    first = seen[name]
                    self.error(
                        span, f"{what} '{name}' is already defined at {first.line}:{first.column}"
                    )
                else:
                    seen[name] = span
                if what == "op or choice" and name in PRIMITIVES:
                    self.error(span, f"'{name}' is a primitive op; choose another name")
        blocks: dict[str, ast.Span] = {}
        for item in items:
            if isinstance(item, ast.Block):
                if item.kind in blocks:
                    first = blocks[item.kind]
                    self.error(
                        item.span,
                        f"a second `{item.kind}` block (the first is at {first.line}:{first.column})",
                    )
                else:
                    blocks[item.kind] = item.span

    def check_data(self, data: ast.Data) -> ir.DataIR | None:
        if data.name not in settings.DATASETS:
            self.unknown(data.name_span, "data set", data.name, settings.DATASETS)
            return None
        info = settings.DATASETS[data.name]
        args: dict[str, Any] = {}
        for arg in data.args:
            if arg.key is None:
                self.error(arg.span, "data arguments are named, e.g. resolution: 32")
                continue
            if arg.key not in settings.DATA_ARGS:
                self.unknown(
                    arg.span, "argument", arg.key, settings.DATA_ARGS, f" of data {data.name}"
                )
                continue
            if arg.key == "root":
                if not isinstance(arg.value, ast.String):
                    self.error(arg.value.span, 'root must be a string path, e.g. "data/cifar10"')
                    continue
                args["root"] = arg.value.value
            else:
                top = MAX_RESOLUTION if arg.key == "resolution" else MAX_WIDTH
                value = self.int_value(arg.value, f"{arg.key} of data {data.name}", 1, maximum=top)
                if value is not None:
                    args[arg.key] = value
        channel_arg = next((a for a in data.args if a.key == "channels"), None)
        allowed = DATA_CHANNELS[data.name]
        if channel_arg is not None and args.get("channels") not in (None, *allowed):
            self.error(
                channel_arg.value.span,
                f"data {data.name} has {' or '.join(map(str, allowed))} channel(s), not "
                f"{args['channels']}",
                "leave channels out" if len(allowed) == 1 else None,
            )
            return None
        resolution = args.get("resolution", info["resolution"])
        if resolution is None:
            self.error(data.span, f"data {data.name} needs a resolution, e.g. resolution: 32")
            return None
        root = args.get("root")
        if root is None and info["needs_root"]:
            root = f"data/{data.name}"
        if root is not None and not os.path.isabs(root):
            base = (
                Path(self.file).parent if self.file and not self.file.startswith("<") else Path(".")
            )
            root = str((base / root).resolve())
        return ir.DataIR(
            name=data.name,
            root=root,
            resolution=int(resolution),
            channels=int(args.get("channels", info["channels"])),
            args=MappingProxyType(dict(args)),
        )

    # ------------------------------------------------------------------------------- ops
    def prim(self, call: ast.OpCall) -> tuple[ir.Prim, Kind] | None:
        """A primitive call with its arguments checked and defaults filled in."""
        spec = PRIMITIVES[call.name]
        given: dict[str, Any] = {}
        ok = True
        for arg in call.args:
            if arg.key is None:
                self.error(arg.span, f"arguments of {call.name} are named, e.g. {call.name}(k: 3)")
                ok = False
                continue
            a = spec.arg(arg.key)
            if a is None:
                known = [x.name for x in spec.args]
                extra = (
                    f"; {call.name} takes {', '.join(known)}"
                    if known
                    else f"; {call.name} takes no arguments"
                )
                hint = did_you_mean(arg.key, known)
                self.error(arg.span, f"unknown argument '{arg.key}' of {call.name}{extra}", hint)
                ok = False
                continue
            if arg.key in given:
                self.error(arg.span, f"argument '{arg.key}' given twice")
                ok = False
                continue
            value = self.arg_value(arg.value, a.type, f"{arg.key} of {call.name}", a.minimum)
            if value is None:
                ok = False
                continue
            given[arg.key] = value
        if not ok:
            return None
        args = tuple((a.name, given.get(a.name, a.default)) for a in spec.args)
        resolved = dict(args)
        if call.name == "conv" and resolved["depthwise"] and resolved.get("out") not in (None,):
            self.error(call.span, "a depthwise conv keeps its channels; drop `out`")
            return None
        prim = ir.Prim(call.name, args)
        # the size it really makes, on maps of any usual size (odd and tiny sizes are followed
        # through each network): a conv(k: 2) is not a "normal" op, nor a stride 3 a "down" one
        for size in (32, 64):
            problem = shapes.size_problem(prim, size)
            if problem is not None:
                self.error(call.span, problem, shapes.size_hint(prim))
                return None
        return prim, spec.kind_for(resolved)

    def arg_value(self, value: ast.Value, type_: str, what: str, minimum: float | None) -> Any:
        if type_ == "int":
            return self.int_value(value, what, minimum)
        if type_ == "float":
            return self.float_value(value, what, minimum, None)
        if type_ == "bool":
            return self.bool_value(value, what)
        if type_ in ("mode", "resize_mode"):
            modes = MODES if type_ == "mode" else RESIZE_MODES
            if isinstance(value, ast.NameRef) and value.name in modes:
                return value.name
            self.error(value.span, f"{what} must be one of {', '.join(modes)}")
            return None
        if type_ == "out":
            if isinstance(value, ast.NameRef) and value.name == "image":
                return "image"
            return self.int_value(value, what, 1, hint="an integer or `image`")
        raise AssertionError(type_)

    def int_value(
        self,
        value: ast.Value,
        what: str,
        minimum: float | None,
        hint: str | None = None,
        maximum: int | None = None,
    ) -> int | None:
        if not isinstance(value, ast.Number) or not value.is_int:
            self.error(value.span, f"{what} must be an integer", hint)
            return None
        number = value.integer if value.integer is not None else int(value.value)
        if minimum is not None and number < minimum:
            self.error(value.span, f"{what} must be at least {minimum:g}, not {number}")
            return None
        top = MAX_COUNT if maximum is None else maximum
        if number > top:
            self.error(value.span, f"{what} must be at most {top:,}, not {number:,}")
            return None
        return number

    def float_value(
        self, value: ast.Value, what: str, minimum: float | None, maximum: float | None
    ) -> float | None:
        if not isinstance(value, ast.Number):
            self.error(value.span, f"{what} must be a number")
            return None
        number = float(value.value)
        if not math.isfinite(number):
            self.error(value.span, f"{what} must be a finite number, not {value.text}")
            return None
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            self.error(value.span, f"{what} must be {_range(minimum, maximum)}, not {value.text}")
            return None
        return number

    def bool_value(self, value: ast.Value, what: str) -> bool | None:
        if isinstance(value, ast.NameRef) and value.name in BOOLS:
            return BOOLS[value.name]
        self.error(value.span, f"{what} must be on or off")
        return None

    def check_op_def(self, op: ast.OpDef, items: tuple[ast.Item, ...]) -> None:
        if op.name in PRIMITIVES:
            return  # reported as a duplicate
        if self.op_defs is None:  # built once, not once per op (28,000 ops took 550 s)
            self.op_defs = {i.name: i for i in items if isinstance(i, ast.OpDef)}
        got = self.expand_def(op, self.op_defs, [op.name])
        if got is None:
            self.bad_names.add(op.name)
            return
        if any(isinstance(i, _Case) for i in got):
            template = self.template(op, got)
            if template is None:
                self.bad_names.add(op.name)
            else:
                self.templates[op.name] = template
            return
        parts = [i for i in got if not isinstance(i, _Case)]
        kind = self.combine(op.name, parts, op.span)
        if kind is None:
            self.bad_names.add(op.name)
            return
        self.ops[op.name] = ir.Op(op.name, tuple(p for p, _ in parts), kind, op.span)

    def template(self, op: ast.OpDef, items: list[_Item]) -> _Template | None:
        """A case op: its decisions agree on their values wherever they are read, and every
        combination of values makes an op of one kind (the genome's validity rests on it)."""
        decisions: dict[str, tuple[tuple[str, ...], ast.Span]] = {}
        for case in _cases(items):
            known = decisions.get(case.decision)
            if known is None:
                decisions[case.decision] = (case.labels, case.span)
            elif set(known[0]) != set(case.labels):
                self.error(
                    case.span,
                    f"case {case.decision} names {', '.join(case.labels)}, but another case on "
                    f"{case.decision} in op '{op.name}' (at {known[1]}) names "
                    f"{', '.join(known[0])}: a decision has one set of values",
                )
                return None
        names = list(decisions)
        combos = prod(len(decisions[n][0]) for n in names)
        if combos > MAX_VARIANTS:
            self.error(
                op.span,
                f"op '{op.name}' reads decisions with {combos:,} combinations of values; at most "
                f"{MAX_VARIANTS:,}",
            )
            return None
        kinds: dict[Kind, dict[str, str]] = {}
        for values in itertools.product(*(decisions[n][0] for n in names)):
            assignment = dict(zip(names, values))
            parts = _flatten(items, assignment)
            kind = self.combine(op.name, parts, op.span, quiet=True)
            if kind is None:
                where = ", ".join(f"{k} is {v}" for k, v in assignment.items())
                self.combine(op.name, parts, op.span, suffix=f" (when {where})")
                return None
            kinds.setdefault(kind, assignment)
        if len(kinds) > 1:
            shown = "; ".join(
                f"{'an' if k == 'up' else 'a'} {k} op when "
                + ", ".join(f"{d} is {v}" for d, v in a.items())
                for k, a in kinds.items()
            )
            self.error(
                op.span,
                f"op '{op.name}' is {shown}: every branch of a case must change the resolution "
                "alike (use a choice set to search ops of different kinds)",
            )
            return None
        return _Template(
            op.name,
            tuple(items),
            tuple((n, decisions[n][0], decisions[n][1]) for n in names),
            next(iter(kinds)),
            op.span,
        )

    def expand_def(
        self, op: ast.OpDef, defs: dict[str, ast.OpDef], stack: list[str]
    ) -> list[_Item] | None:
        if op.case is None:
            return self.expand(op, defs, stack)
        case = op.case
        labels: list[str] = []
        branches: list[tuple[_Item, ...]] = []
        ok = True
        for branch in case.branches:
            if branch.label in labels:
                self.error(
                    branch.label_span, f"case {case.decision} has two branches '{branch.label}'"
                )
                ok = False
                continue
            inner = self.expand(
                ast.OpDef(
                    span=branch.span, name=op.name, name_span=op.name_span, parts=branch.parts
                ),
                defs,
                stack,
            )
            if inner is None:
                ok = False
                continue
            labels.append(branch.label)
            branches.append(tuple(inner))
        if not ok:
            return None
        return [_Case(case.decision, case.decision_span, tuple(labels), tuple(branches))]

    def expand(
        self, op: ast.OpDef, defs: dict[str, ast.OpDef], stack: list[str]
    ) -> list[_Item] | None:
        out: list[_Item] = []
        ok = True
        for call in op.parts:
            if call.name in PRIMITIVES:
                got = self.prim(call)
                if got is None:
                    ok = False
                else:
                    out.append(got)
            elif call.name in defs:
                if call.name in stack:
                    self.error(
                        call.span,
                        f"op '{op.name}' uses itself through {' -> '.join(stack + [call.name])}",
                    )
                    return None
                if call.args:
                    self.error(call.span, f"'{call.name}' is a composite op and takes no arguments")
                    ok = False
                    continue
                inner = self.expand_def(defs[call.name], defs, stack + [call.name])
                if inner is None:
                    return None
                out.extend(inner)
            else:
                known = list(PRIMITIVES) + list(defs)
                self.unknown(call.span, "op", call.name, known)
                ok = False
        return out if ok else None

    def combine(
        self,
        name: str,
        parts: Sequence[tuple[ir.Prim, Kind]],
        span: ast.Span,
        quiet: bool = False,
        suffix: str = "",
    ) -> Kind | None:
        kinds = [k for _, k in parts]
        problem = None
        if "none" in kinds and len(kinds) > 1:
            problem = f"op '{name}': `none` cannot be combined with other ops"
        elif len({k for k in kinds if k in ("up", "down")}) > 1:
            problem = f"op '{name}' both up-samples and down-samples"
        elif sum(k in ("up", "down") for k in kinds) > 1:
            problem = f"op '{name}' changes the resolution more than once"
        elif not kinds:
            problem = f"op '{name}' has no parts"
        if problem is not None:
            if not quiet:
                self.error(span, problem + suffix)
            return None
        scaling = {k for k in kinds if k in ("up", "down")}
        special = [k for k in kinds if k in NETWORK_KINDS]
        if special:
            if "resize" in special and not scaling and set(special) == {"resize"}:
                return "resize"
            return special[0]
        if "none" in kinds:
            return "none"
        return scaling.pop() if scaling else "normal"

    def resolve_op(self, ref: ast.NameRef, where: str) -> Candidate | None:
        """An op name or a primitive name (with default arguments) used by reference."""
        if ref.name in self.ops:
            return self.ops[ref.name]
        if ref.name in self.templates:
            return self.templates[ref.name]
        if ref.name in PRIMITIVES:
            prim = self.prim(ast.OpCall(span=ref.span, name=ref.name))
            if prim is None:
                return None
            return ir.Op(ref.name, (prim[0],), prim[1], ref.span)
        if ref.name in self.bad_names:
            return None
        known = list(self.ops) + list(self.templates) + list(PRIMITIVES)
        self.unknown(ref.span, "op", ref.name, known, where)
        return None

    def check_choice(self, choice: ast.ChoiceDef) -> None:
        ops: list[Candidate] = []
        seen: set[str] = set()
        ok = True
        for ref in choice.options:
            if ref.name in seen:
                self.error(ref.span, f"'{ref.name}' appears twice in choice '{choice.name}'")
                ok = False
                continue
            seen.add(ref.name)
            op = self.resolve_op(ref, f" in choice '{choice.name}'")
            if op is None:
                ok = False
                continue
            if op.kind in NETWORK_KINDS and not (
                op.kind == "resize" and choice.name in self.link_choices
            ):
                self.error(
                    ref.span, f"'{ref.name}' ({op.kind}) cannot be a candidate on a cell edge"
                )
                ok = False
                continue
            ops.append(op)
        kinds = {op.kind for op in ops} & {"up", "down"}
        if len(kinds) > 1:
            self.error(
                choice.span, f"choice '{choice.name}' mixes up-sampling and down-sampling ops"
            )
            ok = False
        if len(choice.options) < 1:
            ok = False
        if not ok:
            self.bad_names.add(choice.name)
            return
        self.choice_options[choice.name] = tuple(ops)
        # what `eagan show` lists: a case op by its first variant
        self.choices[choice.name] = tuple(
            op
            if isinstance(op, ir.Op)
            else ir.Op(op.name, op.parts({n: v[0] for n, v, _ in op.decisions}), op.kind, op.span)
            for op in ops
        )

    # ----------------------------------------------------------------------------- cells
    def check_cell(self, cell: ast.CellDef) -> None:
        ok = True
        if len(cell.outputs) != 1:
            if not cell.outputs:
                self.error(
                    cell.name_span, f"cell {cell.name} has no `output` line", "add e.g. output 4"
                )
            else:
                self.error(cell.outputs[1].span, f"cell {cell.name} has more than one `output`")
            self.bad_names.add(cell.name)
            return
        out = cell.outputs[0].node
        if out < 1:
            self.error(
                cell.outputs[0].span, "the output node must be a node after the input node 0"
            )
            self.bad_names.add(cell.name)
            return
        if out > MAX_NODES:
            self.error(
                cell.outputs[0].span,
                f"a cell has at most {MAX_NODES} nodes after its input, not {out:,}",
            )
            self.bad_names.add(cell.name)
            return
        decisions = self.check_decisions(cell)
        if decisions is None:
            self.bad_names.add(cell.name)
            return
        edges: list[ir.EdgeIR] = []
        pairs: set[tuple[int, int]] = set()
        for edge in cell.edges:
            if edge.dst > out or edge.src > out:
                bad = max(edge.src, edge.dst)
                self.error(
                    edge.span,
                    f"node {bad} does not exist: cell {cell.name} has nodes 0..{out} (output {out})",
                )
                ok = False
                continue
            if edge.src >= edge.dst:
                self.error(
                    edge.span,
                    f"edge {edge.src} -> {edge.dst} points backwards: cells are DAGs, "
                    "edges go from a lower to a higher node",
                )
                ok = False
                continue
            if (edge.src, edge.dst) in pairs:
                self.error(edge.span, f"edge {edge.src} -> {edge.dst} is declared twice")
                ok = False
                continue
            pairs.add((edge.src, edge.dst))
            name = edge.op.name
            if name in self.bad_names:
                ok = False
                continue
            if name in self.choice_options:
                options: tuple[Candidate, ...] = self.choice_options[name]
                choice: str | None = name
            elif name in self.ops or name in self.templates or name in PRIMITIVES:
                got = self.resolve_op(edge.op, "")
                if got is None:
                    ok = False
                    continue
                if got.kind in NETWORK_KINDS:
                    self.error(edge.op.span, f"'{name}' ({got.kind}) cannot be used on a cell edge")
                    ok = False
                    continue
                options, choice = (got,), None
            else:
                known = list(self.choices) + list(self.ops) + list(self.templates)
                self.unknown(edge.op.span, "op or choice", name, known + list(PRIMITIVES))
                ok = False
                continue
            built = self.variants(options, decisions, edge.op, f"cell {cell.name}")
            if built is None:
                ok = False
                continue
            candidates, depends, radix = built
            edges.append(
                ir.EdgeIR(edge.src, edge.dst, candidates, choice, edge.span, depends, radix)
            )
        if not ok:
            self.bad_names.add(cell.name)
            return
        if not any(e.dst == out for e in edges):
            # a wrong `output` line, not a cell of unconnected nodes: one error, at that line
            last = max((e.dst for e in edges), default=0)
            self.error(
                cell.outputs[0].span,
                f"no edge of cell {cell.name} ends at its output node {out}",
                f"did you mean output {last}?" if last else None,
            )
            self.bad_names.add(cell.name)
            return
        # every node 1..out needs an input and a path to the output
        for node in range(1, out + 1):
            if not any(e.dst == node for e in edges):
                self.error(cell.name_span, f"node {node} of cell {cell.name} has no input edge")
                ok = False
        reaches = {out}
        for e in sorted(edges, key=lambda e: -e.src):
            if e.dst in reaches:
                reaches.add(e.src)
        for node in range(out):
            if node not in reaches:
                self.error(
                    cell.name_span,
                    f"node {node} of cell {cell.name} has no path to the output node {out}",
                )
                ok = False
        scale = self.static_scales(cell, edges)
        if not ok or scale is False:
            self.bad_names.add(cell.name)
            return
        cell_ir = ir.CellIR(cell.name, tuple(edges), out, out + 1, cell.span, tuple(decisions))
        info = shapes.analyse_cell(cell_ir)
        if info.problem is not None:
            self.error(
                cell.name_span,
                f"no assignment of cell {cell.name}'s edges is a valid architecture: {info.problem}",
                "every node needs an input edge whose op (or some candidate) is not `none`",
            )
            self.bad_names.add(cell.name)
            return
        self.cells[cell.name] = cell_ir
        self.cell_scales[cell.name] = scale
        self.cell_info[cell.name] = info

    def check_decisions(self, cell: ast.CellDef) -> list[ir.DecisionIR] | None:
        """The decisions of a cell's header, `cell C(NAME: [values], ...)`: distinct names and values."""
        out: list[ir.DecisionIR] = []
        seen: dict[str, ast.Span] = {}
        ok = True
        for dec in cell.decisions:
            if dec.name in seen:
                first = seen[dec.name]
                self.error(
                    dec.name_span,
                    f"decision '{dec.name}' of cell {cell.name} is already declared at "
                    f"{first.line}:{first.column}",
                )
                ok = False
                continue
            seen[dec.name] = dec.name_span
            values: list[str] = []
            for ref in dec.options:
                if ref.name in values:
                    self.error(ref.span, f"'{ref.name}' appears twice in decision '{dec.name}'")
                    ok = False
                    continue
                values.append(ref.name)
            out.append(ir.DecisionIR(dec.name, tuple(values), dec.span))
        return out if ok else None

    def variants(
        self,
        options: tuple[Candidate, ...],
        decisions: Sequence[ir.DecisionIR],
        ref: ast.NameRef,
        where: str,
    ) -> tuple[tuple[ir.Op, ...], tuple[int, ...], tuple[int, ...]] | None:
        """Every concrete op of an edge or link whose options may read decisions of `where`:
        (candidates, the decisions read, their value counts); see `ir.EdgeIR.variant`."""
        names = [d.name for d in decisions]
        read: set[int] = set()
        ok = True
        for op in options:
            if not isinstance(op, _Template):
                continue
            for name, labels, span in op.decisions:
                if name not in names:
                    self.error(
                        ref.span,
                        f"op '{op.name}' reads decision '{name}' (case at {span}), which {where} "
                        "does not declare",
                        did_you_mean(name, names)
                        or f"declare it in the cell's header, e.g. cell C({name}: [{', '.join(labels)}])",
                    )
                    ok = False
                    continue
                dec = decisions[names.index(name)]
                if set(labels) != set(dec.options):
                    missing = [v for v in dec.options if v not in labels]
                    extra = [v for v in labels if v not in dec.options]
                    said = []
                    if missing:
                        said.append(f"has no branch for {', '.join(missing)}")
                    if extra:
                        said.append(f"names {', '.join(extra)}, which the decision lacks")
                    self.error(
                        ref.span,
                        f"op '{op.name}': case {name} (at {span}) {' and '.join(said)}; "
                        f"decision {name} of {where} is [{', '.join(dec.options)}]",
                    )
                    ok = False
                    continue
                read.add(names.index(name))
        if not ok:
            return None
        depends = tuple(sorted(read))
        radix = tuple(len(decisions[d].options) for d in depends)
        if len(options) * prod(radix) > MAX_VARIANTS:
            self.error(
                ref.span,
                f"'{ref.name}' has {len(options) * prod(radix):,} variants (options × decision "
                f"values); at most {MAX_VARIANTS:,}",
            )
            return None
        candidates: list[ir.Op] = []
        for op in options:
            for values in itertools.product(*(decisions[d].options for d in depends)):
                if isinstance(op, _Template):
                    assignment = {decisions[d].name: v for d, v in zip(depends, values)}
                    candidates.append(ir.Op(op.name, op.parts(assignment), op.kind, op.span))
                else:
                    candidates.append(op)
        return tuple(candidates), depends, radix

    def static_scales(self, cell: ast.CellDef, edges: list[ir.EdgeIR]) -> int | None | bool:
        """Each node's resolution (log2, relative to node 0) where the edges fix it. An edge whose
        kind contradicts its node's resolution ("up on a normal edge") is an error (returns False);
        None when a candidate set mixes normal and down ops (the genome decides)."""
        scale: dict[int, int | None] = {0: 0}
        ok = True
        for node in range(1, cell.outputs[0].node + 1):
            votes: list[tuple[ir.EdgeIR, int | None]] = []
            for e in edges:
                if e.dst != node:
                    continue
                kinds = {op.scale for op in e.candidates if not op.is_none}
                src = scale.get(e.src)
                if len(kinds) == 1 and src is not None:
                    votes.append((e, src + kinds.pop()))
                else:
                    votes.append((e, None))
            fixed = [(e, s) for e, s in votes if s is not None]
            groups: dict[int, list[ir.EdgeIR]] = {}
            for e, s_ in fixed:
                groups.setdefault(s_, []).append(e)
            if len(groups) > 1:
                # blame the edges that change the resolution against the rest ("up on a normal edge")
                ranked = sorted(
                    groups.values(),
                    key=lambda es: (len(es), not any(o.scale for x in es for o in x.candidates)),
                )
                for e in ranked[0]:
                    others = ", ".join(f"{x.src} -> {x.dst}" for g in ranked[1:] for x in g)
                    self.error(
                        e.span,
                        f"edge {e.src} -> {e.dst} is {self.edge_kind(e)}, but node {node}'s other "
                        f"input ({others}) arrives at another resolution",
                    )
                ok = False
                scale[node] = None
                continue
            scale[node] = fixed[0][1] if fixed and len(fixed) == len(votes) else None
        if not ok:
            return False
        return scale.get(cell.outputs[0].node)

    @staticmethod
    def edge_kind(e: ir.EdgeIR) -> str:
        kinds = {op.kind for op in e.candidates if not op.is_none}
        kind = "up" if "up" in kinds else "down" if "down" in kinds else "normal"
        via = f"choice '{e.choice}'" if e.choice else f"op '{e.candidates[0].name}'"
        return f"an {kind} edge ({via})" if kind == "up" else f"a {kind} edge ({via})"

    # -------------------------------------------------------------------------- networks
    def check_network(self, net: ast.NetworkDef) -> None:
        data = self.data
        image_channels = data.channels if data else 3
        stems = [s for s in net.body if isinstance(s, ast.Stem)]
        heads = [s for s in net.body if isinstance(s, ast.Head)]
        cells = [s for s in net.body if isinstance(s, ast.Cells)]
        links = [s for s in net.body if isinstance(s, ast.Link)]
        ok = True
        for extra in stems[1:] + heads[1:]:
            self.error(extra.span, f"{net.role} {net.name} has more than one `{extra.kind}`")
            ok = False
        if not heads:
            self.error(
                net.name_span,
                f"{net.role} {net.name} has no `head`",
                "add e.g. head bn, relu, conv(k: 3, out: image), tanh",
            )
            ok = False
        is_g = net.role == "generator"
        channels = self.latent.dim if is_g and self.latent else image_channels
        latent_dim = self.latent.dim if self.latent else 0
        stem_prims: list[ir.Prim] = []
        resolution_scale = 0  # log2 change through the stem (discriminators)
        start_size: int | None = None
        split = 1
        first_width = None
        for c in cells:
            arg = next((a for a in c.args if a.key == "channels"), None)
            if arg is not None and isinstance(arg.value, ast.Number) and arg.value.is_int:
                first_width = int(arg.value.value)
                break
        if stems:
            for i, call in enumerate(stems[0].ops):
                got = self.network_prim(call, net)
                if got is None:
                    ok = False
                    continue
                prim, kind = got
                if kind == "latent":
                    if not is_g or i != 0:
                        self.error(
                            call.span,
                            "`project` maps the latent vector: only first in a generator's stem",
                        )
                        ok = False
                        continue
                    start_size = prim.get("size")
                    split = prim.get("split")
                    channels = first_width or channels
                    if latent_dim % split:
                        self.error(
                            call.span,
                            f"latent {latent_dim} cannot be split into {split} equal chunks",
                        )
                        ok = False
                elif kind in ("global", "vector", "resize"):
                    self.error(call.span, f"`{call.name}` cannot be used in a stem")
                    ok = False
                    continue
                else:
                    if kind == "up":
                        resolution_scale += 1
                    elif kind == "down":
                        resolution_scale -= 1
                    out = prim.get("out")
                    if out is not None:
                        channels = image_channels if out == "image" else out
                stem_prims.append(prim)
        if is_g and (not stems or start_size is None):
            self.error(
                net.name_span,
                f"generator {net.name} needs a stem that starts with project",
                "e.g. stem project(size: 4)",
            )
            ok = False
        stem_channels = channels
        instances: list[ir.CellInstance] = []
        cell_spans: list[ast.Span] = []
        total_scale = 0
        for c in cells:
            if c.repeat < 1:
                self.error(c.span, "a cell repeats at least once (x 1)")
                ok = False
                continue
            if c.repeat > MAX_REPEAT:
                self.error(c.span, f"a cell repeats at most {MAX_REPEAT} times, not {c.repeat:,}")
                ok = False
                continue
            width = None
            for a in c.args:
                if a.key != "channels":
                    self.error(
                        a.span,
                        f"unknown argument '{a.key}' of cells",
                        did_you_mean(a.key or "", ["channels"]),
                    )
                    ok = False
                    continue
                width = self.int_value(a.value, "channels", 1, maximum=MAX_WIDTH)
            if width is None:
                if not any(a.key == "channels" for a in c.args):
                    self.error(c.span, f"cells {c.cell.name} needs a width", "add (channels: N)")
                ok = False
                continue
            cell = self.cells.get(c.cell.name)
            if cell is None:
                if c.cell.name not in self.bad_names:
                    self.unknown(c.cell.span, "cell", c.cell.name, self.cells)
                ok = False
                continue
            if not self.check_cell_role(cell, net, c.cell.span):
                ok = False
                continue
            scale = self.cell_scales.get(cell.name)
            if is_g:
                if scale is None:
                    self.error(
                        c.cell.span,
                        f"cell {cell.name}'s resolution change depends on the genome; a generator's cells must fix it",
                    )
                    ok = False
                else:
                    total_scale += scale * c.repeat
            for _ in range(c.repeat):
                instances.append(ir.CellInstance(len(instances) + 1, cell, channels, width))
                cell_spans.append(c.cell.span)
                channels = width
        if is_g and start_size is not None and data is not None and ok:
            final = start_size * 2**total_scale if total_scale >= 0 else 0
            if final != data.resolution:
                fits = total_scale >= 0 and data.resolution % 2**total_scale == 0
                hint = (
                    f"set project(size: {data.resolution // 2**total_scale}) or change the cells"
                    if fits
                    else _no_project_size(data.resolution, total_scale)
                )
                self.error(
                    stems[0].ops[0].span,
                    f"generator {net.name} makes {start_size}×2^{total_scale} = {final} pixels, "
                    f"but data {data.name} has resolution {data.resolution}",
                    hint,
                )
                ok = False
            if split > 1 and split > len(instances):
                self.error(
                    stems[0].ops[0].span,
                    f"split {split} needs at least {split} cells, generator {net.name} has {len(instances)}",
                )
                ok = False
        link_irs: list[ir.LinkIR] = []
        for link in links if ok else ():
            got_link = self.check_link(link, instances)
            if got_link is None:
                ok = False
            else:
                link_irs.append(got_link)
        head_prims: list[ir.Prim] = []
        if heads:
            vector = False
            for call in heads[0].ops:
                got = self.network_prim(call, net)
                if got is None:
                    ok = False
                    continue
                prim, kind = got
                if kind == "latent" or kind == "resize":
                    self.error(call.span, f"`{call.name}` cannot be used in a head")
                    ok = False
                    continue
                if kind == "vector" and not vector:
                    self.error(
                        call.span,
                        f"`{call.name}` works on vectors: put sum_pool or mean_pool before it",
                    )
                    ok = False
                    continue
                if is_g and kind in ("up", "global", "vector"):
                    self.error(
                        call.span,
                        f"`{call.name}` in generator {net.name}'s head: a generator's head keeps "
                        "the feature map the cells made, at the data's resolution",
                        "up-sample in the cells",
                    )
                    ok = False
                    continue
                if kind == "global":
                    vector = True
                elif vector and (kind not in ("vector", "normal") or prim.name in MAP_ONLY):
                    self.error(
                        call.span,
                        f"`{call.name}` needs a feature map, but the head already pooled it",
                    )
                    ok = False
                out = prim.get("out")
                if out is not None:
                    channels = image_channels if out == "image" else out
                head_prims.append(prim)
            if ok and is_g and channels != image_channels:
                self.error(
                    heads[0].span,
                    f"generator {net.name} must end with {image_channels} image channels",
                    "end the head with conv(k: 3, out: image), tanh",
                )
                ok = False
            if ok and not is_g and (not vector or channels != 1):
                self.error(
                    heads[0].span,
                    f"discriminator {net.name} must end with one score per image",
                    "end the head with sum_pool, linear(out: 1)",
                )
                ok = False
        if not ok:
            self.bad_names.add(net.name)
            return
        network = ir.NetworkIR(
            name=net.name,
            role=net.role,
            stem=tuple(stem_prims),
            cells=tuple(instances),
            links=tuple(link_irs),
            head=tuple(head_prims),
            image_channels=image_channels,
            resolution=data.resolution if data else 0,
            latent_dim=latent_dim if is_g else 0,
            stem_channels=stem_channels,
            span=net.span,
        )
        if data is not None and not self.follow(
            network, cell_spans, stems[0].ops if stems else (), heads[0].ops
        ):
            self.bad_names.add(net.name)
            return
        if not self.check_decisions_read(network):
            self.bad_names.add(net.name)
            return
        self.networks[net.name] = network
        self.network_spans[net.name] = net.name_span

    def check_decisions_read(self, net: ir.NetworkIR) -> bool:
        """A decision that no op of its cell (or of a link into it) reads would only multiply the
        space by copies of the same networks: an error at the decision."""
        ok = True
        for pos, inst in enumerate(net.cells):
            read = {d for e in inst.cell.edges for d in e.depends}
            read |= {d for ln in net.links if ln.dst_cell == pos + 1 for d in ln.depends}
            for d, dec in enumerate(inst.cell.decisions):
                if d not in read and (inst.cell.name, d) not in self.reported_unread:
                    self.reported_unread.add((inst.cell.name, d))
                    self.error(
                        dec.span,
                        f"decision '{dec.name}' of cell {inst.cell.name} is read by no op of "
                        f"cell {pos + 1} of {net.role} {net.name}",
                        f"use it in a case op, e.g. op x = case {dec.name} "
                        + "{ "
                        + " | ".join(f"{v}: ..." for v in dec.options[:2])
                        + " }, or drop it",
                    )
                    ok = False
        return ok

    def follow(
        self,
        net: ir.NetworkIR,
        cell_spans: list[ast.Span],
        stem_calls: tuple[ast.OpCall, ...],
        head_calls: tuple[ast.OpCall, ...],
    ) -> bool:
        """Follow channels and sizes through every candidate of a checked network, as the
        compiler builds and runs it: an op that cannot be placed between its widths, or makes
        another size than its kind promises at a size it receives, is an error; so is a network
        that every architecture shrinks below one pixel (issue 15, items 6, 7, 9)."""
        who = f"{net.role} {net.name}"
        is_g = net.role == "generator"
        # channels: every candidate of every edge is built, between the widths of its nodes
        for pos, inst in enumerate(net.cells):
            for edge in inst.cell.edges:
                cin = inst.in_channels if edge.src == 0 else inst.channels
                for op in edge.candidates:
                    try:
                        shapes.place(op.parts, cin, inst.channels, net.image_channels)
                    except shapes.ShapeError as err:
                        self.error(
                            cell_spans[pos],
                            f"cell {pos + 1} ({inst.cell.name}) of {who}, edge {edge.src} -> "
                            f"{edge.dst}: op '{op.name}': {err}",
                        )
                        return False
        for link in net.links:
            src, dst = net.cells[link.src_cell - 1], net.cells[link.dst_cell - 1]
            for op in link.candidates:
                try:
                    shapes.place(
                        op.parts,
                        src.in_channels if link.src_node == 0 else src.channels,
                        dst.channels,
                        net.image_channels,
                    )
                except shapes.ShapeError as err:
                    self.error(link.span, f"link op '{op.name}': {err}")
                    return False
        # sizes: the stem, then every cell at every size it can receive, then the head
        project = next((p for p in net.stem if p.name == "project"), None)
        size = int(project.get("size")) if project is not None else net.resolution
        for prim, call in zip(net.stem, stem_calls):
            if prim.name == "project":
                continue
            if is_g and shapes.kind_of(prim) != "normal":
                self.error(
                    call.span,
                    f"`{call.name}` changes the size in generator {net.name}'s stem: project's "
                    "chunks are added to the cells' inputs at size·2^i",
                    "up-sample in the cells",
                )
                return False
            if not self.size_fits(prim, size, call.span, f" (in the stem of {who})"):
                return False
            size = shapes.out_size(prim, size)
        infos = [self.cell_info[inst.cell.name] for inst in net.cells]
        sizes = {size}
        split = int(project.get("split", 1)) if project is not None else 1
        for pos, inst in enumerate(net.cells):
            if is_g and project is not None and 0 < pos < split:
                want = int(project.get("size")) * 2**pos
                if sizes != {want}:
                    self.error(
                        stem_calls[0].span,
                        f"project(split: {split}) adds chunk {pos + 1} at {want}×{want} to cell "
                        f"{pos + 1}'s input, which is {_sizes(sizes)}",
                        f"each of the first {split - 1} cell(s) must double the size",
                    )
                    return False
            info = infos[pos]
            for e, edge in enumerate(inst.cell.edges):
                for c, op in enumerate(edge.candidates):
                    for src_scale, out_scale in sorted(info.edges[e][c]):
                        for s0 in sorted(sizes):
                            if shapes.rescale(s0, out_scale) < 1:
                                continue  # such a genome is invalid: never built
                            cur = shapes.rescale(s0, src_scale)
                            for prim in op.parts:
                                where = (
                                    f" (op '{op.name}' on edge {edge.src} -> {edge.dst} of cell "
                                    f"{pos + 1} ({inst.cell.name}) of {who})"
                                )
                                if not self.size_fits(prim, cur, cell_spans[pos], where):
                                    return False
                                cur = shapes.out_size(prim, cur)
            new = {
                shapes.rescale(s0, o)
                for s0 in sizes
                for o in info.outs
                if shapes.rescale(s0, o) >= 1
            }
            if not new:
                self.error(
                    cell_spans[pos],
                    f"{who} shrinks the feature map below one pixel in cell {pos + 1} "
                    f"({inst.cell.name}), which receives {_sizes(sizes)}",
                    "use fewer down-sampling cells or a higher resolution",
                )
                return False
            sizes = new
        for s0 in sorted(sizes):
            cur = s0
            for prim, call in zip(net.head, head_calls):
                if shapes.kind_of(prim) in ("global", "vector"):
                    break
                if not self.size_fits(prim, cur, call.span, f" (in the head of {who})"):
                    return False
                cur = shapes.out_size(prim, cur)
        # a link that keeps the size joins nodes that must agree in every architecture
        for link in net.links:
            if all(op.kind != "normal" for op in link.options):
                continue
            diffs = self.link_diffs(link, net.cells)
            if diffs != {0}:
                some = " in some architectures" if len(diffs) > 1 else ""
                op = next(op for op in link.options if op.kind == "normal")
                self.error(
                    link.span,
                    f"link {link.src_cell}.{link.src_node} -> {link.dst_cell}.{link.dst_node}: "
                    f"op '{op.name}' keeps the size, but the two nodes differ in "
                    f"resolution{some}",
                    "resize on the way, e.g. op xskip = resize(mode: nearest), conv(k: 1)",
                )
                return False
        return True

    def size_fits(self, prim: ir.Prim, size: int, span: ast.Span, where: str) -> bool:
        problem = shapes.size_problem(prim, size)
        if problem is None and shapes.out_size(prim, size) >= 1:
            return True
        if problem is None:
            problem = f"{shapes.label(prim)} makes nothing of a {size}×{size} map"
        self.error(span, problem + where, shapes.size_hint(prim, size))
        return False

    def network_prim(self, call: ast.OpCall, net: ast.NetworkDef) -> tuple[ir.Prim, Kind] | None:
        if call.name in PRIMITIVES:
            got = self.prim(call)
        elif call.name in self.ops and not call.args:
            op = self.ops[call.name]
            if len(op.parts) != 1:
                self.error(
                    call.span,
                    f"write the parts of '{call.name}' out here: stems and heads take primitives",
                )
                return None
            got = (op.parts[0], op.kind)
        elif call.name in self.templates:
            self.error(
                call.span,
                f"op '{call.name}' picks its parts by a cell decision (case): only cell edges and "
                "links can use it, not a stem or head",
            )
            return None
        else:
            self.unknown(
                call.span, "primitive", call.name, PRIMITIVES, f" in {net.role} {net.name}"
            )
            return None
        if got is not None:
            self.check_kind_for_role(got[1], call.name, net.role, net.name, call.span)
        return got

    def check_kind_for_role(
        self, kind: str, name: str, role: str, net: str, span: ast.Span
    ) -> None:
        if role == "generator" and kind == "down":
            self.error(
                span, f"'{name}' down-samples, in generator {net}: generators only up-sample"
            )
        if role == "discriminator" and kind == "up":
            self.error(
                span,
                f"'{name}' up-samples, in discriminator {net}: discriminators only down-sample",
            )

    def check_cell_role(self, cell: ir.CellIR, net: ast.NetworkDef, span: ast.Span) -> bool:
        for e in cell.edges:
            for op in e.candidates:
                wrong = (net.role == "generator" and op.kind == "down") or (
                    net.role == "discriminator" and op.kind == "up"
                )
                if wrong:
                    verb = "down-samples" if op.kind == "down" else "up-samples"
                    only = "up-sample" if net.role == "generator" else "down-sample"
                    self.error(
                        span,
                        f"cell {cell.name} edge {e.src} -> {e.dst}: '{op.name}' {verb}, in {net.role} "
                        f"{net.name}: {net.role}s only {only}",
                    )
                    return False
        return True

    def check_link(self, link: ast.Link, cells: list[ir.CellInstance]) -> ir.LinkIR | None:
        n = len(cells)
        for c in (link.src_cell, link.dst_cell):
            if not 1 <= c <= n:
                self.error(link.span, f"cell {c} does not exist: the network has cells 1..{n}")
                return None
        if link.src_cell >= link.dst_cell:
            self.error(link.span, "a link goes from an earlier cell to a later one")
            return None
        for c, node in ((link.src_cell, link.src_node), (link.dst_cell, link.dst_node)):
            cell = cells[c - 1].cell
            if not 0 <= node < cell.num_nodes:
                self.error(
                    link.span,
                    f"node {node} does not exist in cell {c} ({cell.name} has nodes 0..{cell.output})",
                )
                return None
        if link.dst_node == 0:
            self.error(link.span, "a link feeds a node inside the cell, not its input node 0")
            return None
        if link.src_node == 0:
            before = (
                f"link from node {cells[link.src_cell - 2].cell.output} of cell {link.src_cell - 1} "
                "(its output) instead"
                if link.src_cell > 1
                else "link from a node inside the cell"
            )
            self.error(
                link.span,
                f"a link reads a node inside a cell, not its input node 0 (cell {link.src_cell})",
                before,
            )
            return None
        name = link.op.name
        choice: str | None = None
        if name in self.choice_options:
            options: tuple[Candidate, ...] = self.choice_options[name]
            choice = name
        elif name in self.bad_names:
            return None
        else:
            got = self.resolve_op(link.op, " in link")
            if got is None:
                return None
            options = (got,)
        dst = cells[link.dst_cell - 1]
        built = self.variants(
            options, dst.cell.decisions, link.op, f"cell {link.dst_cell} ({dst.cell.name})"
        )
        if built is None:
            return None
        candidates, depends, radix = built
        for op in candidates:
            if op.kind == "none" and choice is not None:
                continue  # the link is off
            if op.kind not in ("resize", "normal") or any(
                shapes.kind_of(p) not in ("normal", "resize") for p in op.parts
            ):
                self.error(
                    link.op.span,
                    f"link op '{op.name}' must keep or resize the resolution (use resize(mode: ...))",
                )
                return None
        if any(
            p.name == "resize" and p.get("mode") == "deconv" for c in candidates for p in c.parts
        ):
            diffs = self.link_diffs(link, cells)
            if len(diffs) != 1 or min(diffs) < 0:
                self.error(
                    link.op.span,
                    f"resize(mode: deconv) on link {link.src_cell}.{link.src_node} -> "
                    f"{link.dst_cell}.{link.dst_node} needs one up-sampling ratio in every "
                    f"architecture; here log2 of it is {' or '.join(map(str, sorted(diffs)))}",
                    "use resize(mode: nearest) or resize(mode: bilinear)",
                )
                return None
            doublings = diffs.pop()
            candidates = tuple(_deconv(op, doublings) for op in candidates)
        return ir.LinkIR(
            link.src_cell,
            link.src_node,
            link.dst_cell,
            link.dst_node,
            candidates[0],
            link.span,
            candidates,
            choice,
            depends,
            radix,
        )

    def link_diffs(self, link: ast.Link | ir.LinkIR, cells: Sequence[ir.CellInstance]) -> set[int]:
        """log2 of (destination node's resolution / source node's), over the architectures."""
        infos = [self.cell_info[inst.cell.name] for inst in cells]
        a, b = infos[link.src_cell - 1], infos[link.dst_cell - 1]
        diffs = {out - ns for ns, out in a.nodes[link.src_node]}
        for pos in range(link.src_cell, link.dst_cell - 1):
            diffs = {d + o for d in diffs for o in infos[pos].outs}
        return {d + ms for d in diffs for ms, _ in b.nodes[link.dst_node]}

    def check_fixed(self, fx: ast.FixedNetwork) -> None:
        base = self.networks.get(fx.base.name)
        if base is None:
            if fx.base.name in self.fixed:
                self.error(
                    fx.base.span,
                    f"'{fx.base.name}' is itself fixed; name the searchable network it comes from",
                )
            elif fx.base.name not in self.bad_names:
                self.unknown(fx.base.span, "network", fx.base.name, self.networks)
            self.bad_names.add(fx.name)
            return
        if base.role != fx.role:
            self.error(fx.base.span, f"{fx.role} {fx.name} is based on {base.role} {base.name}")
            self.bad_names.add(fx.name)
            return
        space = GenomeSpace(base, self.input_resolution(base))
        if not space.genes:
            self.error(
                fx.base.span, f"{base.role} {base.name} has no searchable edge: use it directly"
            )
            self.bad_names.add(fx.name)
            return
        try:
            genome = space.decode(fx.genome.value)
        except GenomeError as err:
            self.error(fx.genome.span, f"genome of {fx.name}: {err}")
            self.bad_names.add(fx.name)
            return
        problem = space.problem(genome)
        if problem is not None:
            self.error(
                fx.genome.span, f"genome of {fx.name} is not a valid architecture: {problem}"
            )
            self.bad_names.add(fx.name)
            return
        self.fixed[fx.name] = ir.FixedNetworkIR(
            fx.name, fx.role, base.name, genome.choices, fx.span
        )

    def input_resolution(self, net: ir.NetworkIR) -> int | None:
        """The resolution entering the first cell."""
        if not self.data:
            return None
        if net.role == "generator":
            project = net.stem[0] if net.stem else None
            return int(project.get("size")) if project is not None else None
        size = self.data.resolution
        for prim in net.stem:
            kind = PRIMITIVES[prim.name].kind_for(dict(prim.args))
            size = size * 2 if kind == "up" else size // 2 if kind == "down" else size
        return size

    # ---------------------------------------------------------------------------- blocks
    def setting_value(self, key: settings.Key, value: ast.Value, where: str) -> tuple[bool, Any]:
        what = f"{key.name} ({where})"
        t = key.type
        if t == "int":
            top = int(key.maximum) if key.maximum is not None else None
            v = self.int_value(value, what, key.minimum, maximum=top)
            return v is not None, v
        if t == "float":
            v2 = self.float_value(value, what, key.minimum, key.maximum)
            return v2 is not None, v2
        if t == "prob":
            v3 = self.float_value(value, f"probability {what}", 0.0, 1.0)
            return v3 is not None, v3
        if t == "bool":
            b = self.bool_value(value, what)
            return b is not None, b
        if t == "enum":
            if isinstance(value, ast.NameRef) and value.name in key.choices:
                return True, value.name
            shown = value.name if isinstance(value, ast.NameRef) else "this value"
            hint = did_you_mean(shown, key.choices) if isinstance(value, ast.NameRef) else None
            self.error(
                value.span, f"{what} must be one of {', '.join(key.choices)}, not {shown}", hint
            )
            return False, None
        if t in ("pair", "int_pair"):
            one = (
                self.int_value
                if t == "int_pair"
                else (lambda v, w, m: self.float_value(v, w, m, None))
            )
            if isinstance(value, ast.Record):
                out: dict[str, Any] = {}
                good = True
                for f in value.fields:
                    if f.key not in ("g", "d"):
                        self.error(f.span, f"{what}: entries are g and d, not {f.key}")
                        good = False
                        continue
                    v4 = one(f.value, f"{what} {f.key}", key.minimum)
                    good = good and v4 is not None
                    out[f.key] = v4
                for role in ("g", "d"):
                    if good and role not in out:
                        self.error(value.span, f"{what} needs both g and d, e.g. {key.example}")
                        good = False
                return good, out
            v5 = one(value, what, key.minimum)
            return v5 is not None, {"g": v5, "d": v5}
        if t == "betas":
            if isinstance(value, ast.Tuple) and len(value.items) == 2:
                vals = [self.float_value(v, f"{what} entry", 0.0, 0.999999) for v in value.items]
                return all(v is not None for v in vals), tuple(vals)
            self.error(value.span, f"{what} must be two numbers, e.g. (0.0, 0.9)")
            return False, None
        if t == "optional_float":
            if isinstance(value, ast.NameRef) and value.name in ("off", "false"):
                return True, None
            if not isinstance(value, ast.Number):
                bounds = _range(key.minimum, key.maximum)
                self.error(
                    value.span, f"{what} must be {key.noun} {bounds}, e.g. {key.example}, or off"
                )
                return False, None
            v6 = self.float_value(value, what, key.minimum, key.maximum)
            return v6 is not None, v6
        if t == "string":
            if isinstance(value, ast.NameRef) and value.name in ("off", "false"):
                return True, None
            if isinstance(value, ast.String):
                return True, value.value
            self.error(value.span, f"{what} must be a string or off")
            return False, None
        if t in ("network", "networks", "source"):
            return self.reference(value, t, what)
        raise AssertionError(t)

    def reference(self, value: ast.Value, t: str, what: str) -> tuple[bool, Any]:
        if isinstance(value, ast.Call) and t == "source":
            if (
                value.name != "best"
                or len(value.args) != 1
                or value.args[0].key is not None
                or not isinstance(value.args[0].value, ast.NameRef)
            ):
                self.error(value.span, f"{what} must be a network or best(STAGE)")
                return False, None
            return True, ir.Best(value.args[0].value.name)
        if isinstance(value, ast.Tuple) and t == "networks":
            names = []
            for v in value.items:
                ok, name = self.reference(v, "network", what)
                if not ok:
                    return False, None
                names.append(name)
            return True, tuple(names)
        if isinstance(value, ast.NameRef):
            if value.name in self.roles:
                return (value.name not in self.bad_names), value.name
            self.unknown(value.span, "network", value.name, self.roles)
            return False, None
        self.error(value.span, f"{what} must name a network")
        return False, None

    def read_settings(
        self, settings_: tuple[ast.Setting, ...], keys: tuple[settings.Key, ...], where: str
    ) -> dict[str, Any]:
        table = {k.name: k for k in keys}
        out: dict[str, Any] = {}
        for s in settings_:
            key = table.get(s.key)
            if key is None:
                self.error(
                    s.key_span, f"unknown setting '{s.key}' in {where}", did_you_mean(s.key, table)
                )
                continue
            if s.key in out:
                self.error(s.key_span, f"setting '{s.key}' is given twice in {where}")
                continue
            good, value = self.setting_value(key, s.value, where)
            if good:
                out[s.key] = value
            else:
                out[s.key] = _BAD
        return out

    def check_blocks(self, blocks: list[ast.Block]) -> dict[str, dict[str, Any]]:
        resolved: dict[str, dict[str, Any]] = {}
        for kind, keys in settings.BLOCKS.items():
            block = next((b for b in blocks if b.kind == kind), None)
            given = self.read_settings(block.settings, keys, f"{kind} block") if block else {}
            values = {k.name: given.get(k.name, k.default) for k in keys}
            if kind == "evolution":
                self.check_population(block, given)
            if kind == "evaluate" and values["extractor"] == "auto" and self.data is not None:
                # the digits LeNet takes 16×16 only; Inception resizes any size
                lenet = self.data.name == "digits" and self.data.resolution == LENET_RESOLUTION
                values["extractor"] = "lenet" if lenet else "inception"
            if kind == "evaluate":
                self.check_evaluate(
                    values,
                    lambda key, b=block: (
                        next((s.value.span for s in b.settings if s.key == key), b.span)
                        if b is not None
                        else self.spec.name_span
                    ),
                )
            resolved[kind] = {k: v for k, v in values.items()}
        return resolved

    def check_evaluate(self, values: dict[str, Any], span_of: Any) -> bool:
        """IS needs two images per split at least; the LeNet takes 1-channel 16×16 images."""
        ok = True
        if any(values.get(k) is _BAD for k in ("images", "final_images", "splits", "extractor")):
            return False
        for key in ("images", "final_images"):
            n = values[key]
            if n < 2:
                self.error(
                    span_of(key), f"{key} must be at least 2 (FID needs a covariance), not {n}"
                )
                ok = False
            elif n < values["splits"]:
                self.error(
                    span_of(key),
                    f"{key} ({n}) must be at least splits ({values['splits']}): one image per IS split",
                )
                ok = False
        data = self.data
        if (
            values["extractor"] == "lenet"
            and data is not None
            and data.resolution != LENET_RESOLUTION
        ):
            self.error(
                span_of("extractor"),
                f"the lenet extractor takes {LENET_RESOLUTION}×{LENET_RESOLUTION} images; "
                f"data {data.name} has {data.resolution}×{data.resolution} ones",
                f"use resolution: {LENET_RESOLUTION}, or extractor: inception",
            )
            ok = False
        return ok

    def check_population(self, block: ast.Block | None, given: dict[str, Any]) -> None:
        pop = given.get("population")
        if block is None or pop is None or pop is _BAD:
            return
        if pop % 2:
            s = next(s for s in block.settings if s.key == "population")
            self.error(
                s.value.span,
                f"population must be an even number ≥ 4 (P/2 parents are kept), not {pop}",
            )

    def check_objectives(self, blocks: list[ast.Block]) -> tuple[tuple[str, str], ...]:
        block = next((b for b in blocks if b.kind == "objectives"), None)
        if block is None:
            return tuple(settings.OBJECTIVES.items())
        out: list[tuple[str, str]] = []
        for s in block.settings:
            if s.key not in settings.OBJECTIVES:
                self.error(
                    s.key_span,
                    f"unknown objective '{s.key}'",
                    did_you_mean(s.key, settings.OBJECTIVES),
                )
                continue
            if any(k == s.key for k, _ in out):
                self.error(s.key_span, f"objective '{s.key}' is given twice")
                continue
            if not isinstance(s.value, ast.NameRef) or s.value.name not in settings.DIRECTIONS:
                self.error(s.value.span, f"objective {s.key} must be min or max")
                continue
            out.append((s.key, s.value.name))
        if not out and not self.errors:
            self.error(
                block.span,
                "the objectives block names no objective",
                "e.g. objectives { fid: min, is: max }",
            )
        return tuple(out)

    # ---------------------------------------------------------------------------- stages
    def check_stages(
        self, stages: list[ast.Stage], blocks: dict[str, dict[str, Any]]
    ) -> list[ir.StageIR]:
        out: list[ir.StageIR] = []
        seen: dict[str, str] = {}  # stage name → kind, in file order
        for st in stages:
            kind = st.stage_kind.name
            if kind not in settings.STAGES:
                self.unknown(st.stage_kind.span, "stage kind", kind, settings.STAGES)
                continue
            own, inherited = settings.STAGES[kind]
            keys = own + tuple(k for b in inherited for k in settings.BLOCKS[b])
            given = self.read_settings(st.settings, keys, f"stage {st.name}")
            for k in own:
                if k.required and k.name not in given:
                    self.error(st.name_span, f"stage {st.name} needs `{k.name}:`", k.doc)
            values: dict[str, Any] = {}
            for b in inherited:
                for k in settings.BLOCKS[b]:
                    values[k.name] = blocks[b][k.name]
            for k in own:
                values[k.name] = k.default
            values.update(given)
            good = all(v is not _BAD for v in values.values())
            if good and any(s.key in ("images", "final_images", "splits") for s in st.settings):
                good = self.check_evaluate(
                    values, lambda key, st=st: self.stage_setting_span(st, key)
                )
            good = self.check_stage_refs(st, kind, values, seen) and good
            seen[st.name] = kind
            if good:
                out.append(ir.StageIR(st.name, kind, MappingProxyType(values), st.span))
        return out

    def stage_setting_span(self, st: ast.Stage, key: str) -> ast.Span:
        s = next((s for s in st.settings if s.key == key), None)
        return s.value.span if s else st.name_span

    def check_stage_refs(
        self, st: ast.Stage, kind: str, v: dict[str, Any], seen: dict[str, str]
    ) -> bool:
        ok = True
        for key, value in v.items():
            if isinstance(value, ir.Best):
                span = self.stage_setting_span(st, key)
                if value.stage == st.name:
                    self.error(span, f"stage {st.name} cannot use its own result")
                    ok = False
                elif value.stage not in seen:
                    later = value.stage in {s.name for s in self.spec.of_type(ast.Stage)}  # type: ignore[attr-defined]
                    if later:
                        self.error(
                            span,
                            f"stage {value.stage} runs after stage {st.name}; best() can only name an earlier stage",
                        )
                    else:
                        self.unknown(span, "stage", value.stage, seen)
                    ok = False
                elif seen[value.stage] != "search":
                    self.error(
                        span,
                        f"best({value.stage}): stage {value.stage} is a train stage, it searches nothing",
                    )
                    ok = False
        if kind == "search":
            net = v.get("network")
            names = net if isinstance(net, tuple) else (net,) if net else ()
            for name in names:
                if name is _BAD or name is None:
                    continue
                if name not in self.networks:
                    self.error(
                        self.stage_setting_span(st, "network"),
                        f"stage {st.name} searches '{name}', which is not a searchable network (it is fixed or has no searchable edge)",
                    )
                    ok = False
                elif not self.networks[name].genes:
                    self.error(
                        self.stage_setting_span(st, "network"),
                        f"network {name} has no searchable edge",
                    )
                    ok = False
            if isinstance(net, tuple):
                roles = sorted(self.roles.get(n, "") for n in net if isinstance(n, str))
                if roles != ["discriminator", "generator"]:
                    self.error(
                        self.stage_setting_span(st, "network"),
                        "a coupled search takes one generator and one discriminator, e.g. network: (G, D)",
                    )
                    ok = False
                if v.get("pairing") not in (None, "coupled"):
                    self.error(
                        self.stage_setting_span(st, "pairing"),
                        "searching two networks at once is the coupled pairing",
                    )
                    ok = False
                v["pairing"] = "coupled"
            elif net and net is not _BAD:
                if v.get("against") is not None and v.get("with") is not None:
                    self.error(
                        st.name_span, f"stage {st.name} gives both `against` and `with`; keep one"
                    )
                    ok = False
                opponent = v.get("against") or v.get("with")
                if opponent is None:
                    self.error(
                        st.name_span,
                        f"stage {st.name} needs an opponent",
                        "add against: NETWORK or with: best(STAGE)",
                    )
                    ok = False
                elif (
                    isinstance(opponent, str)
                    and opponent in self.roles
                    and net in self.roles
                    and self.roles[opponent] == self.roles[net]
                ):
                    self.error(
                        self.stage_setting_span(st, "against" if v.get("against") else "with"),
                        f"{opponent} is a {self.roles[opponent]}, like {net}: the opponent must be the other role",
                    )
                    ok = False
                if v.get("pairing") is None and net in self.roles:
                    v["pairing"] = "many_to_one" if self.roles[net] == "generator" else "one_to_one"
        else:
            for key, role in (("g", "generator"), ("d", "discriminator")):
                value = v.get(key)
                if isinstance(value, str) and value in self.roles and self.roles[value] != role:
                    self.error(
                        self.stage_setting_span(st, key),
                        f"{key}: {value} is a {self.roles[value]}, not a {role}",
                    )
                    ok = False
        return ok


def _op_text(op: ast.OpDef) -> str:
    """An op that reads decisions, as written (its parts differ per cell and decision values)."""
    from .fmt import leaf_text

    return leaf_text(op, []).split(" = ", 1)[1]


def _deconv(op: ir.Op, doublings: int) -> ir.Op:
    """`resize(mode: deconv)` written out: one stride-2 transposed conv per doubling (AutoGAN's
    skip_deconvx2 / skip_deconvx4); identity when the two nodes share their resolution."""
    step = ir.Prim("conv_transpose", _conv_transpose_args())
    parts: list[ir.Prim] = []
    for prim in op.parts:
        if prim.name == "resize" and prim.get("mode") == "deconv":
            parts += [step] * doublings if doublings else [ir.Prim("skip")]
        else:
            parts.append(prim)
    return ir.Op(op.name, tuple(parts), op.kind, op.span)


def _conv_transpose_args() -> tuple[tuple[str, Any], ...]:
    given = dict(DECONV_STEP)
    return tuple((a.name, given.get(a.name, a.default)) for a in PRIMITIVES["conv_transpose"].args)


def _no_project_size(resolution: int, doublings: int) -> str:
    """The hint when no project size reaches the resolution: the nearest sizes and what they give."""
    text = f"no project size gives {resolution} pixels through {doublings} doublings"
    if doublings >= 0:
        step = 2**doublings
        below, above = resolution // step, resolution // step + 1
        near = [f"size {s} gives {s * step}" for s in (below, above) if s >= 1]
        text += f" ({', '.join(near)})"
    return text + "; change the cells or the data resolution"


def _range(minimum: float | None, maximum: float | None) -> str:
    """'in [0, 1]', '≥ 0' or '≤ 1': never an interval with a missing bound."""
    if minimum is not None and maximum is not None:
        return f"in [{minimum:g}, {maximum:g}]"
    if minimum is not None:
        return f"≥ {minimum:g}"
    return f"≤ {maximum:g}"


def _sizes(sizes: set[int]) -> str:
    return " or ".join(f"{s}×{s}" for s in sorted(sizes))


class _Bad:
    def __repr__(self) -> str:
        return "<invalid>"


_BAD: Any = _Bad()


def check(spec: ast.Spec) -> ir.Program:
    """Check a parsed spec; returns the program or raises SpecError with every problem found."""
    return _Checker(spec).run()


def load(path: str | Path) -> ir.Program:
    """Parse and check a spec file; every problem raises SpecError (with the file's source)."""
    path = Path(path)
    spec = parse_file(path)
    try:
        return check(spec)
    except SpecError as err:
        err.source = path.read_text(encoding="utf-8-sig")  # as parsed: without a BOM
        err.sources = {str(path): err.source}
        raise


def check_text(text: str, file: str = "<spec>") -> ir.Program:
    """Parse and check spec text; SpecError carries the source for rendering."""
    from .parser import parse

    try:
        return check(parse(text, file))
    except SpecError as err:
        err.source = text.removeprefix("\ufeff")
        err.sources = {file: err.source}
        raise
