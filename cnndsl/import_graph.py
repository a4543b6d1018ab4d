"""An imported network before folding: its ops in data-flow order, each a layer kind with the
arguments a person would write, found by running the registry's recipes backwards.

A source (a traced PyTorch module, an ONNX file) describes each op in torch's vocabulary: a
`Form`, the torch.nn class (or tensor function) and its constructor arguments. Which layer
kind builds that form is not looked up in a table: every kind is tried with the form's
arguments read into its parameters (by parameter name and alias: PyTorch's `kernel_size`,
`out_channels`, `num_features` are aliases there), resolved against the op's input shape,
and kept when its own `recipe()` gives the same class and arguments back. So a kind added to
the registry is imported without touching this module. No torch here.
"""
from __future__ import annotations

import contextlib
import gc
import math
from dataclasses import dataclass, field

from . import layers
from .errors import CnnDslError
from .layers import REGISTRY, Context, LayerKind, Site, Symbol
from .layers.base import REQUIRED
from .shapes import Shape

MISSING = object()


@contextlib.contextmanager
def paused_gc():
    """The cyclic garbage collector off while a network is read or written: the many small
    objects an import makes (ops, forms, shapes) are not garbage, and collecting them as they
    pile up took nearly half of a 5,000-layer import (bench/import.py)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
# Constructor arguments that change no value: the language leaves them to the backend.
IGNORED = frozenset({"inplace"})


class CnnImportError(CnnDslError):
    """A model that has no .cnn form, located by the module path (or ONNX node) it names."""

    def __init__(self, message: str, where: str, help: str | None = None,
                 notes: tuple[str, ...] | list[str] = ()):
        super().__init__(message, None, help=help, notes=notes)
        self.where = where

    @property
    def location(self) -> str:
        return self.where


@dataclass(frozen=True)
class Form:
    """An op as its source says it: a torch.nn class name (`Conv2d`) or a tensor function
    (`add`, `cat`), its constructor arguments, and torch's defaults for those left out."""

    module: str
    kwargs: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)

    def describe(self) -> str:
        return f"nn.{self.module}" if self.module[:1].isupper() else f"torch.{self.module}"


@dataclass
class Op:
    """One layer of the imported network."""

    index: int
    kind: LayerKind | None  # None: the network's input
    args: dict  # what a spec writes: {param: value}, defaults left out
    resolved: dict  # every parameter, resolved against the input shape
    inputs: list[int]
    shape: Shape
    path: str = ""  # the module path (`layer1.0.conv1`) or ONNX node name it came from
    # The modules around it, outermost first: (path, class name, is a plain container).
    owners: tuple[tuple[str, str, bool], ...] = ()


@dataclass
class Network:
    """The ops in data-flow order (op 0 is the input, the last the output)."""

    ops: list[Op]
    context: Context
    source: str  # where it came from, for the header
    notes: list[str] = field(default_factory=list)  # what the import left out, and why

    def users(self) -> dict[int, list[int]]:
        users: dict[int, list[int]] = {op.index: [] for op in self.ops}
        for op in self.ops:
            for i in op.inputs:
                if op.index not in users[i]:
                    users[i].append(op.index)
        return users


def same_value(a, b) -> bool:
    """Argument values compared as torch reads them: 3 is (3, 3), 1e-3 is 0.001."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        a = tuple(a) if isinstance(a, (list, tuple)) else None if isinstance(b, str) else a
        b = tuple(b) if isinstance(b, (list, tuple)) else None if isinstance(a, str) else b
        if not isinstance(a, tuple):
            a = (a,) * len(b)
        if not isinstance(b, tuple):
            b = (b,) * len(a)
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b or a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    return a == b


def recipe_matches(recipe, form: Form) -> list[str]:
    """The arguments where a kind's recipe and the source's form differ ([] when they agree;
    ["class"] when they are not even the same torch class)."""
    if (recipe.function or recipe.module) != form.module:
        return ["class"]
    differ = []
    for key in sorted(set(recipe.kwargs) | set(form.kwargs)):
        if key in IGNORED:
            continue
        ours = recipe.kwargs.get(key, form.defaults.get(key, MISSING))
        theirs = form.kwargs.get(key, form.defaults.get(key, MISSING))
        if ours is MISSING or theirs is MISSING or not same_value(ours, theirs):
            differ.append(key)
    return differ


def _coerce(param, value):
    """A torch argument value as the kind's parameter holds it, or MISSING."""
    if param.type in ("pair", "pad"):
        if isinstance(value, str):
            return Symbol(value) if param.type == "pad" and value in ("same", "valid") \
                else MISSING
        if isinstance(value, (list, tuple)):
            return tuple(int(v) for v in value) if len(value) == 2 else MISSING
        return (int(value), int(value)) if isinstance(value, (int, float)) else MISSING
    if param.type == "bool":
        return bool(value)
    if param.type in ("count", "int", "nonneg"):
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
            else MISSING
    if param.type in ("float", "prob"):
        return float(value) if isinstance(value, (int, float)) else MISSING
    return MISSING


def params_from(kind: LayerKind, form: Form) -> dict:
    """The kind's parameters read from the form's arguments, by name and alias."""
    values = {p.name: (None if p.default is REQUIRED else p.default) for p in kind.params}
    given = {k.lower(): v for k, v in {**form.defaults, **form.kwargs}.items()}
    for param in kind.params:
        for key in (param.name, *param.aliases):
            if key.lower() in given:
                value = _coerce(param, given[key.lower()])
                if value is not MISSING:
                    values[param.name] = value
                break
    return values


def _attempt(kind: LayerKind, p: dict, ins: list[Shape], ctx: Context, site: Site):
    """(resolved, output shape, recipe) for these arguments, or None where they do not fit."""
    try:
        resolved = kind.resolve(dict(p), ins, ctx, site)
        out = kind.infer(resolved, ins, ctx, site)
        return resolved, out, kind.recipe(resolved, ins, out)
    except (CnnDslError, NotImplementedError, KeyError, TypeError, ValueError,
            ZeroDivisionError):
        return None


# Always written, even where the kind's bare default would give the same: a bare `CONV`
# reads as the lecture's 3x3 pattern, not as this layer's window.
KEPT = frozenset({"kernel"})


def _elsewhere(ctx: Context) -> Context:
    """Another spec's settings: an argument left out must not depend on them (a bare CONV's
    filters come from `width`, a bare FC's units from `classes` or `fc_width`)."""
    return Context(input=ctx.input, classes=(ctx.classes or 0) + 7, width=ctx.width * 3 + 1,
                   max_width=ctx.max_width * 5 + 3, fc_width=ctx.fc_width * 3 + 1,
                   rounding=ctx.rounding)


def _written(kind: LayerKind, p: dict, form: Form, ins, ctx, site, out: Shape) -> dict:
    """The fewest arguments that still build the form, in this spec and any other: each one
    set back to its default while the recipe and the output stay the same. A keyword-only
    spelling (`ceil_mode`) is traded for the ordinary parameter it resolves into
    (`round=ceil`) where that is enough."""
    other = _elsewhere(ctx)

    def fits(values):
        for context in (ctx, other):
            got = _attempt(kind, values, ins, context, site)
            if got is None or got[1] != out or recipe_matches(got[2], form):
                return False
        return True

    defaults = {q.name: (None if q.default is REQUIRED else q.default) for q in kind.params}
    p = dict(p)
    order = sorted(kind.params, key=lambda q: not q.keyword_only)  # keyword-only go first
    for param in reversed(order):
        if p[param.name] != defaults[param.name] and param.name not in KEPT:
            trial = {**p, param.name: defaults[param.name]}
            if fits(trial):
                p = trial
    for param in kind.params:
        if param.keyword_only and p[param.name] != defaults[param.name]:
            trial = {**p, param.name: defaults[param.name]}
            resolved = _attempt(kind, p, ins, ctx, site)[0]
            for other_param in kind.params:
                name = other_param.name
                if not other_param.keyword_only and trial[name] is None and \
                        resolved.get(name) is not None:
                    swapped = {**trial, name: resolved[name]}
                    if fits(swapped):
                        p = swapped
                        break
    return {name: value for name, value in p.items() if value != defaults[name]}


def find_kind(form: Form, ins: list[Shape], ctx: Context, path: str, source: str
              ) -> tuple[LayerKind, dict, dict, Shape]:
    """The layer kind that builds `form` on inputs `ins`: (kind, written arguments,
    resolved arguments, output shape). Of several, the one written with the fewest
    arguments, then the most specific (fewest parameters): a depthwise Conv2d is
    `DWCONV(3)`, not `CONV(32, 3, groups=32)`. CnnImportError when none does."""
    site = Site(None, path or form.module)
    found, near = [], []
    for kind in REGISTRY.values():
        if kind.family == "input":
            continue
        if not (kind.min_inputs <= len(ins) <= (kind.max_inputs or len(ins))):
            continue
        p = params_from(kind, form)
        got = _attempt(kind, p, ins, ctx, site)
        if got is None:
            continue
        resolved, out, recipe = got
        differ = recipe_matches(recipe, form)
        if differ:
            if differ != ["class"]:
                near.append((kind, differ))
            continue
        args = _written(kind, p, form, ins, ctx, site, out)
        found.append(((len(args), len(kind.params), kind.name), kind, args, resolved, out))
    if found:
        _, kind, args, resolved, out = min(found, key=lambda f: f[0])
        return kind, args, resolved, out
    notes = [f"{kind.name} would need {', '.join(differ)} as torch's default"
             for kind, differ in near]
    detail = ""
    if near:
        keys = sorted({key for _, differ in near for key in differ})
        detail = " with " + ", ".join(f"{k}={form.kwargs.get(k, '?')!r}" for k in keys)
    raise CnnImportError(f"{form.describe()}{detail} has no .cnn form",
                         f"{source}: {path}" if path else source, notes=notes,
                         help="the layers a spec can write are listed in docs/language.md")


def merge_kind_for(function: str) -> LayerKind | None:
    """The merge kind whose recipe is this tensor function (`add`, `cat`), if any."""
    for builtin in layers.merge_builtins():
        kind = layers.merge_kind(builtin)
        try:
            if kind.recipe({}, [], None).function == function:
                return kind
        except (KeyError, TypeError, AttributeError):
            continue
    return None


@dataclass(frozen=True)
class Entry:
    """One op as a source reads it, before its kind is found."""

    key: object  # the source's name for its value (an fx node, an ONNX tensor name)
    form: Form
    inputs: tuple  # the keys of its inputs, in order
    path: str = ""
    owners: tuple[tuple[str, str, bool], ...] = ()


def build_network(entries: list[Entry], input_key, input_shape: Shape, output_key,
                  source: str) -> Network:
    """The ops of `entries` (in data-flow order) with their kinds and shapes; reshapes an FC
    does by itself are left out, as are ops the output does not use."""
    ctx = Context(input=input_shape, rounding="floor")
    ops = [Op(0, layers.input_kind(), {}, {}, [], input_shape, "input")]
    index = {input_key: 0}
    found: dict = {}
    for entry in entries:
        inputs = [index[key] for key in entry.inputs]
        if entry.form.module == "mul" and len(inputs) == 2 and \
                ops[inputs[0]].shape.numel < ops[inputs[1]].shape.numel:
            inputs.reverse()  # gate: the input first, the branch's weights second
        shapes = [ops[i].shape for i in inputs]
        # deep models repeat a few forms thousands of times: each is looked up once
        key = (entry.form.module, repr(sorted(entry.form.kwargs.items())),
               repr(sorted(entry.form.defaults.items())), tuple(shapes))
        if key not in found:
            found[key] = find_kind(entry.form, shapes, ctx, entry.path, source)
        kind, args, resolved, out = found[key]
        args, resolved = dict(args), dict(resolved)
        ops.append(Op(len(ops), kind, args, resolved, inputs, out, entry.path, entry.owners))
        index[entry.key] = len(ops) - 1
    net = Network(_used(ops, index[output_key]), ctx, source)
    _drop_flattens(net)
    return net


def _used(ops: list[Op], output: int) -> list[Op]:
    """The ops the output depends on, renumbered in order."""
    live, stack = set(), [output]
    while stack:
        i = stack.pop()
        if i not in live:
            live.add(i)
            stack.extend(ops[i].inputs)
    kept = [op for op in ops if op.index in live]
    renumber = {op.index: n for n, op in enumerate(kept)}
    for op in kept:
        op.index, op.inputs = renumber[op.index], [renumber[i] for i in op.inputs]
    return kept


def _drop_flattens(net: Network) -> None:
    """`torch.flatten(x, 1)` before a Linear: FC flattens a volume itself (its recipe says
    so), so the spec writes none, as a person would; layers between them that keep any
    shape (dropout) see the volume instead."""
    users = net.users()
    dropped = set()
    for op in net.ops:
        if op.index == 0 or op.args or op.kind.weighted or len(op.inputs) != 1:
            continue
        before = net.ops[op.inputs[0]]
        if not (before.shape.is_volume and not op.shape.is_volume
                and op.shape.numel == before.shape.numel):
            continue
        redone = _without(net, users, op.index, before.shape)
        if redone is not None:
            for after, resolved, shape in redone:
                after.resolved, after.shape = resolved, shape
            first = net.ops[users[op.index][0]]
            first.inputs = [before.index]
            dropped.add(op.index)
    if dropped:
        net.ops = _used(net.ops, net.ops[-1].index)


def _without(net: Network, users, index: int, volume: Shape):
    """The ops after a flatten, re-resolved on the volume it flattened: [(op, resolved)] if
    they keep the volume up to one that flattens it itself with the same torch arguments."""
    redone, shape = [], volume
    while len(users[index]) == 1:
        op = net.ops[users[index][0]]
        if len(op.inputs) != 1:
            return None
        site = Site(None, op.path)
        p = {q.name: op.args.get(q.name, None if q.default is REQUIRED else q.default)
             for q in op.kind.params}
        old = _attempt(op.kind, p, [net.ops[op.inputs[0]].shape], net.context, site)
        new = _attempt(op.kind, p, [shape], net.context, site)
        if not (old and new) or new[2].module != old[2].module or \
                new[2].kwargs != old[2].kwargs:
            return None
        redone.append((op, new[0], new[1]))
        if new[1] == op.shape and new[2].flatten:
            return redone
        if new[1] != shape:
            return None
        index = op.index
    return None
