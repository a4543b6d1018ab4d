"""The syntax tree: frozen dataclasses, each carrying the span it was parsed from."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import Source, Span


@dataclass(frozen=True, eq=False, slots=True)
class Node:
    span: Span


# -- expressions ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False, slots=True)
class Num(Node):
    value: int | float


@dataclass(frozen=True, eq=False, slots=True)
class Dims(Node):
    """A size literal such as `5x5` or `32x32x3`."""

    values: tuple[int, ...]


@dataclass(frozen=True, eq=False, slots=True)
class Name(Node):
    id: str


@dataclass(frozen=True, eq=False, slots=True)
class InputRef(Node):
    """The lecture's `INPUT ->` at the start of a chain."""


@dataclass(frozen=True, eq=False, slots=True)
class TensorRef(Node):
    """`@skip`: the tensor an earlier `X as skip` named, read again (one node, another use)."""

    name: str  # without the `@`


@dataclass(frozen=True, eq=False, slots=True)
class Tag(Node):
    """`X as skip`: X, whose output tensor is named `skip` for `@skip` to read later."""

    operand: Expr
    name: str
    name_span: Span


@dataclass(frozen=True, eq=False, slots=True)
class InShape(Node):
    """`in.c`, `in.h`, `in.w`: the channels, height or width of the block's input."""

    field: str  # as written after `in.`


@dataclass(frozen=True, eq=False, slots=True)
class Compare(Node):
    """`a == b`, `s != 1`, `c < 64`, `a and b`, `a or b`: 1 if it holds, else 0."""

    left: "Expr"
    op: str
    right: "Expr"


@dataclass(frozen=True, eq=False, slots=True)
class Keyword(Node):
    name: str
    value: "Expr"


@dataclass(frozen=True, eq=False, slots=True)
class Call(Node):
    name: str
    name_span: Span
    args: tuple["Expr", ...]
    kwargs: tuple[Keyword, ...]
    alias: str | None = None  # the paper token it was written as (`conv3-64`), if any


@dataclass(frozen=True, eq=False, slots=True)
class Chain(Node):
    """`a - b + c -> d , e`: "then" for networks, + and - for numbers."""

    items: tuple["Expr", ...]
    ops: tuple[str, ...]  # len(items) - 1 operators


@dataclass(frozen=True, eq=False, slots=True)
class Product(Node):
    """`a * b / c`: repetition for networks, * and / for numbers."""

    items: tuple["Expr", ...]
    ops: tuple[str, ...]


@dataclass(frozen=True, eq=False, slots=True)
class Neg(Node):
    operand: "Expr"


@dataclass(frozen=True, eq=False, slots=True)
class Optional(Node):
    """`X?`: a layer or block that is kept unless optional layers are dropped."""

    operand: "Expr"


@dataclass(frozen=True, eq=False, slots=True)
class Group(Node):
    """`( )`, `[ ]` or `{ }`: grouping only; the bracket kind is kept for the formatter."""

    inner: "Expr"
    bracket: str


Expr = (Num | Dims | Name | InputRef | InShape | Compare | Call | Chain | Product | Neg | Optional
        | Group | TensorRef | Tag)


# -- statements ----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False, slots=True)
class InputStmt(Node):
    dims: tuple[int, ...]  # (H, W, C) or (N,)


@dataclass(frozen=True, eq=False, slots=True)
class Param(Node):
    name: str
    default: Expr | None


@dataclass(frozen=True, eq=False, slots=True)
class Def(Node):
    name: str
    name_span: Span
    params: tuple[Param, ...]
    body: Expr


@dataclass(frozen=True, eq=False, slots=True)
class Assign(Node):
    name: str
    name_span: Span
    value: Expr


@dataclass(frozen=True, eq=False, slots=True)
class ExprStmt(Node):
    expr: Expr


Stmt = InputStmt | Def | Assign | ExprStmt


@dataclass(frozen=True, eq=False, slots=True)
class Program:
    source: Source
    statements: tuple[Stmt, ...]


def walk(node):
    """Every syntax-tree node under `node` (a node, or a tuple of them), parents first."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Node):
            yield item
            stack.extend(reversed([v for v in map(item.__getattribute__, item.__match_args__)
                                   if isinstance(v, (Node, tuple))]))
        elif isinstance(item, tuple):
            stack.extend(reversed(item))


def nesting(expr: Expr, memo: dict) -> int:
    """How many levels `expr` nests: each bracket (a call's included), unary `-` and `?` is
    one (the parser's measure, limits.MAX_NESTING). Iterative, so it cannot overflow the
    stack; `memo` keeps every sub-expression's count between calls."""
    stack = [(expr, False)]
    while stack:
        node, done = stack.pop()
        if node in memo:
            continue
        inner = _nested_in(node)
        if not done and inner:
            stack.append((node, True))
            stack.extend((child, False) for child in inner if child not in memo)
            continue
        depth = max((memo[child] for child in inner), default=0)
        memo[node] = depth + (isinstance(node, (Group, Neg, Optional)) or
                              isinstance(node, Call) and bool(inner))
    return memo[expr]


def _nested_in(node) -> tuple:
    if isinstance(node, (Chain, Product)):
        return node.items
    if isinstance(node, Call):
        return node.args + node.kwargs
    if isinstance(node, Keyword):
        return (node.value,)
    if isinstance(node, Compare):
        return (node.left, node.right)
    if isinstance(node, (Neg, Optional, Tag)):
        return (node.operand,)
    if isinstance(node, Group):
        return (node.inner,)
    return ()
