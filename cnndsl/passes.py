"""IR passes: infer shapes (resolving shape-dependent defaults), receptive fields, costs, names.

Each pass takes the layer graph and annotates its nodes; none imports torch.
"""
from __future__ import annotations

from . import layers
from .errors import CnnArgumentError, CnnShapeError
from .ir import DiGraph
from .layers import Context, Site
from .shapes import ROUNDING_MODES, Shape


def make_context(graph: DiGraph) -> Context:
    """The spec-wide settings, validated, from the expanded graph."""
    settings = graph.graph["settings"]
    dims = graph.graph["input_dims"]
    span = graph.graph.get("input_span") or graph.graph["network_span"]
    if dims is None:
        raise CnnShapeError("the spec does not give the input size", span,
                            help="add `input 32x32x3` (H x W x C) or pass --input 32x32x3")
    shape = Shape.volume(*dims) if len(dims) == 3 else Shape.vector(dims[0])
    ctx = Context(input=shape)
    for name in ("classes", "width", "max_width", "fc_width"):
        value = settings.get(name)
        if value is None:
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise CnnArgumentError(f"`{name}` must be a positive whole number, not {value!r}",
                                   span)
        setattr(ctx, name, value)
    rounding = settings.get("rounding")
    if rounding is not None:
        if str(rounding).lower() not in ROUNDING_MODES:
            raise CnnArgumentError(f"`rounding` must be strict, floor or ceil, not {rounding!r}",
                                   span)
        ctx.rounding = str(rounding).lower()
    return ctx


def data_flow_order(graph: DiGraph) -> list[int]:
    """The nodes in data-flow order, ties broken by creation (node id): the order of
    networkx's lexicographical_topological_sort, computed for the whole graph at a third of
    its cost (it dominated checking 10,000-layer specs)."""
    import heapq

    pred, succ = graph.pred, graph.succ
    waiting = {v: len(pred[v]) for v in graph}
    ready = [v for v, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        v = heapq.heappop(ready)
        order.append(v)
        for w in succ[v]:
            waiting[w] -= 1
            if not waiting[w]:
                heapq.heappush(ready, w)
    if len(order) != len(waiting):
        raise ValueError("the layer graph has a cycle")  # the expander never makes one
    return order


def _heads(graph: DiGraph, order: list[int] | None = None) -> set[int]:
    """Nodes followed only by softmax/dropout/flatten: a bare FC there is the classifier."""
    heads: set[int] = set()
    for v in reversed(order or data_flow_order(graph)):
        if all(s in heads and layers.get(graph.nodes[s]["kind"]).passive_tail
               for s in graph.successors(v)):
            heads.add(v)
    return heads


def insert_activations(graph: DiGraph) -> DiGraph:
    """`activation = relu`: every hidden CONV/DWCONV/FC (after its BN, if any) that is not
    already followed by an activation gets one, as the VGG paper's table leaves ReLU unwritten
    ("not shown for brevity"). Output layers (followed only by softmax/dropout) get none."""
    setting = graph.graph["settings"].get("activation")
    if not setting:
        return graph
    kind, params, _ = setting
    heads = _heads(graph)
    for v in sorted(graph.nodes):
        if not layers.get(graph.nodes[v]["kind"]).weighted or v in heads:
            continue
        last = v
        while True:
            after = list(graph.successors(last))
            if len(after) != 1 or graph.nodes[after[0]]["kind"] != "BN":
                break
            last = after[0]
        if any(layers.get(graph.nodes[s]["kind"]).family == "activation"
               for s in graph.successors(last)):
            continue
        new = _fresh_id(graph)
        data = graph.nodes[v]
        graph.add_node(new, kind=kind, params=dict(params), span=data["span"],
                       path=data["path"], implicit=True)
        for succ in list(graph.successors(last)):
            index = graph.edges[last, succ]["index"]
            graph.remove_edge(last, succ)
            graph.add_edge(new, succ, index=index)
        graph.add_edge(last, new, index=0)
        if graph.graph["output"] == last:
            graph.graph["output"] = new
    return graph


def _fresh_id(graph: DiGraph) -> int:
    """A node id after every existing one (inserted layers; a running counter, not max())."""
    new = graph.graph.get("next_id") or max(graph.nodes) + 1
    graph.graph["next_id"] = new + 1
    return new


def inputs_of(graph: DiGraph, v: int) -> list[int]:
    """Predecessors in argument order (CONCAT order matters)."""
    pred = graph.pred[v]
    if len(pred) == 1:
        return list(pred)
    return sorted(pred, key=lambda u: pred[u]["index"])


def _site(graph, v, ordinal, heads) -> Site:
    data = graph.nodes[v]
    written = data.get("written") or data["kind"]
    return Site(span=data["span"], label=f"{written} #{ordinal}", is_head=v in heads)


def _repeat_notes(data) -> list[str]:
    notes = []
    for frame in data.get("path", ()):
        if frame.kind == "repeat" and frame.count > 1:
            notes.append(f"in repetition {frame.index + 1} of {frame.count}")
        elif frame.kind == "block":
            notes.append(f"in block `{frame.name}`")
    return notes


def infer_shapes(graph: DiGraph, ctx: Context) -> DiGraph:
    """Compute every node's output shape with the lecture formulas, in data-flow order.

    Shape-dependent defaults are resolved here (bare CONV filters, bare FC units), and the
    layers a kind asks for are inserted (residual projections, the classifier before SOFTMAX).
    """
    order = data_flow_order(graph)
    heads = _heads(graph, order)
    counts: dict[str, int] = {}
    for v in order:
        _insert_before(graph, v, ctx, heads, counts)
        _infer_node(graph, v, ctx, heads, counts)
    return graph


def _insert_before(graph, v, ctx, heads, counts) -> None:
    data = graph.nodes[v]
    kind = layers.get(data["kind"])
    if type(kind).insertions is layers.LayerKind.insertions:
        return  # most kinds never insert anything
    preds = inputs_of(graph, v)
    ins = [graph.nodes[u]["shape"] for u in preds]
    site = _site(graph, v, counts.get(data["kind"], 0) + 1, heads)
    attrs = {k: data[k] for k in ("shortcut", "project_bn") if k in data}
    for index, chain in kind.insertions(data["params"], ins, ctx, site, attrs):
        src = preds[index]
        graph.remove_edge(src, v)
        for new_kind, params in chain:
            new = _fresh_id(graph)
            graph.add_node(new, kind=new_kind, params=dict(params), span=data["span"],
                           path=data["path"], implicit=True)
            graph.add_edge(src, new, index=0)
            _infer_node(graph, new, ctx, heads, counts)
            src = new
        graph.add_edge(src, v, index=index)


def _infer_node(graph, v, ctx, heads, counts):
    data = graph.nodes[v]
    kind = layers.get(data["kind"])
    counts[data["kind"]] = counts.get(data["kind"], 0) + 1
    site = _site(graph, v, counts[data["kind"]], heads)
    ins = [graph.nodes[u]["shape"] for u in inputs_of(graph, v)]
    try:
        params = kind.resolve(data["params"], ins, ctx, site)
        out = kind.infer(params, ins, ctx, site)
    except CnnShapeError as exc:
        exc.notes = [f"the input to this layer is {' and '.join(map(str, ins)) or 'none'}",
                     *_repeat_notes(data), *kind.spelling_notes(data.get("written")),
                     *exc.notes]
        raise
    if out.numel <= 0:
        raise CnnShapeError(f"{site.label} produces an empty volume ({out})", site.span)
    data.update(params=params, shape=out, in_shapes=ins)
    _receptive_field(graph, v, kind, params, ins)
    trainable, buffers = kind.count_params(params, ins, out)
    data.update(n_params=trainable, n_buffers=buffers, macs=kind.count_macs(params, ins, out))


def _receptive_field(graph, v, kind, params, ins) -> None:
    """r_out = r_in + (k - 1) * d * j_in, j_out = j_in * s, per axis; merges take the max."""
    data = graph.nodes[v]
    preds = list(graph.predecessors(v))
    if not preds:
        data.update(rf=(1, 1), jump=(1, 1))
        return
    if len(preds) == 1:  # a chain: no merge to take the max over
        before = graph.nodes[preds[0]]
        rf, jump = before["rf"], before["jump"]
    else:
        rf = tuple(max(graph.nodes[u]["rf"][i] for u in preds) for i in range(2))
        jump = tuple(max(graph.nodes[u]["jump"][i] for u in preds) for i in range(2))
    window = kind.window(params, ins)
    if window is not None:
        (kh, kw), (sh, sw), (dh, dw) = window
        rf = (rf[0] + (kh - 1) * dh * jump[0], rf[1] + (kw - 1) * dw * jump[1])
        jump = (jump[0] * sh, jump[1] * sw)
    data.update(rf=rf, jump=jump)


def assign_names(graph: DiGraph) -> DiGraph:
    """Readable, unique, stable names in data-flow order: conv1, relu1, conv2, add1, ..."""
    counts: dict[str, int] = {}
    for v in data_flow_order(graph):
        kind = graph.nodes[v]["kind"].lower()
        if kind == "input":
            graph.nodes[v]["name"] = "input"
            continue
        counts[kind] = counts.get(kind, 0) + 1
        sep = "_" if kind[-1].isdigit() else ""  # relu6_1, not relu61
        graph.nodes[v]["name"] = f"{kind}{sep}{counts[kind]}"
    return graph


def totals(graph: DiGraph) -> dict:
    nodes = [d for _, d in graph.nodes(data=True)]
    out = graph.nodes[graph.graph["output"]]["shape"]
    return {
        "layers": sum(1 for d in nodes if d["kind"] != "INPUT"),
        "params": sum(d["n_params"] for d in nodes),
        "buffers": sum(d["n_buffers"] for d in nodes),
        "macs": sum(d["macs"] for d in nodes),
        "output": out,
    }


def check(graph: DiGraph) -> DiGraph:
    """Run the passes over an expanded graph: the result is the checked IR."""
    ctx = make_context(graph)
    graph.graph["context"] = ctx
    insert_activations(graph)
    infer_shapes(graph, ctx)
    assign_names(graph)
    graph.graph["totals"] = totals(graph)
    return graph


