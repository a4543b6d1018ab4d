"""Value mode of the expander: scopes, variables, arithmetic and the names they resolve to.

Numbers and bare words (`same`, `floor`) are evaluated here; the expander (expand.py) builds
layers. Both share the recursion check: a definition that uses itself is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import ast, functions, layers
from .errors import (CnnArgumentError, CnnDslError, CnnLimitError, CnnNameError, CnnSyntaxError,
                     Span, did_you_mean)
from .layers import Symbol
from .limits import MAX_DEPTH, MAX_LEVELS, MAX_NUMBER

# The language's builtins: residual(...), identity, the merges the registry declares (add,
# concat, gate) and the conditional if(condition, then, else).
BUILTINS = ("residual", *layers.merge_builtins(), "identity", "id", "if", "outputs")
SETTINGS = ("classes", "width", "max_width", "fc_width", "rounding", "activation")
# The scope key of the node a block starts from (`in.c` reads its shape); no name can be it.
IN = "in."
# `index(block)`, `count(block)`: which call of a def is being built (from 0) and how many
# there are in the whole network (stochastic depth's rate per block)
COUNTERS = ("index", "count")
# count(...) while the first expansion is still counting: a number that leaves the rates it
# divides near 0 (expand.expand builds again with the real counts)
UNCOUNTED = 1_000_000
IN_FIELDS = {"c": "c", "channels": "c", "h": "h", "height": "h", "w": "w", "width": "w"}
_COMPARE = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


@dataclass(frozen=True)
class InputNode:
    """The layer-graph node a def call starts from: what `in.c` inside its body reads."""

    node: int

@dataclass
class Thunk:
    """An argument bound by name: evaluated (as a number or as layers) where it is used."""

    expr: ast.Expr
    scope: "Scope"
    # What was being evaluated where the call bound it. Its expression belongs to the caller,
    # so the recursion check continues from here, not from inside the def it was passed to:
    # `twice(twice(RELU))` evaluates the inner call inside the outer's argument, not its body.
    chain: _Chain | None = None


@dataclass
class Frame:
    """The tensors `X as name` has named in one network or one def call, for `@name`."""

    owner: str | None  # the def's name; None: the network (and its variables)
    tensors: dict[str, tuple[int, Span]]  # name -> (node id, where it was named)


@dataclass
class Scope:
    names: dict[str, Any]
    parent: "Scope | None" = None
    frame: Frame | None = None  # set on the scope a def call (or the network) starts

    def find_frame(self) -> Frame | None:
        scope = self
        while scope is not None:
            if scope.frame is not None:
                return scope.frame
            scope = scope.parent
        return None

    def find(self, name: str):
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None

    def all_names(self):
        scope, out = self, set()
        while scope is not None:
            out.update(name for name in scope.names if name != IN)
            scope = scope.parent
        return out


@dataclass
class Override:
    value: Any


class Evaluator:
    """Evaluates numbers and names against the spec's global definitions and block scopes."""

    def __init__(self, program: ast.Program):
        self.program = program
        self.globals = Scope({}, frame=Frame(None, {}))
        self.var_cache: dict[str, Any] = {}
        # Bindings being evaluated: (id, name, definitions and variables so far, levels so
        # far, the chain for the recursion check), for the limits (limits.MAX_DEPTH,
        # MAX_LEVELS) and enter()'s recursion check.
        self.stack: list[tuple[int, str, int, int]] = []
        self.nesting_memo: dict[ast.Node, int] = {}
        # is_number() of definitions and variables that does not depend on the arguments
        self.number_memo: dict[ast.Node, bool] = {}
        self.read_argument = False  # is_number() has looked at an argument (a Thunk)
        # is_number() of a def's body by whether each argument is a number: a def that reads
        # its arguments is not in number_memo, and without this `def fi(x) = f(i-1)(x) +
        # f(i-1)(x)` walks 2^i calls (issue 17, F5)
        self.call_kind_memo: dict[tuple, bool] = {}
        # values of number defs by (def, argument values): pure, so each is evaluated once
        self.def_value_memo: dict[tuple, Any] = {}
        # count(block): the calls of each def, known from a first expansion (None: counting)
        self.counts: dict[str, int] | None = None
        self.counted: Span | None = None  # where count(...) was first read
        # index(block): the index of each open call of a def, innermost last
        self.open_calls: dict[str, list[int]] = {}
        self.read_index = False  # index(...) was read: the value is not pure, not remembered

    def setting(self, name: str, default=None):
        binding = self.globals.names.get(name)
        if binding is None:
            return default
        if name == "activation":
            return self.activation_setting(binding)
        span = binding.span if isinstance(binding, ast.Node) else None
        return self.value(ast.Name(span or self.program.source.end_span(), name), self.globals,
                          symbols=True)

    def activation_setting(self, binding) -> tuple[str, dict, Span]:
        """`activation = relu` or `LEAKYRELU(0.1)`: the layer put after every hidden layer."""
        if isinstance(binding, Override):
            expr = ast.Name(self.program.source.end_span(), str(binding.value))
        else:
            expr = binding.value
        call = ast.Call(expr.span, expr.id, expr.span, (), ()) if isinstance(
            expr, ast.Name) else expr
        kind = layers.lookup(call.name) if isinstance(call, ast.Call) else None
        if kind is None or kind.family != "activation" or kind.passive_tail:
            raise CnnArgumentError("`activation` must be an activation layer such as relu or "
                                   "LEAKYRELU(0.1)", expr.span)
        args = [(self.value(a, self.globals, symbols=True), a.span) for a in call.args]
        kwargs = [(k.name, self.value(k.value, self.globals, symbols=True), k.span,
                   k.value.span) for k in call.kwargs]
        return kind.name, kind.bind(args, kwargs, call.span), call.span

    # -- names -----------------------------------------------------------------------------
    def unknown(self, name: str, span: Span, scope: Scope, want: str) -> CnnNameError:
        if want == "layer":
            spelled = layers.by_spelling(name)
            if spelled is not None:
                written = f"{spelled.merge_builtin}(...)" if spelled.merge_builtin else \
                    spelled.name
                return CnnNameError(f"unknown layer or block `{name}`", span,
                                    help=f"did you mean `{written}`? {spelled.doc}")
            names = set(layers.callable_names()) | set(BUILTINS) | {
                n for n in scope.all_names() if n not in SETTINGS}
            foreign = layers.foreign_help(name)
            hint = None if foreign else layers.suggest(name, names)
            return CnnNameError(
                f"unknown layer or block `{name}`", span,
                help=foreign or (f"did you mean `{hint}`?" if hint else
                                 "see docs/language.md for the layer names, or define it "
                                 "with `def`"))
        hint = did_you_mean(name, scope.all_names())
        return CnnNameError(
            f"undefined variable `{name}`", span,
            help=(f"did you mean `{hint}`? " if hint else "") +
            f"define it with `{name} = ...` in the spec or pass -D {name}=...")

    def chain(self) -> _Chain | None:
        """What is being evaluated now, for the recursion check (see Thunk.chain)."""
        return self.stack[-1][4] if self.stack else None

    def enter(self, name: str, span: Span, binding) -> None:
        """Push a definition being evaluated. Seeing the same binding again within its own
        evaluation is recursion; an argument continues the chain of the call that bound it,
        so a nested call of the same def (`half(half(16))`) is not (issue 17, F8)."""
        outer = binding.chain if isinstance(binding, Thunk) else self.chain()
        item = outer
        while item is not None:
            if item.above is not None and id(binding) not in item.above:
                break  # not this link's binding, nor any further up (_Chain.above)
            if item.binding is binding:
                names = []
                while outer is not item:
                    names.append(outer.name)
                    outer = outer.parent
                chain = " -> ".join([item.name] + names[::-1] + [name])
                raise CnnLimitError(
                    f"`{name}` refers to itself ({chain})", span,
                    help="a definition cannot use itself; to repeat a block write `BLOCK * N`")
            item = item.parent
        named, levels = self.stack[-1][2:4] if self.stack else (0, 0)
        named, levels = self.deeper(binding, named, levels)
        self.check_depth(named, levels, span)
        self.stack.append((id(binding), name, named, levels, _Chain(binding, name, outer)))

    def deeper(self, binding, named: int, levels: int) -> tuple[int, int]:
        """The depth counts once `binding` is entered. An argument (a Thunk) is not a
        definition, but its expression is evaluated inside the call and costs levels."""
        expr = binding.expr if isinstance(binding, Thunk) else binding.value if isinstance(
            binding, ast.Assign) else binding.body
        nesting = self.nesting_memo.get(expr)
        if nesting is None:
            nesting = ast.nesting(expr, self.nesting_memo)
        return named + (not isinstance(binding, Thunk)), levels + 1 + nesting

    def check_depth(self, named: int, levels: int, span: Span) -> None:
        if named > MAX_DEPTH:
            raise CnnLimitError(f"definitions nested deeper than {MAX_DEPTH} levels", span,
                                help="flatten the definitions")
        if levels > MAX_LEVELS:
            raise CnnLimitError(
                f"definitions and the expressions in them nested deeper than {MAX_LEVELS:,} "
                "levels in all", span, notes=[(
                    "each definition, variable or argument in use is a level, and so is "
                    "each bracket, unary `-` and `?` in its expression")],
                help="flatten the definitions")

    # -- value mode: numbers and symbols ---------------------------------------------------
    def is_number(self, expr: ast.Expr, scope: Scope, path: _Path | None = None) -> bool:
        """Whether an expression denotes a number (so `X * it` repeats X).

        `path`: the bindings entered on the way here, counted as enter() counts them, so a
        chain of definitions is followed as deep as evaluating it may go, and no deeper.
        Within one expression it recurses without counting: the parser bounds that."""
        if isinstance(expr, ast.Num):
            return True
        if isinstance(expr, ast.Group):
            return self.is_number(expr.inner, scope, path)
        if isinstance(expr, (ast.Neg, ast.InShape, ast.Compare)):
            return True
        if isinstance(expr, ast.Call) and is_if(expr, scope):
            for branch in expr.args[1:]:
                if not self.is_number(branch, scope, path):
                    return False
            return len(expr.args) == 3
        if isinstance(expr, (ast.Chain, ast.Product)):
            for item in expr.items:  # a loop, not all(): a generator would nest C frames too
                if not self.is_number(item, scope, path):
                    return False
            return True
        if isinstance(expr, ast.Call) and expr.alias is None:
            if functions.lookup(expr.name) is not None or is_counter(expr, scope):
                return True
            bound = scope.find(expr.name)
            if isinstance(bound, ast.Def):  # a def whose body is a number (`def ch(c) = c/2`)
                try:
                    local = self.bind_def(bound, expr, expr.args, expr.kwargs, scope)
                except CnnArgumentError:
                    return False  # a bad call: building it reports the mistake
                known = self.number_memo.get(bound)
                if known is not None:
                    return known
                # Given whether each argument is a number, the answer is the same for every
                # call: is_number() of the body reads nothing else of them.
                # (The arguments are looked at inside the call, as the body would.)
                inner = self.follow(path, bound, expr.span)
                if inner.cycle:
                    return True
                key = [bound]
                for thunk in local.names.values():  # a loop: a generator nests C frames
                    if isinstance(thunk, Thunk):
                        key.append(self.is_number(thunk.expr, thunk.scope, inner))
                key = tuple(key)
                known = self.call_kind_memo.get(key)
                if known is None:
                    known = self.entered_is_number(bound, bound.body, local, inner)
                    self.call_kind_memo[key] = known
                return known
            return False
        if isinstance(expr, ast.Name):
            bound = scope.find(expr.id)
            if isinstance(bound, Thunk):
                self.read_argument = True
                path = self.follow(path, bound, expr.span)
                return path.cycle or self.is_number(bound.expr, bound.scope, path)
            if isinstance(bound, Override):
                return isinstance(bound.value, (int, float))
            if isinstance(bound, ast.Assign):
                known = self.number_memo.get(bound)
                if known is not None:
                    return known
                return self.entered_is_number(bound, bound.value, self.globals,
                                              self.follow(path, bound, expr.span))
            if isinstance(bound, ast.Def):  # `name` alone calls it, as in build mode
                return self.is_number(_call_of(expr), scope, path)
            if isinstance(bound, (int, float)):
                return True
            return not (layers.lookup(expr.id) or expr.id.lower() in BUILTINS)
        return False

    def entered_is_number(self, binding, expr: ast.Expr, scope: Scope, path: _Path) -> bool:
        """is_number() of a definition's or variable's expression, remembered when it read
        none of the call's arguments: otherwise each call in a chain of 400 definitions
        would walk the rest of the chain again (160,000 steps)."""
        if path.cycle:
            return True
        outer, self.read_argument = self.read_argument, False
        try:
            result = self.is_number(expr, scope, path)
            if not self.read_argument:
                self.number_memo[binding] = result
            return result
        finally:
            self.read_argument = outer or self.read_argument

    def value(self, expr: ast.Expr, scope: Scope, symbols: bool = False):
        """Evaluate a number (or, where `symbols`, a bare word such as `same`)."""
        if isinstance(expr, ast.Num):
            return expr.value
        if isinstance(expr, ast.Dims):
            return expr.values
        if isinstance(expr, ast.Group):
            if expr.bracket != "(":
                raise CnnSyntaxError(f"use ( ) for arithmetic, not {expr.bracket}", expr.span)
            return self.value(expr.inner, scope, symbols)
        if isinstance(expr, ast.Neg):
            return self.check_number(-self.number(expr.operand, scope), expr.span)
        if isinstance(expr, ast.Name):
            return self.name_value(expr, scope, symbols)
        if isinstance(expr, ast.InShape):
            return self.input_shape(expr, scope)
        if isinstance(expr, ast.TensorRef):
            return self.tensor_size(expr, scope)
        if isinstance(expr, ast.Compare):
            left = self.number(expr.left, scope)
            if expr.op in ("and", "or"):  # the right side only where it decides
                if bool(left) == (expr.op == "or"):
                    return int(bool(left))
                return int(bool(self.number(expr.right, scope)))
            return int(_COMPARE[expr.op](left, self.number(expr.right, scope)))
        if isinstance(expr, ast.Call) and is_if(expr, scope):
            return self.value(self.choose(expr, scope), scope, symbols)
        if isinstance(expr, ast.Chain):
            total = self.number(expr.items[0], scope)
            for op, item in zip(expr.ops, expr.items[1:]):
                if op not in "+-":
                    raise CnnSyntaxError(f"`{op}` joins layers; here a number is expected",
                                         expr.span)
                rhs = self.number(item, scope)
                total = self.check_number(total + rhs if op == "+" else total - rhs, expr.span)
            return total
        if isinstance(expr, ast.Product):
            total = self.number(expr.items[0], scope)
            for op, item in zip(expr.ops, expr.items[1:]):
                rhs = self.number(item, scope)
                if op == "*":
                    total = total * rhs
                elif rhs == 0:
                    raise CnnArgumentError("division by zero", item.span)
                elif isinstance(total, int) and isinstance(rhs, int) and total % rhs == 0:
                    total = total // rhs
                else:
                    total = total / rhs
                total = self.check_number(total, expr.span)
            return total
        if isinstance(expr, ast.Call) and is_counter(expr, scope):
            return self.counter(expr, scope)
        if isinstance(expr, ast.Call) and expr.alias is None:
            return self.call_function(expr, scope)
        what = "layers" if isinstance(expr, (ast.Call, ast.InputRef)) else "this"
        raise CnnArgumentError(f"expected a number here, but {what} cannot be one", expr.span,
                               help="layers go in chains; arguments and counts are numbers")

    def bind_def(self, d: ast.Def, call, args, kwargs, scope: Scope) -> Scope:
        """The scope a `def`'s body runs in: its parameters bound to the call's arguments."""
        names = [p.name for p in d.params]
        sig = f"{d.name}({', '.join(names)})"
        if len(args) > len(names):
            raise CnnArgumentError(f"{d.name} takes {len(names)} argument"
                                   f"{'s' if len(names) != 1 else ''}; got {len(args)}",
                                   args[len(names)].span, help=sig)
        local: dict[str, Any] = {}
        # The block's own input (call_def sets it; a number def reads its caller's): the
        # parameters' defaults and the body both see it, and nothing else of the call.
        around = Scope({IN: scope.find(IN)}, self.globals, Frame(d.name, {}))
        for p, a in zip(d.params, args):
            local[p.name] = Thunk(a, scope, self.chain())
        for kw in kwargs:
            if kw.name not in names:
                hint = did_you_mean(kw.name, names)
                raise CnnArgumentError(f"{d.name} has no parameter `{kw.name}`", kw.span,
                                       help=(f"did you mean `{hint}`? " if hint else "") + sig)
            if kw.name in local:
                raise CnnArgumentError(f"{d.name}: `{kw.name}` is given twice", kw.span)
            local[kw.name] = Thunk(kw.value, scope, self.chain())
        for i, p in enumerate(d.params):
            if p.name not in local:
                if p.default is None:
                    raise CnnArgumentError(f"{d.name} needs `{p.name}`", call.span, help=sig)
                # A default reads the parameters before it, as this call binds them
                # (`def stage(c, r=1, r1=r)`); check_defaults refuses one that reads a later one.
                earlier = Scope({q.name: local[q.name] for q in d.params[:i]}, around)
                local[p.name] = Thunk(p.default, earlier, self.chain())
        return Scope(local, around)

    @staticmethod
    def check_defaults(d: ast.Def) -> None:
        """A parameter's default may read the parameters before it, not itself or a later
        one: those are bound only after it (`def f(a=b, b=1)`)."""
        for i, p in enumerate(d.params):
            if p.default is None:
                continue
            later = {q.name: q for q in d.params[i:]}
            for node in ast.walk(p.default):
                if isinstance(node, ast.Name) and node.id in later:
                    which = "its own parameter" if node.id == p.name else \
                        "a parameter after it"
                    raise CnnNameError(
                        f"the default of `{p.name}` reads `{node.id}`, {which}", node.span,
                        help=f"a default may read only the parameters before it: put "
                        f"`{node.id}` before `{p.name}`" if node.id != p.name else
                        f"`{p.name}` is not bound while its default is read; to read a "
                        f"variable `{p.name}` from outside the def, name the parameter otherwise")

    def call_function(self, call: ast.Call, scope: Scope):
        """`round(x)`, `make_divisible(c * alpha, 8)`: a number function (functions.py)."""
        fn = functions.lookup(call.name)
        bound = scope.find(call.name)
        if fn is None and isinstance(bound, ast.Def):
            # def ch(c) = make_divisible(c * alpha): a def whose body is a number
            local = self.bind_def(bound, call, call.args, call.kwargs, scope)
            if self.is_number(bound.body, local):
                return self.def_number(bound, call, local)
        if fn is None:
            if isinstance(bound, ast.Def) or layers.lookup(call.name) or \
                    call.name.lower() in BUILTINS:
                raise CnnArgumentError("expected a number here, but layers cannot be one",
                                       call.span, help="layers go in chains; arguments and "
                                       "counts are numbers")
            hint = did_you_mean(call.name, functions.FUNCTIONS)
            raise CnnNameError(f"unknown function `{call.name}`", call.name_span,
                               help=f"did you mean `{hint}`?" if hint else
                               "the functions are " + ", ".join(functions.FUNCTIONS))
        args = [(self.number(a, scope), a.span) for a in call.args]
        kwargs = [(k.name, self.number(k.value, scope), k.span) for k in call.kwargs]
        try:
            result = fn.apply(*fn.bind(args, kwargs, call.span))
        except (ValueError, OverflowError) as exc:
            raise CnnArgumentError(f"{fn.name}: {exc}", call.span, help=fn.signature()) from None
        return self.check_number(result, call.span)

    def counter(self, call: ast.Call, scope: Scope) -> int:
        """`index(block)`: which call of def `block` the innermost one being built is, from 0
        in the order the network is built (data flow); `count(block)`: its calls in all."""
        what = call.name.lower()
        arg = call.args[0] if len(call.args) == 1 and not call.kwargs else None
        if not isinstance(arg, ast.Name) or not isinstance(scope.find(arg.id), ast.Def):
            raise CnnArgumentError(f"{what} takes the name of a block (a def)", call.span,
                                   help="e.g. DROPPATH(0.2 * index(block) / count(block)) "
                                        "inside `def block = ...`")
        if what == "index":
            open_calls = self.open_calls.get(arg.id)
            if not open_calls:
                raise CnnArgumentError(f"index({arg.id}) is read outside any call of `{arg.id}`",
                                       call.span, help=f"read it inside `{arg.id}` (or a block "
                                       "it calls), where it numbers that call")
            self.read_index = True
            return open_calls[-1]
        if self.counts is None:
            self.counted = self.counted or call.span
            return UNCOUNTED
        return self.counts.get(arg.id, 0)

    def follow(self, path: _Path | None, binding, span: Span) -> _Path:
        """`path` with `binding` entered. Past the limits it is either a cycle (`N = M`,
        `M = N`), left for evaluation to report as one, or a chain that deep: refused here,
        where it is found, so that it is not mistaken for a number or for layers."""
        named, levels = self.deeper(binding, path.named if path else 0,
                                    path.levels if path else 0)
        if named > MAX_DEPTH or levels > MAX_LEVELS:
            seen, item = set(), path
            while item is not None:
                seen.add(id(item.binding))
                item = item.parent
            if id(binding) in seen:
                return _Path(binding, path, named, levels, cycle=True)
            self.check_depth(named, levels, span)
        return _Path(binding, path, named, levels)

    def def_number(self, d: ast.Def, call: ast.Call, local: Scope):
        """The value of a def whose body is a number, its arguments already bound.

        A number def is pure: the same def with the same argument values gives the same
        number, so each is evaluated once. Otherwise `def fi(x) = f(i-1)(x) + f(i-1)(x)`
        takes 2^i steps (issue 17, F5). The arguments are evaluated first for the key; one
        that is not a number (or fails: a parameter the body may never read) leaves the call
        unremembered, evaluated as before."""
        values = {}
        self.enter(d.name, call.span, d)
        outer = self.read_index
        try:
            for name in local.names:
                try:
                    value = self.name_value(ast.Name(call.span, name), local, True)
                except CnnDslError:
                    values = None
                    break
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    values = None
                    break
                values[name] = value
            if values is None:
                return self.number(d.body, local)
            start = local.find(IN)
            key = (d, start) + tuple((type(v), v) for v in values.values())
            if key not in self.def_value_memo:
                bound = Scope({name: Override(v) for name, v in values.items()},
                              Scope({IN: start}, self.globals))
                outer, self.read_index = self.read_index, False
                value = self.number(d.body, bound)
                if self.read_index:  # index(block) differs from call to call
                    return value
                self.def_value_memo[key] = value
            return self.def_value_memo[key]
        finally:
            self.stack.pop()
            self.read_index = outer or self.read_index

    def choose(self, call: ast.Call, scope: Scope) -> ast.Expr:
        """The branch `if(condition, then, else)` takes; a missing else is `identity`."""
        if call.kwargs or len(call.args) not in (2, 3):
            raise CnnArgumentError("if takes a condition, a value or layers for when it holds, "
                                   "and optionally one for when it does not", call.span,
                                   help="if(s == 1, residual(body), body), or "
                                        "if(e != 1, CONV(in.c * e, 1)) to leave a layer out")
        if self.number(call.args[0], scope):
            return call.args[1]
        if len(call.args) == 3:
            return call.args[2]
        return ast.Call(call.span, "identity", call.name_span, (), ())

    def input_shape(self, expr: ast.InShape, scope: Scope):
        """`in.c`, `in.h`, `in.w`: the shape of the node the innermost block starts from (the
        network's input outside blocks), as far as the layers before it make it."""
        axis = IN_FIELDS.get(expr.field.lower())
        if axis is None:
            hint = did_you_mean(expr.field, IN_FIELDS)
            raise CnnNameError(f"`in` has no `{expr.field}`", expr.span,
                               help=(f"did you mean `in.{hint}`? " if hint else "") +
                               "in.c, in.h and in.w are its channels, height and width")
        start = scope.find(IN)
        shape = self.shape_of(start.node if start is not None else None, expr.span)
        if axis != "c" and not shape.is_volume:
            raise CnnArgumentError(f"in.{expr.field}: the input is a vector of {shape.c} values "
                                   "and has no height or width", expr.span,
                                   help="in.c is its size")
        return getattr(shape, axis)

    # -- named tensors: `X as name`, `@name` ---------------------------------------------
    def tensor(self, ref: ast.TensorRef, scope: Scope) -> int:
        """The node `@name` reads: named earlier in the same network or def call."""
        frame = scope.find_frame()
        found = frame.tensors.get(ref.name) if frame is not None else None
        if found is not None:
            return found[0]
        owner = frame.owner if frame is not None else None
        here = f"def `{owner}`" if owner else "the network"
        tags = self.tags().get(ref.name, [])
        mine = [tag for tag, where in tags if where == owner]
        if mine:
            raise CnnNameError(f"`@{ref.name}` is read before it is named", ref.span,
                               notes=[f"`as {ref.name}` names it at {mine[0].name_span}"],
                               help="a tensor can be read only after the layers that make "
                               "it: move `@" + ref.name + "` after them")
        if tags:
            tag, where = tags[0]
            there = f"def `{where}`" if where else "the network, outside every def"
            raise CnnNameError(
                f"`@{ref.name}` is named in {there}, not in {here}", ref.span,
                notes=[f"`as {ref.name}` names it at {tag.name_span}"],
                help="a def's body reads only the tensors it names itself (each call makes "
                "its own); write the skip where both ends are, or name the tensor in this body")
        known = sorted(frame.tensors) if frame is not None else []
        hint = did_you_mean(ref.name, known)
        raise CnnNameError(f"no tensor is named `{ref.name}`", ref.span,
                           help=(f"did you mean `@{hint}`? " if hint else "") +
                           f"name one first with `LAYER as {ref.name}`, then read it with "
                           f"`@{ref.name}`")

    def name_tensor(self, tag: ast.Tag, node: int, scope: Scope) -> None:
        frame = scope.find_frame()
        first = frame.tensors.get(tag.name)
        if first is not None and first[1] == tag.name_span:
            raise CnnNameError(f"the tensor name `{tag.name}` is given again by a second copy "
                               "of the same layers", tag.name_span,
                               help="a repeat (or a variable used twice) gives the name once "
                               "per copy: put the named part in a def, whose every call has "
                               "names of its own")
        if first is not None:
            raise CnnNameError(f"the tensor name `{tag.name}` is given twice", tag.name_span,
                               notes=[f"first given at {first[1]}"],
                               help="each name is given once per network or def call; a "
                               "repeat gives it once per copy: name the copies apart, or put "
                               "the named part in a def")
        frame.tensors[tag.name] = (node, tag.name_span)

    def tags(self) -> dict[str, list]:
        """Every `as name` in the spec, with the def it is written in (None: outside defs)."""
        if getattr(self, "_tags", None) is None:
            found: dict[str, list] = {}
            for stmt in self.program.statements:
                owner = stmt.name if isinstance(stmt, ast.Def) else None
                for node in ast.walk(stmt):
                    if isinstance(node, ast.Tag):
                        found.setdefault(node.name, []).append((node, owner))
            self._tags = found
        return self._tags

    def tensor_size(self, ref: ast.TensorRef, scope: Scope):
        """`UPSAMPLE(size=@x)`, `CROP(@x)`: the named tensor's height and width."""
        shape = self.shape_of(self.tensor(ref, scope), ref.span)
        if not shape.is_volume:
            raise CnnArgumentError(f"`@{ref.name}` is a vector of {shape.c} values and has no "
                                   "height or width", ref.span,
                                   help="a size is read from a volume (H x W x C)")
        return (shape.h, shape.w)

    def shape_of(self, node: int | None, span: Span):
        """The output shape of a node of the graph being built (the expander knows it)."""
        raise CnnArgumentError("`in` has no shape here", span)

    def number(self, expr: ast.Expr, scope: Scope):
        v = self.value(expr, scope)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise CnnArgumentError("expected a number", expr.span)
        return v

    def check_number(self, v, span: Span):
        if abs(v) > MAX_NUMBER:
            raise CnnLimitError(f"number too large: {v:g} (the limit is {MAX_NUMBER:.0e})", span)
        return v

    def name_value(self, expr: ast.Name, scope: Scope, symbols: bool):
        bound = scope.find(expr.id)
        if isinstance(bound, Thunk):
            self.enter(expr.id, expr.span, bound)
            try:
                return self.value(bound.expr, bound.scope, symbols)
            finally:
                self.stack.pop()
        if isinstance(bound, Override):
            return bound.value
        if isinstance(bound, ast.Assign):
            if expr.id in self.var_cache:
                return self.var_cache[expr.id]
            self.enter(expr.id, expr.span, bound)
            outer, self.read_index = self.read_index, False
            try:
                value = self.value(bound.value, self.globals, True)
                if not self.read_index:
                    self.var_cache[expr.id] = value
                return value
            finally:
                self.stack.pop()
                self.read_index = outer or self.read_index
        if isinstance(bound, ast.Def):
            call = _call_of(expr)
            local = self.bind_def(bound, call, (), (), scope)  # `half` needs `c`
            if self.is_number(bound.body, local):
                return self.def_number(bound, call, local)
        if isinstance(bound, ast.Def) or layers.lookup(expr.id) or expr.id.lower() in BUILTINS:
            raise CnnArgumentError(f"expected a number, but `{expr.id}` is a layer or block",
                                   expr.span)
        if symbols:
            # A word (`same`) or an undefined variable: the layer decides. Where it is
            # written and what it could have named there, for an undefined variable's error.
            word = Symbol(expr.id)
            word.span, word.scope = expr.span, scope
            return word
        raise self.unknown(expr.id, expr.span, scope, "number")


class _Chain:
    """The bindings being evaluated, innermost first (a linked list, so that an argument can
    keep the chain of the call that bound it).

    Every CHECKPOINT-th link also keeps `above`, the ids of its binding and of every binding
    further up, so the recursion check (Evaluator.enter) walks at most CHECKPOINT links to
    learn that a binding is not on the chain: a walk to the root on every entry made 401
    nested defs quadratic (80,000 entries, a third of that spec's time)."""

    __slots__ = ("above", "binding", "depth", "name", "parent")
    CHECKPOINT = 32

    def __init__(self, binding, name: str, parent: _Chain | None):
        self.binding, self.name, self.parent = binding, name, parent
        self.depth = 0 if parent is None else parent.depth + 1
        self.above = None
        if self.depth % self.CHECKPOINT == self.CHECKPOINT - 1:
            ids, link = [id(binding)], parent
            while link is not None and link.above is None:
                ids.append(id(link.binding))
                link = link.parent
            # the bindings are alive while the chain is: their ids stay theirs
            self.above = frozenset(ids) if link is None else link.above.union(ids)


class _Path:
    """The bindings is_number has entered, innermost first (a linked list: entering one is
    O(1), and only a walk past the limits looks back along it)."""

    __slots__ = ("binding", "cycle", "levels", "named", "parent")

    def __init__(self, binding, parent: _Path | None, named: int, levels: int,
                 cycle: bool = False):
        self.binding, self.parent, self.named, self.levels = binding, parent, named, levels
        self.cycle = cycle  # it came back to a binding it is inside: evaluating reports that


def is_if(call: ast.Call, scope: Scope) -> bool:
    """Whether a call is the conditional `if(...)`, not a def of that name."""
    return call.alias is None and call.name.lower() == "if" and scope.find(call.name) is None


def is_counter(call: ast.Call, scope: Scope) -> bool:
    """Whether a call is index(...) or count(...), not a def of that name."""
    return call.alias is None and call.name.lower() in COUNTERS and not isinstance(
        scope.find(call.name), ast.Def)


def _call_of(name: ast.Name) -> ast.Call:
    """A bare name as the call without arguments that it stands for."""
    return ast.Call(name.span, name.id, name.span, (), ())
