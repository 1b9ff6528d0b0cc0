"""The typed, frozen syntax tree of a .eagan spec.

Every node carries the `Span` of the source text it was built from, so that the checker, the
formatter and the compiler can point back at the exact line and column. Nodes hold only what was
written: defaults and meaning are added by the checker (`eagan_dsl.checker`), never here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Span(BaseModel):
    """1-based, inclusive start and exclusive end position of a node in its file."""

    model_config = ConfigDict(frozen=True)

    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


NO_SPAN = Span(line=0, column=0, end_line=0, end_column=0)


class Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    span: Span = NO_SPAN


# ---------------------------------------------------------------------------------------- values


class Number(Node):
    kind: Literal["number"] = "number"
    value: float
    is_int: bool
    text: str
    integer: int | None = None  # the exact value of an integer literal

    def python(self) -> int | float:
        if self.is_int:
            return self.integer if self.integer is not None else int(self.value)
        return self.value


class String(Node):
    kind: Literal["string"] = "string"
    value: str


class NameRef(Node):
    """A use of a name: an op, a choice set, a cell, a network, a stage, or a keyword value."""

    kind: Literal["name"] = "name"
    name: str


class Argument(Node):
    """`key: value` inside a call, or a positional `value` when `key` is None."""

    key: str | None
    value: Value


class Call(Node):
    kind: Literal["call"] = "call"
    name: str
    args: tuple[Argument, ...]


class Tuple(Node):
    kind: Literal["tuple"] = "tuple"
    items: tuple[Value, ...]


class Field(Node):
    key: str
    value: Value


class Record(Node):
    """`(g: 80, d: 40)`: a value with one named entry per network or role."""

    kind: Literal["record"] = "record"
    fields: tuple[Field, ...]


class List(Node):
    kind: Literal["list"] = "list"
    items: tuple[Value, ...]


Value = Number | String | NameRef | Call | Tuple | Record | List


# ------------------------------------------------------------------------------ search space


class OpCall(Node):
    """One primitive or composite op, with keyword arguments: `conv(k: 3, dilation: 2)`."""

    name: str
    args: tuple[Argument, ...] = ()
    has_parens: bool = False


class CaseBranch(Node):
    """`bn: bn, relu`: the parts a case op has when its decision takes the value `label`."""

    label: str
    label_span: Span
    parts: tuple[OpCall, ...]


class Case(Node):
    """`case norm { none: skip | bn: bn }`: parts picked by a decision of the cell using the op."""

    decision: str
    decision_span: Span
    branches: tuple[CaseBranch, ...]


class OpDef(Node):
    """`op conv3x3 = relu, conv(k: 3)`: a composite op, applied left to right; or
    `op norm_ = case norm { ... }`: an op whose parts a cell decision picks (`parts` is empty)."""

    name: str
    name_span: Span
    parts: tuple[OpCall, ...]
    case: Case | None = None


class ChoiceDef(Node):
    """`choice normal = [none, skip, conv3x3]`: the candidate ops of a searchable edge."""

    name: str
    name_span: Span
    options: tuple[NameRef, ...]


class Edge(Node):
    """`edge 0 -> 1 : up`: searchable when `op` names a choice set, fixed when it names an op."""

    src: int
    dst: int
    op: NameRef


class Output(Node):
    node: int


class Decision(Node):
    """`norm: [none, bn, in]` in a cell's header: one gene of each cell instance, read by the
    `case` ops of the cell's edges and of the links into it (a tied decision: one gene, many
    places)."""

    name: str
    name_span: Span
    options: tuple[NameRef, ...]


class CellDef(Node):
    name: str
    name_span: Span
    edges: tuple[Edge, ...]
    outputs: tuple[Output, ...]
    decisions: tuple[Decision, ...] = ()


class Stem(Node):
    kind: Literal["stem"] = "stem"
    ops: tuple[OpCall, ...]


class Cells(Node):
    """`cells UpCell x 3 (channels: 256)`."""

    kind: Literal["cells"] = "cells"
    cell: NameRef
    repeat: int
    args: tuple[Argument, ...] = ()


class Link(Node):
    """`link 1.3 -> 2.3 : xskip`: node 3 of cell 1 feeds node 3 of cell 2 through `xskip`."""

    kind: Literal["link"] = "link"
    src_cell: int
    src_node: int
    dst_cell: int
    dst_node: int
    op: NameRef


class Head(Node):
    kind: Literal["head"] = "head"
    ops: tuple[OpCall, ...]


NetworkStmt = Stem | Cells | Link | Head

Role = Literal["generator", "discriminator"]


class NetworkDef(Node):
    role: Role
    name: str
    name_span: Span
    body: tuple[NetworkStmt, ...]


class FixedNetwork(Node):
    """`discriminator FixedD = D with genome "..."`: one architecture of a searchable network."""

    role: Role
    name: str
    name_span: Span
    base: NameRef
    genome: String


# ---------------------------------------------------------------------------- settings, stages


class Setting(Node):
    key: str
    key_span: Span
    value: Value


class Data(Node):
    name: str
    name_span: Span
    args: tuple[Argument, ...] = ()


class Latent(Node):
    dim: int
    distribution: NameRef | None = None


BlockKind = Literal["objectives", "evolution", "train", "evaluate", "run"]


class Block(Node):
    kind: BlockKind
    settings: tuple[Setting, ...]


class Stage(Node):
    """`stage search_g : search { network: G, against: FixedD }`."""

    name: str
    name_span: Span
    stage_kind: NameRef
    settings: tuple[Setting, ...]


Item = Data | Latent | OpDef | ChoiceDef | CellDef | NetworkDef | FixedNetwork | Block | Stage


class Spec(Node):
    """A whole file: `search NAME { item* }`."""

    name: str
    name_span: Span
    items: tuple[Item, ...]
    file: str = "<spec>"

    def of_type(self, cls: type[Node]) -> list[Node]:
        return [item for item in self.items if isinstance(item, cls)]


for _model in (Argument, Call, Tuple, Field, Record, List, Setting, Data, Stage, Block):
    _model.model_rebuild()
