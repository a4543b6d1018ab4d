"""`cnndsl check`: parse and shape-check a spec, print one line of totals."""
from __future__ import annotations

from ._common import add_spec_args, graph_from_args


def register(sub) -> None:
    p = sub.add_parser("check", help="parse and shape-check a spec; one line of totals")
    add_spec_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    graph = graph_from_args(args)
    t = graph.totals
    name = graph.source.name
    n, params = t["layers"], t["params"]
    # several outputs (`outputs(...)`): each by name, the main one first, as the summary
    outputs = "outputs " + ", ".join(f"{out} {graph[node].shape}" for out, node in
                                     graph.outputs) if graph.outputs else f"output {t['output']}"
    print(f"{name}: ok: {n:,} layer{'s' * (n != 1)}, {outputs}, "
          f"{params:,} parameter{'s' * (params != 1)}")
    return 0
