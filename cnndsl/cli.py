"""The `cnndsl` command line: thin subcommands over the API, one module each in commands/."""
from __future__ import annotations

import argparse
import importlib
import re
import sys

from .errors import CnnDslError, UsageError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Each module in cnndsl/commands/ defines register(subparsers); none imports torch at load.
COMMANDS = ("check", "expand", "summary", "render", "compile", "zoo", "sweep", "fmt")


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
    """The checked graph for a command's spec arguments."""
    from .api import check_spec

    if args.classes is not None and args.classes <= 0:
        raise UsageError("--classes must be positive")
    if args.max_layers is not None and args.max_layers <= 0:
        raise UsageError("--max-layers must be positive")
    if args.max_bytes is not None and args.max_bytes <= 0:
        raise UsageError("--max-bytes must be positive")
    defines = defines_from_args(args)
    graph = check_spec(args.spec, input=args.input, classes=args.classes,
                       max_layers=args.max_layers, max_bytes=args.max_bytes, **defines)
    warn_unused_defines(graph.graph.get("unused_defines", ()), graph)
    return graph


def warn_unused_defines(names, graph) -> None:
    """`-D n=3` for a spec that says N: a warning on stderr, not silence."""
    from .errors import did_you_mean
    from .parser import parse

    if not names:
        return
    used = {n.id for n in _names_in(parse(graph.graph["source"].text, "<spec>"))}
    for name in names:
        hint = did_you_mean(name, used)
        print(f"cnndsl: warning: the spec never uses `{name}`; -D {name} changes nothing" +
              (f" (did you mean `{hint}`?)" if hint else ""), file=sys.stderr)


def _names_in(program):
    from . import ast

    return [n for n in ast.walk(program.statements) if isinstance(n, ast.Name)]


def make_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="cnndsl", description="Check, analyse, draw and compile CNN architecture specs.")
    parser.add_argument("--version", action="version", version=f"cnndsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".commands.{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.commands.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def run() -> None:
    """The console script and `python -m cnndsl`: main() in a process of cnndsl's own."""
    from . import parser

    parser.LEAN_LARK = True
    sys.exit(main())


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    from .api import gc_paused
    from .limits import recursion_headroom

    try:
        # a one-shot process: collecting its live objects is wasted work. The API raises the
        # recursion limit around each build as well; this covers the stages after it.
        with gc_paused(), recursion_headroom():
            return args.func(args)
    except CnnDslError as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"cnndsl: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
