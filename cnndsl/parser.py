"""Text -> syntax tree: the entry points (parse, normalize), the token limit, and lark's errors
turned into friendly, located syntax errors. The pieces it runs: parse_tables (the grammar and
the shared lark parser), parse_loop (our LALR loop over lark's tables), postlex (newlines and
brackets), to_ast (the syntax tree built as the parser reduces)."""
from __future__ import annotations

import itertools
import re

from . import ast
from .errors import CnnLimitError, CnnSyntaxError, Source, Span
from .limits import MAX_TOKENS
from .parse_loop import _driver
from .parse_tables import _lark
from .to_ast import _current

def normalize(text: str) -> str:
    """Drop a BOM and turn CRLF/CR line ends into LF, so columns count what the user sees."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse(text: str, name: str = "<spec>") -> ast.Program:
    """Parse spec text into a Program; every failure is a located CnnDslError."""
    return _parse(text, name, lark_loop=False)


def _parse(text: str, name: str, *, lark_loop: bool) -> ast.Program:
    """parse(), through lark's own parse loop if `lark_loop` (tests compare the two)."""
    parser = _lark()  # first: it decides how lark is imported
    from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

    source = Source(name, normalize(text))
    _check_tokens(source)
    outer = getattr(_current, "source", None), getattr(_current, "levels", None)
    _current.source, _current.levels = source, {}
    driver = None if lark_loop else _driver()
    try:
        statements = (driver.parse(source.text) if driver is not None
                      else parser.parse(source.text))
    except VisitError as exc:
        raise exc.orig_exc from None
    except UnexpectedCharacters as exc:
        raise _unexpected_character(source, exc) from None
    except UnexpectedToken as exc:
        raise _unexpected_token(source, exc) from None
    except UnexpectedInput:  # UnexpectedEOF and friends
        raise CnnSyntaxError("unexpected end of input", source.end_span()) from None
    finally:
        _current.source, _current.levels = outer
    return ast.Program(source, tuple(statements))


# An upper bound on lark's tokens (`1.5` counts as three, `->` as two), cheap to count
_ROUGH_TOKEN = re.compile(r"#[^\n]*|\w+|[^\w\s]|\n")


def _check_tokens(source: Source) -> None:
    """Refuse a spec of more than MAX_TOKENS tokens before lark spends seconds on it; the
    error points at the first token past the limit. Counting is in C (a regex scan that
    stops at the limit): about a second for 4 MiB on a slow machine, a millisecond for a
    zoo spec."""
    past = next(itertools.islice(_ROUGH_TOKEN.finditer(source.text), MAX_TOKENS, None), None)
    if past is None:
        return
    text, pos = source.text, past.start()
    line = text.count("\n", 0, pos) + 1
    column = pos - text.rfind("\n", 0, pos)
    raise CnnLimitError(f"the spec has more than {MAX_TOKENS:,} tokens (names, numbers and "
                        "symbols)", Span(source, line, column, line, column + 1),
                        help="use repeats (`BLOCK * N`) and `def` instead of writing "
                        "everything out")


_FRIENDLY = {
    "NAME": "a name", "INT": "a number", "FLOAT": "a number", "SHAPE": "a size like 3x3",
    "MINUS": "`-`", "PLUS": "`+`", "STAR": "`*`", "SLASH": "`/`", "_ARROW": "`->`",
    "_COMMA": "`,`", "_EQ": "`=`", "_COLON": "`:`", "QMARK": "`?`", "_SEMI": "`;`",
    "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`", "RSQB": "`]`", "LBRACE": "`{`",
    "RBRACE": "`}`", "_NL": "a new line", "$END": "the end of the spec", "INPUT_WORD": "`input`",
    "DEF": "`def`", "CMP": "a comparison", "AND": "`and`", "OR": "`or`", "AS": "`as`",
    "TENSOR_REF": "`@name`", "IN_SHAPE": "`in.c`", "OPERAND": "a layer, a block or a number",
    "PAPER_TOKEN": "a layer",
}


def _expected(names) -> str:
    names = set(names)
    if {"NAME", "INT"} <= names:  # an operand is missing: don't list every token that starts one
        names = (names - {"NAME", "INT", "FLOAT", "SHAPE", "INPUT_WORD", "PAPER_TOKEN", "LSQB",
                          "LBRACE", "MINUS", "IN_SHAPE", "TENSOR_REF"}) | {"OPERAND"}
    words = sorted({_FRIENDLY.get(n, n) for n in names})
    return ", ".join(words[:-1]) + (" or " if len(words) > 1 else "") + words[-1] if words else ""


def _unexpected_character(source: Source, exc) -> CnnSyntaxError:
    char = source.text[exc.pos_in_stream] if exc.pos_in_stream < len(source.text) else "?"
    span = Span(source, exc.line, exc.column, exc.line, exc.column + 1)
    if char == "\t":
        return CnnSyntaxError("unexpected tab", span)
    shown = repr(char)[1:-1] if not char.isprintable() else char
    help_ = None
    if char in "×":
        help_ = "write sizes as 3x3"
    elif char == "%" or char == "^":
        help_ = "arithmetic supports + - * / and parentheses"
    elif char in "\"'":
        help_ = "words are written without quotes, e.g. pad=same"
    return CnnSyntaxError(f"unexpected character `{shown}`", span,
                          help=help_ or "layers are joined with `-`; see docs/language.md")


def _unexpected_token(source: Source, exc) -> CnnSyntaxError:
    tok = exc.token
    expected = set(exc.expected or ())
    if tok.type == "$END" or tok.line in (None, -1):
        # lark reports -1 for line/column at the end of input: point at the last character.
        return CnnSyntaxError("unexpected end of the spec: the expression is not finished",
                              source.end_span(), help=f"expected {_expected(expected)}")
    span = Span.of(source, tok)
    if tok.type == "_NL":
        return CnnSyntaxError("unexpected end of line", span,
                              help=f"expected {_expected(expected)}")
    if tok.type == "AS" and "AS" not in expected:
        return CnnSyntaxError("`as` is a reserved word: `X as name` names the tensor X makes",
                              span, help="choose another name (`as` reads `CONV(64, 3) as "
                              "skip`, and `@skip` reads that tensor again)")
    after_operand = expected & {"MINUS", "_ARROW"} and tok.type in {
        "NAME", "INT", "FLOAT", "PAPER_TOKEN", "INPUT_WORD", "IN_SHAPE", "LPAR", "LSQB", "LBRACE",
        "TENSOR_REF"}
    if after_operand:
        return CnnSyntaxError(f"missing separator before `{tok}`", span,
                              help="join layers with `-` (or `->`, `+`, `,`), e.g. `CONV - RELU`")
    return CnnSyntaxError(f"unexpected `{tok}`", span, help=f"expected {_expected(expected)}")
