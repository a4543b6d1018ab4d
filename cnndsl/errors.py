"""The error hierarchy and the compiler-style diagnostics every spec error is shown as."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, eq=False)
class Source:
    """A spec's text and the name it is reported under (a path, `<stdin>`, `<spec>`)."""

    name: str
    text: str = field(repr=False)

    def line(self, number: int) -> str:
        # Found with find(), not split(): a spec of a million short lines split into a list
        # for each message took 50 MB more (issue 17, F7).
        if number < 1:
            return ""
        text, start = self.text, 0
        for _ in range(number - 1):
            start = text.find("\n", start) + 1
            if start == 0:
                return ""
        end = text.find("\n", start)
        return text[start:] if end < 0 else text[start:end]

    def end_span(self) -> "Span":
        """A span at the end of the text (for 'unexpected end of input'): after the last
        line that is not blank."""
        text = self.text
        last_char = len(text.rstrip())
        start = text.rfind("\n", 0, last_char) + 1
        end = text.find("\n", last_char)
        last = text[start:] if end < 0 else text[start:end]
        number = text.count("\n", 0, start) + 1
        col = len(last) + 1
        return Span(self, number, col, number, col + 1)


@dataclass(frozen=True, eq=False, slots=True)
class Span:
    """A range in a source: 1-based line and column, end exclusive."""

    source: Source | None
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        name = self.source.name if self.source else "<spec>"
        return f"{name}:{self.line}:{self.column}"

    @classmethod
    def of(cls, source: Source | None, item) -> "Span":
        """Span of a lark Token or Tree meta."""
        line = getattr(item, "line", None) or 1
        column = getattr(item, "column", None) or 1
        end_line = getattr(item, "end_line", None) or line
        end_column = getattr(item, "end_column", None) or column + 1
        return cls(source, line, column, end_line, end_column)

    def to(self, other: "Span") -> "Span":
        return Span(self.source, self.line, self.column, other.end_line, other.end_column)


# Characters of a source line shown around the caret; a longer line is cut to this many,
# with `...` where it was cut (a 700,000-character line was echoed whole, issue 17, F20).
SHOWN_CHARS = 160


def _visible(ch: str) -> str:
    """A character as a diagnostic shows it: control, bidi and other invisible characters
    escaped (`\x1b`, `\u202e`), so an echoed line cannot clear the terminal or reorder
    what is shown (issue 17, F20). Tabs are kept: the caret line keeps them too."""
    return ch if ch == "\t" or ch.isprintable() else repr(ch)[1:-1]


def _shown_line(text: str, start: int, end: int) -> tuple[str, str]:
    """The source line as shown and its caret line, for the 1-based columns [start, end):
    escaped, and cut to SHOWN_CHARS around the caret. The caret is counted in the shown
    characters, so it stays under what it points at."""
    lo, hi = 0, len(text)
    if hi > SHOWN_CHARS:
        lo = max(0, min(start - 1 - SHOWN_CHARS // 2, hi - SHOWN_CHARS))
        hi = lo + SHOWN_CHARS
    parts = [_visible(ch) for ch in text[lo:hi]]
    before = "..." if lo > 0 else ""
    after = "..." if hi < len(text) else ""
    first = min(max(start - 1 - lo, 0), len(parts))
    last = max(min(end - 1 - lo, len(parts)), first + 1)
    prefix = "".join("\t" if p == "\t" else " " * len(p) for p in parts[:first])
    width = max(1, sum(len(p) for p in parts[first:last]))
    return before + "".join(parts) + after, " " * len(before) + prefix + "^" * width


class CnnDslError(Exception):
    """Any error in a spec: carries a span, a message, a help line and notes."""

    kind = "error"

    def __init__(self, message: str, span: Span | None = None, help: str | None = None,
                 notes: tuple[str, ...] | list[str] = ()):
        super().__init__(message)
        self.message = message
        self.span = span
        self.help = help
        self.notes = list(notes)

    def __str__(self) -> str:
        return self.render()

    @property
    def location(self) -> str:
        return str(self.span) if self.span else "<spec>"

    def render(self) -> str:
        """`file:line:col: error: message`, the source line, a caret, `help:` and notes."""
        out = [f"{self.location}: error: {self.message}"]
        span = self.span
        if span is not None and span.source is not None:
            text = span.source.line(span.line)
            if text.strip():
                gutter = str(span.line)
                end = span.end_column if span.end_line == span.line else len(text) + 1
                end = max(min(end, len(text) + 1), span.column + 1)
                shown, caret = _shown_line(text, span.column, end)
                out.append(f" {gutter} | {shown}")
                out.append(f" {' ' * len(gutter)} | {caret}")
        for note in self.notes:
            out.append(f"note: {note}")
        if self.help:
            out.append(f"help: {self.help}")
        return "\n".join(out)


class CnnSyntaxError(CnnDslError):
    """The text does not follow the grammar."""


class CnnNameError(CnnDslError):
    """An undefined, misspelt or clashing name."""


class CnnArgumentError(CnnDslError):
    """A layer or block called with wrong arguments (count, keyword, type or value)."""


class CnnShapeError(CnnDslError):
    """A layer does not fit the volume that reaches it."""


class CnnLimitError(CnnDslError):
    """A spec asks for more than the configured limits allow."""


class CnnLayerLimitError(CnnLimitError):
    """The network has more layers than the limit (max_layers) lets it build."""


class UsageError(Exception):
    """A command-line mistake (exit status 2), not a spec error."""


class CnnDslWarning(UserWarning):
    """Something cnndsl accepted but suspects is not what was meant (the command line prints
    it as `cnndsl: warning: ...`)."""


class UnusedVariableWarning(CnnDslWarning):
    """A variable given to a spec (`build_graph(spec, n=3)`, `-D n=3`) that the spec never
    mentions, so setting it changes nothing: usually a typo for one it does use (`hint`)."""

    def __init__(self, name: str, hint: str | None = None, owners: list[str] | None = None):
        self.name, self.hint, self.owners = name, hint, list(owners or ())
        if self.owners:
            defs = " and ".join(f"`{d}`" for d in self.owners)
            text = (f"`{name}` is only a parameter of {defs}: each call's argument sets it, so "
                    f"setting {name} changes nothing")
        else:
            text = f"the spec never uses `{name}`; setting {name} changes nothing"
        super().__init__(text + (f" (did you mean `{hint}`?)" if hint else ""))


class ShadowedLayerWarning(CnnDslWarning):
    """A def or variable named as a layer (`def pool = ...`): written exactly so, the name
    means the definition in this spec; other spellings (`POOL`) still mean the layer."""

    def __init__(self, name: str, layer: str, span: "Span | None" = None):
        self.name, self.layer, self.span = name, layer, span
        where = f"{span}: " if span is not None else ""
        super().__init__(f"{where}`{name}` is defined here, so `{name}` means this definition "
                         f"in the spec, not the layer {layer} (write `{layer}` for the layer)")


class NoClassifierWarning(CnnDslWarning):
    """A network ends in SOFTMAX with no layer of weights in front of it and `classes` unset:
    the softmax spreads over whatever volume reaches it (the lecture's pattern swept without
    --classes: its K=0 rows end `POOL - SOFTMAX` over 16,384 values)."""


def did_you_mean(name: str, candidates, reject=None) -> str | None:
    """A 'did you mean' hint: case-insensitive match first, then close spellings, the
    closest one that `reject(candidate)` does not turn down."""
    import difflib

    candidates = sorted(set(candidates) - {name})  # never the very name that failed
    for cand in candidates:
        if cand.lower() == name.lower():
            return cand
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1 if reject is None else 6,
                                      cutoff=0.6)
    return next((lowered[c] for c in close if reject is None or not reject(lowered[c])), None)


def first_line(exc: BaseException) -> str:
    """An exception's first line, named by its type, for a message that quotes a failure."""
    text = str(exc).strip().split("\n")[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
