"""A wrapped left-to-right (LR, RL) diagram laid out row by row: `dot` lays out each row, and
`neato -n2` draws the rows in place, each wrap edge running back under its row to the next."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .diagram import Cluster, outermost

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
    outputs: list  # (drawn last layer, render._emit_output's keywords)
    emit_box: object  # (digraph, Cluster, at) -> None
    emit_output: object  # (digraph, drawn last, keywords, at) -> None
    digraph: object  # (graphviz, rankdir, title) -> an empty graphviz.Digraph, as the drawing's

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
            dot = self.digraph(self.graphviz, self.rankdir, None)
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
        sources.append(self.digraph(self.graphviz, self.rankdir, self.title).source)
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
        row_at: dict[str, int] = {}  # name -> the row it was placed in
        for k, (row, (x0, y0, x1, y1), d) in enumerate(zip(rows, boxes, lead, strict=True)):
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
                    row_at[obj["name"]] = k
            for edge in row.get("edges", []):
                at[(names[edge["tail"]], names[edge["head"]])] = {
                    k: _shift(edge[k], dx, dy) for k in ("pos", "lp") if k in edge}
        row_of = self.row_of()
        for src, v, _ in self.edges:
            tail, head = f"n{src}", f"n{v}"
            if (tail, head) not in at:  # from the end of one row into the next row
                inside = at[(f"wrap{row_of[head]}", head)]
                under = [box for name, box in nodes.items() if name != tail
                         and row_at[name] == row_at[tail] and not name.startswith("wrap")]
                at[(tail, head)] = dict(inside, pos=_wrap_path(
                    nodes[tail], gaps[row_of[tail]], inside["pos"], self.rankdir, under))
        dot = self.digraph(self.graphviz, self.rankdir, self.title)
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


def _wrap_path(tail: tuple, gap: float, inside: str, rankdir: str, under=()) -> str:
    """The edge from a row's end to the next row: down out of the end, back along the gap
    under the row, down beside the next row and into it (rounded turns), where it goes on as
    `dot` drew it from the row's invisible entry point (`inside`, a `pos`). It leaves the
    end where it passes clear of the row's other nodes (`under`: GoogLeNet's aux head sits
    below the inception block that ends its row)."""
    (end, *points) = inside.split()
    tx, ty, _, th = tail = (_drop_x(tail, under, gap), *tail[1:])
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


def _drop_x(tail: tuple, under, gap: float) -> float:
    """Where along the bottom of `tail` (x, y, half width, half height) a line dropped to
    `gap` passes clear of the nodes in `under`: its middle if it can, else the clear place
    nearest it (the middle where none is)."""
    tx, ty, tw, th = tail
    clear = CORNER / 2
    blocked = [(x - w - clear, x + w + clear) for x, y, w, h in under
               if y - h < ty - th and y + h > gap]
    if not any(a < tx < b for a, b in blocked):
        return tx
    lo, hi = tx - tw + CORNER, tx + tw - CORNER
    places = [x for a, b in blocked for x in (a, b)
              if lo <= x <= hi and not any(c < x < d for c, d in blocked)]
    return min(places, key=lambda x: abs(x - tx), default=tx)


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
