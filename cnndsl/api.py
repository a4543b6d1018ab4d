"""The pipeline as functions: spec (path or text) -> parsed -> expanded -> checked IR, and
the entry points built on it (compile, load, the zoo's listing). The command line is a thin
shell over these; the backends below never import this module."""
from __future__ import annotations

import contextlib
import gc
import os
import re
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from . import ast, passes
from .errors import UnusedVariableWarning, UsageError, did_you_mean
from .expand import DEFAULT_MAX_LAYERS, Options, expand
from .ir import Graph
from .limits import recursion_headroom
from .parser import parse

if TYPE_CHECKING:
    import networkx
    from torch import nn

    from . import modelzoo

MAX_SPEC_BYTES = 4 * 1024 * 1024  # a spec larger than this is refused before it is read
_DIMS = re.compile(r"^\s*(\d+)\s*(?:[x×]\s*(\d+)\s*(?:[x×]\s*(\d+))?)?\s*$", re.I)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def read_spec(spec: str | Path, max_bytes: int | None = None) -> tuple[str, str]:
    """(text, name) for a spec given as a path, `-` (stdin), `zoo:NAME` or the spec text.

    Specs larger than `max_bytes` are refused before they are read.
    """
    limit = max_bytes or MAX_SPEC_BYTES
    if isinstance(spec, Path):
        return _read_file(spec, limit), str(spec)
    if spec == "-":
        if sys.stdin is None:  # started with stdin closed (`<&-`)
            raise UsageError("cannot read the spec from stdin: it is closed")
        try:
            data = sys.stdin.buffer.read(limit + 1) if hasattr(sys.stdin, "buffer") else \
                sys.stdin.read(limit + 1).encode("utf-8")
        except (OSError, ValueError) as exc:  # a bad descriptor, or closed in-process
            raise UsageError(f"cannot read the spec from stdin: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None
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
    dims = tuple(_integer(g, text) for g in m.groups() if g is not None)
    if len(dims) == 2:
        dims += (1,)
    if any(d <= 0 for d in dims):
        raise UsageError(f"sizes must be positive: {text!r}")
    return dims


def _integer(digits: str, what: str) -> int:
    """int(digits), or a UsageError past Python's 4,300-digit conversion limit."""
    try:
        return int(digits)
    except ValueError:
        raise UsageError(f"{what[:40]}: a number of {len(digits.strip()):,} digits is "
                         "too large") from None


def parse_define(text: str):
    """`N=3` -> ("N", 3); values are integers, numbers or bare words (floor, same).

    The command line's `-D NAME=VALUE`; sweeps read each value of a list with it too.
    """
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not _NAME.match(name) or not raw:
        raise UsageError(f"-D expects NAME=VALUE, e.g. -D N=3 (got {text!r})")
    from .layers import Symbol

    if re.fullmatch(r"-?\d+", raw):
        return name, _integer(raw, f"-D {name}")
    try:
        return name, float(raw)
    except ValueError:
        pass
    if _NAME.match(raw):
        return name, Symbol(raw)
    raise UsageError(f"-D {name}: the value must be a number or a word, not {raw!r}")


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
               max_bytes: int | None = None, **variables) -> Graph:
    """build_graph() as the pipeline keeps it: the typed cnndsl.ir.Graph (no networkx import)."""
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


def check_text(text: str, name: str, options: Options) -> Graph:
    """Parse and check spec text; a variable the spec never uses is an UnusedVariableWarning
    (the command line prints it as `cnndsl: warning: ...`)."""
    with gc_paused(), recursion_headroom():
        program = parse(text, name)
        graph = check_program(program, options)
    warn_unused_variables(program, graph.unused_defines)
    return graph


def warn_unused_variables(program, names) -> None:
    """One UnusedVariableWarning per name, with the closest name the spec does use."""
    if not names:
        return
    used = {n.id for n in ast.walk(program.statements) if isinstance(n, ast.Name)}
    for name in names:
        warnings.warn(UnusedVariableWarning(name, did_you_mean(name, used)),
                      stacklevel=_outside_cnndsl())


def _outside_cnndsl() -> int:
    """The stacklevel of the first caller outside this package: a warning names the user's
    line (and Python shows it once per line), however deep inside cnndsl it was raised."""
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here):
        frame, level = frame.f_back, level + 1
    return level


def check_program(program, options: Options) -> Graph:
    """Expand and check an already parsed spec (sweeps parse once, check many times).

    The evaluator recurses as deep as the spec's definitions nest; the limits it enforces
    (cnndsl.limits) need more than Python's default 1,000 frames, so every entry point to the
    pipeline, the command line's included, runs inside recursion_headroom()."""
    with gc_paused(), recursion_headroom():
        return passes.check(expand(program, options))


def layer_rows(graph: Graph) -> list[dict]:
    """The checked layers in data-flow order, as plain dicts."""
    return [{"id": n.id, "name": n.name, "kind": n.kind.name, "label": n.label(),
             "shape": n.shape, "params": n.n_params, "macs": n.macs, "rf": n.rf}
            for n in graph.order()]


# -- torch: compile and load (torch is imported on the first call, not with cnndsl) -----------

def spec_variables(variables: dict) -> dict:
    """Keyword variables as the expander wants them: words (str) become Symbols."""
    from .layers import Symbol

    return {k: Symbol(v) if isinstance(v, str) else v for k, v in variables.items()}


def compile(spec, *, input=None, classes: int | None = None, device=None, dtype=None,
            seed: int | None = None, logits: bool = False, optimize: bool = False,
            max_layers: int | None = None, weights=None, **variables) -> nn.Module:
    """Parse, check and build a spec as a torch.nn.Module (see docs/compile.md).

    `weights`: a state_dict file, a state_dict or a module whose tensors are copied onto the
    model by structure (cnndsl.transfer_weights), before `optimize` folds anything.
    """
    text, name = read_spec(spec)
    return compile_text(text, name, input=input, classes=classes, device=device, dtype=dtype,
                        seed=seed, logits=logits, optimize=optimize, max_layers=max_layers,
                        weights=weights, **variables)


def compile_text(text: str, name: str, *, input=None, classes=None, device=None, dtype=None,
                 seed=None, logits=False, optimize=False, max_layers=None, weights=None,
                 **variables) -> nn.Module:
    """compile() for spec text already read (`name` is what errors call it)."""
    from .torch_backend import build_module

    variables = spec_variables(variables)
    graph = check_text(text, name, make_options(variables, input=input, classes=classes,
                                                max_layers=max_layers))
    info = {"spec": text, "spec_name": name, "variables": dict(variables),
            "input": list(input) if isinstance(input, (tuple, list)) else input,
            "classes": classes}
    if isinstance(weights, (str, Path)):
        from .weights import load_weights

        weights, weights_name = load_weights(weights), str(weights)
    else:
        weights_name = "the weights"
    return build_module(graph, name, device=device, dtype=dtype, seed=seed, logits=logits,
                        optimize=optimize, info=info, weights=weights,
                        weights_name=weights_name)


def load(path: str | Path, *, device=None) -> nn.Module:
    """The module saved in a .pt file by cnndsl (rebuilt from its spec, then its weights
    loaded), or a TorchScript .ts file."""
    from . import artifacts

    path = Path(path)
    if path.suffix.lower() == ".ts":
        return artifacts.load_torchscript(path, device=device)
    payload = artifacts.read_pt(path)
    saved_input = payload["input"]
    model = compile_text(payload["spec"], payload["spec_name"],
                         input=tuple(saved_input) if isinstance(saved_input, list) else
                         saved_input, classes=payload["classes"], logits=payload["logits"],
                         optimize=payload["optimize"], dtype=payload["dtype"],
                         **payload["variables"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:  # names or shapes that are not the spec's
        detail = " ".join(str(exc).split())[:300]
        raise UsageError(f"{path} is damaged: its weights do not fit its spec "
                         f"({detail})") from None
    return model.to(device) if device is not None else model


# -- the model zoo's listing -----------------------------------------------------------------

def zoo_entry(name: str) -> modelzoo.Entry:
    """One bundled spec, checked, with its totals."""
    from . import modelzoo

    text = modelzoo.read(name)
    graph = check_text(text, modelzoo.PREFIX + name, make_options())  # a diagnostic names it
    totals = graph.totals
    return modelzoo.Entry(name=name, description=modelzoo.description(text),
                          layers=totals["layers"], params=totals["params"], macs=totals["macs"],
                          input=str(graph.context.input),
                          output=str(totals["output"]))


def zoo_entries() -> list[modelzoo.Entry]:
    """Every bundled spec, checked, in name order (a spec error propagates)."""
    from . import modelzoo

    return [zoo_entry(name) for name in modelzoo.names()]
