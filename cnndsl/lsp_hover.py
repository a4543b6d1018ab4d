"""The language server's hovers: a layer's numbers and `--explain` arithmetic, a block call's
shapes and totals, a variable's value, from a document's analysis (cnndsl/lsp.py)."""
from __future__ import annotations

from . import ast
from .errors import CnnDslError
from .ir import Node, Scope
from .limits import recursion_headroom
from .lsp import MAX_ROWS, Analysis, Range, key, to_range
from .lsp_names import contains, resolve
from .summary import human, rf_text


def nodes_at(program: ast.Program, line: int, character: int) -> list[ast.Node]:
    """The syntax-tree nodes around the position, innermost first."""
    found = [n for n in ast.walk(program.statements) if contains(n.span, line, character)]
    return sorted(found, key=lambda n: (n.span.end_line - n.span.line,
                                        n.span.end_column - n.span.column if
                                        n.span.end_line == n.span.line else 0))


def global_value(analysis: Analysis, name: str):
    """The value of a global variable, as the expander evaluates it (None if it has none)."""
    from .expand import Expander, Options

    expander = Expander(analysis.program, Options(defines=analysis.directive.defines))
    if analysis.graph is not None:  # count(block) reads the calls the network makes
        expander.counts = {}
        for scope in analysis.scope_nodes():
            if scope.kind == "block":
                expander.counts[scope.name] = expander.counts.get(scope.name, 0) + 1
    try:
        with recursion_headroom():
            expander.collect()
            value = expander.value(ast.Name(analysis.program.source.end_span(), name),
                                   expander.globals, symbols=True)
    except CnnDslError:
        return None
    return None if expander.counted is not None else value




def hover(analysis: Analysis, line: int, character: int) -> tuple[str, Range] | None:
    """Markdown for what is under the cursor: a layer's numbers and arithmetic, a block
    call's shapes and totals, a variable's value."""
    if analysis.program is None:
        return None
    layers_by_span: dict[tuple, list[Node]] = {}
    for node in analysis.graph.order() if analysis.graph else ():
        if node.shape is not None and node.inputs:
            layers_by_span.setdefault(key(node.span), []).append(node)
    blocks: dict[tuple, list[Scope]] = {}
    for scope in analysis.scope_nodes():
        if scope.kind == "block" and scope.span is not None:
            blocks.setdefault(key(scope.span), []).append(scope)
    target = resolve(analysis.program, line, character, analysis.directive.defines)
    if target is not None and target.kind != "def":
        return variable_hover(analysis, target), to_range(target.used_at, analysis.text)
    for item in nodes_at(analysis.program, line, character):
        where = to_range(item.span, analysis.text)
        if key(item.span) in layers_by_span:
            return layer_hover(layers_by_span[key(item.span)]), where
        if key(item.span) in blocks:
            return block_hover(analysis, blocks[key(item.span)]), where
        if isinstance(item, ast.Def) and contains(item.name_span, line, character):
            calls = [s for s in analysis.scope_nodes() if s.kind == "block" and
                     s.name == item.name]
            params = ", ".join(p.name for p in item.params)
            text = (f"**def** `{item.name}({params})`: called {len(calls)} "
                    f"time{'s' * (len(calls) != 1)} in the network")
            return text, to_range(item.name_span, analysis.text)
    return None


def layer_hover(nodes: list[Node]) -> str:
    """One layer's output, parameters, MACs, receptive field and `--explain` arithmetic; a
    layer written once but built many times (in a def, a repeat) lists each instance."""
    inserted = [n for n in nodes if n.implicit]  # a pass's: the classifier before SOFTMAX
    nodes = [n for n in nodes if not n.implicit] or inserted
    node = nodes[0]
    lines = []
    if len(nodes) == 1:
        lines.append(f"**{node.name}** `{node.label()}` → **{node.shape}**")
    else:
        lines.append(f"`{node.kind.name}` written once, built {len(nodes)} times")
    lines += ["", "| layer | input | output | parameters | MACs | receptive field |",
              "|---|---|---|---|---|---|"]
    # instances built with different arguments (widths, a rate per block) show their label
    labelled = len({n.label() for n in nodes}) > 1
    for n in nodes[:MAX_ROWS]:
        ins = " + ".join(map(str, n.in_shapes))
        name = f"{n.name} `{n.label()}`" if labelled else n.name
        lines.append(f"| {name} | {ins} | {n.shape} | {n.n_params:,} | {n.macs:,} | "
                     f"{rf_text(n.rf)} |")
    if len(nodes) > MAX_ROWS:
        lines.append(f"| … {len(nodes) - MAX_ROWS} more | | | | | |")
    for n in inserted if inserted is not nodes else ():
        lines.append(f"| {n.name} (inserted) | {' + '.join(map(str, n.in_shapes))} | "
                     f"{n.shape} | {n.n_params:,} | {n.macs:,} | {rf_text(n.rf)} |")
    explained = node.kind.explain(node.params, node.in_shapes, node.shape, node.n_params)
    if explained:
        lines += ["", *([f"{node.name}:"] if len(nodes) > 1 else []), "```", *explained, "```"]
    return "\n".join(lines)


def block_hover(analysis: Analysis, scopes: list[Scope]) -> str:
    """A def call: its input and output shapes and its totals, per call made here."""
    members = analysis.scope_nodes()
    rows = []
    for scope in scopes:
        nodes = [n for n in members.get(scope, []) if n.shape is not None]
        if not nodes:
            continue
        inside = {n.id for n in nodes}
        first = next((n for n in nodes if any(e.node not in inside for e in n.inputs)), nodes[0])
        outside = [analysis.graph[e.node] for e in first.inputs if e.node not in inside]
        shape_in = " + ".join(str(n.shape) for n in outside if n.shape is not None)
        args = ", ".join(f"{k}={v}" for k, v in scope.args.items())
        rows.append((args, shape_in, str(nodes[-1].shape), len(nodes),
                     sum(n.n_params for n in nodes), sum(n.macs for n in nodes)))
    name = scopes[0].name
    if not rows:
        return f"**block** `{name}`: no layers checked"
    lines = []
    if len(rows) == 1:
        args, shape_in, shape_out, count, params, macs = rows[0]
        lines.append(f"**block** `{name}({args})`: {shape_in} → **{shape_out}**")
        lines.append(f"{count} layers, {params:,} parameters ({human(params)}), "
                     f"{macs:,} MACs ({human(macs)})")
        return "\n\n".join(lines)
    lines += [f"**block** `{name}` — called {len(rows)} times here", "",
              "| arguments | input | output | layers | parameters | MACs |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {a} | {i} | {o} | {c} | {p:,} | {m:,} |" for a, i, o, c, p, m in
              rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        lines.append(f"| … {len(rows) - MAX_ROWS} more | | | | | |")
    total_p, total_m = sum(r[4] for r in rows), sum(r[5] for r in rows)
    lines += ["", f"in all: {total_p:,} parameters, {total_m:,} MACs"]
    return "\n".join(lines)


def variable_hover(analysis: Analysis, target) -> str:
    """A variable's value: a global's (or the `# cnndsl:` comment's), a def parameter's in
    each call."""
    if target.kind == "tensor":
        where = f"in `{target.owner}`" if target.owner else "in the network"
        named = target.defined_at
        shapes = _tensor_shapes(analysis, named) if named is not None else []
        shown = ", ".join(dict.fromkeys(str(s) for s in shapes))
        return (f"**tensor** `@{target.name}` {where}" + (f": {shown}" if shown else "") +
                ("" if named else " (not named anywhere: write `LAYER as "
                 f"{target.name}`)"))
    if target.kind == "parameter":
        values = [s.args.get(target.name) for s in analysis.scope_nodes()
                  if s.kind == "block" and s.name == target.owner]
        shown = list(dict.fromkeys(_shown(v) for v in values if v is not None))
        if not shown:
            return f"**parameter** `{target.name}` of `{target.owner}`"
        return (f"**parameter** `{target.name}` of `{target.owner}` = " +
                ", ".join(shown[:MAX_ROWS]) + (" …" if len(shown) > MAX_ROWS else "") +
                (f" (in its {len(values)} calls)" if len(values) > 1 else ""))
    value = global_value(analysis, target.name)
    where = " (from `# cnndsl:`)" if target.name in analysis.directive.defines else ""
    if value is None:
        return f"**variable** `{target.name}`: no value{where}"
    return f"**variable** `{target.name}` = {_shown(value)}{where}"


def _tensor_shapes(analysis: Analysis, named) -> list:
    """The shapes of the tensors the `as name` written at `named` names (one per network or
    def call it is in)."""
    graph = analysis.graph
    if graph is None:
        return []
    return [graph[v].shape for span, v in graph.tensor_sites
            if span == named and graph[v].shape is not None]


def _shown(value) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
