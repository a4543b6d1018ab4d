"""Value mode of the expander: scopes, variables, arithmetic and the names they resolve to.

Numbers and bare words (`same`, `floor`) are evaluated here; the expander (expand.py) builds
layers. Both share the recursion check: a definition that uses itself is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import ast, functions, layers
from .errors import (CnnArgumentError, CnnLimitError, CnnNameError, CnnSyntaxError, Span,
                     did_you_mean)
from .layers import Symbol
from .parser import MAX_NUMBER

MAX_DEPTH = 400  # nested blocks, calls and variable references
BUILTINS = ("residual", "concat", "add", "identity", "id")
SETTINGS = ("classes", "width", "max_width", "fc_width", "rounding", "activation")

@dataclass
class Thunk:
    """An argument bound by name: evaluated (as a number or as layers) where it is used."""

    expr: ast.Expr
    scope: "Scope"


@dataclass
class Scope:
    names: dict[str, Any]
    parent: "Scope | None" = None

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
            out.update(scope.names)
            scope = scope.parent
        return out


@dataclass
class Override:
    value: Any


class Evaluator:
    """Evaluates numbers and names against the spec's global definitions and block scopes."""

    def __init__(self, program: ast.Program):
        self.program = program
        self.globals = Scope({})
        self.var_cache: dict[str, Any] = {}
        self.stack: list[tuple[int, str]] = []  # bindings being evaluated (recursion check)

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
            names = set(layers.callable_names()) | set(BUILTINS) | {
                n for n in scope.all_names() if n not in SETTINGS}
            hint = did_you_mean(name, names)
            return CnnNameError(
                f"unknown layer or block `{name}`", span,
                help=f"did you mean `{hint}`?" if hint else
                "see docs/language.md for the layer names, or define it with `def`")
        hint = did_you_mean(name, scope.all_names())
        return CnnNameError(
            f"undefined variable `{name}`", span,
            help=(f"did you mean `{hint}`? " if hint else "") +
            f"define it with `{name} = ...` in the spec or pass -D {name}=...")

    def enter(self, name: str, span: Span, binding) -> None:
        """Push a definition being evaluated; seeing the same binding again is recursion."""
        keys = [key for key, _ in self.stack]
        if id(binding) in keys:
            names = [n for _, n in self.stack[keys.index(id(binding)):]]
            chain = " -> ".join(names + [name])
            raise CnnLimitError(
                f"`{name}` refers to itself ({chain})", span,
                help="a definition cannot use itself; to repeat a block write `BLOCK * N`")
        if len(self.stack) >= MAX_DEPTH:
            raise CnnLimitError(f"definitions nested deeper than {MAX_DEPTH} levels", span,
                                help="flatten the definitions")
        self.stack.append((id(binding), name))

    # -- value mode: numbers and symbols ---------------------------------------------------
    def is_number(self, expr: ast.Expr, scope: Scope, depth: int = 0) -> bool:
        """Whether an expression denotes a number (so `X * it` repeats X)."""
        if depth > MAX_DEPTH:
            return True  # a cycle (N = M, M = N): evaluating it reports the recursion
        if isinstance(expr, ast.Num):
            return True
        if isinstance(expr, ast.Group):
            return self.is_number(expr.inner, scope, depth + 1)
        if isinstance(expr, ast.Neg):
            return True
        if isinstance(expr, (ast.Chain, ast.Product)):
            return all(self.is_number(e, scope, depth + 1) for e in expr.items)
        if isinstance(expr, ast.Call) and expr.alias is None:
            if functions.lookup(expr.name) is not None:
                return True
            bound = scope.find(expr.name)
            if isinstance(bound, ast.Def):  # a def whose body is a number (`def ch(c) = c/2`)
                try:
                    local = self.bind_def(bound, expr, expr.args, expr.kwargs, scope)
                except CnnArgumentError:
                    return False  # a bad call: building it reports the mistake
                return self.is_number(bound.body, local, depth + 1)
            return False
        if isinstance(expr, ast.Name):
            bound = scope.find(expr.id)
            if isinstance(bound, Thunk):
                return self.is_number(bound.expr, bound.scope, depth + 1)
            if isinstance(bound, Override):
                return isinstance(bound.value, (int, float))
            if isinstance(bound, ast.Assign):
                return self.is_number(bound.value, self.globals, depth + 1)
            if isinstance(bound, ast.Def):  # `name` alone calls it, as in build mode
                return self.is_number(_call_of(expr), scope, depth + 1)
            if isinstance(bound, (int, float)):
                return True
            return not (layers.lookup(expr.id) or expr.id.lower() in BUILTINS)
        return False

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
        for p, a in zip(d.params, args):
            local[p.name] = Thunk(a, scope)
        for kw in kwargs:
            if kw.name not in names:
                hint = did_you_mean(kw.name, names)
                raise CnnArgumentError(f"{d.name} has no parameter `{kw.name}`", kw.span,
                                       help=(f"did you mean `{hint}`? " if hint else "") + sig)
            if kw.name in local:
                raise CnnArgumentError(f"{d.name}: `{kw.name}` is given twice", kw.span)
            local[kw.name] = Thunk(kw.value, scope)
        for p in d.params:
            if p.name not in local:
                if p.default is None:
                    raise CnnArgumentError(f"{d.name} needs `{p.name}`", call.span, help=sig)
                local[p.name] = Thunk(p.default, self.globals)
        return Scope(local, self.globals)

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

    def def_number(self, d: ast.Def, call: ast.Call, local: Scope):
        """The value of a def whose body is a number, its arguments already bound."""
        self.enter(d.name, call.span, d)
        try:
            return self.number(d.body, local)
        finally:
            self.stack.pop()

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
            if expr.id not in self.var_cache:
                self.enter(expr.id, expr.span, bound)
                try:
                    self.var_cache[expr.id] = self.value(bound.value, self.globals, True)
                finally:
                    self.stack.pop()
            return self.var_cache[expr.id]
        if isinstance(bound, ast.Def):
            call = _call_of(expr)
            local = self.bind_def(bound, call, (), (), scope)  # `half` needs `c`
            if self.is_number(bound.body, local):
                return self.def_number(bound, call, local)
        if isinstance(bound, ast.Def) or layers.lookup(expr.id) or expr.id.lower() in BUILTINS:
            raise CnnArgumentError(f"expected a number, but `{expr.id}` is a layer or block",
                                   expr.span)
        if symbols:
            return Symbol(expr.id)
        raise self.unknown(expr.id, expr.span, scope, "number")


def _call_of(name: ast.Name) -> ast.Call:
    """A bare name as the call without arguments that it stands for."""
    return ast.Call(name.span, name.id, name.span, (), ())
