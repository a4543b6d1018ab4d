"""The pipeline as functions: spec (path or text) -> parsed -> expanded -> checked IR, and
the entry points built on it (compile, load, the zoo's listing). The command line is a thin
shell over these; the backends below never import this module."""
from __future__ import annotations

import math
import os
import re
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from . import ast, passes
from .errors import ShadowedLayerWarning, UnusedVariableWarning, UsageError, did_you_mean
from .expand import DEFAULT_MAX_LAYERS, Options, expand, free_names, parameter_owners
from .ir import Graph
from .limits import MAX_NUMBER, gc_paused, recursion_headroom
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
    if _is_model_source(spec):
        # torchvision:NAME, package.module:callable, a .onnx or a .pt file: imported first,
        # so every command reads an existing model (torch is loaded for these only)
        from .importer import import_spec

        imported = import_spec(spec)
        return imported.text, imported.name
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


def _is_model_source(spec: str) -> bool:
    """A source `cnndsl import` reads; decided without importing torch or the importer's
    dependencies (the check is in cnndsl.importer, which imports no torch at load)."""
    from .importer import is_import_source

    return is_import_source(spec)


def spec_source(spec: str | Path | None = None, *, text: str | None = None,
                path: str | Path | None = None, max_bytes: int | None = None
                ) -> tuple[str, str]:
    """(text, name) from exactly one of: `spec`, guessed as read_spec() does (a path, `-`,
    `zoo:NAME` or the text itself); `text=`, always the spec text, never opened as a file;
    `path=`, always a file. The guess opens any existing file a one-line string names, so
    text from someone else (a web form, a message) must be passed as `text=`: otherwise
    `/proc/self/environ` is read and its first line echoed in the error (issue 17, F10)."""
    given = [name for name, value in (("spec", spec), ("text", text), ("path", path))
             if value is not None]
    if len(given) != 1:
        raise TypeError("give the spec once: as `spec` (a path, '-', zoo:NAME or the text, "
                        "guessed), `text=` or `path=`" + (f"; got {', '.join(given)}"
                                                          if given else ""))
    limit = max_bytes or MAX_SPEC_BYTES
    if text is not None:
        if not isinstance(text, str):
            raise TypeError(f"text= takes the spec text as a str, not {type(text).__name__}")
        _check_size(len(text.encode("utf-8", "surrogatepass")), limit, "the spec text")
        return text, "<spec>"
    if path is not None:
        file = Path(path)
        if file.is_dir():
            raise UsageError(f"{path} is a directory, not a spec file")
        return _read_file(file, limit), str(path)
    return read_spec(spec, max_bytes)


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
        return name, check_define(name, _integer(raw, f"-D {name}"))
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        return name, check_define(name, value)
    if _NAME.match(raw):
        return name, Symbol(raw)
    raise UsageError(f"-D {name}: the value must be a number or a word, not {raw!r}")


def check_define(name: str, value):
    """A variable given from outside the spec, held to the limits of a number written in it:
    `-D N=1e300` or `N=10**30` from the API went around the 10^12 limit (issue 17, F14)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and (
            not math.isfinite(value) or abs(value) > MAX_NUMBER):
        shown = f"{value:g}" if isinstance(value, float) else f"{value:.3g}"
        why = "not a finite number" if not math.isfinite(value) else \
            f"numbers are limited to {MAX_NUMBER:.0e}, as in a spec"
        raise UsageError(f"{name}={shown}: {why}")
    return value


def input_dims(input) -> tuple[int, ...]:
    """`input=` as the API takes it: `HxWxC` text, or 1 or 3 positive whole numbers (2 are
    H and W with one channel), as the text form reads. `(8, 8)` was taken as a vector of 8
    and `(1.5, 2, 3)` reached the shape arithmetic (issue 17, F23)."""
    if isinstance(input, str):
        return parse_dims(input)
    try:
        dims = tuple(input)
    except TypeError:
        dims = None
    if dims is None or len(dims) not in (1, 2, 3) or any(
            isinstance(d, bool) or not isinstance(d, int) or not 0 < d <= MAX_NUMBER
            for d in dims):
        raise UsageError(f"input must be HxWxC text or 1 to 3 positive whole numbers (H, W, "
                         f"C; H and W alone mean one channel), not {input!r}")
    return dims + (1,) if len(dims) == 2 else dims


def make_options(variables: dict | None = None, *, input=None, classes=None,
                 max_layers: int | None = None, drop_optional=False) -> Options:
    dims = None
    if input is not None:
        dims = input_dims(input)
    for name, value in (variables or {}).items():
        check_define(name, value)
    if classes is not None:
        check_define("classes", classes)
    return Options(defines=dict(variables or {}), input=dims, classes=classes,
                   max_layers=max_layers or DEFAULT_MAX_LAYERS, drop_optional=drop_optional)


def build_graph(spec: str | Path | None = None, *, text: str | None = None,
                path: str | Path | None = None, input=None, classes: int | None = None,
                max_layers: int | None = None, drop_optional=False,
                max_bytes: int | None = None, **variables) -> networkx.DiGraph:
    """Parse, expand and shape-check a spec: the checked layer graph, as a networkx.DiGraph.

    `spec` is a path, `-` or the spec text, guessed; `text=` is always the text (the safe
    form for text you did not write) and `path=` always a file. Keyword variables override
    the spec's (`N=3`, `rounding="floor"`). Raises CnnDslError with a located diagnostic.
    """
    return check_spec(spec, text=text, path=path, input=input, classes=classes,
                      max_layers=max_layers, drop_optional=drop_optional,
                      max_bytes=max_bytes, **variables).to_networkx(network_class())


def network_class():
    """The networkx.DiGraph subclass build_graph returns: it shows itself in Jupyter."""
    from .notebook import Network

    return Network


def check_spec(spec: str | Path | None = None, *, text: str | None = None,
               path: str | Path | None = None, input=None, classes: int | None = None,
               max_layers: int | None = None, drop_optional=False,
               max_bytes: int | None = None, **variables) -> Graph:
    """build_graph() as the pipeline keeps it: the typed cnndsl.ir.Graph (no networkx import)."""
    text, name = spec_source(spec, text=text, path=path, max_bytes=max_bytes)
    options = make_options(variables, input=input, classes=classes, max_layers=max_layers,
                           drop_optional=drop_optional)
    return check_text(text, name, options)


def check_text(text: str, name: str, options: Options) -> Graph:
    """Parse and check spec text; a variable the spec never uses is an UnusedVariableWarning
    (the command line prints it as `cnndsl: warning: ...`)."""
    with gc_paused(), recursion_headroom():
        program = parse(text, name)
        graph = check_program(program, options)
    warn_unused_variables(program, graph.unused_defines)
    for name, layer, span in graph.shadowed:
        warnings.warn(ShadowedLayerWarning(name, layer, span), stacklevel=_outside_cnndsl())
    return graph


def warn_unused_variables(program, names) -> None:
    """One UnusedVariableWarning per name, with the closest variable the spec does read (not
    a function, layer or block name: `-D foo=3` is not a typo for `floor`), or the defs whose
    parameter it only is."""
    if not names:
        return
    for name in names:
        owners = parameter_owners(program, name)
        hint = None if owners else did_you_mean(name, settable_names(program))
        warn(UnusedVariableWarning(name, hint, owners))


def warn(warning: Warning) -> None:
    """Issue one of cnndsl's warnings at the caller's line outside the package."""
    warnings.warn(warning, stacklevel=_outside_cnndsl())


def settable_names(program) -> set[str]:
    """The variables a spec reads that -D could set: its assignments, the settings, and the
    free names it leaves to the caller (N, M, K of the lecture's pattern)."""
    from . import functions, layers
    from .values import BUILTINS, SETTINGS

    defs = {s.name for s in program.statements if isinstance(s, ast.Def)}
    assigned = {s.name for s in program.statements if isinstance(s, ast.Assign)}
    free = {n for n in free_names(program) if n not in defs and not layers.lookup(n)
            and not functions.lookup(n) and n.lower() not in BUILTINS}
    return assigned | free | set(SETTINGS)


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


def compile(spec=None, *, text: str | None = None, path: str | Path | None = None, input=None,
            classes: int | None = None, device=None, dtype=None, seed: int | None = None,
            logits: bool = False, optimize: bool = False, max_layers: int | None = None,
            weights=None, runtime: str = "torch", flat: bool = False, memory_format=None,
            **variables) -> nn.Module:
    """Parse, check and build a spec as a torch.nn.Module (see docs/compile.md).

    The spec as build_graph() takes it: `spec` guessed, or `text=` / `path=`.
    `weights`: a state_dict file, a state_dict or a module whose tensors are copied onto the
    model by structure (cnndsl.transfer_weights), before `optimize` folds anything.
    `runtime="onnxruntime"`: an inference-only model with the module's interface, run by
    onnxruntime from the verified ONNX export (cnndsl.onnx_runtime).
    `flat=True`: one submodule per layer (a torch.fx GraphModule) instead of a class per def.
    `memory_format="channels_last"`: the weights, and the input on its way in, channels_last.
    """
    if runtime not in ("torch", "onnxruntime"):
        raise UsageError(f"unknown runtime {runtime!r}: torch or onnxruntime")
    text, name = spec_source(spec, text=text, path=path)
    model = compile_text(text, name, input=input, classes=classes,
                         device=device if runtime == "torch" else "cpu", dtype=dtype,
                         seed=seed, logits=logits, optimize=optimize and runtime == "torch",
                         max_layers=max_layers, weights=weights, flat=flat,
                         memory_format=memory_format, **variables)
    if runtime == "onnxruntime":
        from .onnx_runtime import to_onnxruntime

        return to_onnxruntime(model, device=str(device or "cpu"))
    return model


def compile_text(text: str, name: str, *, input=None, classes=None, device=None, dtype=None,
                 seed=None, logits=False, optimize=False, max_layers=None, weights=None,
                 flat=False, memory_format=None, **variables) -> nn.Module:
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
                        weights_name=weights_name, flat=flat, memory_format=memory_format)


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
                         flat=payload["flat"], **payload["variables"])
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
