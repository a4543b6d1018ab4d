"""The lecture's volume figure: each layer's output as a box in perspective, read from the
scope tree (blocks that branch become one box, repeats are drawn once with `x N`).

Scales (monotone, relative to the largest in the figure so that any network fills it):
height and depth of a box follow the square root of H and W (a 224 map is 5.7 times as tall
as a 7 map: both stay visible); its thickness follows log2 of C (each doubling of channels adds
the same width); a vector's bar follows the square root of its length.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .drawing import block_depth, check_depth
from .errors import UsageError
from .ir import Node, ScopeItems, as_graph
from .layers.base import DRAW_STYLES, VOLUME_FAMILIES
from .limits import gc_paused
from .svg import Svg, text_width

MAP_SIDE = 150.0  # px: the tallest map's height
MIN_SIDE = 5.0
RECEDE = 0.38  # depth drawn at 45 degrees, foreshortened to this share of the height
CHANNEL_BASE, CHANNEL_STEP = 3.0, 5.0  # thickness = 3 + 5 * log2(C) px
BAR_HEIGHT = 120.0  # px: the longest vector's bar
BAR_WIDTH, BAR_DEPTH = 7.0, 7.0
GAP = 26.0  # px between one box and the next
MIN_WINDOW = 7.0  # px: a kernel window smaller than this on its box is drawn this size
LABEL_SIZE, SHAPE_SIZE, TOTALS_SIZE = 13.5, 12.0, 10.0
BLOCK_COLOR = "#a3e4d7"
INK = "#2c3e50"
NEAR_LABELS = 16
# A figure of more boxes than this is no figure (and a 100,000-layer chain would be megabytes
# of SVG): the same limit as the graph-style diagram's.
MAX_BOXES = 2_000


@dataclass
class Station:
    """One box (or bar) of the figure: the volume a layer or a whole block puts out."""

    node: Node  # the layer whose output this is (a block's last layer)
    title: str  # CONV 11x11/4, MAXPOOL 3x3/2, FC 4096, bottleneck
    color: str
    window: tuple[int, int] | None = None  # (kh, kw) read on the station before, in pixels
    block: bool = False
    note: str = ""  # what the tooltip adds (a block's layers and parameters)
    totals: tuple[str, ...] = ()  # a folded block's parameters and MACs, under its shape

    @property
    def shape(self):
        return self.node.shape

    @property
    def is_bar(self) -> bool:
        s = self.shape
        return not s.is_volume or (s.h == 1 and s.w == 1)

    @property
    def length(self) -> int:
        return self.shape.c


@dataclass
class Fold:
    """`x N` under the stations first..last (one copy of a repeat stands for all N)."""

    first: int
    last: int
    count: int
    level: int


def stations(graph, expand: bool = False,
             depth: int | None = None) -> tuple[list[Station], list[Fold]]:
    """The boxes of the figure in order, and the repeats folded over them. A block called
    `depth` def calls deep (1: at the top level) is one box, as a block that branches is."""
    graph = as_graph(graph)
    out: list[Station] = []
    folds: list[Fold] = []
    _walk(graph.scope_tree(), out, folds, expand, 0, depth)
    return out, folds


def _walk(holder: ScopeItems, out, folds, expand: bool, level: int,
          depth: int | None = None) -> None:
    merging: list[Node] | None = None  # a merge's layers so far, while its merge is to come
    name = ""
    for item in holder.items:
        if isinstance(item, Node):
            if merging is not None:
                merging.append(item)  # a branch's layer, or one on residual's shortcut
                if len(item.inputs) > 1:  # the merge: the whole construct is one box
                    out.append(_block_station(merging, name, {}))
                    merging = None
                continue
            if not item.inputs:
                out.append(Station(item, "input", DRAW_STYLES["input"]["fillcolor"]))
            elif item.kind.family in VOLUME_FAMILIES:
                out.append(_layer_station(item))
            continue
        scope = item.scope
        folded = (depth is not None and block_depth(scope) >= depth
                  and len(item.nodes()) > 1)  # a block of one layer is drawn as that layer
        if scope.kind == "branch":
            merging, name = (merging or []) + item.nodes(), scope.name
        elif scope.kind == "block" and (_branches(item) or folded):
            out.append(_block_station(item.nodes(), scope.name, scope.args, folded))
        elif scope.kind == "repeat" and scope.count > 1:
            if scope.index > 0 and not expand:
                continue
            start = len(out)
            _walk(item, out, folds, expand, level + 1, depth)
            if not expand and len(out) > start:
                folds.append(Fold(start, len(out) - 1, scope.count, level))
        else:
            _walk(item, out, folds, expand, level, depth)


def _branches(holder: ScopeItems) -> bool:
    """Whether a block's own layers branch (a residual, an inception module): then it is drawn
    as one box. A block whose branching lies inside blocks or repeats of it (a ResNet stage)
    is opened, and those are drawn."""
    return any(len(item.inputs) > 1 if isinstance(item, Node) else item.scope.kind == "branch"
               for item in holder.items)


def _layer_station(node: Node) -> Station:
    window = node.kind.window(node.params, node.in_shapes)
    extent = None
    if window is not None and node.in_shapes and node.in_shapes[0].is_volume:
        (kh, kw), _, (dh, dw) = window
        extent = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    # The filter count is the box's depth, written under it: the title keeps kind and window
    title = node.label().split(", ")[0]
    return Station(node, title, DRAW_STYLES.get(node.kind.family, DRAW_STYLES["other"])
                   ["fillcolor"], extent)


def _block_station(layers: list[Node], name: str, args: dict, folded: bool = False) -> Station:
    """One box for a block (or a merge written outside any) that branches, or that --depth
    folds (then its parameters and MACs are written under it): its output."""
    last = layers[-1]
    params = sum(n.n_params for n in layers)
    macs = sum(n.macs for n in layers)
    title = f"{name}({', '.join(map(str, args.values()))})" if args else name
    bound = ", ".join(f"{k}={v}" for k, v in args.items())
    note = (f"{name}({bound}): {len(layers)} layers, {params:,} parameters, {macs:,} MACs, "
            f"out {last.shape}")
    totals = (f"{compact(params)} params", f"{compact(macs)} MACs") if folded else ()
    return Station(last, title, BLOCK_COLOR, None, True, note, totals)


def compact(n: int) -> str:
    """216k, 4.09G: three digits are enough under a box."""
    for value, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= value:
            return f"{n / value:.3g}{prefix}"
    return str(n)


# -- geometry ------------------------------------------------------------------------------

def _shade(color: str, f: float) -> str:
    """The colour mixed with white (f > 0) or black (f < 0)."""
    rgb = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    target = 255 if f > 0 else 0
    return "#" + "".join(f"{round(c + (target - c) * abs(f)):02x}" for c in rgb)


@dataclass
class Box:
    """Where a station lies: its front face x0..x1, top..bottom, and its receding depth."""

    x0: float
    x1: float
    top: float
    bottom: float
    recede: float

    @property
    def right(self) -> float:
        return self.x1 + self.recede

    @property
    def centre(self) -> float:
        return (self.x0 + self.right) / 2

    @property
    def summit(self) -> float:
        return self.top - self.recede


class Scales:
    """The figure's monotone scales, fitted to its largest map, channel count and vector."""

    def __init__(self, stations: list[Station]):
        maps = [max(s.shape.h, s.shape.w) for s in stations if not s.is_bar] or [1]
        self.side_max = max(maps)
        self.bar_max = max([s.length for s in stations if s.is_bar] or [1])

    def side(self, n: int) -> float:
        return max(MIN_SIDE, MAP_SIDE * math.sqrt(n / self.side_max))

    def thickness(self, c: int) -> float:
        return CHANNEL_BASE + CHANNEL_STEP * math.log2(max(c, 1))

    def bar(self, n: int) -> float:
        return max(MIN_SIDE, BAR_HEIGHT * math.sqrt(n / self.bar_max))


def _place(stations: list[Station], scales: Scales) -> list[Box]:
    boxes, x = [], 0.0
    for s in stations:
        if s.is_bar:
            w, h, r = BAR_WIDTH, scales.bar(s.length), BAR_DEPTH * RECEDE
        else:
            w, h = scales.thickness(s.shape.c), scales.side(s.shape.h)
            r = scales.side(s.shape.w) * RECEDE
        # leave room for the labels of narrow boxes
        need = max(text_width(s.title, LABEL_SIZE, True), text_width(str(s.shape), SHAPE_SIZE),
                   *(text_width(line, TOTALS_SIZE) for line in s.totals)) * 0.36
        if boxes:
            x = max(x, boxes[-1].centre + need + 4 - (w + r) / 2)
        boxes.append(Box(x, x + w, -h / 2, h / 2, r))
        x = x + w + r + GAP
    return boxes


def _cuboid(svg: Svg, b: Box, color: str, title: str, dash: str | None = None) -> None:
    r = b.recede
    svg.polygon([(b.x0, b.top), (b.x1, b.top), (b.x1, b.bottom), (b.x0, b.bottom)], color,
                title=title, dash=dash)
    svg.polygon([(b.x0, b.top), (b.x0 + r, b.top - r), (b.x1 + r, b.top - r), (b.x1, b.top)],
                _shade(color, 0.45), title=title, dash=dash)
    svg.polygon([(b.x1, b.top), (b.x1 + r, b.top - r), (b.x1 + r, b.bottom - r),
                 (b.x1, b.bottom)], _shade(color, -0.18), title=title, dash=dash)


def _face_point(b: Box, down: float, back: float) -> tuple[float, float]:
    """A point on a box's right face: `down` of its height, `back` of its depth."""
    return (b.x1 + back * b.recede, b.top + down * (b.bottom - b.top) - back * b.recede)


def _window(svg: Svg, before: Box, shape_before, after: Box, extent) -> None:
    """The kernel window on the box it reads, and its projection to one point of the next."""
    kh, kw = extent
    height, depth = before.bottom - before.top, before.recede
    h = min(1.0, max(MIN_WINDOW / height, kh / shape_before.h))
    d = min(1.0, max(MIN_WINDOW * RECEDE / max(depth, 1e-9), kw / shape_before.w))
    down, back = 0.3 * (1 - h), 0.35 * (1 - d)
    corners = [_face_point(before, down + a, back + e) for a, e in ((0, 0), (0, d), (h, d),
                                                                     (h, 0))]
    svg.polygon(corners, "#fdfefe", stroke=INK, width=0.9)
    target = (after.x0 + min(4.0, (after.x1 - after.x0) / 3),
              after.top + (down + h / 2) * (after.bottom - after.top))
    for corner in (corners[0], corners[1], corners[2], corners[3]):
        svg.line(*corner, *target, stroke=INK, width=0.6, dash="3,2")
    svg.circle(*target, 1.8, INK)


def draw(stations: list[Station], folds: list[Fold], title: str = "",
         mirror: bool = False) -> str:
    """The SVG text of the figure (`mirror`: flowing right to left, the text kept upright)."""
    scales = Scales(stations)
    boxes = _place(stations, scales)
    svg = Svg(mirror)
    for s, b in zip(stations, boxes):
        tip = f"{s.node.name}: {s.node.label()} -> {s.shape}" if not s.block else s.note
        _cuboid(svg, b, s.color, tip, dash="4,2" if s.block else None)
    for i in range(1, len(stations)):
        s, before, after = stations[i], boxes[i - 1], boxes[i]
        if s.window and not stations[i - 1].is_bar:
            _window(svg, before, stations[i - 1].shape, after, s.window)
        else:
            svg.line(before.right + 3, 0, after.x0 - 3, 0, width=1.0, marker="arrow")
    lowest, highest = _labels(svg, stations, boxes)
    _folds(svg, folds, boxes, lowest)
    if title:
        svg.text(boxes[0].x0, highest - 14, title, size=13, anchor="start", bold=True)
    return svg.document()


def _labels(svg: Svg, stations, boxes) -> tuple[list[float], float]:
    """Each box's title above it and its shape below it, moved out (up or down) where it would
    touch a label already written or a box beside it (a long block name over a narrow box).
    Returns each station's lowest label line and the top."""
    placed: list[tuple[float, float, float, float]] = []
    lowest, highest = [], 0.0
    for i, (s, b) in enumerate(zip(stations, boxes)):
        near = placed[-NEAR_LABELS:]
        beside = [o for o in boxes[max(0, i - 4):i + 5] if o is not b]
        labels = [(True, s.title, LABEL_SIZE), (False, str(s.shape), SHAPE_SIZE)]
        labels += [(False, line, TOTALS_SIZE) for line in s.totals]
        below = b.bottom - 3  # where the next label under the box may start
        for above, text, size in labels:
            w = text_width(text, size, above)
            x0, x1 = b.centre - w / 2, b.centre + w / 2
            y = b.summit - 7 if above else below + size + 8
            y = _clear(y, size, above, x0, x1, near, beside)
            placed.append((x0, y - size, x1, y))
            svg.text(b.centre, y, text, size=size, bold=above and not s.block,
                     fill=("#5f6a6a" if size == TOTALS_SIZE else "#117864") if s.block
                     else "#1c2833")
            if above:
                highest = min(highest, y - size)
            else:
                below = y
        lowest.append(below)
    return lowest, highest


def _clear(y: float, size: float, above: bool, x0: float, x1: float, near, beside) -> float:
    """The baseline nearest `y` (up for a title, down under the box) where a label x0..x1
    touches no label in `near` (side by side they need a clear gap, one above the other a
    clear line) and no box in `beside`. Each step jumps just past what it touched."""
    while True:
        # (labels are placed left to right: only the last few can reach this one)
        labels = [r for r in near if x0 < r[2] + 6 and r[0] < x1 + 6
                  and y - size - 6 < r[3] and r[1] < y + 6]
        reach = [_reach(o, x0, x1) for o in beside]
        boxes = [(hi, lo) for hi, lo in filter(None, reach) if hi < y + 3 and y - size - 2 < lo]
        if not labels and not boxes:
            return y
        if above:
            y = min([r[1] - 6 for r in labels] + [hi - 3 for hi, _ in boxes])
        else:
            y = max([r[3] + size + 6 for r in labels] + [lo + size + 2 for _, lo in boxes])


def _reach(b: Box, x0: float, x1: float) -> tuple[float, float] | None:
    """How high and how low the box's outline (front face, receding top and side) reaches over
    x0..x1, or None where it lies beside it: its top edge rises from the front face's corner
    to the summit over the recede, its bottom edge likewise behind the front face."""
    a, z = max(x0, b.x0), min(x1, b.right)
    if a > z:
        return None
    return b.top - min(z - b.x0, b.recede), b.bottom - max(0.0, a - b.x1)


def _folds(svg: Svg, folds: list[Fold], boxes, lowest: list[float]) -> None:
    """A bracket under the folded stations, `x N` beneath it; an outer repeat below an inner."""
    under: dict[int, float] = {}
    for f in sorted(folds, key=lambda f: -f.level):
        span = range(f.first, f.last + 1)
        y = max(max(lowest[i] for i in span) + 8,
                max((under.get(i, float("-inf")) for i in span), default=0) + 6)
        x0, x1 = boxes[f.first].x0, boxes[f.last].right
        svg.polyline([(x0, y), (x0, y + 5), (x1, y + 5), (x1, y)], width=1.2)
        svg.text((x0 + x1) / 2, y + 20, f"x {f.count}", size=13, bold=True)
        for i in span:
            under[i] = y + 20


def volume_svg(graph, *, expand: bool = False, title: str = "", depth: int | None = None,
               rankdir: str = "LR") -> str:
    """The volume figure of a checked graph as SVG text: left to right (`rankdir="LR"`) or
    mirrored, right to left ("RL"); blocks `depth` def calls deep drawn as one box each."""
    if rankdir not in ("LR", "RL"):
        raise UsageError(f"the volume figure reads LR or RL, not {rankdir!r}")
    check_depth(depth)
    with gc_paused():
        found, folds = stations(graph, expand, depth)
        if len(found) > MAX_BOXES:
            raise UsageError(f"the volume figure would draw {len(found):,} boxes; the limit is "
                             f"{MAX_BOXES:,}" + (" (without --expand, repeats are drawn once)"
                                                 if expand else ""))
        return draw(found, folds, title, mirror=rankdir == "RL")
