"""Syntax tree -> IR: evaluates variables, blocks and repeats into the layer graph (ir.Graph)
and its scope tree.

One expression language serves numbers and networks: whether `a - b` means "a then b" or a
subtraction, and whether `X * N` repeats X, follows from what the names are bound to.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from . import ast, functions, ir, layers
from .errors import (CnnArgumentError, CnnDslError, CnnLayerLimitError, CnnLimitError,
                     CnnNameError, CnnShapeError, CnnSyntaxError, Span, did_you_mean)
from .layers import Context, Site
from .shapes import ROUNDING_MODES, Shape
from .values import (BUILTINS, IN, MAX_DEPTH, SETTINGS, UNCOUNTED, Evaluator, InputNode,
                     Override, Scope, Thunk)

DEFAULT_MAX_LAYERS = 200_000
# Def calls and repeats that make no layer. Each costs a few microseconds, so this refuses
# an exponential spec in a fraction of a second; real specs make a handful (an optional
# block left out, a repeat of 0).
MAX_EMPTY_WORK = 20_000
_UNLOOKED = object()  # build_call: the name's binding is not looked up yet


@dataclass
class Options:
    defines: dict[str, Any] = field(default_factory=dict)  # -D NAME=VALUE, override the spec
    input: tuple[int, ...] | None = None  # --input, overrides the `input` statement
    classes: int | None = None  # --classes, same as -D classes=N
    max_layers: int = DEFAULT_MAX_LAYERS
    drop_optional: bool | frozenset = False  # True: drop every X?; a set: drop those sites


class Expander(Evaluator):
    """Builds the layer graph from the network expression (build mode)."""

    def __init__(self, program: ast.Program, options: Options):
        super().__init__(program)
        self.options = options
        self.graph = ir.Graph()
        self.frame_ids = 0
        # every `X?` site, in the order first met: a dict, as an ordered set (a list scanned
        # per site took minutes for 50,000 sites, issue 17, F7)
        self.optional_sites: dict[tuple[int, int], None] = {}
        self.network: ast.ExprStmt | None = None
        self.input_stmt: ast.InputStmt | None = None
        self.empty_work = 0  # def calls and repeats that made no layer (see spent_nothing)
        # a bare layer name (`RELU`) that no scope binds: its kind, bound arguments and
        # spelling, the same at every use (50,000 `RELU?` bind once, not 50,000 times)
        self.bare: dict[str, tuple] = {}
        self.shadowed: list[tuple[str, str, Span]] = []  # (name, layer kind, where defined)
        # Shapes of nodes `in.c` has read, worked out while the graph is built; the passes
        # check that the network's shapes agree with them.
        self.shapes: dict[int, Shape] = {}
        self.context: Context | None = None
        # `outputs(name=branch, ...)`: (name, node, span) per output, the main one first
        self.outputs: list[tuple[str, int, Span]] = []
        self.outputs_call: ast.Call | None = None
        self.calls: dict[str, int] = {}  # calls of each def so far (index(block) reads them)

    # -- statements ----------------------------------------------------------------------
    def collect(self) -> None:
        first: dict[str, ast.Node] = {}
        for stmt in self.program.statements:
            if isinstance(stmt, ast.InputStmt):
                if self.input_stmt is not None:
                    raise CnnNameError("the input is given twice", stmt.span,
                                       notes=[f"first given at {self.input_stmt.span}"])
                self.input_stmt = stmt
            elif isinstance(stmt, (ast.Assign, ast.Def)):
                name = stmt.name
                shadowed = layers.lookup(name)
                if shadowed is not None and name.lower() not in BUILTINS:
                    # `def pool = MAXPOOL(3, 2)`: allowed, with a warning (api.check_text)
                    self.shadowed.append((name, shadowed.name, stmt.name_span))
                elif name.lower() in BUILTINS or functions.lookup(name):
                    raise CnnNameError(f"`{name}` is a built-in name and cannot be redefined",
                                       stmt.name_span, help="choose another name")
                if name in first:
                    raise CnnNameError(f"`{name}` is defined twice", stmt.name_span,
                                       notes=[f"first defined at {first[name].span}"])
                first[name] = stmt
                self.globals.names[name] = stmt
                if isinstance(stmt, ast.Def):
                    self.check_defaults(stmt)
            elif self.network is not None:
                raise CnnSyntaxError("a spec holds one network expression; this is a second",
                                     stmt.span, notes=[f"the first is at {self.network.span}"],
                                     help="join them with `-`, or name one with `def`")
            else:
                self.network = ast.ExprStmt(stmt.span, stmt) if not isinstance(
                    stmt, ast.ExprStmt) else stmt
        for name, value in self.options.defines.items():
            bound = self.globals.names.get(name)
            if isinstance(bound, ast.Def) or (layers.lookup(name) and bound is None) \
                    or name.lower() in BUILTINS or functions.lookup(name):
                where = bound.name_span if isinstance(bound, ast.Def) else None
                what = "function" if functions.lookup(name) else "block or layer"
                raise CnnNameError(f"-D {name}=...: `{name}` is a {what}, not a variable",
                                   where, help="-D sets variables such as N, classes or width")
            self.globals.names[name] = Override(value)
        if self.options.classes is not None:
            self.globals.names["classes"] = Override(self.options.classes)

    # -- build mode: layers ----------------------------------------------------------------
    def add_node(self, kind: layers.LayerKind, bound: dict, span: Span, within: ir.Scope,
                 inputs: list[ir.Edge], **fields) -> int:
        if self.graph.next_id > self.options.max_layers:
            self.too_many_layers(span)
        return self.graph.add(kind, inputs, span, within, bound, **fields).id

    def too_many_layers(self, span: Span):
        raise CnnLayerLimitError(f"the network has more than {self.options.max_layers:,} layers",
                                 span, help="raise the limit with --max-layers")

    def spent_nothing(self, span: Span) -> None:
        """Count a def call or repeat that made no layer. The layer limit bounds the rest of
        the work, but not this: `def bi = b(i-1) - b(i-1)` over `def b0 = RELU*0` makes
        2^i empty calls (issue 17, F5)."""
        self.empty_work += 1
        if self.empty_work > MAX_EMPTY_WORK:
            raise CnnLimitError(
                f"the blocks and repeats were expanded more than {MAX_EMPTY_WORK:,} times "
                "without making a layer", span,
                help="a block that makes no layers is used too often; simplify the spec")

    def build(self, expr: ast.Expr, scope: Scope, tail: int, within: ir.Scope) -> int:
        if within.depth > MAX_DEPTH:
            raise CnnLimitError(f"blocks nested deeper than {MAX_DEPTH} levels", expr.span)
        kind = type(expr)
        if kind is ast.Name:  # the common cases first: a chain's bare layers, `RELU?`
            return self.build_name(expr, scope, tail, within)
        if kind is ast.Optional:
            return self.build_optional(expr, scope, tail, within)
        if isinstance(expr, ast.Chain):
            # A chain's items are in the same scope at the same depth (checked above): its
            # bare names and `NAME?` go straight to their builders (50,000 `RELU?`: -15%)
            build, build_name, build_optional = self.build, self.build_name, self.build_optional
            for item in expr.items:
                kind = type(item)
                if kind is ast.Name:
                    tail = build_name(item, scope, tail, within)
                elif kind is ast.Optional:
                    tail = build_optional(item, scope, tail, within)
                else:
                    tail = build(item, scope, tail, within)
            return tail
        if isinstance(expr, ast.Group):
            return self.build(expr.inner, scope, tail, within)
        if isinstance(expr, ast.Product):
            return self.build_product(expr, scope, tail, within)
        if isinstance(expr, ast.Optional):
            return self.build_optional(expr, scope, tail, within)
        if isinstance(expr, ast.InputRef):
            if tail != self.graph.input:
                raise CnnSyntaxError("INPUT can only begin the network", expr.span)
            return tail
        if isinstance(expr, ast.Name):
            return self.build_name(expr, scope, tail, within)
        if isinstance(expr, ast.TensorRef):
            return self.tensor(expr, scope)
        if isinstance(expr, ast.Tag):
            tail = self.build(expr.operand, scope, tail, within)
            self.name_tensor(expr, tail, scope)
            self.graph.tensor_names.setdefault(tail, expr.name)
            self.graph.tensor_sites.append((expr.name_span, tail))
            return tail
        if isinstance(expr, ast.Call):
            return self.build_call(expr, scope, tail, within)
        if isinstance(expr, ast.Num):
            raise CnnArgumentError(f"expected a layer, found the number {expr.value}", expr.span,
                                   help="to repeat a layer N times write `LAYER * N`")
        raise CnnArgumentError("expected a layer here", expr.span)

    def build_optional(self, expr: ast.Optional, scope: Scope, tail: int,
                       within: ir.Scope) -> int:
        site = (expr.span.line, expr.span.column)
        self.optional_sites.setdefault(site)
        drop = self.options.drop_optional
        if drop is True or (isinstance(drop, frozenset) and site in drop):
            return tail
        if type(expr.operand) is ast.Name:  # same scope, same depth: build()'s first case
            return self.build_name(expr.operand, scope, tail, within)
        return self.build(expr.operand, scope, tail, within)

    def build_product(self, expr: ast.Product, scope: Scope, tail: int, within: ir.Scope) -> int:
        if "/" in expr.ops:
            raise CnnArgumentError("`/` divides numbers; layers cannot be divided", expr.span)
        counts = [i for i, item in enumerate(expr.items) if self.is_number(item, scope)]
        bodies = [i for i in range(len(expr.items)) if i not in counts]
        if len(bodies) != 1:
            raise CnnArgumentError(
                "`*` repeats one block a number of times" if bodies else
                "this product of numbers is not a layer", expr.span,
                help="write `(CONV - RELU) * N`")
        total = 1
        for i in counts:
            n = self.value(expr.items[i], scope)
            if isinstance(n, float) and n.is_integer():
                n = int(n)
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise CnnArgumentError(f"a repeat count must be a whole number >= 0, not {n!r}",
                                       expr.items[i].span)
            total *= n
        return self.repeat(expr.items[bodies[0]], total, scope, tail, within, expr.span)

    def repeat(self, body: ast.Expr, n: int, scope: Scope, tail: int, within: ir.Scope,
               span: Span) -> int:
        limit = self.options.max_layers
        if n > limit:
            raise CnnLayerLimitError(f"repeat count {n:,} exceeds the layer limit of {limit:,}",
                                     span, help="raise the limit with --max-layers")
        self.frame_ids += 1
        fid = self.frame_ids
        if n == 0:
            # An empty scope still marks the repeat's place: a def called with N = 0 here and
            # N = 3 elsewhere is one module class (cnndsl.structure). Tables and diagrams
            # only see scopes that hold layers.
            within.child("repeat", "x0", fid, 0, 0, span=span, start=self.graph.next_id)
            self.spent_nothing(span)
            return tail
        for i in range(n):
            before = self.graph.next_id
            tail = self.build(body, scope, tail, within.child("repeat", f"x{n}", fid, i, n,
                                                            span=span, start=before))
            if i == 0:
                per_copy = self.graph.next_id - before
                if per_copy == 0:
                    # The same body in the same scope makes the same (no) layers every time:
                    # the other n-1 copies would be empty work, up to the layer limit each.
                    self.spent_nothing(span)
                    return tail
                if self.graph.next_id + per_copy * (n - 1) > limit + 1:
                    raise CnnLayerLimitError(
                        f"this repeat makes {per_copy * n:,} layers; the limit is {limit:,}",
                        span, help="raise the limit with --max-layers")
        return tail

    def build_name(self, expr: ast.Name, scope: Scope, tail: int, within: ir.Scope) -> int:
        bound = scope.find(expr.id)
        if bound is None:  # the common case first: a bare layer (`RELU`), bound once per spec
            bare = self.bare.get(expr.id)
            if bare is not None:
                if self.graph.next_id > self.options.max_layers:
                    self.too_many_layers(expr.span)
                return self.graph.add(bare[0], [ir.Edge(tail)], expr.span, within, bare[1],
                                      written=bare[2]).id
        if isinstance(bound, Thunk):
            self.enter(expr.id, expr.span, bound)
            try:
                return self.build(bound.expr, bound.scope, tail, within)
            finally:
                self.stack.pop()
        if isinstance(bound, ast.Def):
            return self.build_call(ast.Call(expr.span, expr.id, expr.span, (), ()), scope,
                                   tail, within)
        if isinstance(bound, ast.Assign):
            self.enter(expr.id, expr.span, bound)
            self.frame_ids += 1
            # `features = ...` used in the network: a named group, the compiled model's
            # `features` submodule (cnndsl.structure); tables and diagrams look through it.
            group = within.child("group", expr.id, self.frame_ids, span=expr.span,
                                 start=self.graph.next_id)
            try:
                return self.build(bound.value, self.globals, tail, group)
            finally:
                self.stack.pop()
        if isinstance(bound, Override):
            raise CnnArgumentError(f"expected a layer, but `{expr.id}` is the number "
                                   f"{bound.value}", expr.span)
        call = ast.Call(expr.span, expr.id, expr.span, (), ())
        return self.build_call(call, scope, tail, within, bound)

    def build_call(self, call: ast.Call, scope: Scope, tail: int, within: ir.Scope,
                   bound=_UNLOOKED) -> int:
        """`bound`: what the name is bound to, if the caller has looked it up already."""
        if bound is _UNLOOKED:
            bound = scope.find(call.name)
        if isinstance(bound, ast.Def):
            local = self.bind_def(bound, call, call.args, call.kwargs, scope)
            if self.is_number(bound.body, local):
                raise CnnArgumentError(f"`{call.name}` gives a number, not layers", call.span,
                                       help="use it where a number goes, e.g. CONV("
                                       f"{call.name}{'(...)' if bound.params else ''}, 3)")
            return self.call_def(bound, call, local, tail, within)
        if isinstance(bound, (Thunk, ast.Assign, Override)):
            raise CnnArgumentError(f"`{call.name}` is a variable, not a block", call.name_span,
                                   help="define a block with `def`")
        low = call.name.lower()
        if low in BUILTINS:
            return self.build_builtin(low, call, scope, tail, within)
        if call.alias is None and functions.lookup(call.name):
            raise CnnArgumentError(f"`{call.name}(...)` is a number, not a layer", call.span,
                                   help="use it where a number goes, e.g. "
                                   "CONV(make_divisible(32 * alpha), 3)")
        if call.alias is not None:  # a paper's token: the registry knows its arguments
            kind, values, keywords = layers.paper_token(call.alias)
            args = [(value, call.span) for value in values]
            kwargs = [(key, value, call.span, call.span) for key, value in keywords.items()]
        else:
            kind = layers.lookup(call.name)
            if kind is None or not kind.callable:
                raise self.unknown(call.name, call.name_span, scope, "layer")
            # (each comprehension is a call: skipped for the bare layers of long chains)
            args = [(self.value(a, scope, symbols=True), a.span)
                    for a in call.args] if call.args else []
            kwargs = [(k.name, self.value(k.value, scope, symbols=True), k.span, k.value.span)
                      for k in call.kwargs] if call.kwargs else []
        try:
            params = kind.bind(args, kwargs, call.span)
        except CnnNameError as exc:
            if not hasattr(exc, "undefined"):
                raise
            raise self.undefined_word(exc, scope) from None
        except CnnArgumentError as exc:
            written = getattr(getattr(exc, "word", None), "span", None)
            if written is not None and written != exc.span:  # a def's argument: say where
                exc.notes.append(f"`{exc.word}` is written at {written}")
            raise
        parts = kind.macro(params) or [(kind.name, params)]
        # Interned: each of 50,000 RELUs would otherwise keep its own "RELU" (2.6 MB).
        written = call.alias or sys.intern(call.name.upper())
        if bound is None and call.alias is None and not call.args and not call.kwargs and \
                len(parts) == 1 and parts[0][0] == kind.name:
            self.bare[call.name] = (layers.get(kind.name), params, written)
        for part_kind, part_params in parts:
            tail = self.add_node(layers.get(part_kind), part_params, call.span, within,
                                 [ir.Edge(tail)], alias=call.alias,
                                 written=written if len(parts) == 1 else
                                 f"{written}.{part_kind}")
        return tail

    def undefined_word(self, exc: CnnNameError, scope: Scope) -> CnnNameError:
        """A layer's number argument that is an undefined name, reported where the name is
        written (a def's argument, a default, a variable's value) with the names seen there."""
        word = getattr(exc, "word", None)
        written = getattr(word, "span", None)
        if written is None or written == exc.span:
            return self.unknown(exc.undefined, exc.span, scope, "number")
        error = self.unknown(exc.undefined, written, word.scope, "number")
        error.notes.append(f"the layer at {exc.span} reads it")
        if exc.undefined in scope.all_names():  # `f(4, k)` for `def f(c, k)`
            error.notes.append(f"`{exc.undefined}` is a parameter where the layer is, not "
                               "where the name is written (an argument is read in the caller)")
        return error

    def call_def(self, d: ast.Def, call, local: Scope, tail: int, within: ir.Scope) -> int:
        """Build a def's body in the scope bind_def made for this call."""
        local.parent.names[IN] = InputNode(tail)  # bind_def's scope around the body
        index = self.calls.get(d.name, 0)
        self.calls[d.name] = index + 1
        self.open_calls.setdefault(d.name, []).append(index)
        self.enter(d.name, call.span, d)
        self.frame_ids += 1
        before = self.graph.next_id
        try:
            block = within.child("block", d.name, self.frame_ids, span=call.span,
                               args=self.block_args(d, local), start=before,
                               defaulted=frozenset(p.name for p in d.params if p.default
                                                   is not None and
                                                   local.names[p.name].expr is p.default))
            out = self.build(d.body, local, tail, block)
        finally:
            self.stack.pop()
            self.open_calls[d.name].pop()
        if self.graph.next_id == before:
            self.spent_nothing(call.span)
        return out

    def block_args(self, d: ast.Def, local: Scope) -> dict:
        """A def call's arguments by parameter name: numbers (and words) as their values, a
        block passed as an argument as its syntax tree."""
        args = {}
        for p in d.params:
            thunk = local.names[p.name]
            try:
                is_number = self.is_number(thunk.expr, thunk.scope)
                args[p.name] = self.value(thunk.expr, thunk.scope) if is_number else thunk.expr
            except CnnDslError:
                args[p.name] = thunk.expr  # an argument the body never uses as a number
        return args

    def build_builtin(self, name: str, call: ast.Call, scope: Scope, tail: int,
                      within: ir.Scope) -> int:
        if name in ("identity", "id"):
            if call.args or call.kwargs:
                raise CnnArgumentError("identity takes no arguments", call.span)
            return tail
        if name == "if":
            return self.build(self.choose(call, scope), scope, tail, within)
        self.frame_ids += 1
        fid = self.frame_ids
        if name == "residual":
            return self.build_residual(call, scope, tail, within, fid)
        if name == "gate":
            return self.build_gate(call, scope, tail, within, fid)
        if name == "outputs":
            return self.build_outputs(call, scope, tail, within, fid)
        if call.kwargs:
            raise CnnArgumentError(f"{name} takes branches only, no keywords",
                                   call.kwargs[0].span)
        if len(call.args) < 2:
            raise CnnArgumentError(f"{name} needs at least two branches", call.span,
                                   help=f"{name}(A, B, ...), one branch per argument")
        outs = []
        for i, branch in enumerate(call.args):
            inner = within.child("branch", name, fid, i, len(call.args), span=call.span)
            outs.append(ir.Edge(self.build(branch, scope, tail, inner), ir.branch(i + 1)))
        return self.add_node(layers.merge_kind(name), {}, call.span, within, outs)

    def build_residual(self, call: ast.Call, scope: Scope, tail: int, within: ir.Scope,
                       fid: int) -> int:
        shortcut = None
        for kw in call.kwargs:
            if kw.name != "shortcut":
                raise CnnArgumentError(f"residual has no parameter `{kw.name}`", kw.span,
                                       help="residual(body) or residual(body, shortcut=...)")
            shortcut = kw.value
        if len(call.args) not in (1, 2) or (len(call.args) == 2 and shortcut is not None):
            raise CnnArgumentError("residual takes a body and an optional shortcut", call.span,
                                   help="residual(CONV - BN - RELU - CONV - BN)")
        if len(call.args) == 2:
            shortcut = call.args[1]
        start = self.graph.next_id
        body = self.build(call.args[0], scope, tail,
                          within.child("branch", "residual", fid, 0, 2, span=call.span))
        # torchvision's projections: conv1x1 with BN where the body normalises, else a bias.
        uses_bn = any(self.graph[n].kind.batch_norm for n in range(start, self.graph.next_id))
        short = tail if shortcut is None else self.build(
            shortcut, scope, tail, within.child("branch", "residual", fid, 1, 2, span=call.span))
        if body == tail:
            raise CnnArgumentError("the residual body has no layers", call.span)
        bound = {"project": shortcut is None, "project_bn": uses_bn}
        return self.add_node(layers.merge_kind("residual"), bound, call.span,
                             within, [ir.Edge(body, ir.BODY), ir.Edge(short, ir.SHORTCUT)])

    def build_gate(self, call: ast.Call, scope: Scope, tail: int, within: ir.Scope,
                   fid: int) -> int:
        """`gate(branch)`: the input times the branch's output (squeeze-and-excitation)."""
        if call.kwargs or len(call.args) != 1:
            raise CnnArgumentError("gate takes one branch", (call.kwargs[0] if call.kwargs
                                                              else call).span,
                                   help="gate(GAP - CONV(in.c / 4, 1) - RELU - CONV(in.c, 1)"
                                        " - SIGMOID)")
        branch = self.build(call.args[0], scope, tail,
                            within.child("branch", "gate", fid, 0, 1, span=call.span))
        if branch == tail:
            raise CnnArgumentError("the gate's branch has no layers", call.span,
                                   help="the branch computes the factors that scale its input")
        return self.add_node(layers.merge_kind("gate"), {}, call.span, within,
                             [ir.Edge(tail, ir.BODY), ir.Edge(branch, ir.GATE)])

    def build_outputs(self, call: ast.Call, scope: Scope, tail: int, within: ir.Scope,
                      fid: int) -> int:
        """`outputs(logits=identity, aux=@x - head)`: the network's outputs, each a branch
        from here (or from a named tensor), the first the main one. It ends the network."""
        if self.outputs_call is not None:
            raise CnnArgumentError("the network has two `outputs(...)`", call.span,
                                   notes=[f"the first is at {self.outputs_call.span}"],
                                   help="give every output in one outputs(...)")
        if call.args:
            raise CnnArgumentError("outputs(...) names each output: name=branch",
                                   call.args[0].span,
                                   help="outputs(logits=identity, aux=@a4 - aux_head): the "
                                   "first is the main output")
        if len(call.kwargs) < 2:
            raise CnnArgumentError("outputs needs at least two outputs", call.span,
                                   help="outputs(logits=identity, aux=@a4 - aux_head)")
        self.outputs_call = call
        seen: dict[str, ast.Keyword] = {}
        count = len(call.kwargs)
        for i, kw in enumerate(call.kwargs):
            if kw.name in seen:
                raise CnnArgumentError(f"outputs: `{kw.name}` is given twice", kw.span)
            if kw.name.startswith("_") or kw.name in ("training",):
                raise CnnArgumentError(f"outputs: `{kw.name}` cannot name an output", kw.span,
                                       help="start the name with a letter")
            seen[kw.name] = kw
            inner = within.child("branch", "outputs", fid, i, count, span=kw.span)
            node = self.build(kw.value, scope, tail, inner)
            self.outputs.append((kw.name, node, kw.span))
        return self.outputs[0][1]

    def check_used(self, outputs: list[int]) -> None:
        """Every layer feeds an output: `CONV - @skip` would compute CONV for nothing."""
        graph, seen = self.graph, set(outputs)
        stack = list(outputs)
        while stack:
            for edge in graph[stack.pop()].inputs:
                if edge.node not in seen:
                    seen.add(edge.node)
                    stack.append(edge.node)
        if len(seen) == len(graph.nodes):
            return
        for node in graph.nodes.values():
            if node.id not in seen and not graph.users(node):
                raise CnnArgumentError(
                    f"the output of this {node.written or node.kind.name} is never used",
                    node.span, help="every layer must lead to the output: `@name` in a "
                    "chain starts again from that tensor and drops what came before it; to "
                    "use both, merge them (`concat(@skip, identity)`)")

    # -- shapes while building: `in.c` ---------------------------------------------------
    def shape_of(self, node: int | None, span: Span) -> Shape:
        """A built node's output shape, from its kind's rules, as the shape pass will find
        it: the graph so far holds all it depends on. The passes check that they agree."""
        if self.context is None:
            settings = {name: self.setting(name) for name in SETTINGS}
            self.context = make_context(settings, self.graph.input_dims,
                                        self.graph.input_span or span)
        target = self.graph.input if node is None else node
        stack = [target]
        while stack:
            v = stack[-1]
            if v in self.shapes:
                stack.pop()
                continue
            item = self.graph[v]
            missing = [e.node for e in item.inputs if e.node not in self.shapes]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            self.shapes[v] = self.infer_node(item)
        return self.shapes[target]

    def infer_node(self, node: ir.Node) -> Shape:
        ctx, kind = self.context, node.kind
        if not node.inputs:
            return ctx.input
        ins = [self.shapes[e.node] for e in node.inputs]
        site = Site(node.span, node.written or kind.name)
        # the layers the passes will put in front of an input (a residual's projection, the
        # classifier before SOFTMAX), by their shapes only
        for position, chain in kind.insertions(node.bound, ins, ctx, site,
                                               [e.role for e in node.inputs]):
            for name, params in chain:
                inserted = layers.get(name)
                shape = [ins[position]]
                ins[position] = inserted.infer(inserted.resolve(dict(params), shape, ctx, site),
                                               shape, ctx, site)
        return kind.infer(kind.resolve(node.bound, ins, ctx, site), ins, ctx, site)

    # -- the whole program -----------------------------------------------------------------
    def run(self) -> ir.Graph:
        self.collect()
        source = self.program.source
        if self.network is None:
            what = "the spec is empty" if not self.program.statements else \
                "the spec has no network expression"
            where = source.end_span() if self.program.statements else Span(source, 1, 1, 1, 2)
            raise CnnSyntaxError(what, where,
                                 help="write the layers, e.g. `CONV(6, 5) - RELU - POOL`")
        graph = self.graph
        graph.source = source
        graph.input_dims = self.options.input or (self.input_stmt.dims if self.input_stmt
                                                  else None)
        graph.input_span = self.input_stmt.span if self.input_stmt else None
        graph.input = self.add_node(layers.input_kind(), {}, self.input_stmt.span if
                                    self.input_stmt else self.network.span, graph.root, [])
        self.globals.names[IN] = InputNode(graph.input)
        out = self.build(self.network.expr, self.globals, graph.input, graph.root)
        if out == graph.input:
            raise CnnSyntaxError("the network has no layers", self.network.span,
                                 help="check the repeat counts and optional layers")
        if self.outputs:
            if out != self.outputs[0][1]:
                raise CnnArgumentError("outputs(...) must end the network", self.outputs_call.span,
                                       help="write the layers after it into its first output")
            graph.outputs = [(name, node) for name, node, _ in self.outputs]
        self.check_used([node for _, node, _ in self.outputs] or [out])
        graph.output = out
        graph.settings = {name: self.setting(name) for name in SETTINGS}
        graph.unused_defines = unused_defines(self.program, self.options.defines)
        graph.optional_sites = list(self.optional_sites)
        graph.network_span = self.network.span
        graph.shapes_read = dict(self.shapes)
        graph.shadowed = list(self.shadowed)
        return graph


def make_context(settings: dict, dims: tuple[int, ...] | None, span: Span) -> Context:
    """The spec-wide settings, validated: what the shape rules read besides the inputs."""
    if dims is None:
        raise CnnShapeError("the spec does not give the input size", span,
                            help="add `input 32x32x3` (H x W x C) or pass --input 32x32x3")
    shape = Shape.volume(*dims) if len(dims) == 3 else Shape.vector(dims[0])
    ctx = Context(input=shape)
    for name in ("classes", "width", "max_width", "fc_width"):
        value = settings.get(name)
        if value is None:
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise CnnArgumentError(f"`{name}` must be a positive whole number, not {value!r}",
                                   span)
        setattr(ctx, name, value)
    rounding = settings.get("rounding")
    if rounding is not None:
        if str(rounding).lower() not in ROUNDING_MODES:  # where the word is written, if known
            hint = did_you_mean(str(rounding).lower(), ROUNDING_MODES)
            shown = f"`{rounding}`" if isinstance(rounding, str) else repr(rounding)
            raise CnnArgumentError(f"`rounding` must be strict, floor or ceil, not {shown}",
                                   getattr(rounding, "span", None) or span,
                                   help=f"did you mean `{hint}`?" if hint else None)
        ctx.rounding = str(rounding).lower()
    return ctx


def unused_defines(program: ast.Program, names) -> list[str]:
    """The given names the spec never reads as a variable (a typo such as -D n=3 for N, a
    variable of another spec, or a def's parameter such as resnet's `c`, which the call's
    argument always shadows): overriding them changes nothing."""
    if not names:
        return []  # the walk costs a tenth of expanding a 100,000-layer literal chain
    read = free_names(program)
    return [n for n in names if n not in read and n not in SETTINGS]


def free_names(program: ast.Program) -> set[str]:
    """Names the spec reads from the global scope: everywhere, except a def's own parameters
    inside its body (a parameter's default is read globally)."""
    read: set[str] = set()
    for stmt in program.statements:
        if isinstance(stmt, ast.Def):
            params = {p.name for p in stmt.params}
            read |= {n.id for n in ast.walk(stmt.body) if isinstance(n, ast.Name)} - params
            read |= {n.id for p in stmt.params if p.default is not None
                     for n in ast.walk(p.default) if isinstance(n, ast.Name)}
        else:
            read |= {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    return read


def parameter_owners(program: ast.Program, name: str) -> list[str]:
    """The defs that have a parameter called `name`."""
    return [s.name for s in program.statements
            if isinstance(s, ast.Def) and any(p.name == name for p in s.params)]


def expand(program: ast.Program, options: Options | None = None) -> ir.Graph:
    """Expand a parsed spec into its layer graph (shapes not yet inferred).

    A spec that reads count(block) is built twice: first to count each def's calls, then
    with those counts; the counts must come out the same (they may set rates, not structure).
    """
    first = Expander(program, options or Options())
    try:
        graph = first.run()
    except CnnDslError as exc:
        if first.counted is not None:
            exc.notes.append(f"count(...) at {first.counted} stands for {UNCOUNTED:,} while "
                             "the calls are being counted: where it decides how many layers "
                             "or blocks there are, that is this error (it may set a rate)")
        raise
    if first.counted is None:
        return graph
    second = Expander(program, options or Options())
    second.counts = dict(first.calls)
    graph = second.run()
    if second.calls != first.calls:
        changed = next(n for n in sorted({*first.calls, *second.calls})
                       if first.calls.get(n) != second.calls.get(n))
        raise CnnArgumentError(
            f"count(...) changes the network it counts: `{changed}` is called "
            f"{second.calls.get(changed, 0):,} times, not {first.calls.get(changed, 0):,}",
            first.counted, help="count(block) may set a number such as a rate, not how many "
                                "layers or blocks there are")
    return graph
