"""The grammar lark reads (grammar/cnn.lark with the layer kinds' paper tokens put in) and the
shared LALR parser built from it, with its per-user table cache. The cache is a pickle: only a
file no one else could have written is ever read (issue 17, F4)."""
from __future__ import annotations

import threading

from . import layers
from .postlex import _Continuations
from .to_ast import _transformer_class

_PAPER_TOKENS = "@PAPER_TOKENS@"


def _grammar_text() -> str:
    """The grammar lark reads: cnn.lark with the layer kinds' paper tokens put in."""
    from .resources import data_folder  # grammar/ is installed as cnndsl/grammar

    text = (data_folder("grammar", "grammar") / "cnn.lark").read_text(encoding="utf-8")
    assert _PAPER_TOKENS in text, "cnn.lark lost its PAPER_TOKEN placeholder"
    # `/` ends a lark regex literal
    return text.replace(_PAPER_TOKENS, layers.paper_token_pattern().replace("/", "\\/"))


def _cache_file(grammar: str) -> str | bool:
    """Where lark keeps its grammar analysis between runs (it would take 0.7 s each start),
    or False to build the tables in memory.

    A per-user directory, not a shared temp file: lark's cache is a pickle, and a file
    someone else could write must never be unpickled (issue 17, F4). So the folder must be
    reached only through directories no one else can change, be no symlink, be the user's
    own and writable by no one else; the file likewise. Anything else: no cache, silently.
    """
    import hashlib
    import os

    import lark

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(os.path.abspath(base), "cnndsl")
    digest = hashlib.sha256(grammar.encode()).hexdigest()[:16]
    path = os.path.join(folder, f"grammar-{digest}-lark{lark.__version__}.cache")
    try:
        if not _safe_ancestors(os.path.dirname(folder)):
            return False
        os.makedirs(folder, mode=0o700, exist_ok=True)
        if not _own_private(os.lstat(folder), directory=True):
            return False
        try:
            if not _own_private(os.lstat(path), directory=False):
                return False
        except FileNotFoundError:
            pass  # lark writes it, in a folder only this user can write
    except (OSError, ValueError):
        return False
    return path


def _own_private(st, *, directory: bool) -> bool:
    """lstat() of the cache folder or file: the kind expected (a symlink is neither), this
    user's, writable by no group or other."""
    import os
    import stat

    kind = stat.S_ISDIR if directory else stat.S_ISREG
    return kind(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


def _safe_ancestors(directory: str) -> bool:
    """Whether no other user can swap `directory`, or any folder on the way to it, for one of
    theirs: every folder on the path as written and on its resolved path belongs to this user
    or root, and is writable by no one else unless sticky (as /tmp is: there only an entry's
    owner may rename it). A symlink planted in a world-writable HOME fails here."""
    import os
    import stat

    uid = os.getuid()

    def chain(path: str):
        while True:
            yield path
            parent = os.path.dirname(path)
            if parent == path:
                return
            path = parent

    # Each folder that holds the next entry on the way (directory itself holds `cnndsl`)
    # decides who may replace that entry.
    for path in (*chain(directory), *chain(os.path.realpath(directory))):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue  # made by makedirs, inside a folder checked here
        if st.st_uid not in (uid, 0):
            return False
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return False
    return True


# Set by the command line (cli.run), which owns its process. lark imports `regex` and
# `interegular` when they are installed, about 40 ms together (a fifth of `cnndsl check`), and
# a parse from the cached LALR tables uses neither: regex serves `regex=True` grammars and
# interegular checks terminals for collisions while a grammar is analysed (a test does that
# in strict mode). A process of our own can let lark believe they are absent.
LEAN_LARK = False
_OPTIONAL = ("regex", "interegular")


def _import_lark():
    import sys

    if not LEAN_LARK or "lark" in sys.modules:
        import lark
        return lark
    hidden = [name for name in _OPTIONAL if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # `import name` raises ImportError
    try:
        import lark
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]  # later imports of them work as usual
    return lark


_build_lock = threading.Lock()
_parser = None


def _lark():
    """The shared parser. It holds no per-parse state: that is in `_current`, per thread."""
    global _parser
    if _parser is None:
        with _build_lock:  # threads starting together build it (and write the cache) once
            if _parser is None:
                _parser = _build()
    return _parser


def _build():
    Lark = _import_lark().Lark
    grammar = _grammar_text()  # the complete text: the cache file is named by its digest
    # The transformer runs inside the LALR parser: no parse tree is built at all.
    options = dict(parser="lalr", lexer="basic", postlex=_Continuations(),
                   maybe_placeholders=False, transformer=_transformer_class()())
    try:
        return Lark(grammar, cache=_cache_file(grammar), **options)
    except Exception:  # an unreadable or corrupt cache file: build from the grammar
        return Lark(grammar, cache=False, **options)
