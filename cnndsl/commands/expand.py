"""`cnndsl expand`: the flat layer list, one line per layer with its output shape."""
from __future__ import annotations

from ._common import add_spec_args, graph_from_args


def register(sub) -> None:
    p = sub.add_parser("expand", help="list every layer with its output shape (H x W x C)")
    add_spec_args(p)
    p.add_argument("--explain", action="store_true",
                   help="under each layer, the lecture's arithmetic: its output size "
                        "((W - F + 2P)/S + 1) and its parameter count")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import layer_rows

    graph = graph_from_args(args)
    rows = layer_rows(graph)
    w_name = max(len(r["name"]) for r in rows)
    w_label = max(len(r["label"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{w_name}}  {r['label']:<{w_label}}  {r['shape']}")
        if args.explain:
            for line in explanation(graph, r["id"]):
                print(f"{'':<{w_name}}  {line}")
    return 0


def explanation(graph, v) -> list[str]:
    """The registry's worked arithmetic for node v (see LayerKind.explain)."""
    node = graph[v]
    if not node.inputs:
        return []  # the input volume: nothing computed
    return node.kind.explain(node.params, node.in_shapes, node.shape, node.n_params)
