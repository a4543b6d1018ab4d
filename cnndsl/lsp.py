"""The language server's answers as pure functions over the API: a document's analysis, its
diagnostics, inlay hints, definitions, references and formatting (hovers: cnndsl/lsp_hover.py;
names and completion: cnndsl/lsp_names.py; the protocol: cnndsl/lsp_server.py).

Positions here are 0-based (line, character) pairs counting code points; the server converts
them to the client's units. Nothing here imports pygls, so every answer is testable directly.
"""
from __future__ import annotations

import shlex
import warnings
from dataclasses import dataclass, field

from . import ast, passes
from .api import input_dims, make_options, parse_define, warn_unused_variables
from .errors import CnnDslError, Span, UnusedVariableWarning, UsageError
from .expand import expand
from .ir import Graph, Node, Scope
from .limits import gc_paused, recursion_headroom
from .lsp_names import resolve
from .parser import normalize, parse

Range = tuple[int, int, int, int]  # start line, start character, end line, end character
DIRECTIVE = "# cnndsl:"  # `# cnndsl: -D N=2 --input 32x32x3` sets what the command line would
MAX_ROWS = 12  # instances listed in one hover; the rest are counted


@dataclass
class Diagnostic:
    range: Range
    message: str
    severity: str = "error"  # or "warning"
    code: str = ""  # the error class: syntax, name, argument, shape, limit
    related: list[str] = field(default_factory=list)  # the `note:` and `help:` lines


@dataclass
class Directive:
    """What a `# cnndsl:` comment (or the project's settings) gives: variables and sizes."""

    defines: dict = field(default_factory=dict)
    input: str | None = None
    classes: int | None = None
    where: dict = field(default_factory=dict)  # name -> range of `-D NAME=...` in the comment
    diagnostics: list[Diagnostic] = field(default_factory=list)


@dataclass
class Analysis:
    """One version of a document: its syntax tree and (possibly partly) checked graph."""

    text: str
    name: str
    directive: Directive
    program: ast.Program | None = None
    graph: Graph | None = None  # checked; after a shape error, checked up to it
    diagnostics: list[Diagnostic] = field(default_factory=list)
    _scopes: dict | None = None

    def scope_nodes(self) -> dict[Scope, list[Node]]:
        """Every scope's layers, in data-flow order (kept: hovers ask again and again)."""
        if self._scopes is None:
            self._scopes = {}
            for node in self.graph.order() if self.graph else ():
                for scope in node.path:
                    self._scopes.setdefault(scope, []).append(node)
        return self._scopes


# -- analysis -----------------------------------------------------------------------------

def analyze(text: str, name: str = "<spec>", settings: dict | None = None) -> Analysis:
    """Parse and check a document as `cnndsl check` would, with the variables and sizes of its
    `# cnndsl:` comment over the project's `settings` ({"defines": {...}, "input": ...})."""
    # The BOM as a blank (the grammar skips both), so columns stay the editor's
    text = normalize(" " + text[1:] if text.startswith("\ufeff") else text)
    directive = read_directive(text, settings or {})
    result = Analysis(text, name, directive, diagnostics=list(directive.diagnostics))
    with gc_paused(), recursion_headroom():
        try:
            result.program = parse(text, name)
            options = make_options(directive.defines, input=directive.input,
                                   classes=directive.classes)
        except CnnDslError as exc:
            result.diagnostics.append(to_diagnostic(exc))
            return result
        except UsageError as exc:  # a -D value out of the limits
            result.diagnostics.append(Diagnostic(_directive_range(text), str(exc)))
            return result
        try:
            graph = expand(result.program, options)
        except CnnDslError as exc:
            result.diagnostics.append(to_diagnostic(exc))
            return result
        result.graph = graph
        try:
            passes.check(graph)
        except CnnDslError as exc:
            result.diagnostics.append(to_diagnostic(exc))
            passes.assign_names(graph)  # the layers before the error keep their shapes
            return result
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnusedVariableWarning)
        warn_unused_variables(result.program, graph.unused_defines)
    for w in caught:  # the comment's unused names; a project's settings serve many specs
        if isinstance(w.message, UnusedVariableWarning) and w.message.name in directive.where:
            where = directive.where[w.message.name]
            result.diagnostics.append(Diagnostic(where, str(w.message).replace(
                f"setting {w.message.name} ", f"-D {w.message.name} "), "warning", "unused"))
    return result


def read_directive(text: str, settings: dict) -> Directive:
    """The `# cnndsl: -D N=2 --input 32x32x3 --classes 10` comments, over the settings."""
    d = Directive()
    _read_settings(d, settings)
    for number, line in enumerate(text.split("\n")):
        start = line.find(DIRECTIVE)
        if start < 0 or line[:start].strip():
            continue
        column = start + len(DIRECTIVE)
        try:
            words = shlex.split(line[column:])
        except ValueError as exc:
            d.diagnostics.append(Diagnostic((number, start, number, len(line)), f"{exc}"))
            continue
        _read_words(d, words, line, number)
    return d


def _read_settings(d: Directive, settings: dict) -> None:
    """The project's settings (the client's), held to what the command line accepts."""
    defines = settings.get("defines")
    words = [f"{k}={v}" for k, v in defines.items()] if isinstance(defines, dict) else []
    for word in words:
        try:
            name, value = parse_define(word)
        except UsageError as exc:
            d.diagnostics.append(Diagnostic((0, 0, 0, 0), f"settings: {exc}", "warning"))
        else:
            d.defines[name] = value
    try:
        if settings.get("input") is not None:
            input_dims(str(settings["input"]))
            d.input = str(settings["input"])
    except UsageError as exc:
        d.diagnostics.append(Diagnostic((0, 0, 0, 0), f"settings: {exc}", "warning"))
    classes = settings.get("classes")
    if isinstance(classes, int) and not isinstance(classes, bool) and classes > 0:
        d.classes = classes


def _read_words(d: Directive, words: list[str], line: str, number: int) -> None:
    here = (number, line.find(DIRECTIVE), number, len(line))
    i = 0
    while i < len(words):
        word, i = words[i], i + 1
        flag, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if flag in ("-D", "--define", "--input", "--classes") and not eq:
            if i >= len(words):
                d.diagnostics.append(Diagnostic(here, f"{flag} needs a value"))
                return
            value, i = words[i], i + 1
        elif flag.startswith("-D") and len(flag) > 2:
            flag, value = "-D", flag[2:]
        try:
            if flag in ("-D", "--define"):
                key, parsed = parse_define(value)
                d.defines[key] = parsed
                col = line.find(value)
                d.where[key] = (number, col, number, col + len(value))
            elif flag == "--input":
                input_dims(value)
                d.input = value
            elif flag == "--classes" and value.isdigit() and int(value) > 0:
                d.classes = int(value)
            else:
                d.diagnostics.append(Diagnostic(
                    here, f"`# cnndsl:` takes -D NAME=VALUE, --input HxWxC and --classes N; "
                    f"not {word!r}", "warning"))
        except UsageError as exc:
            d.diagnostics.append(Diagnostic(here, str(exc)))


def _directive_range(text: str) -> Range:
    """Where a problem with the given variables is shown: the comment, or the first line."""
    for number, line in enumerate(text.split("\n")):
        if line.lstrip().startswith(DIRECTIVE):
            return number, line.find(DIRECTIVE), number, len(line)
    return 0, 0, 0, len(text.split("\n", 1)[0])


def to_range(span: Span | None, text: str | None = None) -> Range:
    """A span (1-based, end exclusive) as a 0-based range inside the text."""
    if span is None:
        return 0, 0, 0, 0
    lines = text.split("\n") if text is not None else None

    def clamp(line: int, column: int) -> tuple[int, int]:
        if lines is None:
            return max(line - 1, 0), max(column - 1, 0)
        line = min(max(line - 1, 0), len(lines) - 1)
        return line, min(max(column - 1, 0), len(lines[line]))

    start, end = clamp(span.line, span.column), clamp(span.end_line, span.end_column)
    return (*start, *max(end, start))


def to_diagnostic(exc: CnnDslError) -> Diagnostic:
    """A located error as the editor shows it: the message on its span, help and notes."""
    span = exc.span
    text = span.source.text if span is not None and span.source is not None else None
    code = type(exc).__name__.removeprefix("Cnn").removesuffix("Error").lower()
    return Diagnostic(to_range(span, text), exc.message, "error", code,
                      [f"note: {note}" for note in exc.notes] +
                      ([f"help: {exc.help}"] if exc.help else []))


# -- what is under the cursor -----------------------------------------------------------------

def key(span: Span) -> tuple[int, int, int, int]:
    return span.line, span.column, span.end_line, span.end_column


# -- inlay hints --------------------------------------------------------------------------------

def inlay_hints(analysis: Analysis) -> list[tuple[int, int, str]]:
    """(line, character, shape): the volume flowing out of each line of the network
    expression, at the line's end; after a shape error, up to the error."""
    graph = analysis.graph
    if graph is None or graph.network_span is None:
        return []
    net = graph.network_span
    lines = analysis.text.split("\n")
    last: dict[int, Node] = {}  # line -> the last layer (in data-flow order) written there
    for node in graph.order():
        if not node.inputs or node.shape is None:
            continue
        anchor = next((s for s in (node.span, *(s.span for s in reversed(node.path)))
                       if s is not None and _inside(s, net)), None)
        if anchor is not None:
            last[anchor.end_line - 1] = node
    hints = []
    for number in sorted(last):
        text = lines[number] if number < len(lines) else ""
        code = text.split("#", 1)[0].rstrip()
        hints.append((number, len(code), str(last[number].shape)))
    return hints


def _inside(span: Span, outer: Span) -> bool:
    return (outer.line, outer.column) <= (span.line, span.column) and \
        (span.end_line, span.end_column) <= (outer.end_line, outer.end_column)


# -- definitions and references ----------------------------------------------------------------

def definition(analysis: Analysis, line: int, character: int) -> list[Range]:
    """Where the def, variable or parameter under the cursor is defined (a variable only
    the `# cnndsl:` comment gives: there)."""
    if analysis.program is None:
        return []
    target = resolve(analysis.program, line, character, analysis.directive.defines)
    if target is None:
        return []
    if target.defined_at is None:
        where = analysis.directive.where.get(target.name)
        return [where] if where else []
    return [to_range(target.defined_at, analysis.text)]


def references(analysis: Analysis, line: int, character: int,
               declaration: bool = True) -> list[Range]:
    """Every place the def, variable or parameter under the cursor is written."""
    from .lsp_names import references as spans_of
    if analysis.program is None:
        return []
    defines = analysis.directive.defines
    target = resolve(analysis.program, line, character, defines)
    if target is None:
        return []
    found = [to_range(s, analysis.text) for s in
             spans_of(analysis.program, target, defines, declaration)]
    if declaration and target.kind == "define" and target.name in analysis.directive.where:
        found.insert(0, analysis.directive.where[target.name])
    return found


# -- formatting ---------------------------------------------------------------------------------

def formatting(text: str, name: str = "<spec>") -> tuple[Range, str] | None:
    """`cnndsl fmt` of the document as one edit over all of it; None when it is formatted
    already or does not parse (the diagnostics say why)."""
    from .fmt import format_text

    try:
        formatted = format_text(text, name)
    except CnnDslError:
        return None
    if formatted == text:
        return None
    lines = text.split("\n")
    return (0, 0, len(lines) - 1, len(lines[-1])), formatted
