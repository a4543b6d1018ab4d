"""The `cnndsl` command line: thin subcommands over the API, one module each in commands/."""
from __future__ import annotations

import argparse
import errno
import functools
import importlib
import os
import sys
import warnings

from .errors import CnnDslError, CnnDslWarning, UnusedVariableWarning, UsageError

# Each module in cnndsl/commands/ defines register(subparsers); none imports torch at load.
COMMANDS = ("check", "expand", "summary", "render", "compile", "zoo", "sweep", "fmt", "bench",
            "lsp", "import_")


def make_parser() -> argparse.ArgumentParser:
    from .version import __version__

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
    from . import parse_tables

    parse_tables.LEAN_LARK = True
    sys.exit(main())


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    from .api import gc_paused
    from .limits import recursion_headroom

    try:
        # The API pauses the GC while it builds a graph; a one-shot process pauses it for the
        # whole command (the summary of 100,000 layers: 1.5 s instead of 4 s), as collecting
        # its live objects is wasted work. The API raises the recursion limit around each
        # build as well; this covers the stages after it.
        with gc_paused(), recursion_headroom(), warnings.catch_warnings():
            # Every warning the API gives, in this process's words, however often main runs.
            warnings.simplefilter("always", CnnDslWarning)
            warnings.showwarning = functools.partial(show_warning, warnings.showwarning)
            status = args.func(args)
            sys.stdout.flush()  # a full disk behind stdout shows here, not at exit
            return status
    except CnnDslError as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"cnndsl: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT:
            raise  # anything else is a bug in cnndsl, and gets a traceback
        # Only a write to stdout (to /dev/full, a full disk, a dead terminal) reaches here:
        # every file cnndsl writes turns its own errors into UsageErrors (cnndsl.outputs).
        print(f"cnndsl: error: cannot write the output: {exc.strerror}", file=sys.stderr)
        _drop_stdout()
        return 2
    except KeyboardInterrupt:
        print("cnndsl: interrupted", file=sys.stderr)
        return 130


# Errors of the place output goes to, not of cnndsl: no space, over quota, too large, I/O.
_ENVIRONMENT = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def _drop_stdout() -> None:
    """Point stdout at /dev/null: what is still buffered would fail again when Python
    flushes it at exit, printing `Exception ignored ...`."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a captured stdout (tests): nothing to do
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def show_warning(fallback, message, category, filename, lineno, file=None, line=None) -> None:
    """cnndsl's warnings as `cnndsl: warning: ...` lines; any other as Python shows it."""
    if not isinstance(message, CnnDslWarning):
        return fallback(message, category, filename, lineno, file, line)
    text = str(message)
    if isinstance(message, UnusedVariableWarning):
        text = text.replace(f"setting {message.name} ", f"-D {message.name} ")
    print(f"cnndsl: warning: {text}", file=sys.stderr)
