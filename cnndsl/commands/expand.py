"""`cnndsl expand`: the flat layer list, one line per layer with its output shape."""
from __future__ import annotations

from ..cli import add_spec_args, graph_from_args


def register(sub) -> None:
    p = sub.add_parser("expand", help="list every layer with its output shape (H x W x C)")
    add_spec_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import layer_rows

    rows = layer_rows(graph_from_args(args))
    w_name = max(len(r["name"]) for r in rows)
    w_label = max(len(r["label"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{w_name}}  {r['label']:<{w_label}}  {r['shape']}")
    return 0
