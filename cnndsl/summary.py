"""Architecture analysis from the checked IR: per-layer costs, totals, grouped tables, JSON, CSV."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from .ir import Graph, Node, ScopeItems, as_graph
from .limits import gc_paused
from .shapes import Shape

BYTES_PER_VALUE = 4  # float32
FLOPS_CONVENTION = ("FLOPs = 2 x MACs; MACs count the multiply-adds of CONV and FC layers "
                    "only, as torchvision's published GFLOPS figures do (those are MACs)")
CONNECTIONS_CONVENTION = ("connections = neurons x (inputs per neuron + bias), as the lecture "
                          "counts them; see docs/summary.md for each kind")
MEMORY_CONVENTION = ("float32; the input and every layer's output held at once (what training "
                     "keeps for the backward pass), plus the parameters and buffers")


@dataclass
class LayerRow:
    """One layer's numbers, as the lecture's analysis table lists them."""

    id: int
    name: str
    kind: str
    label: str
    shape: Shape
    neurons: int
    params: int
    buffers: int
    macs: int
    connections: int
    rf: tuple[int, int]
    inputs: list[str]
    path: tuple
    implicit: bool = False


@dataclass
class Summary:
    name: str
    rows: list[LayerRow]  # data-flow order, INPUT first
    input: Shape
    output: Shape
    batch: int
    totals: dict
    groups: Group | None = None  # the rows as the spec's blocks and repeats (scope tree)
    # several outputs (`outputs(...)`): (name, layer name, shape) each, the main one first
    outputs: list[tuple[str, str, Shape]] = field(default_factory=list)


@dataclass
class Group:
    """A block call or a repeat (whose children are its iterations) in the grouped table."""

    kind: str  # "root" | "block" | "repeat" | "iteration"
    name: str
    count: int = 1
    key: int = -1  # the frame id (block, repeat) or iteration index that this group is
    children: list = field(default_factory=list)


# -- per-layer numbers ------------------------------------------------------------------------

def _label(node: Node) -> str:
    label = node.label()
    return f"{label} (inserted)" if node.implicit else label


def layer_row(graph: Graph, node: Node) -> LayerRow:
    ins = node.in_shapes
    shape = node.shape
    neurons = shape.numel  # for INPUT: the input values, as the lecture's tables list them
    fan_in = node.kind.inputs_per_neuron(node.params, ins, shape, node.n_params)
    return LayerRow(
        id=node.id, name=node.name, kind=node.kind.name, label=_label(node),
        shape=shape, neurons=neurons, params=node.n_params, buffers=node.n_buffers,
        macs=node.macs, connections=neurons * fan_in, rf=tuple(node.rf),
        inputs=[u.name for u in graph.inputs(node)], path=node.path,
        implicit=node.implicit)


def summarize(graph, batch: int = 1) -> Summary:
    """Every layer's numbers and the network's totals (independent of how they are shown)."""
    with gc_paused():  # millions of live rows at 100,000 layers: collections find nothing
        return _summarize(as_graph(graph), batch)


def _summarize(graph: Graph, batch: int) -> Summary:
    by_id = {node.id: layer_row(graph, node) for node in graph.order()}
    rows = list(by_id.values())
    ctx = graph.context
    out = graph.output_node.shape
    params = sum(r.params for r in rows)
    buffers = sum(r.buffers for r in rows)
    macs = sum(r.macs for r in rows)
    activations = sum(r.neurons for r in rows)
    memory = {
        "activations": activations * batch * BYTES_PER_VALUE,
        "params": (params + buffers) * BYTES_PER_VALUE,
    }
    memory["total"] = sum(memory.values())
    totals = {"layers": len(rows) - 1, "params": params, "buffers": buffers, "macs": macs,
              "flops": 2 * macs, "connections": sum(r.connections for r in rows),
              "activations": activations, "memory_bytes": memory}
    outputs = [(name, graph[v].name, graph[v].shape) for name, v in graph.outputs]
    return Summary(graph.source.name, rows, ctx.input, out, batch, totals,
                   group_rows(graph.scope_tree(), by_id), outputs)


# -- grouping ---------------------------------------------------------------------------------

def group_rows(tree: ScopeItems, rows: dict[int, LayerRow]) -> Group:
    """The table's tree, read off the scope tree: a group per block call, a repeat group
    whose children are its iterations; branches are shown in place (data-flow order)."""
    root = Group("root", "")
    _fill(root, tree, rows)
    return root


def _fill(group: Group, holder: ScopeItems, rows: dict[int, LayerRow]) -> None:
    for item in holder.items:
        if not isinstance(item, ScopeItems):
            group.children.append(rows[item.id])
            continue
        scope = item.scope
        if scope.kind == "branch":
            _fill(group, item, rows)
            continue
        if scope.kind == "block":
            inner = Group("block", scope.name, 1, scope.id)
            group.children.append(inner)
        else:  # one iteration of a repeat: joins the repeat's group if it directly precedes
            last = group.children[-1] if group.children else None
            if not (isinstance(last, Group) and last.kind == "repeat" and last.key == scope.id):
                last = Group("repeat", scope.name, scope.count, scope.id)
                group.children.append(last)
            inner = Group("iteration", f"#{scope.index + 1}", 1, scope.index)
            last.children.append(inner)
        _fill(inner, item, rows)


def leaves(item) -> list[LayerRow]:
    if isinstance(item, LayerRow):
        return [item]
    return [row for child in item.children for row in leaves(child)]


def _signature(item) -> tuple:
    return tuple((r.label, str(r.shape), r.params) for r in leaves(item))


@dataclass
class DisplayRow:
    depth: int
    name: str
    label: str
    rows: list[LayerRow]  # the layers whose numbers this row adds up
    is_group: bool


def display_rows(summary: Summary, expand: bool = False) -> list[DisplayRow]:
    """The table's rows: every layer (expand), or block and repeat groups with one copy shown."""
    if expand:
        return [DisplayRow(0, r.name, r.label, [r], False) for r in summary.rows]
    out: list[DisplayRow] = []
    for child in summary.groups.children:
        _walk(child, 0, out)
    return out


def _walk(item, depth: int, out: list[DisplayRow]) -> None:
    if isinstance(item, LayerRow):
        out.append(DisplayRow(depth, item.name, item.label, [item], False))
        return
    rows = leaves(item)
    if item.kind == "block":
        out.append(DisplayRow(depth, item.name, f"block, {count_of(len(rows), 'layer')}", rows,
                              True))
        for child in item.children:
            _walk(child, depth + 1, out)
        return
    runs = _identical_runs(item.children)
    if len(runs) == 1:
        per_copy = len(leaves(item.children[0]))
        label = f"{item.count} x {per_copy} layer{'s' * (per_copy != 1)}, one copy shown"
        out.append(DisplayRow(depth, f"x{item.count}", label, rows, True))
        for child in item.children[0].children:
            _walk(child, depth + 1, out)
        return
    out.append(DisplayRow(depth, f"x{item.count}", f"repeat, {count_of(len(rows), 'layer')}",
                          rows, True))
    for run in runs:  # the copies differ (a first copy that changes the shape): one per run
        first, last = run[0].key + 1, run[-1].key + 1
        name = f"#{first}" if len(run) == 1 else f"#{first}-{last}"
        label = f"copy {first} of {item.count}" if len(run) == 1 else \
            f"copies {first}-{last} of {item.count}, one shown"
        out.append(DisplayRow(depth + 1, name, label, [r for it in run for r in leaves(it)],
                              True))
        for child in run[0].children:
            _walk(child, depth + 2, out)


def _identical_runs(iterations: list[Group]) -> list[list[Group]]:
    """Consecutive copies with the same layers, shapes and parameter counts, grouped."""
    runs: list[list[Group]] = []
    for it in iterations:
        if runs and _signature(runs[-1][0]) == _signature(it):
            runs[-1].append(it)
        else:
            runs.append([it])
    return runs


# -- formatting -------------------------------------------------------------------------------

def rf_text(rf) -> str:
    return str(rf[0]) if rf[0] == rf[1] else f"{rf[0]}x{rf[1]}"


def count_of(n: int, noun: str) -> str:
    """`1 layer`, `23 layers`, `1,000 layers`."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23 M' (decimal prefixes, as torchvision and the papers quote)."""
    for value, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= value:
            return f"{n / value:.2f} {prefix}{unit}"
    return f"{n:g} {unit}".rstrip()


COLUMNS = ("name", "layer", "output", "neurons", "params", "MACs", "connections", "RF")
NUMERIC = {"neurons", "params", "MACs", "connections", "RF"}


def table_cells(row: DisplayRow) -> list[str]:
    last = row.rows[-1]
    return [row.name, row.label, str(last.shape), f"{sum(r.neurons for r in row.rows):,}",
            f"{sum(r.params for r in row.rows):,}", f"{sum(r.macs for r in row.rows):,}",
            f"{sum(r.connections for r in row.rows):,}", rf_text(last.rf)]


def totals_lines(s: Summary) -> list[str]:
    t, mem = s.totals, s.totals["memory_bytes"]
    b = f"batch {s.batch}"
    outputs = "outputs " + ", ".join(f"{name} {shape} ({layer})" for name, layer, shape
                                     in s.outputs) if s.outputs else f"output {s.output}"
    return [
        f"input {s.input} ({s.input.numel:,} values) -> {outputs}; "
        f"{count_of(t['layers'], 'layer')}",
        f"parameters: {t['params']:,} trainable ({human(t['params'])}); "
        f"{t['buffers']:,} buffers (BN running mean and variance, not trained)",
        f"MACs: {t['macs']:,} ({human(t['macs'])}); FLOPs: {t['flops']:,} ({human(t['flops'])})",
        "  (FLOPs = 2 x MACs; MACs count CONV and FC multiply-adds, as torchvision's GFLOPS do)",
        f"connections: {t['connections']:,}; activations: {t['activations']:,} values per image "
        "(input included)",
        f"memory ({b}, float32, every output kept): {human(mem['activations'], 'B')} "
        f"activations + {human(mem['params'], 'B')} parameters = {human(mem['total'], 'B')} "
        f"({mem['total']:,} bytes)",
    ]


def format_table(s: Summary, expand: bool = False) -> str:
    rows = display_rows(s, expand)
    cells = [list(COLUMNS)] + [table_cells(r) for r in rows]
    for r, line in zip(rows, cells[1:]):
        line[0] = "  " * r.depth + line[0]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]

    def fmt(line):
        return "  ".join(c.rjust(w) if COLUMNS[i] in NUMERIC else c.ljust(w)
                         for i, (c, w) in enumerate(zip(line, widths))).rstrip()

    rule = "-" * len(fmt(cells[0]))
    body = [fmt(cells[0]), rule, *(fmt(line) for line in cells[1:]), rule]
    return "\n".join(body + totals_lines(s)) + "\n"


def format_markdown(s: Summary, expand: bool = False) -> str:
    rows = display_rows(s, expand)
    align = ["---:" if c in NUMERIC else ":---" for c in COLUMNS]
    lines = [f"**{s.name}**", "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join(align) + "|"]
    for r in rows:
        cells = table_cells(r)
        name = f"**{cells[0]}**" if r.is_group else f"`{cells[0]}`"
        cells[0] = "&emsp;" * r.depth + name
        cells[1] = cells[1].replace("|", "\\|")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.extend(f"- {line.strip()}" for line in totals_lines(s))
    return "\n".join(lines) + "\n"


def format_html(s: Summary, expand: bool = False) -> str:
    """The grouped table as an HTML fragment (what a graph shows in a notebook)."""
    import html

    head = "".join(f'<th style="text-align:{"right" if c in NUMERIC else "left"}">{c}</th>'
                   for c in COLUMNS)
    body = []
    for r in display_rows(s, expand):
        cells = [html.escape(c) for c in table_cells(r)]
        cells[0] = (f'<span style="padding-left:{1.2 * r.depth:g}em">'
                    + (f"<b>{cells[0]}</b>" if r.is_group else f"<code>{cells[0]}</code>")
                    + "</span>")
        body.append("<tr>" + "".join(
            f'<td style="text-align:{"right" if c in NUMERIC else "left"}">{v}</td>'
            for c, v in zip(COLUMNS, cells)) + "</tr>")
    totals = "".join(f"<li>{html.escape(line.strip())}</li>" for line in totals_lines(s))
    return (f"<div><b>{html.escape(s.name)}</b><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table><ul>{totals}</ul></div>")


def to_json(s: Summary) -> dict:
    """The documented JSON schema (docs/summary.md); exact integers, every layer."""
    return {
        "spec": s.name,
        "input": s.input.as_list(),
        "output": s.output.as_list(),
        "input_hwc": str(s.input),
        "output_hwc": str(s.output),
        "outputs": [{"name": name, "layer": layer, "output": shape.as_list(),
                     "output_hwc": str(shape)} for name, layer, shape in s.outputs],
        "batch": s.batch,
        "total_layers": s.totals["layers"],
        "total_params": s.totals["params"],
        "total_buffers": s.totals["buffers"],
        "total_macs": s.totals["macs"],
        "total_flops": s.totals["flops"],
        "total_connections": s.totals["connections"],
        "total_activations": s.totals["activations"],
        "memory_bytes": dict(s.totals["memory_bytes"]),
        "conventions": {"flops": FLOPS_CONVENTION, "connections": CONNECTIONS_CONVENTION,
                        "memory": MEMORY_CONVENTION},
        "layers": [_layer_json(r) for r in s.rows],
    }


def _layer_json(r: LayerRow) -> dict:
    return {
        "name": r.name, "kind": r.kind, "label": r.label, "output_shape": r.shape.as_list(),
        "shape": str(r.shape),
        "neurons": r.neurons, "params": r.params, "buffers": r.buffers, "macs": r.macs,
        "connections": r.connections, "receptive_field": list(r.rf), "inputs": r.inputs,
        "implicit": r.implicit,
        "path": [{"kind": f.kind, "name": f.name, "id": f.id, "index": f.index, "count": f.count}
                 for f in r.path],
    }


CSV_COLUMNS = ("name", "kind", "label", "output_shape", "neurons", "params", "buffers", "macs",
               "connections", "receptive_field", "inputs")


def to_csv(s: Summary) -> str:
    """One line per layer, exact integers; shapes as HxWxC and receptive fields as HxW."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in s.rows:
        writer.writerow([r.name, r.kind, r.label, str(r.shape), r.neurons, r.params, r.buffers,
                         r.macs, r.connections, f"{r.rf[0]}x{r.rf[1]}", " ".join(r.inputs)])
    return buf.getvalue()
