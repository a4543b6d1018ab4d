"""`cnndsl import`: an existing model as a folded .cnn spec. The sources (torchvision builders,
`module:callable` factories, ONNX files, cnndsl's own .pt files), the written spec (header,
settings, defs, the network) and its check against the imported network."""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path

from . import fold
from .errors import CnnDslError, UsageError, did_you_mean
from .expand import Options, expand
from .fmt import format_text
from .import_graph import CnnImportError, Network, paused_gc
from .limits import MAX_NUMBER, recursion_headroom
from .parser import parse
from .passes import check
from .shapes import Shape

TORCHVISION = "torchvision:"
DEFAULT_INPUT = (224, 224, 3)
NATIVE_INPUT = {"inception_v3": (299, 299, 3)}  # builders made for another size


@dataclass(frozen=True)
class Imported:
    """An imported spec: its text, the name errors call it, and its parameter count."""

    text: str
    name: str
    params: int | None = None


def is_import_source(spec) -> bool:
    """Whether spec-reading commands should import `spec` first: `torchvision:NAME`,
    `package.module:callable`, an existing .onnx or .pt file."""
    if not isinstance(spec, str) or "\n" in spec or len(spec) > 1000:
        return False
    if spec.startswith(TORCHVISION):
        return True
    if spec.lower().endswith((".onnx", ".pt")):
        return Path(spec).expanduser().is_file()
    module, sep, attr = spec.partition(":")
    return bool(sep) and not spec.startswith("zoo:") and not Path(spec).exists() and all(
        part.isidentifier() for part in module.split(".")) and all(
        part.isidentifier() for part in attr.split("."))


def import_spec(source: str, *, input=None, args: dict | None = None) -> Imported:
    """The spec for a model source (see is_import_source); `input` is (H, W, C) and `args`
    the keyword arguments of the builder or factory."""
    path = Path(source).expanduser()
    if source.lower().endswith(".pt") and path.is_file():
        from .artifacts import read_pt

        payload = read_pt(path)
        return Imported(payload["spec"], payload["spec_name"])
    if source.lower().endswith(".onnx"):
        if not path.is_file():
            raise UsageError(f"no such file: {source}")
        from .import_onnx import network

        return write_spec(network(path, source, input), source)
    model, dims = build_model(source, args or {}, input)
    from .import_torch import network

    return write_spec(network(model, Shape.volume(*dims), source), source)


def build_model(source: str, args: dict, input):
    """(the torch module a source names, the input size (H, W, C) to trace it at)."""
    import torch

    if source.startswith(TORCHVISION):
        import torchvision

        name = source[len(TORCHVISION):]
        known = torchvision.models.list_models(module=torchvision.models)
        if name not in known:
            hint = did_you_mean(name, known)
            raise UsageError(f"torchvision has no classification model `{name}`" +
                             (f"; did you mean `{hint}`?" if hint else ""))
        model = torchvision.models.get_model(name, weights=None, **args)
        dims = input or NATIVE_INPUT.get(name, DEFAULT_INPUT)
    else:
        module_name, _, attr = source.partition(":")
        try:
            target = importlib.import_module(module_name)
        except ImportError as exc:
            raise UsageError(f"cannot import {module_name}: {exc}") from None
        for part in attr.split("."):
            if not hasattr(target, part):
                raise UsageError(f"{module_name} has no `{attr}`")
            target = getattr(target, part)
        if not callable(target):
            raise UsageError(f"{source} is not callable")
        model = target(**args)
        dims = input or DEFAULT_INPUT
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"{source} gave a {type(model).__name__}, not a torch.nn.Module")
    return model, tuple(dims)


def parse_arg(text: str) -> tuple[str, object]:
    """`--arg name=value`: a whole number, a decimal, true/false/none, or a word."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not name.isidentifier():
        raise UsageError(f"--arg expects NAME=VALUE, e.g. --arg num_classes=10 (got {text!r})")
    words = {"true": True, "false": False, "none": None}
    if raw.lower() in words:
        return name, words[raw.lower()]
    for cast in (int, float):
        try:
            value = cast(raw)
        except ValueError:
            continue
        if abs(value) > MAX_NUMBER:
            raise UsageError(f"--arg {name}: numbers are limited to {MAX_NUMBER:.0e}")
        return name, value
    return name, raw


# -- the written spec ------------------------------------------------------------------------

def write_spec(net: Network, source: str) -> Imported:
    """The folded spec of an imported network, checked: it must build the network's
    parameters and its stochastic depth rates, layer by layer; if the folded form does not
    (a rate written by `index(block)` that counts other calls), the rates are written as
    parameters, and failing that the unfolded chain is written (if that does not either,
    it is a bug in cnndsl)."""
    with paused_gc():
        return _write_spec(net, source)


def _write_spec(net: Network, source: str) -> Imported:
    expected = _parameters(net)
    rates = [rate for op in net.ops[1:] for rate in _rates(op.kind, op.resolved)]
    last = net.ops[-1]
    while len(last.inputs) == 1 and not last.kind.weighted and last.index and \
            net.ops[last.inputs[0]].shape == last.shape:
        last = net.ops[last.inputs[0]]  # FC(classes) - SOFTMAX: the FC gives the classes
    classes_at = None
    if not last.shape.is_volume:
        key = next((k for k, v in last.args.items() if v == last.shape.c), None)
        classes_at = (last, key) if key and last.kind.weighted else None
    attempts = ("folded", "rates as parameters", "flat") if rates else ("folded", "flat")
    for attempt in attempts:
        if attempt == "flat":
            defs, top = [], fold.compress(fold.structure(net))
        else:
            defs, top = fold.fold(net, rates=attempt == "folded")
        body = _definitions(defs) + [fold.top_level(top, classes_at)]
        for rounding in (False, True):
            text = _assemble(net, source, expected, body, classes_at, rounding, len(defs))
            built = _built(text, source)
            if built is not None and built[0] == expected and _same_rates(built[1], rates):
                return Imported(text, source, expected)
    raise CnnDslError(f"the spec imported from {source} does not build its network "
                      f"({expected:,} parameters): a bug in cnndsl import")


def _definitions(defs: list) -> list[str]:
    lines = []
    for family in defs:
        params = ", ".join(name if default is None else f"{name}={fold.literal(default)}"
                           for name, default in family.params)
        head = f"def {family.name}({params})" if params else f"def {family.name}"
        lines.append(f"{head} = {family.body}")
    return lines


def _assemble(net: Network, source: str, expected: int, body: list[str], classes_at,
              rounding: bool, n_defs: int) -> str:
    shape = net.ops[0].shape
    layers = len(net.ops) - 1
    lines = [f"# {source}, imported by `cnndsl import`: {expected:,} parameters.",
             (f"# {layers:,} layers from {_origin(source)}; repeated blocks folded into "
             f"{n_defs} def{'s' * (n_defs != 1)}.")]
    lines += [f"# {note}" for note in net.notes]
    lines.append(f"input {shape.h}x{shape.w}x{shape.c}" if shape.is_volume else
                 f"input {shape.c}")
    if classes_at:
        lines.append(f"classes = {classes_at[0].shape.c}")
    if rounding:
        lines.append("rounding = floor")
    text = "\n".join(lines + body) + "\n"
    try:
        return format_text(text, source)
    except CnnDslError:
        return text  # the check below reports it


def _origin(source: str) -> str:
    if source.lower().endswith(".onnx"):
        return "the ONNX graph"
    return "torch.fx's trace"


def _parameters(net: Network) -> int:
    total = 0
    for op in net.ops[1:]:
        ins = [net.ops[i].shape for i in op.inputs]
        total += op.kind.count_params(op.resolved, ins, op.shape)[0]
    return total


def _rates(kind, values: dict) -> list[float]:
    """The layer's per-block rates (stochastic depth's p): its kind's block_rate parameters."""
    return [values[q.name] for q in kind.params if q.block_rate]


def _built(text: str, name: str) -> tuple[int, list[float]] | None:
    """The parameter count of spec text and its stochastic depth rates in data-flow order,
    or None where it does not check."""
    try:
        with recursion_headroom():
            graph = check(expand(parse(text, name), Options()))
    except CnnDslError:
        return None
    rates = [rate for node in graph.order() for rate in _rates(node.kind, node.params)]
    return graph.totals["params"], rates


def _same_rates(ours: list[float], theirs: list[float]) -> bool:
    return len(ours) == len(theirs) and all(
        math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in zip(ours, theirs))


__all__ = ["CnnImportError", "Imported", "build_model", "import_spec", "is_import_source",
           "parse_arg", "write_spec"]
