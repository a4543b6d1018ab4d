"""Graphviz diagrams of the checked IR: one node per layer, repeats folded into `x N` clusters."""
from __future__ import annotations

import html
import itertools
import json
import math
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import drawing
from .drawing import block_depth, block_totals, call_text, check_depth, diagram_title
from .errors import UsageError
from .ir import SHORTCUT, Graph, Node, ScopeItems, as_graph
from .limits import gc_paused

# Layers a diagram may draw, and how long `dot` may take to lay them out. `dot` is
# superlinear: 2,000 expanded layers took 2.6 s (230 MB), 3,000 took 19 s and 4,800 over a
# minute (1.1 GB); 100,000 ran 12 s and crashed (issue 17, F25). Zoo drawings are under 600.
MAX_DRAWN = 2_000
DOT_SECONDS = 30
FONT = "Helvetica"
SHORTCUT_COLOR = "#5d6d7e"
CLUSTER_STYLES = {
    "repeat": dict(style="rounded,filled", fillcolor="#f4f6f7", color="#85929e", penwidth="1.2",
                   fontsize="12", fontcolor="#34495e", labeljust="r"),
    "iteration": dict(style="rounded,dashed", color="#b3b6b7", fontsize="9", labeljust="r"),
    "block": dict(style="rounded,dashed", color="#aab7b8", fontsize="10", fontcolor="#566573",
                  labeljust="l"),
}


@dataclass
class Cluster:
    """A box in the drawing: a block call, a repeat, or (expanded) one repeat iteration."""

    key: tuple
    label: str
    kind: str
    items: list = field(default_factory=list)  # node ids and Clusters, in data-flow order
    boxes: dict = field(default_factory=dict)  # key -> Cluster among the items
    tooltip: str = ""

    def box(self, key: tuple, label: str, kind: str) -> "Cluster":
        if key not in self.boxes:
            self.boxes[key] = Cluster(key, label, kind)
            self.items.append(self.boxes[key])
        return self.boxes[key]


@dataclass
class FrameFacts:
    """What the drawing needs to know about each block call and repeat of the spec."""

    layers: dict = field(default_factory=dict)  # frame id -> layers inside
    params: dict = field(default_factory=dict)  # frame id -> parameters inside
    structured: set = field(default_factory=set)  # blocks holding a branch, repeat or block

    @classmethod
    def of(cls, graph: Graph) -> "FrameFacts":
        facts = cls()
        for node in graph.nodes.values():
            path = node.path
            for depth, frame in enumerate(path):
                facts.layers[frame.id] = facts.layers.get(frame.id, 0) + 1
                facts.params[frame.id] = facts.params.get(frame.id, 0) + node.n_params
                if frame.kind == "block" and (depth + 1 < len(path) or
                                              node.kind.family == "merge"):
                    facts.structured.add(frame.id)
        return facts

    def boxed(self, frame) -> bool:
        """Short straight blocks (CONV - BN - RELU) are not boxed: the box would be clutter."""
        return frame.id in self.structured or self.layers[frame.id] >= MIN_BOXED_CHAIN


MIN_BOXED_CHAIN = 4
MAX_CALL_LABEL = 28  # characters: a block's box is labelled with its call up to this long


@dataclass
class Folded:
    """Blocks at --depth drawn as one node: each stands for all its layers."""

    depth: int | None
    expand: bool = False
    rep: dict = field(default_factory=dict)  # layer id -> the id of the node drawn for it
    holders: dict = field(default_factory=dict)  # drawn id -> the block's ScopeItems

    def at(self, holder: ScopeItems) -> bool:
        """Whether the block is drawn as one node: it is at the depth and holds more than one
        layer (a block of one layer, GoogLeNet's `down` pooling, is best drawn as that layer)."""
        scope = holder.scope
        return (self.depth is not None and scope.kind == "block"
                and block_depth(scope) == self.depth and len(holder.nodes()) > 1)

    def fold(self, holder: ScopeItems) -> int:
        """Fold a block: its last drawn layer (the block's output, or the end of the first
        copy of a repeat that ends it) is the node drawn for it."""
        layers = holder.nodes()
        drawn = next(n.id for n in reversed(layers) if self.expand or not is_hidden(n))
        for node in layers:
            self.rep[node.id] = drawn
        self.holders[drawn] = holder
        return drawn

    def of(self, v: int) -> int:
        return self.rep.get(v, v)


def boxes(box: Cluster, holder: ScopeItems, expand: bool, facts: FrameFacts,
          folded: Folded | None = None) -> None:
    """Fill `box` from the scope tree: a box per boxed block call and per repeat (and per
    iteration when expanded), a node per shown layer; branches get no box. A block at
    `folded.depth` is one node (the layers inside it are not drawn)."""
    for item in holder.items:
        if isinstance(item, Node):
            box.items.append(item.id)
            continue
        scope, inner = item.scope, box
        if folded is not None and folded.at(item):
            box.items.append(folded.fold(item))
            continue
        if scope.kind == "block" and facts.boxed(scope):
            call = call_text(scope)
            # a long call (GoogLeNet's six inception arguments) would lie across the edges
            # fanning into its branches: it is named, the arguments in its tooltip
            if len(call) <= MAX_CALL_LABEL:
                inner = box.box(("block", scope.id), call, "block")
            else:
                inner = box.box(("block", scope.id), scope.name, "block")
                inner.tooltip = call
        elif scope.kind == "repeat" and scope.count > 1:
            if scope.index > 0 and not expand:
                continue  # folded: the first copy stands for the rest
            params = facts.params[scope.id]
            note = f" · {params:,} params in all" if params else ""
            label = f'<<b>x {scope.count}</b><font point-size="8">{note}</font>>'
            inner = box.box(("repeat", scope.id), label, "repeat")
            if expand:
                inner = inner.box(("iteration", scope.id, scope.index),
                                  f"{scope.index + 1}/{scope.count}", "iteration")
        boxes(inner, item, expand, facts, folded)


def is_hidden(node: Node) -> bool:
    """Whether a collapsed drawing leaves the node out: it is not in the first copy of a repeat."""
    return any(f.kind == "repeat" and f.index > 0 for f in node.path)


def first_copy_exits(graph: Graph, order: dict[int, int]) -> dict[int, int]:
    """Repeat frame id -> the last node of its first copy (what the second copy reads)."""
    members: dict[int, set[int]] = {}
    for node in graph.nodes.values():
        for f in node.path:
            if f.kind == "repeat" and f.index == 0 and f.count > 1:
                members.setdefault(f.id, set()).add(node.id)
    exits = {}
    for fid, nodes in members.items():
        outward = [v for v in nodes if any(u.id not in nodes for u in graph.users(graph[v]))]
        exits[fid] = max(outward or nodes, key=order.__getitem__)
    return exits


def stand_in(graph: Graph, v: int, exits: dict[int, int]) -> int:
    """The drawn node that stands for a folded one: the end of its repeat's first copy."""
    while is_hidden(graph[v]):
        frame = next(f for f in graph[v].path if f.kind == "repeat" and f.index > 0)
        v = exits[frame.id]
    return v


def shortcut_nodes(graph: Graph) -> set[int]:
    """Layers residual() inserted on a shortcut (the 1x1 projection and its BN)."""
    found = set()
    for node in graph.nodes.values():
        for edge in node.inputs:
            if edge.role != SHORTCUT:
                continue
            u = graph[edge.node]
            while u.implicit and u.inputs:
                found.add(u.id)
                u = graph[u.inputs[0].node]
    return found


def node_label(node: Node) -> tuple[str, dict]:
    """An HTML-like label (kind and key parameters, then name and parameters) and the style."""
    style = dict(node.kind.style())
    glyph = style.pop("label", None)
    if glyph is not None:
        return glyph, style
    if not node.inputs:
        return f"<<b>input</b><br/>{node.shape}>", style
    title = html.escape(node.label())
    detail = node.name + (f" · {node.n_params:,} params" if node.n_params else "")
    return (f'<<b>{title}</b><br/><font point-size="8" color="#4d5656">'
            f"{html.escape(detail)}</font>>", style)


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
    edges = _drawn_edges(graph, shown, exits, shortcuts, expand, folded)
    wraps = row_breaks(shown, edges, outermost(root)) if rankdir in ("LR", "RL") else []
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
            starts = [shown[0], *(v for _, v in wraps)]
            for a, b in itertools.pairwise(starts):
                column.edge(f"n{a}", f"n{b}", style="invis")
    if graph.outputs:  # several outputs: one end per output, labelled with its name
        outputs = [(folded.of(out if expand else stand_in(graph, out, exits)),
                    dict(name=name, key=f"output{k}" if k else "output",
                         shape=graph[out].shape)) for k, (name, out) in enumerate(graph.outputs)]
    else:
        out = graph.output
        outputs = [(folded.of(out if expand else stand_in(graph, out, exits)), {})]
    for drawn_last, kw in outputs:
        _emit_output(dot, graph, drawn_last, ends, **kw)
    if wraps:
        dot.rows = Rows(graphviz, rankdir, title, _row_items(root, shown, wraps), edges, wraps,
                        outputs, lambda d, box, at: _emit_cluster(d, box, graph, shortcuts,
                                                                  ends, folded, at),
                        lambda d, drawn_last, kw, at: _emit_output(d, graph, drawn_last, ends,
                                                                   at=at, **kw))
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


def outermost(root: Cluster) -> dict[int, int]:
    """Node id -> which item of the drawing's top level holds it (a node, or a box)."""
    held: dict[int, int] = {}
    for k, item in enumerate(root.items):
        stack = [item]
        while stack:
            inner = stack.pop()
            if isinstance(inner, Cluster):
                stack.extend(inner.items)
            else:
                held[inner] = k
    return held


def row_breaks(shown: list[int], edges, outer: dict[int, int]) -> list[tuple[int, int]]:
    """Where a left-to-right drawing wraps to a new row, as (u, v): u ends a row and v starts
    the next. LeNet-5 in one LR row was a 2510x102 strip (issue 18). A row ends only at a layer
    whose edges are all that joins the layers up to it to those after it (a block's input that
    also feeds its shortcut qualifies; a shortcut or branch spanning it does not), where the
    drawing leaves one box for the next (never inside one), after about sqrt(2n) of n layers,
    and not for a last row of less than a third of that (MobileNet v2's SOFTMAX and output
    alone) that the row before can take."""
    pos = {v: i for i, v in enumerate(shown)}
    spans = [0] * (len(shown) + 1)  # spans[i]: edges crossing the gap before shown[i]
    leaving = [0] * len(shown)  # leaving[i]: edges from shown[i] to later layers
    for u, v, _ in edges:
        lo, hi = sorted((pos[u], pos[v]))
        spans[lo + 1] += 1
        spans[hi + 1] -= 1
        leaving[lo] += 1
    joined = {(u, v) for u, v, _ in edges}
    n = len(shown) + 1  # the output is drawn after the last one
    rows = math.ceil(n / max(4, math.ceil(math.sqrt(2 * n))))
    per_row = math.ceil(n / rows)  # rows of even length
    breaks, row_start, crossing = [], 0, 0
    for i in range(1, len(shown)):
        crossing += spans[i]
        u, v = shown[i - 1], shown[i]
        if (i - row_start >= per_row and crossing == leaving[i - 1] and (u, v) in joined
                and outer.get(u) != outer.get(v) and n - i >= max(2, per_row // 3)):
            breaks.append((u, v))
            row_start = i
    return breaks


def _row_items(root: Cluster, shown: list[int], wraps) -> list[list]:
    """The drawing's top-level items (nodes and boxes) row by row: a box is never cut."""
    starts, row, rows_of = {v for _, v in wraps}, 0, {}
    for v in shown:
        row += v in starts
        rows_of[v] = row
    row_of_item = {k: rows_of[v] for v, k in outermost(root).items() if v in rows_of}
    rows: list[list] = [[] for _ in range(row + 1)]
    for k, item in enumerate(root.items):
        rows[row_of_item[k]].append(item)
    return rows


ROW_GAP = 30.0  # points between two wrapped rows, where the wrap edge runs back
CORNER = 8.0  # points: the radius of the wrap edge's turns
MARGIN = 4.0  # points around the drawing, as `dot` leaves


@dataclass
class Rows:
    """A wrapped LR (RL) drawing laid out row by row. One `dot` run over the whole drawing gives
    every rank one column, so the i-th layer of each row took the width of the widest i-th
    layer of any row: LeNet-5's and ResNet-50's short first rows were stretched to the widths
    of the boxes below them. Here `dot` lays out each row as a graph of its own, the rows are
    stacked top to bottom (left-aligned; right-aligned in RL), and `neato -n2` draws the whole
    at those positions, with each wrap edge running back under its row to the next row's start."""

    graphviz: object
    rankdir: str
    title: str | None
    items: list  # the top-level items of each row
    edges: list  # (source, target, attributes), as drawn
    wraps: list  # (u, v): u ends a row, v starts the next
    outputs: list  # (drawn last layer, _emit_output keywords)
    emit_box: object  # (digraph, Cluster, at) -> None
    emit_output: object  # (digraph, drawn last, keywords, at) -> None

    def row_of(self) -> dict[str, int]:
        found = {}
        for k, items in enumerate(self.items):
            for v in outermost(Cluster((), "", "root", items)):
                found[f"n{v}"] = k
        for drawn_last, kw in self.outputs:
            found[kw.get("key", "output")] = found[f"n{drawn_last}"]
        return found

    def row_sources(self) -> str:
        """Each row as a graph of its own, and the title alone (to measure it)."""
        row_of, sources = self.row_of(), []
        for k, items in enumerate(self.items):
            dot = _digraph(self.graphviz, self.rankdir, None)
            self.emit_box(dot, Cluster((), "", "root", items), None)
            if k:  # where the edges from the row above come in: an invisible point
                dot.node(f"wrap{k}", "", shape="point", width="0", style="invis")
            for src, v, attrs in self.edges:
                if row_of[f"n{v}"] != k:
                    continue
                tail = f"n{src}" if row_of[f"n{src}"] == k else f"wrap{k}"
                dot.edge(tail, f"n{v}", **attrs)
            for drawn_last, kw in self.outputs:
                if row_of[f"n{drawn_last}"] == k:
                    self.emit_output(dot, drawn_last, kw, None)
            sources.append(dot.source)
        sources.append(_digraph(self.graphviz, self.rankdir, self.title).source)
        return "".join(sources)

    def placed_source(self, laid_out: list[dict]) -> str:
        """The whole drawing with every node, box, edge and label at its place, for `neato
        -n2`, from `dot -Tjson` of `row_sources`."""
        *rows, titled = laid_out
        boxes = [[float(c) for c in row["bb"].split(",")] for row in rows]
        lead = [0.0] + [2 * CORNER] * (len(rows) - 1)  # room for the edge coming down
        title_w, title_h = (float(titled.get(k, 0)) * 72 for k in ("lwidth", "lheight"))
        title_h += 8 if self.title else 0
        width = max(max(x1 - x0 + d for (x0, _, x1, _), d in zip(boxes, lead, strict=True)),
                    title_w) + 2 * MARGIN
        height = (title_h + sum(y1 - y0 for _, y0, _, y1 in boxes) + ROW_GAP * (len(rows) - 1)
                  + 2 * MARGIN)
        at: dict = {}
        nodes: dict[str, tuple] = {}  # name -> (x, y, half width, half height), placed
        gaps = []  # the height of the middle of the gap under each row
        top = height - MARGIN - title_h
        for row, (x0, y0, x1, y1), d in zip(rows, boxes, lead, strict=True):
            dx = MARGIN + d - x0 if self.rankdir == "LR" else width - MARGIN - d - x1
            dy = top - y1
            top -= y1 - y0 + ROW_GAP
            gaps.append(top + ROW_GAP / 2)
            names = {}
            for obj in row.get("objects", []):
                names[obj["_gvid"]] = obj["name"]
                placed = {k: _shift(obj[k], dx, dy) for k in ("pos", "bb", "lp") if k in obj}
                placed.update({k: obj[k] for k in ("lwidth", "lheight") if k in obj})
                at[obj["name"]] = placed
                if "pos" in obj and "bb" not in obj:
                    x, y = map(float, placed["pos"].split(","))
                    nodes[obj["name"]] = (x, y, float(obj["width"]) * 36,
                                          float(obj["height"]) * 36)
            for edge in row.get("edges", []):
                at[(names[edge["tail"]], names[edge["head"]])] = {
                    k: _shift(edge[k], dx, dy) for k in ("pos", "lp") if k in edge}
        row_of = self.row_of()
        for src, v, _ in self.edges:
            tail, head = f"n{src}", f"n{v}"
            if (tail, head) not in at:  # from the end of one row into the next row
                inside = at[(f"wrap{row_of[head]}", head)]
                at[(tail, head)] = dict(inside, pos=_wrap_path(
                    nodes[tail], gaps[row_of[tail]], inside["pos"], self.rankdir))
        dot = _digraph(self.graphviz, self.rankdir, self.title)
        dot.attr(bb=f"0,0,{width:.2f},{height:.2f}")
        if self.title:
            dot.attr(lp=f"{width / 2:.2f},{height - MARGIN - title_h / 2:.2f}",
                     lwidth=titled["lwidth"], lheight=titled["lheight"])
        self.emit_box(dot, Cluster((), "", "root", [i for items in self.items for i in items]),
                      at)
        for src, v, attrs in self.edges:
            dot.edge(f"n{src}", f"n{v}", **attrs, **at[(f"n{src}", f"n{v}")])
        for drawn_last, kw in self.outputs:
            self.emit_output(dot, drawn_last, kw, at)
        return dot.source


def _shift(value: str, dx: float, dy: float) -> str:
    """A graphviz point list (`pos`, `bb`, `lp`; an `e,` or `s,` end marker kept) moved."""
    def moved(token: str) -> str:
        mark = token[:2] if token[:2] in ("e,", "s,") else ""
        nums = [float(c) for c in token[len(mark):].split(",")]
        return mark + ",".join(f"{c + (dy if i % 2 else dx):.2f}" for i, c in enumerate(nums))
    return " ".join(map(moved, value.split()))


def _wrap_path(tail: tuple, gap: float, inside: str, rankdir: str) -> str:
    """The edge from a row's end to the next row: down out of the end, back along the gap
    under the row, down beside the next row and into it (rounded turns), where it goes on as
    `dot` drew it from the row's invisible entry point (`inside`, a `pos`)."""
    (tx, ty, _, th), (end, *points) = tail, inside.split()
    first, *rest = ([float(c) for c in p.split(",")] for p in points)
    side = 2 * CORNER if rankdir == "LR" else -2 * CORNER  # the rows' start side
    corners = [(tx, ty - th), (tx, gap), (first[0] - side, gap), (first[0] - side, first[1]),
               tuple(first)]
    path = [corners[0]]
    for before, corner, after in zip(corners, corners[1:], corners[2:]):
        r = min(CORNER, math.dist(before, corner) / 2, math.dist(corner, after) / 2)
        into, out = _toward(corner, before, r), _toward(corner, after, r)
        path += [*_line(path[-1], into), *_turn(into, corner, out)]
    path += _line(path[-1], corners[-1])
    return " ".join([end, *(f"{x:.2f},{y:.2f}" for x, y in path + rest)])


def _toward(a, b, r: float) -> tuple:
    """The point r from a towards b (a itself when they coincide)."""
    d = math.dist(a, b)
    return a if d == 0 else (a[0] + (b[0] - a[0]) * r / d, a[1] + (b[1] - a[1]) * r / d)


def _line(a, b):
    """A straight cubic Bezier piece from a to b: its two control points and its end."""
    return [(a[0] + (b[0] - a[0]) / 3, a[1] + (b[1] - a[1]) / 3),
            (a[0] + 2 * (b[0] - a[0]) / 3, a[1] + 2 * (b[1] - a[1]) / 3), b]


def _turn(a, corner, b):
    """A quarter turn from a to b about `corner`."""
    k = 0.55
    return [(a[0] + (corner[0] - a[0]) * k, a[1] + (corner[1] - a[1]) * k),
            (b[0] + (corner[0] - b[0]) * k, b[1] + (corner[1] - b[1]) * k), b]


def _drawn_edges(graph, shown, exits, shortcuts, expand,
                 folded: Folded) -> list[tuple[int, int, dict]]:
    """The edges drawn, as (source, target, graphviz attributes). A folded block's node takes
    the edges into and out of its layers, once each."""
    visible = set(shown)
    edges, seen = [], set()
    for v in shown:
        holder = folded.holders.get(v)
        for layer in holder.nodes() if holder is not None else (graph[v],):
            for edge in layer.inputs:
                u = edge.node
                src = folded.of(u if expand else stand_in(graph, u, exits))
                if src not in visible or src == v or (src, v) in seen:
                    continue
                seen.add((src, v))
                attrs = {"label": f" {graph[u].shape} "}
                if holder is None and (v in shortcuts or edge.role == SHORTCUT):
                    attrs.update(style="dashed", color=SHORTCUT_COLOR, penwidth="1.2")
                edges.append((src, v, attrs))
    return edges


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
