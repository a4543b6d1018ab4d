"""`cnndsl fmt`: rewrite specs in the canonical style, or with --check report those that differ."""
from __future__ import annotations

import difflib
import sys
from pathlib import Path

from ..errors import CnnDslError, UsageError


def register(sub) -> None:
    p = sub.add_parser("fmt", help="rewrite specs in the canonical style (see docs/fmt.md)")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help=".cnn files to rewrite in place; - reads stdin and writes stdout")
    p.add_argument("--check", action="store_true",
                   help="change nothing; print a diff and exit 1 if any file is not formatted")
    p.set_defaults(func=run)


def run(args) -> int:
    status = 0
    for name in args.files:
        try:
            status = max(status, format_one(name, args.check))
        except CnnDslError as exc:  # report it, leave the file alone, go on with the others
            print(exc.render(), file=sys.stderr)
            status = max(status, 1)
        except UsageError as exc:  # unreadable: the same, with main's usage-error status
            print(f"cnndsl: error: {exc}", file=sys.stderr)
            status = 2
    return status


def format_one(name: str, check: bool) -> int:
    """Format one file (or stdin); 1 when --check finds it unformatted."""
    from ..api import read_spec
    from ..fmt import format_text
    from ..outputs import write_text

    text, shown = read_spec("-" if name == "-" else Path(name))
    formatted = format_text(text, shown)
    if check:
        if formatted == text:
            return 0
        sys.stdout.writelines(difflib.unified_diff(
            text.splitlines(keepends=True), formatted.splitlines(keepends=True),
            f"{shown} (original)", f"{shown} (formatted)"))
        print(f"would reformat {shown}", file=sys.stderr)
        return 1
    if name == "-":
        sys.stdout.write(formatted)
    elif formatted != text:
        # Through a temporary file, keeping the mode, written through a symlink to the
        # real spec (cnndsl.outputs).
        write_text(Path(name), formatted)
        print(f"reformatted {shown}", file=sys.stderr)
    return 0
