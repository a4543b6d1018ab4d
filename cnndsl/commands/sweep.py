"""`cnndsl sweep`: check every member of an architecture family; a table of costs and errors."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..errors import UsageError
from ._common import add_spec_args
from .compile import output_path, save_model

SORT_KEYS = ("params", "macs", "layers")


def register(sub) -> None:
    p = sub.add_parser(
        "sweep", help="check every combination of variable ranges: params, MACs, errors",
        description="Expand and shape-check a spec for every combination of -D ranges "
                    "(N=1..5, N=1..9..2, N=1,2,4) and, with --optional both, with and without "
                    "each X?. Static analysis only: nothing is built in torch.")
    add_spec_args(p, define_metavar="NAME=VALUES",
                  define_help="a variable and its values: 1..5, 1..9..2, 1,2,4 or 3 "
                              "(repeatable)")
    p.add_argument("--optional", choices=("keep", "drop", "both"), default="keep",
                   help="X? layers: keep them (default), drop them, or try both ways each")
    p.add_argument("--max-params", metavar="COUNT", help="hide valid networks above, e.g. 5M")
    p.add_argument("--max-macs", metavar="COUNT", help="hide valid networks above, e.g. 1G")
    p.add_argument("--valid-only", action="store_true", help="hide networks with errors")
    p.add_argument("--sort", choices=SORT_KEYS, help="valid networks, smallest first")
    p.add_argument("--top", type=int, metavar="N", help="show only the first N rows")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="the most combinations a sweep may check (default 10,000)")
    p.add_argument("--pick", type=int, metavar="ROW",
                   help="compile row ROW of the shown table (1 = first; with --sort, the "
                        "smallest) instead of printing the table")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="with --pick: model.py | .pt | .onnx | .ts (default: source to stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import read_spec
    from ..parser import parse
    from ..sweep import DEFAULT_LIMIT, parse_axis, parse_count, run_sweep, select

    for flag in ("classes", "max_layers", "max_bytes", "limit", "top", "pick"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be positive")
    if args.output and args.pick is None:
        raise UsageError("-o needs --pick ROW (which network to compile)")
    output_path(args.output)  # a bad -o fails before the sweep
    axes = [parse_axis(d) for d in args.define]
    if len({a.name for a in axes}) != len(axes):
        raise UsageError("a variable is given twice with -D; list its values once: -D N=1,2,4")
    max_params = parse_count(args.max_params) if args.max_params else None
    max_macs = parse_count(args.max_macs) if args.max_macs else None
    text, name = read_spec(args.spec, args.max_bytes)
    program = parse(text, name)
    started = time.perf_counter()
    rows = run_sweep(program, axes, input=_input(args.input), classes=args.classes,
                     max_layers=args.max_layers, optional=args.optional,
                     limit=args.limit or DEFAULT_LIMIT)
    elapsed = time.perf_counter() - started
    shown = select(rows, max_params=max_params, max_macs=max_macs, valid_only=args.valid_only,
                   sort=args.sort, top=args.top)
    if args.pick is not None:
        return compile_row(args, shown, program, text, name)
    names = [a.name for a in axes]
    write_rows(args.format, shown, names, show_dropped=args.optional != "keep", checked=rows)
    print(f"checked {len(rows):,} network{'' if len(rows) == 1 else 's'} in {elapsed:.2f} s",
          file=sys.stderr)
    return 0


def _input(text):
    from ..api import parse_dims

    return parse_dims(text) if text else None


def write_rows(fmt: str, rows, names, show_dropped: bool, checked=None) -> None:
    from ..sweep import format_csv, format_table, to_records

    if fmt == "json":
        json.dump(to_records(rows), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif fmt == "csv":
        sys.stdout.write(format_csv(rows, names))
    else:
        sys.stdout.write(format_table(rows, names, show_dropped, checked))


def compile_row(args, rows, program, text: str, name: str) -> int:
    """Compile one row: PyTorch source from its checked graph, or a saved model."""
    if args.pick > len(rows):
        raise UsageError(f"--pick {args.pick}: the sweep shows only {len(rows)} rows")
    row = rows[args.pick - 1]
    if not row.valid:
        raise UsageError(f"--pick {args.pick}: that network does not check: {row.error}")
    out, suffix = output_path(args.output)
    if suffix != ".py":
        return compile_model(args, row, text, name, out)
    from ..api import check_program
    from ..codegen import to_source
    from ..torch_backend import class_name_for

    graph = check_program(program, row.options)  # only the picked row's graph is kept
    source = to_source(graph, class_name=class_name_for(program.source.name))
    if out is None:
        sys.stdout.write(source)
        return 0
    from ..artifacts import write_text

    write_text(out, source)
    print(f"{out}: {row.params:,} parameters, PyTorch source", file=sys.stderr)
    return 0


def compile_model(args, row, text: str, name: str, out: Path) -> int:
    """Weights and exported formats: the row's variables compiled as `cnndsl compile` would."""
    if row.dropped:
        raise UsageError("this row drops optional layers, which `cnndsl compile` cannot "
                         "express: compile it to .py (-o model.py)")
    return save_model(out, text, name, input=args.input, classes=args.classes,
                      device="auto", max_layers=args.max_layers, **row.variables)
