"""Our own LALR loop over lark's tables (_Driver): lark's lexer, the postlexer and lark's
feed_token written out as one loop, with flat runs (`a - b? - c`) reduced at once. It must
give exactly lark's tree and errors: tests/test_parser_driver.py holds it to lark's own loop."""
from __future__ import annotations

import re
import sys

from . import ast
from .errors import Span
from .limits import MAX_NESTING
from .parse_tables import _build_lock, _lark
from .postlex import (_CLOSERS, _CONTINUE_AFTER, _CONTINUE_BEFORE, _OPENERS, _close, _open,
                      _unclosed)
from .to_ast import _current, _too_deep

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
        ten actions per name (50,000 `RELU?` layers, the whole parse: 0.6 s in lark's loop,
        0.3 s here with a token per name, 0.2 s without; tests/test_parser_driver.py holds
        the trees equal)."""
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
