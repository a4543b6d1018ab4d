"""IR passes: infer shapes (resolving shape-dependent defaults), receptive fields, costs, names.

Each pass takes the layer graph (ir.Graph) and fills in its nodes' fields; none imports torch.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

from . import expand, layers
from .errors import CnnShapeError
from .ir import Graph, Node
from .layers import Context, Site


def make_context(graph: Graph) -> Context:
    """The spec-wide settings, validated, from the expanded graph."""
    return expand.make_context(graph.settings, graph.input_dims,
                               graph.input_span or graph.network_span)


def check_shapes_read(graph: Graph) -> None:
    """`in.c` read shapes while the graph was built; the network must agree with them."""
    for node_id, shape in graph.shapes_read.items():
        node = graph[node_id]
        if node.shape != shape:
            raise CnnShapeError(
                f"`in` read {shape} here while the network was built, but the layer gives "
                f"{node.shape} once checked", node.span,
                help="a bare layer whose size depends on what follows it (a bare FC) cannot "
                     "be read by `in`: give its size")


def _heads(graph: Graph) -> set[int]:
    """Nodes followed only by softmax/dropout/flatten: a bare FC there is the classifier."""
    heads: set[int] = set()
    for node in reversed(graph.order()):
        for user in graph.users(node):  # a loop, not all(): 50,000 generators cost 0.03 s
            if user.id not in heads or not user.kind.passive_tail:
                break
        else:
            heads.add(node.id)
    return heads


def insert_activations(graph: Graph) -> Graph:
    """`activation = relu`: every hidden CONV/DWCONV/FC (after its BN, if any) that is not
    already followed by an activation gets one, as the VGG paper's table leaves ReLU unwritten
    ("not shown for brevity"). Output layers (followed only by softmax/dropout) get none."""
    setting = graph.settings.get("activation")
    if not setting:
        return graph
    kind, params, _ = setting
    kind = layers.get(kind) if isinstance(kind, str) else kind
    heads = _heads(graph)
    for node in list(graph.nodes.values()):
        if not node.kind.takes_activation or node.id in heads:
            continue
        last = node
        while True:
            after = graph.users(last)
            if len(after) != 1 or not after[0].kind.batch_norm:
                break
            last = after[0]
        if any(user.kind.family == "activation" for user in graph.users(last)):
            continue
        graph.insert_after(last, kind, dict(params), span=node.span, scope=node.scope,
                           implicit=True)
    return graph


def _site(node: Node, ordinal: int, heads: set[int]) -> Site:
    written = node.written or node.kind.name
    return Site(span=node.span, label=f"{written} #{ordinal}", is_head=node.id in heads)


def _repeat_notes(node: Node) -> list[str]:
    notes = []
    for scope in node.path:
        if scope.kind == "repeat" and scope.count > 1:
            notes.append(f"in repetition {scope.index + 1} of {scope.count}")
        elif scope.kind == "block":
            notes.append(f"in block `{scope.name}`")
    return notes


def infer_shapes(graph: Graph, ctx: Context) -> Graph:
    """Compute every node's output shape with the lecture formulas, in data-flow order.

    Shape-dependent defaults are resolved here (bare CONV filters, bare FC units), and the
    layers a kind asks for are inserted (residual projections, the classifier before SOFTMAX).
    """
    order = list(graph.order())
    heads = _heads(graph)
    counts: dict[str, int] = {}
    for node in order:
        _insert_before(graph, node, ctx, heads, counts)
        _infer_node(graph, node, ctx, heads, counts)
    return graph


def _insert_before(graph: Graph, node: Node, ctx, heads, counts) -> None:
    kind = node.kind
    if type(kind).insertions is layers.LayerKind.insertions:
        return  # most kinds never insert anything
    ins = [u.shape for u in graph.inputs(node)]
    site = _site(node, counts.get(kind.name, 0) + 1, heads)
    roles = [e.role for e in node.inputs]
    for position, chain in kind.insertions(node.bound, ins, ctx, site, roles):
        for new_kind, params in chain:
            new = graph.insert_before(node, position, layers.get(new_kind), dict(params),
                                      implicit=True)
            _infer_node(graph, new, ctx, heads, counts)


# The methods whose LayerKind versions make a layer pass its one input through unchanged: no
# parameters, no work counted, every output reading its own input position (activations,
# dropout). Such a layer's facts are its input's, set without the calls (50,000 `RELU?`).
_PASS_THROUGH = ("resolve", "infer", "reads", "count_params", "count_macs")
_passes_through: dict[type, bool] = {}


def passes_through(kind) -> bool:
    cls = type(kind)
    found = _passes_through.get(cls)
    if found is None:
        base = layers.LayerKind
        found = _passes_through[cls] = kind.max_inputs == 1 and all(
            getattr(cls, method) is getattr(base, method) for method in _PASS_THROUGH)
    return found


def _infer_node(graph: Graph, node: Node, ctx, heads, counts) -> None:
    kind = node.kind
    counts[kind.name] = counts.get(kind.name, 0) + 1
    if len(node.inputs) == 1 and passes_through(kind):
        pred = graph.nodes[node.inputs[0].node]
        node.params, node.shape, node.in_shapes = node.bound, pred.shape, [pred.shape]
        node.windows, node.rf, node.jump = pred.windows, pred.rf, pred.jump
        return  # n_params, n_buffers and macs stay 0
    site = _site(node, counts[kind.name], heads)
    preds = graph.inputs(node)
    ins = [u.shape for u in preds]
    try:
        params = kind.resolve(node.bound, ins, ctx, site)
        out = kind.infer(params, ins, ctx, site)
    except CnnShapeError as exc:
        exc.notes = [f"the input to this layer is {' and '.join(map(str, ins)) or 'none'}",
                     *_repeat_notes(node), *kind.spelling_notes(node.written or None),
                     *exc.notes]
        raise
    if out.numel <= 0:
        raise CnnShapeError(f"{site.label} produces an empty volume ({out})", site.span)
    node.params, node.shape, node.in_shapes = params, out, ins
    _receptive_field(preds, node, params, ins)
    node.n_params, node.n_buffers = kind.count_params(params, ins, out)
    node.macs = kind.count_macs(params, ins, out)


def _receptive_field(preds: list[Node], node: Node, params, ins) -> None:
    """Where each output's field lies on the input, per axis (Windows), and its widest:
    r_out = r_in + (k - 1) * d * j_in, j_out = j_in * s, for the layers that slide a window;
    upsampling layers read inputs a fraction of a pixel apart, so their outputs' fields
    differ from one to the next, and merges join fields that need not be centred alike
    (U-Net's skips): both are followed output by output, over a period of outputs.
    `preds`: the nodes it reads (graph.inputs)."""
    if not preds:
        windows = [Windows.pixel(), Windows.pixel()]
    else:
        reads = [node.kind.reads(params, ins, node.shape, axis) for axis in (0, 1)]
        if len(preds) == 1 and reads == [None, None]:  # pointwise: its input's fields
            pred = preds[0]
            node.windows, node.rf, node.jump = pred.windows, pred.rf, pred.jump
            return
        windows = []
        for axis in (0, 1):
            source = preds[0].windows[axis] if len(preds) == 1 else \
                Windows.union([u.windows[axis] for u in preds])
            windows.append(source if reads[axis] is None else source.read(*reads[axis]))
    node.windows = tuple(windows)
    node.rf = (windows[0].widest(), windows[1].widest())
    node.jump = (_whole(windows[0].jump), _whole(windows[1].jump))


# The most outputs one period of a field may span; past it (an upsampling to millions of
# positions, resizes by ratios whose periods multiply past it) the field is summed up as its
# widest, from a sample of that many outputs.
MAX_PERIOD = 4096


class Windows(NamedTuple):
    """The input positions (first, last) each output position's field spans on one axis:
    output q + n*period spans spans[q] moved by n*shift input positions (None: it reads
    none, the bias alone of a dilated transposed convolution). Spans only move on from one
    output to the next; `exact` is False once a field has been summed up as its widest."""

    period: int
    shift: int
    spans: tuple
    gaps: bool = False  # some outputs read no input
    exact: bool = True

    @staticmethod
    def pixel() -> Windows:
        return Windows(1, 1, ((0, 0),))

    @property
    def jump(self) -> Fraction | int:
        return self.shift if self.period == 1 else Fraction(self.shift, self.period)

    def at(self, i: int):
        n, q = divmod(i, self.period)
        span = self.spans[q]
        return None if span is None else (span[0] + n * self.shift, span[1] + n * self.shift)

    def widest(self) -> int:
        if self.period == 1 and self.spans[0]:
            return self.spans[0][1] - self.spans[0][0] + 1
        return max((b - a + 1 for a, b in filter(None, self.spans)), default=1)

    def over(self, first: int, last: int, step: int = 1):
        """The span of outputs first, first + step, ... last together (a dilated window's
        taps): the first's start and the last's end, or where some outputs read nothing,
        from the taps of one period at each end (every later period lies further on:
        shift >= 0), None where no tap reads anything."""
        if not self.gaps:
            return self.at(first)[0], self.at(last)[1]
        taps = range(first, last + 1, step)
        lows = [s[0] for s in map(self.at, taps[:self.period]) if s]
        highs = [s[1] for s in map(self.at, taps[-self.period:]) if s]
        return (min(lows), max(highs)) if lows and highs else None

    def read(self, step: Fraction | int, first_last) -> Windows:
        """The fields of a layer whose output i reads this node's outputs first_last(i) and
        output i + b those of output i moved by a, for step = a/b (or a whole a)."""
        a, b = (step, 1) if isinstance(step, int) else (step.numerator, step.denominator)
        if self.period == 1 == b and self.spans[0]:  # a window sliding by whole positions
            (lo, hi), (first, last) = self.spans[0], first_last(0)[:2]
            return Windows(1, self.shift * a, ((lo + first * self.shift, hi + last * self.shift),),
                           exact=self.exact)
        g = math.gcd(a, self.period)
        period, shift = b * (self.period // g), self.shift * (a // g)
        spans = []
        for i in range(min(period, MAX_PERIOD)):
            reads = first_last(i)
            spans.append(None if reads is None else self.over(*reads))
        return Windows(period, shift, tuple(spans), None in spans, self.exact) \
            if period <= MAX_PERIOD else Windows.widest_of(spans, Fraction(shift, period))

    @staticmethod
    def union(sources: list[Windows]) -> Windows:
        """A merge: output i's field is the union of its inputs' output i fields."""
        jump = sources[0].jump
        if any(w.jump != jump for w in sources):
            # inputs that move at different rates (DeepLab's image pooling beside its
            # convolutions): the widest input, moving at the fastest rate
            return Windows.widest_of([max(sources, key=Windows.widest).spans[0]],
                                     max(w.jump for w in sources),
                                     max(w.widest() for w in sources))
        period = math.lcm(*(w.period for w in sources))
        spans = []
        for i in range(min(period, MAX_PERIOD)):
            found = [s for s in (w.at(i) for w in sources) if s]
            spans.append((min(s[0] for s in found), max(s[1] for s in found)) if found
                         else None)
        return Windows(period, jump.numerator * period // jump.denominator, tuple(spans),
                       None in spans, all(w.exact for w in sources)) \
            if period <= MAX_PERIOD else Windows.widest_of(spans, jump)

    @staticmethod
    def widest_of(spans: list, jump: Fraction, width: int | None = None) -> Windows:
        """A field summed up as its widest, from its first output on, moving by the jump
        rounded up to whole positions."""
        first = next((s for s in spans if s), (0, 0))
        width = width or max((b - a + 1 for a, b in filter(None, spans)), default=1)
        return Windows(1, math.ceil(jump), ((first[0], first[0] + width - 1),), exact=False)


def _whole(x):
    """A fraction that is a whole number as an int (jumps stay ints without upsampling)."""
    return int(x) if isinstance(x, Fraction) and x.denominator == 1 else x


def assign_names(graph: Graph) -> Graph:
    """Readable, unique, stable names in data-flow order: conv1, relu1, conv2, add1, ..."""
    counts: dict[str, int] = {}
    for node in graph.order():
        if node.id == graph.input:
            node.name = "input"
            continue
        kind = node.kind.name.lower()
        counts[kind] = counts.get(kind, 0) + 1
        sep = "_" if kind[-1].isdigit() else ""  # relu6_1, not relu61
        node.name = f"{kind}{sep}{counts[kind]}"
    return graph


def totals(graph: Graph) -> dict:
    nodes = graph.nodes.values()
    return {
        "layers": len(graph) - 1,
        "params": sum(n.n_params for n in nodes),
        "buffers": sum(n.n_buffers for n in nodes),
        "macs": sum(n.macs for n in nodes),
        "output": graph.output_node.shape,
    }


def check(graph: Graph) -> Graph:
    """Run the passes over an expanded graph: the result is the checked IR."""
    ctx = make_context(graph)
    graph.context = ctx
    insert_activations(graph)
    infer_shapes(graph, ctx)
    check_shapes_read(graph)
    assign_names(graph)
    graph.totals = totals(graph)
    return graph
