"""The pipeline as functions: spec (path or text) -> parsed -> expanded -> checked IR."""
from __future__ import annotations

import contextlib
import gc
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import passes
from .errors import UsageError
from .expand import DEFAULT_MAX_LAYERS, Options, expand
from .ir import DiGraph
from .limits import recursion_headroom
from .parser import parse

if TYPE_CHECKING:
    import networkx

MAX_SPEC_BYTES = 4 * 1024 * 1024  # a spec larger than this is refused before it is read
_DIMS = re.compile(r"^\s*(\d+)\s*(?:[x×]\s*(\d+)\s*(?:[x×]\s*(\d+))?)?\s*$", re.I)


def read_spec(spec: str | Path, max_bytes: int | None = None) -> tuple[str, str]:
    """(text, name) for a spec given as a path, `-` (stdin), `zoo:NAME` or the spec text.

    Specs larger than `max_bytes` are refused before they are read.
    """
    limit = max_bytes or MAX_SPEC_BYTES
    if isinstance(spec, Path):
        return _read_file(spec, limit), str(spec)
    if spec == "-":
        data = sys.stdin.buffer.read(limit + 1) if hasattr(sys.stdin, "buffer") else \
            sys.stdin.read(limit + 1).encode("utf-8")
        _check_size(len(data), limit, "<stdin>")
        return _decode(data, "<stdin>"), "<stdin>"
    if spec.startswith("zoo:") and "\n" not in spec:
        from . import modelzoo

        return modelzoo.read(spec), spec
    if spec.strip() and "\n" not in spec and len(spec) < 4096:
        path = Path(spec).expanduser()
        try:
            if path.is_dir():
                raise UsageError(f"{spec} is a directory, not a spec file")
            if path.exists():  # a file, or a pipe such as <(...)
                return _read_file(path, limit), spec
        except OSError:
            pass
        # No spec text starts with a path's first characters.
        if spec.endswith(".cnn") or spec.startswith(("/", "./", "../", "~")):
            raise UsageError(f"no such spec file: {spec}")
    _check_size(len(spec.encode("utf-8", "surrogatepass")), limit, "the spec text")
    return spec, "<spec>"


def _check_size(size: int, limit: int, what: str) -> None:
    if size > limit:
        from .errors import CnnLimitError, Source, Span

        where = Span(Source(what, ""), 1, 1, 1, 2)  # no text was read: just the file name
        raise CnnLimitError(f"the spec is {size:,} bytes or more; the limit is {limit:,}",
                            where, help="raise the limit with --max-bytes")


def _read_file(path: Path, limit: int) -> str:
    try:
        _check_size(path.stat().st_size, limit, str(path))
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    _check_size(len(data), limit, str(path))
    return _decode(data, str(path))


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name} is not UTF-8 text (byte {exc.start})") from None


def parse_dims(text: str) -> tuple[int, ...]:
    """`32x32x3` -> (32, 32, 3); `28x28` -> (28, 28, 1); `3072` -> (3072,)."""
    m = _DIMS.match(str(text))
    if not m:
        raise UsageError(f"not a size: {text!r} (write HxWxC, e.g. 32x32x3)")
    dims = tuple(int(g) for g in m.groups() if g is not None)
    if len(dims) == 2:
        dims += (1,)
    if any(d <= 0 for d in dims):
        raise UsageError(f"sizes must be positive: {text!r}")
    return dims


def make_options(variables: dict | None = None, *, input=None, classes=None,
                 max_layers: int | None = None, drop_optional=False) -> Options:
    dims = None
    if input is not None:
        dims = parse_dims(input) if isinstance(input, str) else tuple(input)
    return Options(defines=dict(variables or {}), input=dims, classes=classes,
                   max_layers=max_layers or DEFAULT_MAX_LAYERS, drop_optional=drop_optional)


def build_graph(spec: str | Path, *, input=None, classes: int | None = None,
                max_layers: int | None = None, drop_optional=False,
                max_bytes: int | None = None, **variables) -> networkx.DiGraph:
    """Parse, expand and shape-check a spec: the checked layer graph, as a networkx.DiGraph.

    `spec` is a path, `-` or the spec text; keyword variables override the spec's
    (`N=3`, `rounding="floor"`). Raises CnnDslError with a located diagnostic.
    """
    return check_spec(spec, input=input, classes=classes, max_layers=max_layers,
                      drop_optional=drop_optional, max_bytes=max_bytes,
                      **variables).to_networkx()


def check_spec(spec: str | Path, *, input=None, classes: int | None = None,
               max_layers: int | None = None, drop_optional=False,
               max_bytes: int | None = None, **variables) -> DiGraph:
    """build_graph() as the pipeline keeps it: a cnndsl.ir.DiGraph (no networkx import)."""
    text, name = read_spec(spec, max_bytes)
    options = make_options(variables, input=input, classes=classes, max_layers=max_layers,
                           drop_optional=drop_optional)
    return check_text(text, name, options)


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while the pipeline builds a spec.

    Parsing and expanding allocate millions of small objects that all stay alive, so each
    full collection re-walks everything built so far for nothing: at 100,000 layers that
    doubled the time (bench/scale.py). Cycles made meanwhile are collected afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def check_text(text: str, name: str, options: Options) -> DiGraph:
    with gc_paused(), recursion_headroom():
        return check_program(parse(text, name), options)


def check_program(program, options: Options) -> DiGraph:
    """Expand and check an already parsed spec (sweeps parse once, check many times).

    The evaluator recurses as deep as the spec's definitions nest; the limits it enforces
    (cnndsl.limits) need more than Python's default 1,000 frames, so every entry point to the
    pipeline, the command line's included, runs inside recursion_headroom()."""
    with gc_paused(), recursion_headroom():
        return passes.check(expand(program, options))


def layer_rows(graph: DiGraph) -> list[dict]:
    """The checked layers in data-flow order, as plain dicts."""
    from . import layers

    rows = []
    for v in passes.data_flow_order(graph):
        d = graph.nodes[v]
        rows.append({"id": v, "name": d["name"], "kind": d["kind"],
                     "label": layers.get(d["kind"]).label(d["params"]),
                     "shape": d["shape"], "params": d["n_params"], "macs": d["macs"],
                     "rf": d["rf"]})
    return rows
