"""The error hierarchy and the compiler-style diagnostics every spec error is shown as."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, eq=False)
class Source:
    """A spec's text and the name it is reported under (a path, `<stdin>`, `<spec>`)."""

    name: str
    text: str = field(repr=False)

    def line(self, number: int) -> str:
        lines = self.text.split("\n")
        return lines[number - 1] if 1 <= number <= len(lines) else ""

    def end_span(self) -> "Span":
        """A span at the end of the text (for 'unexpected end of input')."""
        lines = self.text.split("\n")
        while len(lines) > 1 and not lines[-1].strip():
            lines.pop()
        last = lines[-1] if lines else ""
        col = len(last) + 1
        return Span(self, len(lines), col, len(lines), col + 1)


@dataclass(frozen=True, eq=False)
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


def _caret_line(text: str, start: int, end: int) -> str:
    # Keep tabs so the caret lines up with the source line as the terminal shows it.
    prefix = "".join("\t" if ch == "\t" else " " for ch in text[: start - 1])
    return prefix + "^" * max(1, end - start)


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
                out.append(f" {gutter} | {text}")
                out.append(f" {' ' * len(gutter)} | {_caret_line(text, span.column, end)}")
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


class UsageError(Exception):
    """A command-line mistake (exit status 2), not a spec error."""


class UnusedVariableWarning(UserWarning):
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


def did_you_mean(name: str, candidates) -> str | None:
    """A 'did you mean' hint: case-insensitive match first, then close spellings."""
    import difflib

    candidates = sorted(set(candidates))
    for cand in candidates:
        if cand.lower() == name.lower() and cand != name:
            return cand
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None
