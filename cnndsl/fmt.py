"""The canonical formatter: a spec's syntax tree and comments printed in one style (docs/fmt.md)."""
from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass, field

from . import ast, functions, layers
from .expand import BUILTINS
from .limits import MAX_DEPTH, recursion_headroom
from .parser import parse

WIDTH = 88  # wrap chains whose lines would be longer than this
CONTINUATION = 2  # indent of a statement's continuation lines (`  - POOL`)
BRACKET = 4  # indent of exploded bracket contents, relative to the line that opens them
_COMMENT = re.compile(r"#[^\n]*")


@dataclass
class Line:
    """One output line and the range of source offsets it prints (for placing comments)."""

    indent: int
    text: str = ""
    lo: int | None = None
    hi: int | None = None
    starts_statement: bool = False
    leading: list[tuple[int, str]] = field(default_factory=list)  # (source offset, comment)
    trailing: list[str] = field(default_factory=list)

    def cover(self, lo: int, hi: int) -> None:
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)


def format_text(text: str, name: str = "<spec>") -> str:
    """The canonical form of spec text; raises CnnDslError when it does not parse."""
    with recursion_headroom():  # printing recurses as deep as the expressions nest
        return Formatter(parse(text, name)).run()


class Formatter:
    def __init__(self, program: ast.Program):
        self.text = program.source.text
        self.statements = [s.expr if isinstance(s, ast.ExprStmt) else s
                           for s in program.statements]
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        self.defs = {s.name: s for s in self.statements if isinstance(s, ast.Def)}
        self.assigned = {s.name for s in self.statements if isinstance(s, ast.Assign)}
        self.def_gives_layers: dict[str, bool] = {}
        self.deciding = 0  # defs whose gives_layers() is under way, one inside another
        self.params: frozenset[str] = frozenset()  # parameters of the def being printed
        self.flat_memo: dict[tuple[int, frozenset[str]], str] = {}  # see flat()
        self.lines: list[Line] = []

    # -- source positions -----------------------------------------------------------------
    def offset(self, line: int, column: int) -> int:
        return self.line_starts[line - 1] + column - 1

    def start(self, node: ast.Node) -> int:
        return self.offset(node.span.line, node.span.column)

    def end(self, node: ast.Node) -> int:
        return self.offset(node.span.end_line, node.span.end_column)

    # -- what an expression is, syntactically --------------------------------------------
    def is_layer(self, e: ast.Expr) -> bool:
        """True only where `e` can never evaluate to a number (see docs/fmt.md, separators)."""
        if isinstance(e, ast.Call) and e.alias is None:
            if functions.lookup(e.name):
                return False  # round(x), max(a, b): numbers
            if e.name.lower() == "if":  # if(c, a, b): layers when both branches are
                return len(e.args) in (2, 3) and all(self.is_layer(a) for a in e.args[1:])
            if e.name in self.defs and e.name not in self.params:
                return self.gives_layers(e.name)  # def ch(c) = c / 2 is a number
        if isinstance(e, (ast.Call, ast.InputRef, ast.Optional, ast.Tag)):
            return True  # value mode rejects all four
        if isinstance(e, ast.Group):
            return self.is_layer(e.inner)
        if isinstance(e, ast.Product):
            return any(self.is_layer(item) for item in e.items)
        if isinstance(e, ast.Chain):
            return all(self.is_layer(item) for item in e.items)
        if isinstance(e, ast.Name):
            if e.id in self.params:
                return False  # a parameter may be bound to a number
            if e.id in self.defs:
                return self.gives_layers(e.id)
            return bool(layers.lookup(e.id)) or e.id.lower() in BUILTINS
        return False

    def gives_layers(self, name: str) -> bool:
        """Whether the def `name` certainly gives layers: its body is a layer, taking its own
        parameters as possibly numbers (`def ch(c) = c / 2 + 1` gives a number)."""
        if name not in self.def_gives_layers:
            if self.deciding >= MAX_DEPTH:
                # deeper than any spec that checks: "not certainly layers" keeps the
                # separators as written, which is always safe (and is not remembered)
                return False
            self.def_gives_layers[name] = False  # while deciding: a def calling itself
            outer, self.params = self.params, frozenset(p.name for p in self.defs[name].params)
            self.deciding += 1
            try:
                self.def_gives_layers[name] = self.is_layer(self.defs[name].body)
            finally:
                self.params = outer
                self.deciding -= 1
        return self.def_gives_layers[name]

    def chain_items(self, e: ast.Chain) -> tuple[list[ast.Expr], list[str]]:
        """Items and operators; a chain of layers is flattened and joined with `-`."""
        if not self.is_layer(e):
            return list(e.items), list(e.ops)
        items: list[ast.Expr] = []
        for item in e.items:
            items.extend(self.chain_items(item)[0] if isinstance(item, ast.Chain) else [item])
        return items, ["-"] * (len(items) - 1)

    def default(self, d: ast.Def, i: int) -> str:
        """`name=default`, the default cased as it reads: the parameters before it."""
        outer, self.params = self.params, frozenset(p.name for p in d.params[:i])
        try:
            return f"{d.params[i].name}={self.flat(d.params[i].default)}"
        finally:
            self.params = outer

    def name_text(self, name: str) -> str:
        upper = name.upper()
        if name in self.params or upper in self.params or name.lower() in self.params:
            return name  # re-casing could make it refer to (or away from) a parameter
        if name.lower() in BUILTINS or functions.lookup(name):
            return name.lower()
        if name in self.defs or name in self.assigned:
            return name  # `def pool = ...` shadows the layer only when written `pool`
        return upper if layers.lookup(name) else name

    # -- one-line text ----------------------------------------------------------------------
    def flat(self, e) -> str:
        """`e` on one line. Remembered per node (and the def's parameters, which decide the
        casing): put() asks at every level of a nested expression, which made 200 nested
        unary `-` quadratic and a file of them take minutes (issue 17, F24)."""
        key = (id(e), self.params)
        text = self.flat_memo.get(key)
        if text is None:
            text = self.flat_memo[key] = self._flat(e)
        return text

    def _flat(self, e) -> str:
        if isinstance(e, ast.Num):
            if isinstance(e.value, int):
                return str(e.value)
            return self.text[self.start(e):self.end(e)].strip()
        if isinstance(e, ast.Dims):
            return "x".join(map(str, e.values))
        if isinstance(e, ast.Name):
            return self.name_text(e.id)
        if isinstance(e, ast.InShape):
            return f"in.{e.field}"
        if isinstance(e, ast.Compare):
            return f"{self.flat(e.left)} {e.op} {self.flat(e.right)}"
        if isinstance(e, ast.InputRef):  # the keyword as written, in capitals as layers are
            return self.text[self.start(e):self.end(e)].strip().upper()
        if isinstance(e, ast.Keyword):
            return f"{e.name}={self.flat(e.value)}"
        if isinstance(e, ast.Call):
            if e.alias is not None:
                return e.alias
            args = ", ".join(self.flat(a) for a in (*e.args, *e.kwargs))
            return f"{self.name_text(e.name)}({args})"
        if isinstance(e, ast.Chain):
            items, ops = self.chain_items(e)
            return self.flat(items[0]) + "".join(
                f" {op} {self.flat(item)}" for op, item in zip(ops, items[1:]))
        if isinstance(e, ast.Product):
            return self.flat(e.items[0]) + "".join(
                f" {op} {self.flat(item)}" for op, item in zip(e.ops, e.items[1:]))
        if isinstance(e, ast.Neg):
            return "-" + self.flat(e.operand)
        if isinstance(e, ast.Optional):
            return self.flat(e.operand) + "?"
        if isinstance(e, ast.TensorRef):
            return f"@{e.name}"
        if isinstance(e, ast.Tag):
            return f"{self.flat(e.operand)} as {e.name}"
        if isinstance(e, ast.Group):
            return e.bracket + self.flat(e.inner) + _CLOSE[e.bracket]
        raise TypeError(f"cannot format {type(e).__name__}")

    # -- layout -------------------------------------------------------------------------------
    @property
    def line(self) -> Line:
        return self.lines[-1]

    def emit(self, text: str, node: ast.Node | None = None) -> None:
        self.line.text += text
        if node is not None:
            self.line.cover(self.start(node), self.end(node))

    def newline(self, indent: int) -> None:
        self.lines.append(Line(indent))

    def column(self) -> int:
        return self.line.indent + len(self.line.text)

    def put(self, e: ast.Expr) -> None:
        """Print `e` from the current column, exploding brackets when it does not fit."""
        text = self.flat(e)
        if isinstance(e, ast.Chain) and (not self.line.text or self.column() + len(text) > WIDTH):
            # on lines of its own (in exploded brackets) a chain keeps its written breaks
            items, ops = self.chain_items(e)
            self.put_chain(items, ops, self.line.indent)
        elif self.column() + len(text) <= WIDTH and not self.magic_comma(e):
            self.emit(text, e)
        elif isinstance(e, ast.Call) and e.alias is None and (e.args or e.kwargs):
            self.put_call(e)
        elif isinstance(e, ast.Group):
            base = self.line.indent
            self.emit(e.bracket, e)
            self.newline(base + BRACKET)
            self.put(e.inner)
            self.newline(base)
            self.emit(_CLOSE[e.bracket])
            self.line.cover(self.end(e) - 1, self.end(e))
        elif isinstance(e, ast.Product):
            self.put(e.items[0])
            for op, item in zip(e.ops, e.items[1:]):
                self.emit(f" {op} ")
                self.put(item)
        elif isinstance(e, ast.Optional):
            self.put(e.operand)
            self.emit("?", e)
        elif isinstance(e, ast.Tag):
            self.put(e.operand)
            self.emit(f" as {e.name}", e)
        elif isinstance(e, ast.Neg):
            self.emit("-", e)
            self.put(e.operand)
        else:
            self.emit(text, e)

    def put_call(self, e: ast.Call) -> None:
        base = self.line.indent
        self.emit(f"{self.name_text(e.name)}(")
        self.line.cover(self.start(e), self.offset(e.name_span.end_line, e.name_span.end_column))
        for arg in (*e.args, *e.kwargs):
            self.newline(base + BRACKET)
            if isinstance(arg, ast.Keyword):
                self.emit(f"{arg.name}=", arg)
                self.put(arg.value)
            else:
                self.put(arg)
            self.emit(",")
        self.newline(base)
        self.emit(")")
        self.line.cover(self.end(e) - 1, self.end(e))

    def magic_comma(self, e: ast.Expr) -> bool:
        """A call written with a comma after its last argument stays one argument per line."""
        if not isinstance(e, ast.Call) or e.alias is not None or not (e.args or e.kwargs):
            return False
        last = (*e.args, *e.kwargs)[-1]
        between = _COMMENT.sub("", self.text[self.end(last):self.end(e) - 1])
        return between.strip() == ","

    def put_chain(self, items, ops, indent: int) -> None:
        """Items joined by their operators, breaking (to `indent`) where the source did and
        where the next item does not fit. Only for chains that start a line (a statement's,
        an exploded bracket's) or do not fit: one that fits mid-line is joined."""
        self.put(items[0])
        for prev, op, item in zip(items, ops, items[1:]):
            written_break = "\n" in self.text[self.end(prev):self.start(item)]
            if written_break or self.column() + len(f" {op} {self.flat(item)}") > WIDTH:
                self.newline(indent)
                self.emit(f"{op} ")
            else:
                self.emit(f" {op} ")
            self.put(item)

    def put_value(self, e: ast.Expr) -> None:
        if isinstance(e, ast.Chain):
            items, ops = self.chain_items(e)
            self.put_chain(items, ops, CONTINUATION)
        else:
            self.put(e)

    def put_statement(self, stmt) -> None:
        self.newline(0)
        self.line.starts_statement = True
        self.line.cover(self.start(stmt), self.start(stmt) + 1)
        if isinstance(stmt, ast.InputStmt):
            self.emit("input " + "x".join(map(str, stmt.dims)), stmt)
        elif isinstance(stmt, ast.Assign):
            self.emit(f"{stmt.name} = ")
            self.put_value(stmt.value)
        elif isinstance(stmt, ast.Def):
            params = ", ".join(p.name if p.default is None else self.default(stmt, i)
                               for i, p in enumerate(stmt.params))
            self.emit(f"def {stmt.name}" + (f"({params})" if stmt.params else "") + " = ")
            self.params = frozenset(p.name for p in stmt.params)
            try:
                self.put_value(stmt.body)
            finally:
                self.params = frozenset()
        else:
            self.put_value(stmt)

    # -- comments and the whole file -----------------------------------------------------
    def place_comments(self) -> list[tuple[int, str]]:
        """Attach each comment to a line; return those after the last line.

        Lines print source in order, so their ranges only grow: an own-line comment goes
        before the first line reaching past it, an end-of-line comment after the last line
        starting before it."""
        starts = list(itertools.accumulate((ln.lo or 0 for ln in self.lines), max))
        ends = list(itertools.accumulate((ln.hi or 0 for ln in self.lines), max))
        tail: list[tuple[int, str]] = []
        for m in _COMMENT.finditer(self.text):
            pos, comment = m.start(), m.group().rstrip()
            if not self.text[self.text.rfind("\n", 0, pos) + 1:pos].strip():  # own line
                i = bisect.bisect_right(ends, pos)
                (self.lines[i].leading if i < len(self.lines) else tail).append((pos, comment))
                continue
            i = bisect.bisect_right(starts, pos) - 1
            if i >= 0:
                self.lines[i].trailing.append(comment)
            else:  # only a `;` precedes it
                tail.append((pos, comment))
        return tail

    def blank_before(self, pos: int) -> bool:
        """Whether the source has an empty line right before this position."""
        # A scan back over the whitespace: copying the text up to each statement made a
        # 100,000-definition chain quadratic (issue 17, F24).
        text, i, newlines = self.text, pos, 0
        while i > 0 and text[i - 1].isspace():
            i -= 1
            newlines += text[i] == "\n"
        return newlines >= 2 and i > 0

    def run(self) -> str:
        for stmt in self.statements:
            self.put_statement(stmt)
        tail = self.place_comments()
        out: list[str] = []
        for ln in self.lines:
            for pos, comment in ln.leading:
                if ln.starts_statement and self.blank_before(pos) and out:
                    out.append("")
                out.append(" " * ln.indent + comment)
            if ln.starts_statement and self.blank_before(ln.lo) and out and out[-1]:
                out.append("")
            text = " " * ln.indent + ln.text
            out.append("  ".join([text.rstrip(), *ln.trailing]))
        for pos, comment in tail:
            if self.blank_before(pos) and out:
                out.append("")
            out.append(comment)
        return "\n".join(out) + "\n" if out else ""


_CLOSE = {"(": ")", "[": "]", "{": "}"}
