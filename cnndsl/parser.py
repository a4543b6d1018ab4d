"""Text -> syntax tree: the Lark LALR parser, its newline postlexer and friendly syntax errors."""
from __future__ import annotations

import functools
import itertools
import re
import sys
import threading

from . import ast, layers
from .errors import CnnLimitError, CnnSyntaxError, Source, Span
from .limits import MAX_NESTING, MAX_NUMBER, MAX_TOKENS

# The parser is built once per process and shared, so what belongs to one parse (its source,
# the nesting of the nodes built so far) is kept per thread: two threads parsing at once
# must not give each other's nodes their spans.
_current = threading.local()

_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}
_TEXT = {"LPAR": "(", "RPAR": ")", "LSQB": "[", "RSQB": "]", "LBRACE": "{", "RBRACE": "}"}
# A newline after one of these, or before one of these, continues the expression.
_CONTINUE_AFTER = {"MINUS", "PLUS", "STAR", "SLASH", "_ARROW", "_COMMA", "_EQ", "_COLON", "DEF",
                   "CMP", "AND", "OR", "AS"}
_CONTINUE_BEFORE = {"MINUS", "PLUS", "STAR", "SLASH", "_ARROW", "_COMMA", "QMARK"}


_PAPER_TOKENS = "@PAPER_TOKENS@"


def _grammar_text() -> str:
    """The grammar lark reads: cnn.lark with the layer kinds' paper tokens put in."""
    from .resources import data_folder  # grammar/ is installed as cnndsl/grammar

    text = (data_folder("grammar", "grammar") / "cnn.lark").read_text(encoding="utf-8")
    assert _PAPER_TOKENS in text, "cnn.lark lost its PAPER_TOKEN placeholder"
    # `/` ends a lark regex literal
    return text.replace(_PAPER_TOKENS, layers.paper_token_pattern().replace("/", "\\/"))


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


def _cache_file(grammar: str) -> str | bool:
    """Where lark keeps its grammar analysis between runs (it would take 0.7 s each start),
    or False to build the tables in memory.

    A per-user directory, not a shared temp file: lark's cache is a pickle, and a file
    someone else could write must never be unpickled (issue 17, F4). So the folder must be
    reached only through directories no one else can change, be no symlink, be the user's
    own and writable by no one else; the file likewise. Anything else: no cache, silently.
    """
    import hashlib
    import os

    import lark

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(os.path.abspath(base), "cnndsl")
    digest = hashlib.sha256(grammar.encode()).hexdigest()[:16]
    path = os.path.join(folder, f"grammar-{digest}-lark{lark.__version__}.cache")
    try:
        if not _safe_ancestors(os.path.dirname(folder)):
            return False
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if not _own_private(os.lstat(folder), directory=True):
            return False
        try:
            if not _own_private(os.lstat(path), directory=False):
                return False
        except FileNotFoundError:
            pass  # lark writes it, in a folder only this user can write
    except (OSError, ValueError):
        return False
    return path


def _own_private(st, *, directory: bool) -> bool:
    """lstat() of the cache folder or file: the kind expected (a symlink is neither), this
    user's, writable by no group or other."""
    import os
    import stat

    kind = stat.S_ISDIR if directory else stat.S_ISREG
    return kind(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


def _safe_ancestors(directory: str) -> bool:
    """Whether no other user can swap `directory`, or any folder on the way to it, for one of
    theirs: every folder on the path as written and on its resolved path belongs to this user
    or root, and is writable by no one else unless sticky (as /tmp is: there only an entry's
    owner may rename it). A symlink planted in a world-writable HOME fails here."""
    import os
    import stat

    uid = os.getuid()

    def chain(path: str):
        while True:
            yield path
            parent = os.path.dirname(path)
            if parent == path:
                return
            path = parent

    # Each folder that holds the next entry on the way (directory itself holds `cnndsl`)
    # decides who may replace that entry.
    for path in (*chain(directory), *chain(os.path.realpath(directory))):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue  # made by makedirs, inside a folder checked here
        if st.st_uid not in (uid, 0):
            return False
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return False
    return True


# Set by the command line (cli.run), which owns its process. lark imports `regex` and
# `interegular` when they are installed, about 40 ms together (a fifth of `cnndsl check`), and
# a parse from the cached LALR tables uses neither: regex serves `regex=True` grammars and
# interegular checks terminals for collisions while a grammar is analysed (a test does that
# in strict mode). A process of our own can let lark believe they are absent.
LEAN_LARK = False
_OPTIONAL = ("regex", "interegular")


def _import_lark():
    import sys

    if not LEAN_LARK or "lark" in sys.modules:
        import lark
        return lark
    hidden = [name for name in _OPTIONAL if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # `import name` raises ImportError
    try:
        import lark
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]  # later imports of them work as usual
    return lark


_build_lock = threading.Lock()
_parser = None


def _lark():
    """The shared parser. It holds no per-parse state: that is in `_current`, per thread."""
    global _parser
    if _parser is None:
        with _build_lock:  # threads starting together build it (and write the cache) once
            if _parser is None:
                _parser = _build()
    return _parser


def _build():
    Lark = _import_lark().Lark
    grammar = _grammar_text()  # the complete text: the cache file is named by its digest
    # The transformer runs inside the LALR parser: no parse tree is built at all.
    options = dict(parser="lalr", lexer="basic", postlex=_Continuations(),
                   maybe_placeholders=False, transformer=_transformer_class()())
    try:
        return Lark(grammar, cache=_cache_file(grammar), **options)
    except Exception:  # an unreadable or corrupt cache file: build from the grammar
        return Lark(grammar, cache=False, **options)


class _Driver:
    """lark's LALR tables and callbacks, run by one loop over one compiled regex.

    The same tokens, the same parser actions and the same callbacks as `Lark.parse`, in the
    same order, so the same AST and the same errors; only lark's layers are gone. lark's
    parse spent two thirds of its time in them: a Token made through two constructors and
    a line counter per token, three generators in a row, and a dict lookup per reduction
    keyed by a Rule whose __hash__ and __eq__ are Python (50,000 `RELU?` layers: 1.0 s in
    lark, 0.3 s here; bench/RESULTS.md). Built only when lark's lexer is what this assumes
    (one regex, no callbacks on ignored terminals); otherwise parse() uses lark's own loop.
    """

    def __init__(self, lark_parser):
        from lark.lexer import Token, UnlessCallback
        from lark.parse_tree_builder import ExpandSingleChild
        from lark.parsers.lalr_analysis import Shift

        frontend = lark_parser.parser
        lexer = frontend.lexer.lexer  # the BasicLexer inside lark's PostLexConnector
        scanner = lexer.scanner
        if len(scanner._mres) != 1 or set(lexer.callback) & lexer.ignore_types or not all(
                isinstance(f, UnlessCallback) for f in lexer.callback.values()):
            raise NotImplementedError("lark's lexer is not what _Driver assumes")
        self.match = scanner._mres[0].match
        # A flat run's item (run()): a name where the lexer makes one, the terminals it tries
        # before NAME (a paper token, `in.c`) refused by a lookahead
        names = [t.name for t in scanner.terminals]
        before = "|".join(f"(?:{t.pattern.to_regexp()})"
                          for t in scanner.terminals[:names.index("NAME")])
        self.run_item = re.compile((f"(?!{before})" if before else "") + _RUN_ITEM).match
        self.lexer = lexer
        self.ignore = lexer.ignore_types
        self.newline_types = lexer.newline_types
        # NAME's keywords (`input`, `def`, `and`, `or`), looked up once per spelling
        self.retype = {kind: (f.scanner.fullmatch, {}) for kind, f in lexer.callback.items()}
        self.token = Token._future_new  # Token() without its keyword checks: same token
        self.end_token = Token
        lalr = frontend.parser.parser  # lark's _Parser: the table and the callbacks
        table, callbacks = lalr.parse_table, lalr.callbacks
        self.start = table.start_states["start"]
        self.end = table.end_states["start"]
        self.expected = {state: {s for s in actions if s.isupper()}
                         for state, actions in table.states.items()}
        # Per state: a terminal's action, an int to shift to or (size, callback, rule name)
        # to reduce by; a rule's goto, an int. A one-symbol `?rule` (ExpandSingleChild)
        # returns its child: callback None.
        self.actions = {}
        for state, actions in table.states.items():
            row = {}
            for symbol, (action, arg) in actions.items():
                if action is Shift:
                    row[symbol] = arg
                else:
                    size, callback = len(arg.expansion), callbacks[arg]
                    if size == 1 and type(callback) is ExpandSingleChild:
                        callback = None
                    row[symbol] = (size, callback, arg.origin.name)
            self.actions[state] = row
        # Where a whole `sum` may begin: a flat run `a - b? - c` there is reduced at once.
        self.sum_states = frozenset(state for state, row in self.actions.items()
                                    if row.get("sum").__class__ is int)
        self.transformer = lark_parser.options.transformer

    def parse(self, text: str, *, runs: bool = True):
        """The statements of the text. With `runs`, flat runs are reduced at once (run()); a
        parse that used one and then failed is done again without, so that the error is
        the one lark's loop gives (after a run the parser's state, and so the expected
        tokens it would list, is not the one the tokens would have left)."""
        used = []
        try:
            return self._parse(text, runs, used)
        except Exception:
            if not used:
                raise
        _current.levels = {}
        return self._parse(text, False, used)

    def _parse(self, text: str, runs: bool, used: list):
        """Tokens as lark's BasicLexer makes them, newlines and brackets as _Continuations
        handles them, actions as lark's feed_token takes them: one loop, no generators.
        tests/test_parser_driver.py holds it to lark's loop with _Continuations."""
        from lark.exceptions import UnexpectedCharacters, UnexpectedToken

        match, ignore, newline_types = self.match, self.ignore, self.newline_types
        retype, make, actions, expected = self.retype, self.token, self.actions, self.expected
        source = _current.source
        states, values = [self.start], []
        pos, line, line_start, end = 0, 1, 0, len(text)
        last = token = None  # the last token lexed; the last token parsed
        # _Continuations' state: open brackets, the last kind passed on, a held newline,
        # `-` in a row
        stack, prev_type, pending, minuses = [], None, None, 0
        sum_states = self.sum_states if runs else ()
        while True:
            if sum_states and pos < end and _RUN_START(text, pos):
                if pending is not None:
                    # A name, a keyword or a paper token comes next, none of which continues
                    # the line: the held newline goes to the parser now, as it would next.
                    token = self.feed(states, values, pending)
                    pending = None
                # The reductions a NAME here would make, made now: a run is reduced to a
                # `sum` in the state they lead to.
                run = (self.run(text, pos, line, line_start, source)
                       if self.before_name(states, values, text, pos) in sum_states else None)
                if run is not None:
                    used.append(True)
                    chain, pos, last, line, line_start = run
                    token, prev_type, minuses = last, last.type, 0
                    states.append(actions[states[-1]]["sum"])
                    values.append(chain)
                    continue
            # -- the lexer: one token, or None at the end of the text
            if pos < end:
                m = match(text, pos)
                if m is None:
                    allowed = self.lexer.scanner.allowed_types - ignore or {"<END-OF-FILE>"}
                    raise UnexpectedCharacters(
                        text, pos, line, pos - line_start + 1, allowed=allowed,
                        token_history=last and [last],
                        terminals_by_name=self.lexer.terminals_by_name)
                kind, stop = m.lastgroup, m.end()
                if kind in ignore:
                    if kind in newline_types and "\n" in text[pos:stop]:
                        line += text.count("\n", pos, stop)
                        line_start = text.rindex("\n", pos, stop) + 1
                    pos = stop
                    continue
                value = m.group()
                if kind in newline_types and "\n" in value:
                    column = pos - line_start + 1
                    end_line = line + value.count("\n")
                    line_start = pos + value.rindex("\n") + 1
                    last = make(kind, value, pos, line, column, end_line,
                                stop - line_start + 1, stop)
                    line = end_line
                else:
                    if kind in retype:
                        fullmatch, seen = retype[kind]
                        try:
                            kind = seen[value]
                        except KeyError:
                            kind = seen[value] = fullmatch(value) or kind
                    last = make(kind, value, pos, line, pos - line_start + 1, line,
                                stop - line_start + 1, stop)
                pos = stop
                tok = last
                # -- _Continuations.process, for this token (written out here, not called:
                # a call per token costs a tenth of the parse; the tests hold the two equal)
                if kind == "MINUS":
                    minuses += 1
                    if minuses > MAX_NESTING + 1:
                        raise _too_deep(Span.of(source, tok))
                else:
                    minuses = 0
                if kind == "_NL":
                    if not (stack or prev_type in _CONTINUE_AFTER or prev_type is None):
                        pending = pending or tok
                    continue
                if pending is not None:
                    held, pending = pending, None
                    if kind not in _CONTINUE_BEFORE:
                        token = self.feed(states, values, held)
                if kind in _OPENERS:
                    _open(stack, tok, source)
                elif kind in _CLOSERS:
                    _close(stack, tok, source)
                prev_type = kind
                token = self.feed(states, values, tok)
                continue
            if stack:
                _unclosed(stack, source)
            if pending is not None:
                token = self.feed(states, values, pending)
            break
        # -- the end: lark's feed_token(end_token, is_end=True)
        end_token = (self.end_token.new_borrow_pos("$END", "", token) if token
                     else self.end_token("$END", "", 0, 1, 1))
        while True:
            try:
                size, callback, origin = actions[states[-1]]["$END"]  # only reductions
            except KeyError:
                raise UnexpectedToken(end_token, expected[states[-1]]) from None
            children = values[-size:] if size else []
            if size:
                del states[-size:]
                del values[-size:]
            value = children[0] if callback is None else callback(children)
            states.append(actions[states[-1]][origin])
            values.append(value)
            if states[-1] == self.end:
                return value

    def run(self, text: str, pos: int, line: int, line_start: int, source):
        """A flat run at `pos`, `a - b? - c`, ended where a `sum` may end: (its Chain, the
        position after it, its last token, the line there and where that line starts), or
        None. A `-` may start or end a line (the postlexer drops the newline either side of
        it), with comments and blank lines about it. Each name is lexed as the lexer would
        (a paper token, `in.c` or a keyword ends the run in failure) and each node is the one
        ToAst's callback would make (name, optional, then sum_seq over the run), built from
        the positions without a token per name: the same tree as the parser's, without its
        ten actions per name (50,000 `RELU?` layers: 0.6 s -> 0.2 s with lark's tokens,
        0.13 s without; tests/test_parser_driver.py holds the trees equal)."""
        run_item = self.run_item
        m = run_item(text, pos)
        if m is None or m.group("join") is None:
            return None  # a name alone (`CONV(`, `pad=`): no run, and no node made for it
        levels, sum_seq = _current.levels, self.transformer.sum_seq
        fullmatch, seen = self.retype.get("NAME", (lambda value: None, {}))
        items = []
        while True:
            if m is None:
                return None
            # run_item matches no name where a terminal the lexer tries before NAME (a
            # paper token, `in.c`) begins: here the lexer makes a NAME of this length
            value, name_end = m.group("name"), m.end("name")
            kind = seen.get(value)
            if kind is None:
                kind = seen[value] = fullmatch(value) or "NAME"
            if kind != "NAME":
                return None  # a keyword
            column = pos - line_start + 1
            # ToAst.name and ToAst.optional, made directly from the positions
            node = ast.Name(Span(source, line, column, line, name_end - line_start + 1),
                            sys.intern(value))
            if m.group("q"):
                node = ast.Optional(
                    Span(source, line, column, line, name_end - line_start + 2), node)
                levels[node] = 1  # ToAst._nest: one level over a name
            items.append(node)
            if m.group("join") is None:
                break
            items.append("-")  # what sum_seq reads of a MINUS token: str()
            pos = m.end()
            if m.group("lines") is not None:  # the `-` has a line end before or after it
                newlines = text.count("\n", name_end, pos)
                if newlines:
                    line += newlines
                    line_start = text.rindex("\n", name_end, pos) + 1
            m = run_item(text, pos)
        make = self.token
        tok = make("NAME", value, pos, line, column, line, name_end - line_start + 1, name_end)
        if m.group("q"):
            tok = make("QMARK", "?", name_end, line, name_end - line_start + 1, line,
                       name_end - line_start + 2, name_end + 1)
            pos = name_end + 1
        else:
            pos = name_end
        if len(items) < 3 or not _RUN_END(text, pos):
            return None
        return sum_seq(items), pos, tok, line, line_start

    def before_name(self, states: list, values: list, text: str, pos: int):
        """If a NAME is next, the reductions feeding it would make before shifting it (so
        feeding it later makes none), and the state they leave; else None."""
        lexed = self.match(text, pos)
        if lexed is None or lexed.lastgroup != "NAME":
            return None
        fullmatch, seen = self.retype.get("NAME", (lambda value: None, {}))
        value = lexed.group()
        kind = seen.get(value)
        if kind is None:
            kind = seen[value] = fullmatch(value) or "NAME"
        if kind != "NAME":
            return None
        self.reduce(states, values, "NAME")  # a NAME refused here: feed() will say so
        return states[-1]

    def reduce(self, states: list, values: list, kind: str):
        """lark's feed_token up to the shift: reduce while the table says so for a `kind`
        token next; then the state to shift it to, or None if the table has no action."""
        actions = self.actions
        while True:
            action = actions[states[-1]].get(kind)
            if action is None or action.__class__ is int:
                return action
            size, callback, origin = action
            if callback is None:  # a one-symbol `?rule`: the value stays, the state moves
                states[-1] = actions[states[-2]][origin]
                continue
            if size:
                children = values[-size:]
                del states[-size:]
                del values[-size:]
            else:
                children = []
            states.append(actions[states[-1]][origin])
            values.append(callback(children))

    def feed(self, states: list, values: list, token):
        """lark's feed_token: reduce while the table says so, then shift the token."""
        shift = self.reduce(states, values, token.type)
        if shift is None:
            from lark.exceptions import UnexpectedToken

            raise UnexpectedToken(token, self.expected[states[-1]])
        states.append(shift)
        values.append(token)
        return token


# A flat run (_Driver.run): names, each perhaps with one `?`, joined by `-`; it ends before
# a newline, `;`, a comment, a closing bracket, `,` or `->` that no continuing operator
# follows (a next line starting with `-` would extend the sum: no run then).
_RUN_START = re.compile(r"[A-Za-z_]").match
_BLANK = r"[ \t\f\u00a0\ufeff]"  # what the grammar ignores between tokens
# An item: (name)(`?`)(the join to the next name: `-` on the line, or (`-` with newlines,
# comments and blank lines before or after it))
_GAP = r"(?:" + _BLANK + r"|\n|#[^\n]*+)*+"
# (_Driver.run_item puts before it a lookahead refusing the terminals the lexer tries before
# NAME: its groups are numbered after theirs, hence the named groups.)
_RUN_ITEM = (
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<q>\?)?(?P<join>" + _BLANK + r"*+-(?![->])" + _BLANK
    + r"*+(?=[A-Za-z_])|(?P<lines>" + _GAP + r"-(?![->])" + _GAP + r"(?=[A-Za-z_])))?")
_RUN_END = re.compile(
    _BLANK + r"*+(?:[;)\]},]|->|→|(?:#[^\n]*+)?(?:\Z|\n(?:" + _BLANK[:-1] + r"\n]|#[^\n]*+)*+"
    r"(?![-+*/,?→])))").match
_driver_built = None


def _driver():
    """The shared _Driver, or None where lark's lexer is not what it assumes."""
    global _driver_built
    if _driver_built is None:
        parser = _lark()
        with _build_lock:
            if _driver_built is None:
                try:
                    _driver_built = _Driver(parser)
                except (NotImplementedError, AttributeError, KeyError):
                    _driver_built = False
    return _driver_built or None


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


def _too_deep(span: Span) -> CnnLimitError:
    return CnnLimitError(f"expression nested deeper than {MAX_NESTING} levels", span,
                         notes=["each bracket, unary `-` and `?` is a level"],
                         help="flatten the expression, or name parts of it with `def`")


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
