"""The template tree of a compiled model's classes and its anti-unification: what each
attribute holds (a layer, a generated class's instance, nn.Sequential, a repeat's runs, an
optional shortcut), the common template of one class's instances, and their values slot by
slot. No torch here.

Instances whose structure agrees share one class (cnndsl.structure groups them); `unify`
finds their common template or raises Mismatch (a different number of repeat runs).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import lowering
from .pysource import Expr


class _Any:
    """The value of a slot an instance does not have (an absent shortcut, a repeat of 0)."""

    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()


class Value:
    """One number (or bool, tuple) of an instance's structure, with a name hint."""

    __slots__ = ("default", "hint", "value")

    def __init__(self, value, hint: str, default=ANY):
        self.value, self.hint, self.default = value, hint, default


# -- constructors: what an attribute holds ------------------------------------------------------

@dataclass(eq=False)
class Layer:
    """A torch layer (`nn.Conv2d(...)`) from a step's recipe."""

    step: lowering.Step
    keys: tuple[str, ...]
    values: list[Value]


@dataclass(eq=False)
class Call:
    """An instance of a generated class."""

    instance: Instance


@dataclass(eq=False)
class Seq:
    """nn.Sequential of constructors."""

    items: list


@dataclass(eq=False)
class Runs:
    """A repeat's iterations, equal neighbours folded into runs; None: no iteration here."""

    runs: list[tuple[object, Value]] | None


@dataclass(eq=False)
class Opt:
    """A residual's shortcut: a projection in some calls, the identity in others."""

    ctor: object | None
    present: Value


@dataclass(eq=False)
class Unit:
    """One statement of a forward: a layer, a tensor function or a submodule call."""

    kind: str  # "layer" | "function" | "flatten" | "module" | "shortcut" | "branch"
    base: str  # the attribute's name stem: conv, stage, repeat, branch2, shortcut
    ctor: object | None
    inputs: list
    output: object
    step: lowering.Step | None = None
    name: str = ""
    rank: float = -1  # its place among the attributes
    numbered: bool = True  # conv1, stage2; a named group keeps its name (`features`)

    def step_flattens(self) -> bool:
        return self.step is not None and self.step.flatten

    def detail(self) -> tuple:
        step = self.step
        if step is None:
            return ()
        return (step.op, step.function, step.flatten, step.accumulate,
                tuple(sorted(step.kwargs.items())) if step.op != "module" else ())


@dataclass(eq=False)
class Body:
    """What one instance holds: its attributes and its forward's data flow."""

    sequential: str  # "numbered" | "named" (an nn.Sequential class) | "" (a forward)
    attrs: list[tuple[str, object]]
    units: tuple  # (kind, name, local inputs, detail): equal for instances of one class
    shapes: list  # each unit's output shape (the model's shape comments)
    # each unit's output's tensor name (`X as skip`), if every instance gives it: the forward's
    # variable for it
    labels: tuple = ()


@dataclass(eq=False)
class Instance:
    args: dict
    in_channels: int
    body: Body
    defaulted: frozenset = frozenset()
    group: Group | None = None
    fingerprint: tuple = ()
    params: list = field(default_factory=list)  # the class's arguments for this call


@dataclass(eq=False)
class Param:
    name: str
    kind: str  # int, float, bool, tuple
    default: object = ANY


@dataclass(eq=False)
class Group:
    """The instances that share one class."""

    name: str | None  # the def's name; None: a branch or iteration with no def of its own
    template: Body
    instances: list[Instance] = field(default_factory=list)
    class_name: str = ""
    params: list[Param] = field(default_factory=list)
    exprs: list[Expr] = field(default_factory=list)  # one per slot of the template
    conditions: dict = field(default_factory=dict)  # id(Opt) -> the condition's Expr
    merged: dict = field(default_factory=dict)  # (id(Runs), i) -> runs i and i+1's count
    dropped: set = field(default_factory=set)  # slots whose expressions a merge replaced


# -- unification ----------------------------------------------------------------------------------

class Mismatch(Exception):
    pass


def unify(a, b):
    """The common structure of two constructors (a template), or Mismatch."""
    if a is None:
        return b
    if b is None:
        return a
    if type(a) is not type(b):
        raise Mismatch
    if isinstance(a, Layer):
        if (a.step.module, a.step.recipe.custom, a.keys) != (b.step.module, b.step.recipe.custom,
                                                             b.keys):
            raise Mismatch
        return a
    if isinstance(a, Call):
        if a.instance.group is not b.instance.group:
            raise Mismatch
        return a
    if isinstance(a, Seq):
        if len(a.items) != len(b.items):
            raise Mismatch
        return Seq([unify(x, y) for x, y in zip(a.items, b.items)])
    if isinstance(a, Runs):
        if a.runs is None or b.runs is None:
            return a if b.runs is None else b
        if len(a.runs) != len(b.runs):
            raise Mismatch
        return Runs([(unify(x, y), n) for (x, n), (y, _) in zip(a.runs, b.runs)])
    if isinstance(a, Opt):
        return Opt(unify(a.ctor, b.ctor), a.present)
    raise AssertionError(a)


def unify_bodies(a: Body, b: Body) -> Body:
    if a.sequential != b.sequential or a.units != b.units or \
            [n for n, _ in a.attrs] != [n for n, _ in b.attrs]:
        raise Mismatch
    attrs = [(n, unify(x, y)) for (n, x), (_, y) in zip(a.attrs, b.attrs)]
    labels = a.labels if a.labels == b.labels else ()
    return Body(a.sequential, attrs, a.units, a.shapes, labels)


def walk(template, tree, out: list) -> None:
    """Append the values of `tree` (None: absent) slot by slot, in the template's order."""
    if template is None:
        return
    if isinstance(template, Layer):
        for i, slot in enumerate(template.values):
            out.append(tree.values[i].value if tree is not None else ANY)
    elif isinstance(template, Call):
        group = template.instance.group
        out.extend(tree.instance.params if tree is not None else [ANY] * len(group.params))
    elif isinstance(template, Seq):
        for i, item in enumerate(template.items):
            walk(item, tree.items[i] if tree is not None else None, out)
    elif isinstance(template, Runs):
        runs = tree.runs if tree is not None and tree.runs is not None else None
        for i, (ctor, _) in enumerate(template.runs or ()):
            walk(ctor, runs[i][0] if runs else None, out)
            out.append(runs[i][1].value if runs else 0 if tree is not None else ANY)
    elif isinstance(template, Opt):
        out.append(tree.present.value if tree is not None else ANY)
        walk(template.ctor, tree.ctor if tree is not None else None, out)
    else:
        raise AssertionError(template)


def slots(template, out: list) -> None:
    """The template's slots as Value objects (their hints and defaults), in walk's order."""
    if template is None:
        return
    if isinstance(template, Layer):
        out.extend(template.values)
    elif isinstance(template, Call):
        out.extend(Value(None, p.name, p.default) for p in template.instance.group.params)
    elif isinstance(template, Seq):
        for item in template.items:
            slots(item, out)
    elif isinstance(template, Runs):
        for ctor, count in template.runs or ():
            slots(ctor, out)
            out.append(count)
    elif isinstance(template, Opt):
        out.append(template.present)
        slots(template.ctor, out)


def fingerprint(ctor) -> tuple:
    """Equal for constructors that build the same module (folds a repeat's equal iterations)."""
    if ctor is None:
        return ()
    if isinstance(ctor, Layer):
        return ("L", ctor.step.module, ctor.keys, tuple(plain(v.value) for v in ctor.values))
    if isinstance(ctor, Call):
        return ("C", id(ctor.instance.group), ctor.instance.fingerprint)
    if isinstance(ctor, Seq):
        return ("S", *map(fingerprint, ctor.items))
    if isinstance(ctor, Runs):
        return ("R", None if ctor.runs is None else
                tuple((fingerprint(c), n.value) for c, n in ctor.runs))
    return ("O", ctor.present.value, fingerprint(ctor.ctor))


def plain(v):
    """A value as a key that tells its type apart (1, 1.0 and True differ)."""
    return (type(v).__name__, v) if isinstance(v, (int, float, bool, tuple, str)) else \
        ("other", repr(v))


def fingerprint_shape(ctor) -> tuple:
    """A constructor's structure without its numbers."""
    if isinstance(ctor, Layer):
        return ("L", ctor.step.module, ctor.keys)
    if isinstance(ctor, Call):
        return ("C", id(ctor.instance.group))
    if isinstance(ctor, Seq):
        return ("S", *map(fingerprint_shape, ctor.items))
    return (type(ctor).__name__,)
