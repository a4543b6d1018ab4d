"""The syntax tree, built while lark's LALR tables reduce: the ToAst transformer, the numbers
and sizes it reads, the nesting limit, and the state of one parse (`_current`: its source and
the nesting of the nodes built so far), which the postlexer, the parse loop and parser.parse
share with it."""
from __future__ import annotations

import functools
import sys
import threading

from . import ast
from .errors import CnnLimitError, CnnSyntaxError, Source, Span
from .limits import MAX_NESTING, MAX_NUMBER

# The parser is built once per process and shared, so what belongs to one parse (its source,
# the nesting of the nodes built so far) is kept per thread: two threads parsing at once
# must not give each other's nodes their spans.
_current = threading.local()


def _too_deep(span: Span) -> CnnLimitError:
    return CnnLimitError(f"expression nested deeper than {MAX_NESTING} levels", span,
                         notes=["each bracket, unary `-` and `?` is a level"],
                         help="flatten the expression, or name parts of it with `def`")


def _make_transformer():
    from lark import Transformer

    class ToAst(Transformer):
        """Builds the AST while the parser reduces; spans come from the tokens themselves."""

        @property
        def source(self) -> Source:
            return _current.source  # this thread's parse: the transformer itself is shared

        def _tok(self, tok) -> Span:
            # Span.of(source, tok) without its getattr()s: a token has all four (None for
            # some that lark makes, hence the same defaults)
            line, column = tok.line or 1, tok.column or 1
            return Span(_current.source, line, column, tok.end_line or line,
                        tok.end_column or column + 1)

        # Nesting: each node that nests (a bracket, a call's brackets, unary `-`, `?`) records
        # how many such levels it holds; nodes holding none are left out. Built bottom-up,
        # so the node that first goes past the limit is refused as the parser reduces it.
        # (Loops, not max() over a generator: these run for every call and chain, and
        # the generator cost 3% of parsing a long literal chain.)
        @staticmethod
        def _nest(node, inner, at=None):
            """`at`: the token to point at when the node nests too deep (its span is made
            only then: a `?` on each of 50,000 layers made 50,000 spans for nothing)."""
            levels = _current.levels
            depth = 0
            for child in inner:
                if child in levels and levels[child] > depth:
                    depth = levels[child]
            if depth >= MAX_NESTING:
                raise _too_deep(node.span if at is None else Span.of(_current.source, at))
            levels[node] = depth + 1
            return node

        @staticmethod
        def _flat(node, items):
            levels = _current.levels
            depth = 0
            for child in items:
                if child in levels and levels[child] > depth:
                    depth = levels[child]
            if depth:
                levels[node] = depth
            return node

        def _span(self, first, last) -> Span:
            # A node's span, or a token's own position (the basic lexer gives every token
            # its line and columns), read without making a span for the token.
            a = first.span if isinstance(first, ast.Node) else first
            b = last.span if isinstance(last, ast.Node) else last
            return Span(_current.source, a.line, a.column, b.end_line, b.end_column)

        # statements
        def start(self, children):
            return [c for c in children if c is not None]

        def input_stmt(self, children):
            value = children[-1]
            if value.type == "INT":
                dims = (_whole(value, self.source),)
            else:
                dims = _dims_of(value, self.source)
                if len(dims) == 2:
                    dims = dims + (1,)
                if len(dims) != 3:
                    raise CnnSyntaxError("the input is HxWxC (e.g. 32x32x3) or a vector size",
                                         self._tok(value))
            if any(d <= 0 for d in dims):
                raise CnnSyntaxError("input sizes must be positive", self._tok(value))
            return ast.InputStmt(self._span(children[0], value), dims)

        def def_stmt(self, children):
            name = children[1]
            params = children[2] if len(children) == 4 else ()
            return ast.Def(self._span(children[0], children[-1]), str(name), self._tok(name),
                           tuple(params), children[-1])

        def params(self, children):
            return [c for c in children if isinstance(c, ast.Param)]

        def param(self, children):
            default = children[1] if len(children) > 1 else None
            return ast.Param(self._span(children[0], children[-1]), str(children[0]), default)

        def assign(self, children):
            name = children[0]
            return ast.Assign(self._span(name, children[1]), str(name), self._tok(name),
                              children[1])

        # expressions
        def comma_seq(self, children):
            return self._flat(ast.Chain(self._span(children[0], children[-1]), tuple(children),
                                        (",",) * (len(children) - 1)), children)

        def arrow_seq(self, children):
            return self._flat(ast.Chain(self._span(children[0], children[-1]), tuple(children),
                                        ("->",) * (len(children) - 1)), children)

        def sum_seq(self, children):
            items = tuple(children[0::2])
            return self._flat(ast.Chain(self._span(children[0], children[-1]), items,
                                        tuple(str(t) for t in children[1::2])), items)

        def product_seq(self, children):
            items = tuple(children[0::2])
            return self._flat(ast.Product(self._span(children[0], children[-1]), items,
                                          tuple(str(t) for t in children[1::2])), items)

        def neg(self, children):
            return self._nest(ast.Neg(self._span(children[0], children[1]), children[1]),
                              children[1:])

        def optional(self, children):
            return self._nest(ast.Optional(self._span(children[0], children[1]), children[0]),
                              children[:1], at=children[1])  # at the `?` itself

        def int(self, children):
            return ast.Num(self._tok(children[0]), _whole(children[0], self.source))

        def float(self, children):
            value = float(children[0])
            if not value <= MAX_NUMBER:
                raise _too_large(children[0], self.source)
            return ast.Num(self._tok(children[0]), value)

        def dims(self, children):
            return ast.Dims(self._tok(children[0]), _dims_of(children[0], self.source))

        def name(self, children):
            # Interned: a spec names the same few layers and blocks thousands of times.
            return ast.Name(self._tok(children[0]), sys.intern(str(children[0])))

        def input_ref(self, children):
            return ast.InputRef(self._tok(children[0]))

        def tensor_ref(self, children):
            return ast.TensorRef(self._tok(children[0]), sys.intern(str(children[0])[1:]))

        def tag(self, children):
            operand, _, name = children
            return self._flat(ast.Tag(self._span(operand, name), operand, str(name),
                                      self._tok(name)), (operand,))

        def in_shape(self, children):
            return ast.InShape(self._tok(children[0]), str(children[0])[3:])

        def logic_seq(self, children):
            node = children[0]
            for op, right in zip(children[1::2], children[2::2]):
                node = self._flat(ast.Compare(self._span(node, right), node, str(op), right),
                                  (node, right))
            return node

        def compare(self, children):
            left, op, right = children
            return self._flat(ast.Compare(self._span(left, right), left, str(op), right),
                              (left, right))

        def call(self, children):
            name = children[0]
            args = children[2] if len(children) == 4 else []
            pos = tuple(a for a in args if not isinstance(a, ast.Keyword))
            kws = tuple(a for a in args if isinstance(a, ast.Keyword))
            call = ast.Call(self._span(name, children[-1]), str(name), self._tok(name), pos, kws)
            return self._nest(call, args)

        def args(self, children):
            seen_kw = False
            for arg in children:
                if isinstance(arg, ast.Keyword):
                    seen_kw = True
                elif seen_kw:
                    raise CnnSyntaxError("a positional argument follows a keyword argument",
                                         arg.span, help="put positional arguments first")
            return list(children)

        def kwarg(self, children):
            return self._flat(ast.Keyword(self._span(children[0], children[1]),
                                          str(children[0]), children[1]), children[1:])

        def _group(self, children, bracket):
            return self._nest(ast.Group(self._span(children[0], children[-1]), children[1],
                                        bracket), children[1:2])

        def paren(self, children):
            return self._group(children, "(")

        def bracket(self, children):
            return self._group(children, "[")

        def brace(self, children):
            return self._group(children, "{")

        # A paper's token (VGG's conv3-64) stays as written, as the call's alias; the layer
        # registry says what it stands for (layers.paper_token).
        def paper_token(self, children):
            span = self._tok(children[0])
            return ast.Call(span, str(children[0]), span, (), (), alias=str(children[0]))

    return ToAst


def _too_large(token, source: Source) -> CnnLimitError:
    return CnnLimitError(f"number too large (the limit is {MAX_NUMBER:.0e})",
                         Span.of(source, token), help="sizes and counts are at most 10^12")


def _whole(token, source: Source) -> int:
    digits = str(token).strip()
    if len(digits.lstrip("0")) > len(str(MAX_NUMBER)):  # before int(): 10^5 digits is slow
        raise _too_large(token, source)
    value = int(digits)
    if value > MAX_NUMBER:
        raise _too_large(token, source)
    return value


def _dims_of(token, source: Source) -> tuple[int, ...]:
    import re

    parts = re.split(r"[ \t]*[xX×][ \t]*", str(token).strip())
    return tuple(_whole(part, source) if len(part) <= 13 else _whole(token, source)
                 for part in parts)


_transformer_class = functools.lru_cache(maxsize=1)(_make_transformer)
