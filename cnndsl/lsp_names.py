"""Names in a spec, for the language server: what the name under the cursor refers to, where
it is defined and used, and completion (layer kinds and their arguments from the registry,
defs and variables in scope, the zoo's specs). Positions are 0-based, as in cnndsl/lsp.py."""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import ast, functions, layers, modelzoo
from .errors import Span
from .values import BUILTINS, SETTINGS


@dataclass(frozen=True)
class Occurrence:
    """A name written in the spec: a def, variable or parameter, defined or used there."""

    span: Span  # the name itself
    name: str
    owner: str | None  # the def whose parameter it may be; a tensor's: the def it is in
    defines: bool
    tensor: bool = False  # a named tensor: `X as name` defines it, `@name` uses it


@dataclass(frozen=True)
class Target:
    """What a name refers to: kind is `def`, `variable`, `parameter`, `define` (a variable
    only the `# cnndsl:` comment or the settings give) or `tensor` (`X as name`, whose owner
    is the def it is named in, None outside defs)."""

    kind: str
    name: str
    owner: str | None
    used_at: Span
    defined_at: Span | None


def occurrences(program: ast.Program) -> list[Occurrence]:
    """Every name the spec writes, with the def whose parameters it can see."""
    found: list[Occurrence] = []
    for stmt in program.statements:
        if isinstance(stmt, ast.Def):
            found.append(Occurrence(stmt.name_span, stmt.name, None, True))
            params = {p.name for p in stmt.params}
            for i, p in enumerate(stmt.params):
                end = p.span.column + len(p.name)
                found.append(Occurrence(Span(p.span.source, p.span.line, p.span.column,
                                             p.span.line, end), p.name, stmt.name, True))
                if p.default is not None:  # a default sees the parameters before it
                    found += _uses(p.default, stmt.name, {q.name for q in stmt.params[:i]})
            found += _uses(stmt.body, stmt.name, params)
        elif isinstance(stmt, ast.Assign):
            found.append(Occurrence(stmt.name_span, stmt.name, None, True))
            found += _uses(stmt.value, None, set())
        else:
            found += _uses(stmt, None, set())
        found += _tensors(stmt, stmt.name if isinstance(stmt, ast.Def) else None)
    return found


def _tensors(stmt, frame: str | None) -> list[Occurrence]:
    """Named tensors: `X as name` defines one, `@name` reads it (within one def body, or
    outside every def)."""
    out = []
    for node in ast.walk(stmt):
        if isinstance(node, ast.Tag):
            out.append(Occurrence(node.name_span, node.name, frame, True, tensor=True))
        elif isinstance(node, ast.TensorRef):
            out.append(Occurrence(node.span, node.name, frame, False, tensor=True))
    return out


def _uses(expr, owner: str | None, params: set[str]) -> list[Occurrence]:
    out = []
    for node in ast.walk(expr):
        if isinstance(node, ast.Name):
            name, span = node.id, node.span
        elif isinstance(node, ast.Call) and node.alias is None:
            name, span = node.name, node.name_span
        else:
            continue
        out.append(Occurrence(span, name, owner if name in params else None, False))
    return out


def _target(program: ast.Program, occ: Occurrence, defines: dict, tops: dict) -> Target | None:
    if occ.tensor:
        return Target("tensor", occ.name, occ.owner, occ.span,
                      tops.get(("@", occ.owner, occ.name)))
    if occ.owner is not None:
        return Target("parameter", occ.name, occ.owner, occ.span, tops.get((occ.owner, occ.name)))
    stmt = tops.get((None, occ.name))
    if isinstance(stmt, ast.Def):
        return Target("def", occ.name, None, occ.span, stmt.name_span)
    if isinstance(stmt, ast.Assign):
        return Target("variable", occ.name, None, occ.span, stmt.name_span)
    if occ.name in defines:
        return Target("define", occ.name, None, occ.span, None)
    return None


def _tops(program: ast.Program) -> dict:
    """(owner, name) -> what defines it: global defs and assignments, parameters' spans."""
    tops: dict = {}
    for stmt in program.statements:
        if isinstance(stmt, (ast.Def, ast.Assign)):
            tops.setdefault((None, stmt.name), stmt)
    for occ in occurrences(program):
        if occ.defines and occ.tensor:
            tops.setdefault(("@", occ.owner, occ.name), occ.span)
        elif occ.defines and occ.owner is not None:
            tops.setdefault((occ.owner, occ.name), occ.span)
    return tops


def contains(span: Span, line: int, character: int) -> bool:
    """Whether the 0-based position lies in the span (its end included: the cursor after a
    word is still on it)."""
    pos = (line + 1, character + 1)
    return (span.line, span.column) <= pos <= (span.end_line, span.end_column)


def resolve(program: ast.Program, line: int, character: int,
            defines: dict | None = None) -> Target | None:
    """The def, variable or parameter named at the position, if any."""
    tops = _tops(program)
    for occ in occurrences(program):
        if contains(occ.span, line, character):
            return _target(program, occ, defines or {}, tops)
    return None


def references(program: ast.Program, target: Target, defines: dict | None = None,
               declaration: bool = True) -> list[Span]:
    """Every place the target is written (its definition too, where `declaration`)."""
    tops = _tops(program)
    spans = []
    for occ in occurrences(program):
        if occ.name != target.name or (occ.defines and not declaration):
            continue
        other = _target(program, occ, defines or {}, tops)
        if other is not None and (other.kind, other.owner) == (target.kind, target.owner):
            spans.append(occ.span)
    return spans


# -- completion ---------------------------------------------------------------------------------

@dataclass
class Completion:
    label: str
    kind: str  # layer | argument | block | variable | function | keyword | zoo
    detail: str = ""
    doc: str = ""
    insert: str | None = None
    replace: tuple[int, int, int, int] | None = None  # the range `insert` replaces


_DEF = re.compile(r"^[ \t]*def[ \t]+([A-Za-z_]\w*)[ \t]*(?:\(([^)]*)\))?",
                  re.MULTILINE | re.IGNORECASE)
_ASSIGN = re.compile(r"^[ \t]*([A-Za-z_]\w*)[ \t]*=", re.MULTILINE)
_TOKEN = re.compile(r"#[^\n]*|[A-Za-z_]\w*|[()\[\]{}=,]|\n")
_ZOO = re.compile(r"zoo:([\w-]*)$")


def complete(text: str, line: int, character: int, defines: dict | None = None
             ) -> list[Completion]:
    """What may be written at the position. Works on text that does not parse (the usual
    state while typing): the names in scope are read with patterns, not the parser."""
    lines = text.split("\n")
    if line >= len(lines):
        return []
    before = lines[line][:character]
    offset = sum(len(s) + 1 for s in lines[:line]) + len(before)
    zoo = _ZOO.search(before)
    if "#" in before:
        return _zoo(zoo, line, character, text_edit=False) if zoo else []
    if zoo:
        return _zoo(zoo, line, character, text_edit=True)
    callee, after_equals = _enclosing_call(text[:offset])
    values = _variables(text, offset, defines or {})
    if callee is None or after_equals:
        return values if after_equals else _everything(text) + values
    kind = layers.lookup(callee)
    if kind is not None and kind.callable:
        return _arguments(kind) + values
    defs = {m.group(1): m.group(2) for m in _DEF.finditer(text)}
    if callee in defs:
        params = [p.split("=")[0].strip() for p in (defs[callee] or "").split(",")]
        return [Completion(p, "argument", f"parameter of {callee}", insert=f"{p}=")
                for p in params if p] + values + _everything(text)
    if functions.lookup(callee):
        return values
    return _everything(text) + values


def _enclosing_call(prefix: str) -> tuple[str | None, bool]:
    """The name before the innermost open `(` at the end of `prefix`, and whether the
    argument being written already has its `name=`."""
    stack: list[tuple[str | None, bool]] = []
    previous = None
    for m in _TOKEN.finditer(prefix):
        token = m.group()
        if token in "([{":
            stack.append((previous if token == "(" else None, False))
        elif token in ")]}":
            if stack:
                stack.pop()
        elif token == "=" and stack:
            stack[-1] = (stack[-1][0], True)
        elif token == "," and stack:
            stack[-1] = (stack[-1][0], False)
        previous = token if token[0].isalpha() or token[0] == "_" else None
    return stack[-1] if stack else (None, False)


def _arguments(kind) -> list[Completion]:
    out = []
    for p in kind.params:
        default = "" if p.default is None else f", default {p.default}"
        detail = f"{kind.name} {p.type}{default}"
        out.append(Completion(p.name, "argument", detail, p.doc, insert=f"{p.name}="))
        out += [Completion(a, "argument", f"{kind.name}: same as {p.name}", p.doc,
                           insert=f"{a}=") for a in p.aliases]
    return out


def _everything(text: str) -> list[Completion]:
    """Layers (the registry), builtins, functions, the spec's defs, the statement words."""
    out = []
    for kind in layers.REGISTRY.values():
        if not kind.callable:
            continue
        out.append(Completion(kind.name, "layer", kind.signature(), kind.doc))
        out += [Completion(a, "layer", f"same as {kind.name}", kind.doc) for a in kind.aliases]
    out += [Completion(b, "keyword", "built-in block") for b in BUILTINS]
    out += [Completion(f.name, "function", "number function", f.doc)
            for f in functions.FUNCTIONS.values()]
    out += [Completion(name, "function", f"{name}(block)", doc) for name, doc in (
        ("index", "which call of the def `block` is being built, from 0"),
        ("count", "how many calls the def `block` has in the whole network"))]
    out += [Completion(m.group(1), "block", f"def {m.group(1)}({m.group(2) or ''})")
            for m in _DEF.finditer(text)]
    out += [Completion(w, "keyword") for w in ("input", "def")]
    return out


def _variables(text: str, offset: int, defines: dict) -> list[Completion]:
    """Global variables, the comment's -D names, settings, and the parameters of the def
    whose body the position is in."""
    names = {m.group(1): "variable" for m in _ASSIGN.finditer(text)
             if m.group(1).lower() != "def"}
    names.update({n: "variable (# cnndsl: -D)" for n in defines})
    names.update({n: "setting" for n in SETTINGS if n not in names})
    out = [Completion(n, "variable", what) for n, what in names.items()]
    header = None
    for m in _DEF.finditer(text, 0, offset):
        header = m
    if header is not None and not _statement_starts(text[header.end():offset]):
        out += [Completion(p.split("=")[0].strip(), "variable",
                           f"parameter of {header.group(1)}")
                for p in (header.group(2) or "").split(",") if p.strip()]
    return out


def _statement_starts(between: str) -> bool:
    """Whether a new statement starts in the text after a def's header: a line at column 0
    that is not blank, a comment, or a continuation (an operator, a closing bracket)."""
    return any(line and not line[0].isspace() and line[0] not in "#-+*/,)]}>→"
               for line in between.split("\n")[1:])


def _zoo(match, line: int, character: int, text_edit: bool) -> list[Completion]:
    """The bundled specs: in a comment, their names; in the spec, their text to start from."""
    start = character - len(match.group(0))
    out = []
    for name in modelzoo.names():
        text = modelzoo.read(name)
        summary = modelzoo.description(text)
        if text_edit:
            out.append(Completion(f"zoo:{name}", "zoo", summary, text, insert=text,
                                  replace=(line, start, line, character)))
        else:
            out.append(Completion(name, "zoo", summary))
    return out
