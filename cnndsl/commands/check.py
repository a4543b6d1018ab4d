"""`cnndsl check`: parse and shape-check a spec, print one line of totals."""
from __future__ import annotations

from ..cli import add_spec_args, graph_from_args


def register(sub) -> None:
    p = sub.add_parser("check", help="parse and shape-check a spec; one line of totals")
    add_spec_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    graph = graph_from_args(args)
    t = graph.graph["totals"]
    name = graph.graph["source"].name
    print(f"{name}: ok: {t['layers']} layers, output {t['output']}, "
          f"{t['params']:,} parameters")
    return 0
