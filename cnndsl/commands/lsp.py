"""`cnndsl lsp`: the language server for editors (docs/lsp.md), over stdin and stdout."""
from __future__ import annotations

from ..errors import UsageError


def register(sub) -> None:
    p = sub.add_parser("lsp", help="run the language server over stdio (for editors; "
                                   "see docs/lsp.md)")
    p.add_argument("--stdio", action="store_true",
                   help="talk over stdin and stdout (the default and only transport; "
                        "accepted because editors pass it)")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        import pygls  # noqa: F401 - present, or the user is told how to install it

        from ..lsp_server import serve
    except ImportError as exc:
        raise UsageError(f"the language server needs {exc.name}: pip install 'cnndsl[lsp]'"
                         ) from None
    serve()
    return 0
