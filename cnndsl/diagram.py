"""What the graph diagram shows, read from the checked graph (no graphviz here): the boxes of
block calls and repeats, the layers and edges drawn, and where a left-to-right drawing wraps."""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from .drawing import block_depth, call_text
from .ir import SHORTCUT, Graph, Node, ScopeItems

SHORTCUT_COLOR = "#5d6d7e"


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


def drawn_edges(graph, shown, exits, shortcuts, expand,
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


def branches_after_sources(shown: list[int], edges, main_last: int) -> list[int]:
    """`shown` with each branch that leads only to another output than the main one (an
    auxiliary head) moved to just after the layer it leaves. Built after the network, such a
    branch sorted last, so its edge spanned every place a row could break: GoogLeNet with
    its two aux heads, left to right, was one row 6,694 pixels long."""
    pos = {v: i for i, v in enumerate(shown)}
    if main_last not in pos:
        return shown
    preds: dict[int, list[int]] = {}
    for u, v, _ in edges:
        preds.setdefault(v, []).append(u)
    main, stack = {main_last}, [main_last]  # what the main output is computed from
    while stack:
        for u in preds.get(stack.pop(), ()):
            if u not in main:
                main.add(u)
                stack.append(u)
    key: dict[int, tuple] = {}
    for v in shown:
        if v in main:
            key[v] = (pos[v], 0, pos[v])
        else:
            after = [key[u][0] for u in preds.get(v, ()) if u in key]
            key[v] = (max(after, default=pos[v]), 1, pos[v])
    return sorted(shown, key=key.__getitem__)


def row_items(root: Cluster, shown: list[int], wraps) -> list[list]:
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
