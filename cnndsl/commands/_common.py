"""What the spec-reading subcommands share: their arguments and the checked graph they name.

Here, not in cli.py, so that the subcommands import downwards only (cli loads them)."""
from __future__ import annotations

import argparse

from ..api import check_spec, parse_define
from ..errors import UsageError


def add_spec_args(p: argparse.ArgumentParser, *, define_metavar: str = "NAME=VALUE",
                  define_help: str = "set a variable, overriding the spec (repeatable)") -> None:
    """The arguments every spec-reading command takes (sweep words -D as ranges)."""
    p.add_argument("spec", help="a .cnn file, - for stdin, zoo:NAME, or the spec text itself")
    p.add_argument("-D", "--define", action="append", default=[], metavar=define_metavar,
                   help=define_help)
    p.add_argument("--input", metavar="HxWxC", help="input volume, e.g. 32x32x3")
    p.add_argument("--classes", type=int, metavar="N", help="number of classes")
    p.add_argument("--max-layers", type=int, metavar="N",
                   help="refuse networks with more layers (default 200,000)")
    p.add_argument("--max-bytes", type=int, metavar="N",
                   help="refuse spec files larger than this (default 4 MiB)")


def defines_from_args(args) -> dict:
    return dict(parse_define(d) for d in args.define)


def graph_from_args(args):
    """The checked graph for a command's spec arguments (an unused -D warns, in the API)."""
    if args.classes is not None and args.classes <= 0:
        raise UsageError("--classes must be positive")
    if args.max_layers is not None and args.max_layers <= 0:
        raise UsageError("--max-layers must be positive")
    if args.max_bytes is not None and args.max_bytes <= 0:
        raise UsageError("--max-bytes must be positive")
    return check_spec(args.spec, input=args.input, classes=args.classes,
                      max_layers=args.max_layers, max_bytes=args.max_bytes,
                      **defines_from_args(args))
