"""Graphviz diagrams of the checked IR (what cnndsl.diagram says is drawn, emitted as DOT) and
their files: runs Graphviz, and picks the picture `cnndsl render` writes."""
from __future__ import annotations

import html
import itertools
import json
import shutil
import subprocess
from pathlib import Path

from . import drawing
from .diagram import (Cluster, FrameFacts, Folded, boxes, drawn_edges, first_copy_exits,
                      is_hidden, node_label, outermost, row_breaks, row_items,
                      branches_after_sources,
                      shortcut_nodes, stand_in)
from .diagram_rows import Rows
from .drawing import block_totals, check_depth, diagram_title
from .errors import UsageError
from .ir import Graph, as_graph
from .limits import gc_paused

# Layers a diagram may draw, and how long `dot` may take to lay them out. `dot` is
# superlinear: 2,000 expanded layers took 2.6 s (230 MB), 3,000 took 19 s and 4,800 over a
# minute (1.1 GB); 100,000 ran 12 s and crashed (issue 17, F25). Zoo drawings are under 600.
MAX_DRAWN = 2_000
DOT_SECONDS = 30
FONT = "Helvetica"
CLUSTER_STYLES = {
    "repeat": dict(style="rounded,filled", fillcolor="#f4f6f7", color="#85929e", penwidth="1.2",
                   fontsize="12", fontcolor="#34495e", labeljust="r"),
    "iteration": dict(style="rounded,dashed", color="#b3b6b7", fontsize="9", labeljust="r"),
    "block": dict(style="rounded,dashed", color="#aab7b8", fontsize="10", fontcolor="#566573",
                  labeljust="l"),
}
BLOCK_NODE = {"shape": "box", "style": "filled,rounded", "fillcolor": "#d1f2eb",
              "color": "#117864", "penwidth": "1.2"}


def build_diagram(graph, *, expand: bool = False, rankdir: str = "TB",
                  title: str | None = None, depth: int | None = None):
    """The graphviz.Digraph of a checked graph (repeats folded to one copy unless `expand`;
    blocks at `depth` drawn as one node each)."""
    check_depth(depth)
    with gc_paused():  # as the summary: the drawing's many live objects need no collection
        return _build_diagram(as_graph(graph), expand, rankdir, title, depth)


def _build_diagram(graph: Graph, expand: bool, rankdir: str, title: str | None,
                   depth: int | None):
    import graphviz

    order = {node.id: i for i, node in enumerate(graph.order())}
    exits = first_copy_exits(graph, order)
    shortcuts = shortcut_nodes(graph)
    facts = FrameFacts.of(graph)
    root = Cluster((), "", "root")
    folded = Folded(depth, expand)
    boxes(root, graph.scope_tree(), expand, facts, folded)
    shown = [node.id for node in graph.order()
             if (expand or not is_hidden(node)) and folded.of(node.id) == node.id]
    drawn = len(shown) - 1  # the input is drawn too, but is no layer
    if drawn > MAX_DRAWN:
        # Graphviz lays out a 100,000-layer chain for over 10 s and then may crash
        raise UsageError(
            f"the diagram would draw {drawn:,} layers; the limit is {MAX_DRAWN:,}"
            + (" (without --expand, repeats are drawn once)" if expand else
               " (write a repeat as `BLOCK * N` to draw it once)"))
    dot = _digraph(graphviz, rankdir, title)
    # The input and output pentagons point along the flow: down in TB, right in LR.
    ends = {"orientation": str(_TURN[rankdir])} if _TURN.get(rankdir) else {}
    _emit_cluster(dot, root, graph, shortcuts, ends, folded)
    edges = drawn_edges(graph, shown, exits, shortcuts, expand, folded)
    if graph.outputs:  # several outputs: one end per output, labelled with its name
        outputs = [(folded.of(out if expand else stand_in(graph, out, exits)),
                    dict(name=name, key=f"output{k}" if k else "output",
                         shape=graph[out].shape)) for k, (name, out) in enumerate(graph.outputs)]
    else:
        out = graph.output
        outputs = [(folded.of(out if expand else stand_in(graph, out, exits)), {})]
    # the order rows follow: a branch to another output than the main one after its source
    along = branches_after_sources(shown, edges, outputs[0][0])
    wraps = row_breaks(along, edges, outermost(root)) if rankdir in ("LR", "RL") else []
    row_ends = {u for u, _ in wraps}
    for src, v, attrs in edges:
        dot.edge(f"n{src}", f"n{v}", **attrs, **({"constraint": "false"}
                                                  if src in row_ends else {}))
    if wraps:
        # For the DOT source (one `dot` run): each row starts in the first column, one under
        # the other: the row starts share a rank, ordered by invisible edges, and the edge into
        # a row start pulls no rank. SVG, PNG and PDF lay out each row on its own (`Rows`).
        with dot.subgraph() as column:
            column.attr(rank="same")
            starts = [along[0], *(v for _, v in wraps)]
            for a, b in itertools.pairwise(starts):
                column.edge(f"n{a}", f"n{b}", style="invis")
    for drawn_last, kw in outputs:
        _emit_output(dot, graph, drawn_last, ends, **kw)
    if wraps:
        dot.rows = Rows(graphviz, rankdir, title, row_items(root, along, wraps), edges, wraps,
                        outputs, lambda d, box, at: _emit_cluster(d, box, graph, shortcuts,
                                                                  ends, folded, at),
                        lambda d, drawn_last, kw, at: _emit_output(d, graph, drawn_last, ends,
                                                                   at=at, **kw), _digraph)
    return dot


def _digraph(graphviz, rankdir: str, title: str | None):
    return graphviz.Digraph("cnn", graph_attr=dict(
        rankdir=rankdir, fontname=FONT, nodesep="0.3", ranksep="0.3", newrank="true",
        labelloc="t", label=title or "", fontsize="14"), node_attr=dict(
        fontname=FONT, fontsize="10", style="filled,rounded", penwidth="0.8", margin="0.12,0.04",
        height="0.3"), edge_attr=dict(fontname=FONT, fontsize="8", fontcolor="#4d5656",
                                      arrowsize="0.6", color="#34495e"))


_TURN = {"TB": 0, "LR": 90, "BT": 180, "RL": 270}  # degrees graphviz turns a polygon by


def _emit_cluster(dot, box: Cluster, graph, shortcuts, ends: dict, folded: Folded,
                  at: dict | None = None) -> None:
    """Emit the box's nodes and boxes; `at` adds attributes by name (laid-out positions)."""
    at = at or {}
    for item in box.items:
        if isinstance(item, Cluster):
            name = "cluster_" + "_".join(map(str, item.key))
            with dot.subgraph(name=name) as sub:
                sub.attr(label=item.label, **CLUSTER_STYLES[item.kind],
                         **({"tooltip": item.tooltip} if item.tooltip else {}), **at.get(name, {}))
                _emit_cluster(sub, item, graph, shortcuts, ends, folded, at)
            continue
        name = f"n{item}"
        if item in folded.holders:
            block, totals = block_totals(folded.holders[item])
            lines = "<br/>".join(map(html.escape, totals))
            dot.node(name, f'<<b>{html.escape(block)}</b><br/><font point-size="8" '
                           f'color="#4d5656">{lines}</font>>', **BLOCK_NODE, **at.get(name, {}))
            continue
        label, style = node_label(graph[item])
        if item in shortcuts:
            style["style"] = "filled,rounded,dashed"
        if item == graph.input:
            style.update(ends)
        dot.node(name, label, **style, **at.get(name, {}))


def _emit_output(dot, graph, drawn_last: int, ends: dict, *, name: str = "output",
                 key: str = "output", shape=None, at: dict | None = None) -> None:
    shape = shape or graph.output_node.shape
    at = at or {}
    dot.node(key, f"<<b>{html.escape(name)}</b><br/>{shape}>", shape="house",
             fillcolor="#d5d8dc", **ends, **at.get(key, {}))
    dot.edge(f"n{drawn_last}", key, label=f" {shape} ", **at.get((f"n{drawn_last}", key), {}))


def render_bytes(dot, fmt: str) -> bytes:
    """The drawing in `fmt`; DOT text needs no Graphviz program, the others need `dot`."""
    if fmt == "dot":
        return dot.source.encode("utf-8")
    if shutil.which("dot") is None:
        raise UsageError(f"rendering {fmt.upper()} needs the Graphviz `dot` program, which is not "
                         "on PATH: install the Debian package `graphviz` (apt-get install "
                         "graphviz), or write a .dot file")
    rows = getattr(dot, "rows", None)
    if rows is None:
        return _graphviz(["dot", f"-T{fmt}"], dot.source, fmt)
    laid_out = _graphviz(["dot", "-Tjson"], rows.row_sources(), fmt).decode("utf-8")
    decoder, graphs, at = json.JSONDecoder(), [], 0
    while laid_out[at:].strip():
        at += len(laid_out[at:]) - len(laid_out[at:].lstrip())
        found, at = decoder.raw_decode(laid_out, at)
        graphs.append(found)
    return _graphviz(["neato", "-n2", f"-T{fmt}"], rows.placed_source(graphs), fmt)


def _graphviz(command: list[str], source: str, fmt: str) -> bytes:
    # run here rather than through graphviz's pipe(), which cannot time it out
    try:
        done = subprocess.run(command, input=source.encode("utf-8"),
                              capture_output=True, timeout=DOT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise UsageError(f"Graphviz `{command[0]}` took more than {DOT_SECONDS} s to render "
                         f"{fmt.upper()}; write a .dot file, or draw without --expand") from None
    except OSError as exc:
        raise UsageError(f"Graphviz `{command[0]}` failed to render {fmt.upper()}: {exc}"
                         ) from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip() or (
            f"killed by signal {-done.returncode}" if done.returncode < 0 else
            f"exit status {done.returncode}")
        raise UsageError(f"Graphviz `{command[0]}` failed to render {fmt.upper()}: {why}")
    return done.stdout


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, so no half-written file is left
    (cnndsl.outputs: the mode kept, symlinks written through, errors as UsageErrors)."""
    from .outputs import write_bytes

    write_bytes(path, data)


def render_file(graph, path: str | Path, fmt: str | None = None, *,
                expand: bool = False, rankdir: str | None = None, style: str = "graph",
                depth: int | None = None) -> Path:
    """Draw a checked graph into `path` (format from the extension unless `fmt`): the graphviz
    diagram (`style="graph"`), the volume figure (`style="volumes"`, SVG, PNG or PDF), or, for
    .html, the page to explore (cnndsl.explore). `expand`, `rankdir` and `depth` mean the same
    in each (see `check_options` for the combinations refused)."""
    path = Path(path)
    fmt = drawing.format_for(path, fmt)
    write_atomic(path, render_bytes_of(graph, fmt, expand=expand, rankdir=rankdir,
                                       style=style, depth=depth))
    return path


def render_bytes_of(graph, fmt: str, *, expand: bool = False, rankdir: str | None = None,
                    style: str = "graph", depth: int | None = None) -> bytes:
    """The bytes `render_file` writes."""
    drawing.check_options(fmt, style, rankdir, depth)
    if fmt == "html":
        from .explore import explore_html

        return explore_html(graph, expand=expand, depth=depth).encode("utf-8")
    if style == "volumes":
        from .svg import convert
        from .volumes import volume_svg

        return convert(volume_svg(graph, expand=expand, title=diagram_title(graph),
                                  depth=depth, rankdir=rankdir or "LR"), fmt)
    dot = build_diagram(graph, expand=expand, rankdir=rankdir or "TB", depth=depth,
                        title=diagram_title(graph))
    return render_bytes(dot, fmt)


def render_dot(graph, *, expand: bool = False, rankdir: str = "TB",
               depth: int | None = None) -> str:
    """The DOT source of the drawing (no Graphviz program needed)."""
    return build_diagram(graph, expand=expand, rankdir=rankdir, depth=depth,
                         title=diagram_title(graph)).source
