"""`cnndsl summary`: the layer table with shapes, parameters, MACs, connections and totals."""
from __future__ import annotations

import json

from ..errors import UsageError
from ._common import add_spec_args, graph_from_args

FORMATS = ("table", "markdown", "json", "csv")


def register(sub) -> None:
    p = sub.add_parser(
        "summary", help="per-layer table: output shape, neurons, parameters, MACs, "
                        "connections, receptive field; totals and a memory estimate",
        description="Analyse a spec from its checked graph (no torch): one row per layer and "
                    "the totals. FLOPs = 2 x MACs (CONV and FC multiply-adds).")
    add_spec_args(p)
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (default), markdown, json or csv")
    p.add_argument("--batch", type=int, default=1, metavar="B",
                   help="batch size for the memory estimate (default 1)")
    p.add_argument("--expand", action="store_true",
                   help="list every layer instead of grouping blocks and repeats")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import summary

    if args.batch <= 0:
        raise UsageError("--batch must be positive")
    s = summary.summarize(graph_from_args(args), batch=args.batch)
    if args.format == "json":
        text = json.dumps(summary.to_json(s), indent=2) + "\n"
    elif args.format == "csv":
        text = summary.to_csv(s)
    elif args.format == "markdown":
        text = summary.format_markdown(s, expand=args.expand)
    else:
        text = summary.format_table(s, expand=args.expand)
    print(text, end="")
    return 0
