"""One error family for users: `SpecError`, a list of located `Diagnostic`s.

Rendered as `FILE:LINE:COL: error: message`, then the source line and a caret under the span,
the way compilers print them. Nothing here ever shows a Python traceback to a user.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

from .ast import Span


@dataclass(frozen=True)
class Diagnostic:
    message: str
    span: Span
    file: str = "<spec>"
    hint: str | None = None

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def column(self) -> int:
        return self.span.column

    def header(self) -> str:
        where = f"{self.file}:{self.span.line}:{self.span.column}" if self.span.line else self.file
        text = f"{where}: error: {self.message}"  # line 0: the file as a whole (never "X:0:0")
        if self.hint:
            text += f" ({self.hint})"
        return text

    def render(self, source: str | None) -> str:
        """The header, the source line and a caret (`^~~~`) under the span."""
        lines = [self.header()]
        if source is None or self.span.line <= 0:
            return lines[0]
        source_lines = source.splitlines()
        if self.span.line > len(source_lines):
            return lines[0]
        text = source_lines[self.span.line - 1].expandtabs(1)
        start = max(self.span.column - 1, 0)
        if self.span.end_line == self.span.line and self.span.end_column > self.span.column:
            width = self.span.end_column - self.span.column
        else:
            width = max(len(text) - start, 1)
        lines.append(f"    {text}")
        lines.append("    " + " " * start + "^" + "~" * max(width - 1, 0))
        return "\n".join(lines)


MAX_SHOWN = 50  # diagnostics printed; the rest are counted ("… and 1,234 more errors")


@dataclass
class SpecError(Exception):
    """The only exception a bad spec raises. Holds every diagnostic found, in source order."""

    diagnostics: list[Diagnostic]
    source: str | None = None
    sources: dict[str, str] = field(default_factory=dict)
    omitted: int = 0  # found beyond what is kept (the checker keeps the first ones)

    def __post_init__(self) -> None:
        self.diagnostics = sorted(self.diagnostics, key=lambda d: (d.file, d.line, d.column))
        super().__init__(self.render())

    def render(self) -> str:
        out = []
        for diagnostic in self.diagnostics[:MAX_SHOWN]:
            source = self.sources.get(diagnostic.file, self.source)
            out.append(diagnostic.render(source))
        more = len(self.diagnostics) - len(out) + self.omitted
        if more > 0:
            out.append(f"… and {more:,} more error{'s' if more > 1 else ''}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """`did you mean 'conv3x3'?` for a near miss, None when nothing is close."""
    matches = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None
