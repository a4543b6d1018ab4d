"""`cnndsl fmt`: rewrite specs in the canonical style, or with --check report those that differ."""
from __future__ import annotations

import difflib
import os
import sys
import tempfile
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
        write_atomically(Path(name), formatted)
        print(f"reformatted {shown}", file=sys.stderr)
    return 0


def write_atomically(path: Path, text: str) -> None:
    """Write beside the file, then rename over it: a crash never leaves half a spec."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
