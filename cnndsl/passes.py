"""IR passes: infer shapes (resolving shape-dependent defaults), receptive fields, costs, names.

Each pass takes the layer graph (ir.Graph) and fills in its nodes' fields; none imports torch.
"""
from __future__ import annotations

import math
from fractions import Fraction

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


def _infer_node(graph: Graph, node: Node, ctx, heads, counts) -> None:
    kind = node.kind
    counts[kind.name] = counts.get(kind.name, 0) + 1
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
    """r_out = r_in + (k - 1) * d * j_in, j_out = j_in * s, per axis; merges take the max.
    `preds`: the nodes it reads (graph.inputs)."""
    if not preds:
        node.rf, node.jump = (1, 1), (1, 1)
        return
    if len(preds) == 1:  # a chain: no merge to take the max over
        rf, jump = preds[0].rf, preds[0].jump
    else:
        rf = tuple(max(u.rf[i] for u in preds) for i in range(2))
        jump = tuple(max(u.jump[i] for u in preds) for i in range(2))
    window = node.kind.window(params, ins)
    if window is not None:
        (kh, kw), (sh, sw), (dh, dw) = window
        # An upsampling layer's stride is a fraction (1/2 for a factor 2): the jump is then a
        # fraction of an input pixel, and a window on it covers a whole number of input
        # pixels rounded up.
        rf = (math.ceil(rf[0] + (kh - 1) * dh * jump[0]),
              math.ceil(rf[1] + (kw - 1) * dw * jump[1]))
        jump = (_whole(jump[0] * sh), _whole(jump[1] * sw))
    node.rf, node.jump = rf, jump


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
