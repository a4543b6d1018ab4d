"""The postlexer: newlines that continue an expression are dropped, and brackets are checked
as they open and close. lark runs _Continuations over its tokens; our parse loop
(parse_loop._Driver) writes the same steps out inline and calls the bracket checks here."""
from __future__ import annotations

from .errors import CnnLimitError, CnnSyntaxError, Span
from .limits import MAX_NESTING
from .to_ast import _current, _too_deep

_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}
_TEXT = {"LPAR": "(", "RPAR": ")", "LSQB": "[", "RSQB": "]", "LBRACE": "{", "RBRACE": "}"}
# A newline after one of these, or before one of these, continues the expression.
_CONTINUE_AFTER = {"MINUS", "PLUS", "STAR", "SLASH", "_ARROW", "_COMMA", "_EQ", "_COLON", "DEF",
                   "CMP", "AND", "OR", "AS"}
_CONTINUE_BEFORE = {"MINUS", "PLUS", "STAR", "SLASH", "_ARROW", "_COMMA", "QMARK"}


class _Continuations:
    """Drops newlines that continue an expression; checks brackets as they open and close."""

    always_accept = ()

    def process(self, stream):
        source = getattr(_current, "source", None)  # None when lark.lex() runs it alone
        stack = []
        prev_type = None
        pending = None
        minuses = 0  # `-` in a row: all but perhaps the first are unary, nesting the operand
        for tok in stream:
            kind = tok.type
            if kind == "MINUS":
                minuses += 1
                # here, not in the tree: the parser would hold every `-` of a run on its stack
                if minuses > MAX_NESTING + 1:
                    raise _too_deep(Span.of(source, tok))
            else:
                minuses = 0
            if kind == "_NL":
                if stack or prev_type in _CONTINUE_AFTER or prev_type is None:
                    continue
                pending = pending or tok
                continue
            if pending is not None:
                if kind not in _CONTINUE_BEFORE:
                    yield pending
                pending = None
            if kind in _OPENERS:
                _open(stack, tok, source)
            elif kind in _CLOSERS:
                _close(stack, tok, source)
            prev_type = kind
            yield tok
        if stack:
            _unclosed(stack, source)
        if pending is not None:
            yield pending


def _open(stack: list, tok, source) -> None:
    """An opening bracket: at most MAX_NESTING may be open."""
    stack.append(tok)
    if len(stack) > MAX_NESTING:
        raise CnnLimitError(f"brackets nested deeper than {MAX_NESTING} levels",
                            Span.of(source, tok),
                            help="flatten the expression, or name parts of it with `def`")


def _close(stack: list, tok, source) -> None:
    """A closing bracket: it must close the innermost open one."""
    if not stack:
        raise CnnSyntaxError(f"unmatched `{tok}`: no bracket is open here",
                             Span.of(source, tok), help="remove it, or add the opening bracket")
    opener = stack.pop()
    if _OPENERS[opener.type] != tok.type:
        raise CnnSyntaxError(
            f"`{tok}` does not close `{opener}` (opened at line {opener.line}, "
            f"column {opener.column})", Span.of(source, tok),
            help=f"write `{_TEXT[_OPENERS[opener.type]]}` here")


def _unclosed(stack: list, source) -> None:
    opener = stack[-1]
    raise CnnSyntaxError(f"unclosed `{opener}`: the spec ends before it is closed",
                         Span.of(source, opener),
                         help=f"add the matching `{_TEXT[_OPENERS[opener.type]]}`")
