"""`eagan fmt`: the canonical layout of a spec, comments kept.

The layout is printed from the AST (2-space indent, one item, edge or setting per line, canonical
spacing inside calls, tuples, records and lists, numbers and strings exactly as written), so the
formatted text parses to the same tree. The lexer drops comments, so they are collected here from
the text and re-attached by line: a comment on a line where a statement ends becomes that
statement's trailing comment, a comment on a line of its own becomes a leading comment of the next
statement (or of the closing `}` of its block). One blank line is kept wherever the source had
blank lines between two statements. Trailing comments of a run of lines (no blank line or comment
line between them) are aligned to one column, as the shipped specs are written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from . import ast
from .parser import parse

INDENT = "  "
# Lines longer than this do not push the aligned comment column of their run further right.
ALIGN_LIMIT = 80
# An op list (op, stem, head) longer than this is wrapped after a comma, continued under its first op.
WRAP = 100
# A string literal (which may contain '#') or a comment; the same patterns as grammar.lark.
_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')


# ------------------------------------------------------------------------------------ comments


def without_comments(text: str) -> str:
    """`text` with every `#` comment removed (a `#` inside a string literal stays)."""
    return _STRING_OR_COMMENT.sub(lambda m: "" if m.group().startswith("#") else m.group(), text)


@dataclass
class Comment:
    line: int
    column: int
    text: str
    standalone: bool  # alone on its line (else it follows code)
    taken: bool = False
    owner: tuple[int, str] | None = None  # (id of the statement, "trailing" | "header")


def collect_comments(text: str) -> list[Comment]:
    """Every `#` comment of `text` with its line, skipping `#` inside string literals."""
    comments: list[Comment] = []
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    line = 0
    for match in _STRING_OR_COMMENT.finditer(text):
        if not match.group().startswith("#"):
            continue
        while line + 1 < len(line_starts) and line_starts[line + 1] <= match.start():
            line += 1
        before = text[line_starts[line] : match.start()]
        column = match.start() - line_starts[line] + 1
        comments.append(Comment(line + 1, column, match.group().rstrip(), before.strip() == ""))
    return comments


# -------------------------------------------------------------------------------------- values


def _string(node: ast.String, source: list[str]) -> str:
    """A string as written (its escapes kept); re-escaped from its value when it has no span."""
    span = node.span
    if span.line > 0 and span.line == span.end_line and span.line <= len(source):
        written = source[span.line - 1][span.column - 1 : span.end_column - 1]
        if written.startswith('"') and written.endswith('"') and len(written) >= 2:
            return written
    return '"' + node.value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def value_text(value: ast.Value, source: list[str] | None = None) -> str:
    """The canonical text of a value."""
    src = source or []
    if isinstance(value, ast.Number):
        return value.text
    if isinstance(value, ast.String):
        return _string(value, src)
    if isinstance(value, ast.NameRef):
        return value.name
    if isinstance(value, ast.Call):
        return f"{value.name}({_args(value.args, src)})"
    if isinstance(value, ast.Tuple):
        items = [value_text(v, src) for v in value.items]
        # a one-element tuple needs its comma, as in Python: `(0.5,)`
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, ast.Record):
        return "(" + ", ".join(f"{f.key}: {value_text(f.value, src)}" for f in value.fields) + ")"
    if isinstance(value, ast.List):
        return "[" + ", ".join(value_text(v, src) for v in value.items) + "]"
    raise TypeError(f"not a value: {type(value).__name__}")


def _args(args: tuple[ast.Argument, ...], source: list[str]) -> str:
    return ", ".join(
        value_text(a.value, source) if a.key is None else f"{a.key}: {value_text(a.value, source)}"
        for a in args
    )


def _op_call(call: ast.OpCall, source: list[str]) -> str:
    return f"{call.name}({_args(call.args, source)})" if call.has_parens else call.name


def _op_list(calls: tuple[ast.OpCall, ...], source: list[str]) -> str:
    return ", ".join(_op_call(c, source) for c in calls)


def _branch(branch: ast.CaseBranch, source: list[str]) -> str:
    return f"{branch.label}: {_op_list(branch.parts, source)}"


def _case(case: ast.Case, source: list[str]) -> str:
    return f"case {case.decision} {{ {' | '.join(_branch(b, source) for b in case.branches)} }}"


def _decisions(cell: ast.CellDef) -> str:
    if not cell.decisions:
        return ""
    shown = (f"{d.name}: [{', '.join(o.name for o in d.options)}]" for d in cell.decisions)
    return f"({', '.join(shown)})"


# ----------------------------------------------------------------------------------- statements


def leaf_text(node: ast.Node, source: list[str]) -> str:
    """The one-line text of a statement that has no body."""
    if isinstance(node, ast.Data):
        return f"data {node.name}({_args(node.args, source)})" if node.args else f"data {node.name}"
    if isinstance(node, ast.Latent):
        dist = f" {node.distribution.name}" if node.distribution is not None else ""
        return f"latent {node.dim}{dist}"
    if isinstance(node, ast.OpDef):
        if node.case is not None:
            return f"op {node.name} = {_case(node.case, source)}"
        return f"op {node.name} = {_op_list(node.parts, source)}"
    if isinstance(node, ast.ChoiceDef):
        return f"choice {node.name} = [{', '.join(o.name for o in node.options)}]"
    if isinstance(node, ast.FixedNetwork):
        genome = f'"{node.genome.value}"'  # kept raw by the parser: exactly as written
        return f"{node.role} {node.name} = {node.base.name} with genome {genome}"
    if isinstance(node, ast.Edge):
        return f"edge {node.src} -> {node.dst} : {node.op.name}"
    if isinstance(node, ast.Output):
        return f"output {node.node}"
    if isinstance(node, ast.Stem):
        return f"stem {_op_list(node.ops, source)}"
    if isinstance(node, ast.Head):
        return f"head {_op_list(node.ops, source)}"
    if isinstance(node, ast.Cells):
        args = f" ({_args(node.args, source)})" if node.args else ""
        return f"cells {node.cell.name} x {node.repeat}{args}"
    if isinstance(node, ast.Link):
        return (
            f"link {node.src_cell}.{node.src_node} -> {node.dst_cell}.{node.dst_node} : "
            f"{node.op.name}"
        )
    if isinstance(node, ast.Setting):
        return f"{node.key}: {value_text(node.value, source)}"
    raise TypeError(f"not a statement: {type(node).__name__}")


def _header(node: ast.Node) -> str:
    if isinstance(node, ast.Spec):
        return f"search {node.name} {{"
    if isinstance(node, ast.CellDef):
        return f"cell {node.name}{_decisions(node)} {{"
    if isinstance(node, ast.NetworkDef):
        return f"{node.role} {node.name} {{"
    if isinstance(node, ast.Block):
        return f"{node.kind} {{"
    if isinstance(node, ast.Stage):
        return f"stage {node.name} : {node.stage_kind.name} {{"
    raise TypeError(f"not a block: {type(node).__name__}")


_BLOCKS = (ast.Spec, ast.CellDef, ast.NetworkDef, ast.Block, ast.Stage)


def _walk(node: ast.Node) -> list[ast.Node]:
    """Every statement in and under `node` (blocks and the statements inside them)."""
    return [node, *(n for child in _children(node) for n in _walk(child))]


def _assign_owners(spec: ast.Spec, comments: list[Comment]) -> None:
    """A comment after code belongs to the statement that ends last before it on its line (a
    block's `}` counts as its end); failing that, to the innermost block opened on its line."""
    nodes = _walk(spec)
    for c in comments:
        if c.standalone:
            continue
        ending = [n for n in nodes if n.span.end_line == c.line and n.span.end_column <= c.column]
        if ending:
            owner = max(ending, key=lambda n: n.span.end_column)
            c.owner = (id(owner), "trailing")
            continue
        opening = [n for n in nodes if isinstance(n, _BLOCKS) and n.span.line == c.line]
        if opening:
            c.owner = (id(max(opening, key=lambda n: n.span.column)), "header")


def _children(node: ast.Node) -> list[ast.Node]:
    """The statements of a block, in source order (a cell's edges and outputs interleaved as
    written: the AST keeps them in two tuples, each in order, so either order parses the same)."""
    if isinstance(node, ast.Spec):
        return list(node.items)
    if isinstance(node, ast.CellDef):
        stmts: list[ast.Node] = [*node.edges, *node.outputs]
        return sorted(stmts, key=lambda s: (s.span.line, s.span.column))
    if isinstance(node, ast.NetworkDef):
        return list(node.body)
    if isinstance(node, ast.Block | ast.Stage):
        return list(node.settings)
    return []


def _wrap(node: ast.Node, code: str, depth: int, source: list[str]) -> str:
    """A long op list on several lines, each continuation aligned under the first op."""
    if len(INDENT * depth + code) <= WRAP:
        return code
    if isinstance(node, ast.OpDef) and node.case is not None:
        # one branch a line, each `|` under the `{`
        head = f"op {node.name} = case {node.case.decision} "
        branches = [_branch(b, source) for b in node.case.branches]
        lines = [head + "{ " + branches[0]]
        lines += [" " * len(head) + "| " + b for b in branches[1:]]
        return "\n".join(lines) + " }"
    if isinstance(node, ast.OpDef):
        prefix, calls = f"op {node.name} = ", node.parts
    elif isinstance(node, ast.Stem | ast.Head):
        prefix, calls = code.split(" ", 1)[0] + " ", node.ops
    else:
        return code
    lines = [prefix]
    for i, call in enumerate(calls):
        part = _op_call(call, source) + ("," if i < len(calls) - 1 else "")
        line = lines[-1]
        if line.strip() and len(INDENT * depth + line + " " + part) > WRAP:
            lines[-1] = line.rstrip()
            lines.append(" " * len(prefix) + part)
        else:
            lines[-1] = line + (" " if line != prefix else "") + part
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- printer


@dataclass
class _Line:
    depth: int
    code: str  # empty for a comment on a line of its own
    comment: str = ""
    blank_before: bool = False


class _Printer:
    def __init__(self, text: str, spec: ast.Spec) -> None:
        self.source = text.splitlines()
        self.blank = {i + 1 for i, line in enumerate(self.source) if not line.strip()}
        self.comments = collect_comments(text)
        _assign_owners(spec, self.comments)
        self.lines: list[_Line] = []
        self.last = 0  # the last source line accounted for, to find blank lines between statements

    def _blank_since(self, line: int) -> bool:
        return any(self.last < b < line for b in self.blank)

    def _take(self, lo: int, hi: int, owner: tuple[int, str] | None = None) -> list[Comment]:
        """Untaken comments on lines lo..hi: those of `owner` (and those of nobody), or with no
        owner given, all of them."""
        found = [
            c
            for c in self.comments
            if not c.taken and lo <= c.line <= hi and (owner is None or c.owner in (None, owner))
        ]
        for c in found:
            c.taken = True
        return found

    def _comment_lines(self, comments: list[Comment], depth: int, first_in_block: bool) -> None:
        for i, c in enumerate(comments):
            blank = self._blank_since(c.line) and not (first_in_block and i == 0)
            self.lines.append(_Line(depth, "", c.text, blank))
            self.last = max(self.last, c.line)

    def statement(self, node: ast.Node, depth: int, first_in_block: bool) -> None:
        start, end = node.span.line, node.span.end_line
        leading = self._take(0, start - 1)
        self._comment_lines(leading, depth, first_in_block)
        blank = self._blank_since(start) and not (first_in_block and not leading)
        if isinstance(node, ast.Spec | ast.CellDef | ast.NetworkDef | ast.Block | ast.Stage):
            self.block(node, depth, blank)
            return
        own = self._take(start, end, (id(node), "trailing"))
        # one trailing comment per line: extra comments of a multi-line statement lead it
        for i, c in enumerate(own[:-1]):
            self.lines.append(_Line(depth, "", c.text, blank and i == 0))
        blank = blank and len(own) < 2
        code = _wrap(node, leaf_text(node, self.source), depth, self.source)
        self.lines.append(_Line(depth, code, own[-1].text if own else "", blank))
        self.last = max(self.last, end, *(c.line for c in own))

    def block(self, node: ast.Node, depth: int, blank: bool) -> None:
        start, end = node.span.line, node.span.end_line
        header = self._take(start, start, (id(node), "header"))
        self.lines.append(_Line(depth, _header(node), header[0].text if header else "", blank))
        self.last = max(self.last, start)
        children = _children(node)
        for i, child in enumerate(children):
            self.statement(child, depth + 1, i == 0)
        inner = self._take(0, end - 1)  # comment lines before the closing brace
        self._comment_lines(inner, depth + 1, not children)
        closing = self._take(end, end, (id(node), "trailing"))
        if not children and not inner and not header and depth > 0:
            self.lines[-1].code += "}"  # an empty block stays on one line: `run {}`
            self.lines[-1].comment = closing[0].text if closing else ""
        else:
            self.lines.append(_Line(depth, "}", closing[0].text if closing else ""))
        self.last = max(self.last, end)

    def document(self, spec: ast.Spec) -> str:
        self.statement(spec, 0, True)
        self._comment_lines(self._take(0, 1 << 30), 0, False)
        return _render(self.lines)


def _render(lines: list[_Line]) -> str:
    out: list[str] = []
    for group in _runs(lines):
        # a wrapped statement: its first lines stand alone, its last line takes the comment
        heads = [
            "".join(f"{INDENT * ln.depth}{part}\n" for part in ln.code.split("\n")[:-1])
            for ln in group
        ]
        codes = [INDENT * ln.depth + ln.code.split("\n")[-1] for ln in group]
        fits = [
            len(c)
            for c, ln in zip(codes, group)
            if ln.comment and ln.code and len(c) <= ALIGN_LIMIT
        ]
        column = max(fits, default=0) + 2
        for head, code, ln in zip(heads, codes, group):
            if ln.blank_before:
                out.append("")
            if head:
                out.append(head.rstrip("\n"))
            if not ln.code:
                out.append(INDENT * ln.depth + ln.comment)
            elif ln.comment:
                out.append(
                    code.ljust(column) + ln.comment
                    if len(code) <= ALIGN_LIMIT
                    else f"{code}  {ln.comment}"
                )
            else:
                out.append(code)
    return "\n".join(out) + "\n"


def _runs(lines: list[_Line]) -> list[list[_Line]]:
    """Alignment runs: consecutive code lines, broken by a blank line or a comment line."""
    runs: list[list[_Line]] = []
    for ln in lines:
        if not runs or ln.blank_before or not ln.code or not runs[-1][-1].code:
            runs.append([ln])
        else:
            runs[-1].append(ln)
    return runs


def format_spec(text: str, file: str | Path = "<spec>") -> str:
    """The canonical text of a spec. Raises `SpecError` when the text does not parse."""
    spec = parse(text, str(file))
    return _Printer(text, spec).document(spec)


def format_file(path: str | Path) -> tuple[str, str]:
    """(current text, formatted text) of a spec file."""
    text = Path(path).read_text(encoding="utf-8")
    return text, format_spec(text, path)
