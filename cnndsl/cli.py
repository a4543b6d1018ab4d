"""The `cnndsl` command line: thin subcommands over the API."""
from __future__ import annotations

import argparse
import re
import sys

from .errors import CnnDslError, UsageError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_define(text: str):
    """`-D N=3` -> ("N", 3); values are integers, numbers or bare words (floor, same)."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not _NAME.match(name) or not raw:
        raise UsageError(f"-D expects NAME=VALUE, e.g. -D N=3 (got {text!r})")
    from .layers import Symbol

    if re.fullmatch(r"-?\d+", raw):
        return name, int(raw)
    try:
        return name, float(raw)
    except ValueError:
        pass
    if _NAME.match(raw):
        return name, Symbol(raw)
    raise UsageError(f"-D {name}: the value must be a number or a word, not {raw!r}")


def _spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="a .cnn file, - for stdin, or the spec text itself")
    p.add_argument("-D", "--define", action="append", default=[], metavar="NAME=VALUE",
                   help="set a variable, overriding the spec (repeatable)")
    p.add_argument("--input", metavar="HxWxC", help="input volume, e.g. 32x32x3")
    p.add_argument("--classes", type=int, metavar="N", help="number of classes")
    p.add_argument("--max-layers", type=int, metavar="N",
                   help="refuse networks with more layers (default 200,000)")


def graph_from_args(args):
    from .api import build_graph

    defines = dict(parse_define(d) for d in args.define)
    if args.classes is not None and args.classes <= 0:
        raise UsageError("--classes must be positive")
    return build_graph(args.spec, input=args.input, classes=args.classes,
                       max_layers=args.max_layers, **defines)


def cmd_check(args) -> int:
    graph = graph_from_args(args)
    t = graph.graph["totals"]
    name = graph.graph["source"].name
    print(f"{name}: ok: {t['layers']} layers, output {t['output']}, "
          f"{t['params']:,} parameters")
    return 0


def cmd_expand(args) -> int:
    from .api import layer_rows

    graph = graph_from_args(args)
    rows = layer_rows(graph)
    w_name = max(len(r["name"]) for r in rows)
    w_label = max(len(r["label"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{w_name}}  {r['label']:<{w_label}}  {r['shape']}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="cnndsl", description="Check, analyse, draw and compile CNN architecture specs.")
    parser.add_argument("--version", action="version", version=f"cnndsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser("check", help="parse and shape-check a spec; one line of totals")
    _spec_args(p)
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("expand", help="list every layer with its output shape (H x W x C)")
    _spec_args(p)
    p.set_defaults(func=cmd_expand)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CnnDslError as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"cnndsl: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
