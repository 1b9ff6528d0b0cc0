"""Text → typed AST. Syntax only: meaning is the checker's job (eagan_dsl/checker.py).

`parse(text, file)` returns an `ast.Spec` or raises `SpecError` with one located diagnostic in the
user's words ("expected '}' to close cell UpCell opened at 12:3"), never a Lark exception.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, cast

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from . import ast
from .diagnostics import Diagnostic, SpecError


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files("eagan_dsl").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _role(token: Token) -> ast.Role:
    return cast(ast.Role, str(token))


def _span(meta: Any) -> ast.Span:
    if getattr(meta, "empty", True):
        return ast.NO_SPAN
    return ast.Span(
        line=meta.line, column=meta.column, end_line=meta.end_line, end_column=meta.end_column
    )


def _tspan(token: Token) -> ast.Span:
    return ast.Span(
        line=token.line or 0,
        column=token.column or 0,
        end_line=token.end_line or token.line or 0,
        end_column=token.end_column or token.column or 0,
    )


@v_args(meta=True)
class _Build(Transformer[Token, ast.Spec]):
    """Builds AST nodes only; raises nothing about meaning."""

    def start(self, meta: Any, children: list[Any]) -> ast.Spec:
        name, *items = children
        return ast.Spec(
            span=_span(meta), name=str(name), name_span=_tspan(name), items=tuple(items)
        )

    # values -------------------------------------------------------------------------------
    def number(self, meta: Any, children: list[Token]) -> ast.Number:
        text = str(children[0])
        is_int = children[0].type == "INT" or re.fullmatch(r"[+-]?[0-9]+", text) is not None
        # an integer stays an integer (a float would round 9007199254740993); its length is
        # bounded by `parse` (MAX_DIGITS), so int() and float() cannot fail here
        integer = int(text) if is_int else None
        value = float(integer) if integer is not None else float(text)
        return ast.Number(span=_span(meta), value=value, is_int=is_int, text=text, integer=integer)

    def string(self, meta: Any, children: list[Token]) -> ast.String:
        raw = str(children[0])[1:-1]
        value = re.sub(r'\\(["\\])', r"\1", raw)  # only \" and \\ are escapes
        return ast.String(span=_span(meta), value=value)

    def name_ref(self, meta: Any, children: list[Token]) -> ast.NameRef:
        return ast.NameRef(span=_span(meta), name=str(children[0]))

    def call(self, meta: Any, children: list[Any]) -> ast.Call:
        name, args = children
        return ast.Call(span=_span(meta), name=str(name), args=args)

    def tuple_value(self, meta: Any, children: list[Any]) -> ast.Tuple:
        return ast.Tuple(span=_span(meta), items=tuple(c for c in children if c is not None))

    def record(self, meta: Any, children: list[Any]) -> ast.Record:
        return ast.Record(span=_span(meta), fields=tuple(children))

    def list_value(self, meta: Any, children: list[Any]) -> ast.List:
        return ast.List(span=_span(meta), items=tuple(c for c in children if c is not None))

    def field(self, meta: Any, children: list[Any]) -> ast.Field:
        key, value = children
        return ast.Field(span=_span(meta), key=str(key), value=value)

    def arguments(self, meta: Any, children: list[Any]) -> tuple[ast.Argument, ...]:
        return tuple(c for c in children if c is not None)

    def argument(self, meta: Any, children: list[Any]) -> ast.Argument:
        if len(children) == 2:
            return ast.Argument(span=_span(meta), key=str(children[0]), value=children[1])
        return ast.Argument(span=_span(meta), key=None, value=children[0])

    # search space -------------------------------------------------------------------------
    def data(self, meta: Any, children: list[Any]) -> ast.Data:
        name = children[0]
        args = children[1] if len(children) > 1 else ()
        return ast.Data(span=_span(meta), name=str(name), name_span=_tspan(name), args=args)

    def latent(self, meta: Any, children: list[Any]) -> ast.Latent:
        dist = None
        if len(children) > 1:
            dist = ast.NameRef(span=_tspan(children[1]), name=str(children[1]))
        return ast.Latent(span=_span(meta), dim=int(children[0]), distribution=dist)

    def op_def(self, meta: Any, children: list[Any]) -> ast.OpDef:
        name, body = children
        if isinstance(body, ast.Case):
            return ast.OpDef(
                span=_span(meta), name=str(name), name_span=_tspan(name), parts=(), case=body
            )
        return ast.OpDef(span=_span(meta), name=str(name), name_span=_tspan(name), parts=body)

    def case_expr(self, meta: Any, children: list[Any]) -> ast.Case:
        decision, *branches = children
        return ast.Case(
            span=_span(meta),
            decision=str(decision),
            decision_span=_tspan(decision),
            branches=tuple(branches),
        )

    def case_branch(self, meta: Any, children: list[Any]) -> ast.CaseBranch:
        label, parts = children
        return ast.CaseBranch(
            span=_span(meta), label=str(label), label_span=_tspan(label), parts=parts
        )

    def decision(self, meta: Any, children: list[Token]) -> ast.Decision:
        name, *options = children
        return ast.Decision(
            span=_span(meta),
            name=str(name),
            name_span=_tspan(name),
            options=tuple(ast.NameRef(span=_tspan(o), name=str(o)) for o in options),
        )

    def op_list(self, meta: Any, children: list[ast.OpCall]) -> tuple[ast.OpCall, ...]:
        return tuple(children)

    def op_call(self, meta: Any, children: list[Any]) -> ast.OpCall:
        name = children[0]
        has_parens = len(children) > 1
        args = children[1] if has_parens else ()
        return ast.OpCall(span=_span(meta), name=str(name), args=args, has_parens=has_parens)

    def choice_def(self, meta: Any, children: list[Any]) -> ast.ChoiceDef:
        name, *options = children
        return ast.ChoiceDef(
            span=_span(meta), name=str(name), name_span=_tspan(name), options=tuple(options)
        )

    def decisions(self, meta: Any, children: list[ast.Decision]) -> tuple[ast.Decision, ...]:
        return tuple(children)

    def cell_def(self, meta: Any, children: list[Any]) -> ast.CellDef:
        name, *stmts = children
        decisions: tuple[ast.Decision, ...] = ()
        if stmts and isinstance(stmts[0], tuple):
            decisions = stmts.pop(0)
        return ast.CellDef(
            span=_span(meta),
            name=str(name),
            name_span=_tspan(name),
            edges=tuple(s for s in stmts if isinstance(s, ast.Edge)),
            outputs=tuple(s for s in stmts if isinstance(s, ast.Output)),
            decisions=decisions,
        )

    def edge(self, meta: Any, children: list[Any]) -> ast.Edge:
        src, dst, op = children
        return ast.Edge(span=_span(meta), src=int(src), dst=int(dst), op=op)

    def output(self, meta: Any, children: list[Any]) -> ast.Output:
        return ast.Output(span=_span(meta), node=int(children[0]))

    def network_def(self, meta: Any, children: list[Any]) -> ast.NetworkDef:
        role, name, *body = children
        return ast.NetworkDef(
            span=_span(meta),
            role=_role(role),
            name=str(name),
            name_span=_tspan(name),
            body=tuple(body),
        )

    def stem(self, meta: Any, children: list[Any]) -> ast.Stem:
        return ast.Stem(span=_span(meta), ops=children[0])

    def cells(self, meta: Any, children: list[Any]) -> ast.Cells:
        cell, repeat = children[0], children[1]
        args = children[2] if len(children) > 2 else ()
        return ast.Cells(span=_span(meta), cell=cell, repeat=int(repeat), args=args)

    def link(self, meta: Any, children: list[Any]) -> ast.Link:
        sc, sn, dc, dn, op = children
        return ast.Link(
            span=_span(meta),
            src_cell=int(sc),
            src_node=int(sn),
            dst_cell=int(dc),
            dst_node=int(dn),
            op=op,
        )

    def head(self, meta: Any, children: list[Any]) -> ast.Head:
        return ast.Head(span=_span(meta), ops=children[0])

    def fixed_network(self, meta: Any, children: list[Any]) -> ast.FixedNetwork:
        role, name, base, genome = children
        genome_node = ast.String(span=_tspan(genome), value=str(genome)[1:-1])
        return ast.FixedNetwork(
            span=_span(meta),
            role=_role(role),
            name=str(name),
            name_span=_tspan(name),
            base=base,
            genome=genome_node,
        )

    # settings -----------------------------------------------------------------------------
    def block(self, meta: Any, children: list[Any]) -> ast.Block:
        kind, settings = children
        return ast.Block(span=_span(meta), kind=cast(ast.BlockKind, str(kind)), settings=settings)

    def stage(self, meta: Any, children: list[Any]) -> ast.Stage:
        name, kind, settings = children
        return ast.Stage(
            span=_span(meta),
            name=str(name),
            name_span=_tspan(name),
            stage_kind=ast.NameRef(span=_tspan(kind), name=str(kind)),
            settings=settings,
        )

    def settings(self, meta: Any, children: list[ast.Setting]) -> tuple[ast.Setting, ...]:
        return tuple(children)

    def setting(self, meta: Any, children: list[Any]) -> ast.Setting:
        key, value = children
        return ast.Setting(span=_span(meta), key=str(key), key_span=_tspan(key), value=value)


# ----------------------------------------------------------------------------- syntax errors

_WORDS = {
    "NAME": "a name",
    "INT": "an integer",
    "NUMBER": "a number",
    "STRING": "a string",
    "ROLE": "'generator' or 'discriminator'",
    "BLOCK": "'objectives', 'evolution', 'train', 'evaluate' or 'run'",
}


def _describe(terminal: str) -> str:
    if terminal in _WORDS:
        return _WORDS[terminal]
    if terminal == "$END":
        return "end of file"
    for term in _parser().terminals:
        if term.name == terminal and term.pattern.type == "str":
            return f"'{term.pattern.value}'"
    return terminal.lower()


def _expected(names: set[str]) -> str:
    words = sorted({_describe(n) for n in names if not n.startswith("__")})
    if not words:
        return ""
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


_OPENERS = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[{}]')


def _unclosed_brace(text: str) -> tuple[str, ast.Span] | None:
    """The innermost `{` still open at the end of `text`, described as the user wrote it."""
    stack: list[tuple[int, int, str]] = []
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    for match in _OPENERS.finditer(text):
        tok = match.group()
        if tok == "{":
            pos = match.start()
            line = next(i for i in range(len(line_starts) - 1, -1, -1) if line_starts[i] <= pos)
            head = text[line_starts[line] : pos].strip().split("#")[0].strip()
            stack.append((line + 1, pos - line_starts[line] + 1, head))
        elif tok == "}" and stack:
            stack.pop()
    if not stack:
        return None
    line, col, head = stack[-1]
    what = " ".join(head.split("(")[0].split()[:2]) or "block"
    return what, ast.Span(line=line, column=col, end_line=line, end_column=col + 1)


_STRING = re.compile(r'"([^"\\\n]|\\.)*"')  # the grammar's STRING


def _syntax_error(text: str, file: str, err: UnexpectedInput) -> Diagnostic:
    line, column = err.line, err.column
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream or 0
        char = text[pos] if pos < len(text) else "?"
        span = ast.Span(line=line, column=column, end_line=line, end_column=column + 1)
        if char == '"' and not _STRING.match(text, pos):  # a STRING ends on its own line
            end = column + len(text[pos:].split("\n", 1)[0])
            span = ast.Span(line=line, column=column, end_line=line, end_column=end)
            return Diagnostic(
                "unterminated string: close it with '\"' on the same line", span, file
            )
        message = f"unexpected character '{char}'"
        if err.allowed:
            message += f"; expected {_expected(set(err.allowed))}"
        return Diagnostic(message, span, file)
    token = getattr(err, "token", None)
    at_end = isinstance(err, UnexpectedEOF) or (token is not None and token.type == "$END")
    expected = set(getattr(err, "expected", set()) or set())
    if at_end:
        lines = text.splitlines() or [""]
        last = len(lines)
        span = ast.Span(
            line=last, column=len(lines[-1]) + 1, end_line=last, end_column=len(lines[-1]) + 2
        )
        open_ = _unclosed_brace(text)
        if open_ is not None and "RBRACE" in expected:
            what, where = open_
            return Diagnostic(
                f"expected '}}' to close {what} opened at {where.line}:{where.column}", span, file
            )
        return Diagnostic(f"unexpected end of file; expected {_expected(expected)}", span, file)
    assert token is not None
    end = (
        (token.end_column or column + 1)
        if token.end_line == token.line
        else column + len(str(token))
    )
    span = ast.Span(line=line, column=column, end_line=line, end_column=end)
    shown = str(token)
    return Diagnostic(f"unexpected '{shown}'; expected {_expected(expected)}", span, file)


MAX_DIGITS = 20  # an integer literal of more digits is refused (a 64-bit seed has at most 20)
MAX_NESTING = 32  # brackets, parentheses and braces nested deeper are refused
# A search space is a few KB of text (the shipped CIFAR-10 spec: 10 KB). The parser and the AST
# builder take about 20-40 µs a byte here, so a larger file would take seconds to refuse for
# another reason; it is refused at once, which bounds `eagan check` to ~2 s on any input.
MAX_BYTES = 64 * 1024


def _too_deep(text: str, file: str) -> Diagnostic | None:
    """The first bracket nested more than MAX_NESTING deep (outside strings and comments): the
    tree builder recurses, so a list nested 500 deep must be refused before it is built."""
    depth, line, line_start, i, n = 0, 1, 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if ch == '"':
            i += 1
            while i < n and text[i] not in '"\n':
                i += 2 if text[i] == "\\" else 1
        elif ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                col = i - line_start + 1
                span = ast.Span(line=line, column=col, end_line=line, end_column=col + 1)
                return Diagnostic(
                    f"brackets nested more than {MAX_NESTING} deep; a spec never needs that many",
                    span,
                    file,
                )
        elif ch in ")]}":
            depth -= 1
        elif ch == "\n":
            line, line_start = line + 1, i + 1
        i += 1
    return None


def _long_numbers(tree: Any, file: str) -> list[Diagnostic]:
    out = []
    for token in tree.scan_values(lambda t: isinstance(t, Token) and t.type in ("INT", "NUMBER")):
        digits = re.match(r"[+-]?([0-9]*)", str(token))
        if digits is not None and len(digits.group(1)) > MAX_DIGITS:
            out.append(
                Diagnostic(
                    f"a number of {len(digits.group(1))} digits is too large "
                    f"(at most {MAX_DIGITS} digits)",
                    _tspan(token),
                    file,
                )
            )
    return out


def parse(text: str, file: str = "<spec>") -> ast.Spec:
    """Parse spec text. Raises `SpecError` for any syntax error."""
    text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark, as some editors save
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        lines = text.count("\n") + 1
        raise SpecError(
            [
                Diagnostic(
                    f"the spec is {size // 1024} KB ({lines} lines); a spec is at most "
                    f"{MAX_BYTES // 1024} KB: a search space is written in a few KB, so this is "
                    "probably not a spec file (or generated text to shorten)",
                    ast.Span(line=1, column=1, end_line=1, end_column=1),
                    file,
                )
            ],
            source=text[:4096],
        )
    deep = _too_deep(text, file)
    if deep is not None:
        raise SpecError([deep], source=text)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as err:
        raise SpecError([_syntax_error(text, file, err)], source=text) from None
    long = _long_numbers(tree, file)
    if long:
        raise SpecError(long, source=text)
    spec = _Build().transform(tree)
    return spec.model_copy(update={"file": file})


def decode(data: bytes, file: str) -> str:
    """Spec bytes as text: UTF-8, with or without a byte-order mark; a byte that is not UTF-8 is
    reported at its line and column."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        start = err.start
        before = data[:start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", errors="replace")) + 1
        span = ast.Span(line=line, column=column, end_line=line, end_column=column + 1)
        raise SpecError(
            [
                Diagnostic(
                    f"byte 0x{data[start]:02x} is not UTF-8 text; save the spec as UTF-8",
                    span,
                    file,
                )
            ],
            source=data.decode("utf-8", errors="replace"),
        ) from None


def parse_file(path: str | Path) -> ast.Spec:
    path = Path(path)
    try:
        text = decode(path.read_bytes(), str(path))
    except FileNotFoundError:
        raise SpecError(
            [
                Diagnostic(
                    "no such file",
                    ast.NO_SPAN,
                    str(path),
                )
            ]
        ) from None
    except OSError as err:
        raise SpecError(
            [Diagnostic(f"cannot read the file: {err}", ast.NO_SPAN, str(path))]
        ) from None
    return parse(text, str(path))
