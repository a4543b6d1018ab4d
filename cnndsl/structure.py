"""Checked IR -> the compiled model's module classes: one per `def`, repeats as nn.Sequential,
named branches (`shortcut`, `branch1`...). What cnndsl.codegen writes and cnndsl.torch_backend
runs; no torch here.

Every call of a def is an instance, read off the scope tree. Instances whose structure agrees
share one class; the numbers in which they differ become the class's constructor arguments,
named after the def's parameters (or `in_channels`) where the values say so on every call, and
checked on every call: a name never changes what a model computes. Instances that cannot
agree (a different number of repeat runs) get a class each (`Stage`, `Stage2`).
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from . import lowering
from .ir import SHORTCUT, Graph, Node, ScopeItems, as_graph
from .pysource import Expr, Literal, same


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
        return ("L", ctor.step.module, ctor.keys, tuple(_plain(v.value) for v in ctor.values))
    if isinstance(ctor, Call):
        return ("C", id(ctor.instance.group), ctor.instance.fingerprint)
    if isinstance(ctor, Seq):
        return ("S", *map(fingerprint, ctor.items))
    if isinstance(ctor, Runs):
        return ("R", None if ctor.runs is None else
                tuple((fingerprint(c), n.value) for c, n in ctor.runs))
    return ("O", ctor.present.value, fingerprint(ctor.ctor))


def _plain(v):
    return (type(v).__name__, v) if isinstance(v, (int, float, bool, tuple, str)) else \
        ("other", repr(v))


# -- reading the scope tree ----------------------------------------------------------------------

class Builder:
    def __init__(self, graph: Graph, plan: lowering.Plan):
        self.graph = graph
        self.steps = {s.node: s for s in plan.steps}
        self.output = plan.output
        self.returned_list = list(plan.returned)
        self.returned = set(plan.returned)
        self.output_names = [name for name, _ in plan.outputs]
        self.groups: list[Group] = []
        self.by_name: dict[str | None, list[Group]] = {}
        self.ranks = itertools.count()

    # values: a dropped node (logits' SOFTMAX) stands for its input
    def resolve(self, v):
        graph = self.graph
        while isinstance(v, int) and v != graph.input and v not in self.steps:
            v = graph[v].inputs[0].node
        return v

    def io(self, holder: ScopeItems) -> tuple[int, int]:
        found = self.io_of(holder)
        if found is None:
            raise ValueError(f"scope {holder.scope!r} does not have one input and one output")
        return found

    def io_of(self, holder: ScopeItems) -> tuple[int, int] | None:
        """A scope's one input and one output; None where named tensors (`@skip`) make it
        read or give more than one: its layers then go into the enclosing forward."""
        nodes = holder.nodes()
        inside = {n.id for n in nodes}
        inputs = {self.resolve(e.node) for n in nodes for e in n.inputs if e.node not in inside}
        outs = [n.id for n in nodes
                if n.id in (self.output, self.graph.output) or n.id in self.returned
                or any(u.id not in inside for u in self.graph.users(n))]
        if len(inputs) != 1 or len({self.resolve(v) for v in outs}) != 1:
            return None
        return inputs.pop(), self.resolve(outs[-1])

    def items_of(self, holder: ScopeItems) -> list:
        """A scope's items, with its empty repeats (a repeat of 0) in their places."""
        items = list(holder.items)
        present = {id(i.scope) for i in items if isinstance(i, ScopeItems)}
        for child in holder.scope.children:
            if child.kind != "repeat" or id(child) in present or child.start < 0:
                continue
            at = next((k for k, item in enumerate(items) if _first_id(item) >= child.start),
                      len(items))
            items.insert(at, ScopeItems(child))
        return items

    def units_of(self, holder: ScopeItems, prev) -> list[Unit]:
        units: list[Unit] = []
        items = self.items_of(holder)
        i = 0
        while i < len(items):
            item = items[i]
            i += 1
            if isinstance(item, Node):
                if item.id == self.graph.input or item.id not in self.steps:
                    continue
                units.append(self.node_unit(item))
            elif item.items and item.scope.kind != "repeat" and self.io_of(item) is None:
                units.extend(self.units_of(item, prev))  # a skip in or out: inline
            elif item.scope.kind == "block":
                if item.items:
                    units.append(self.block_unit(item))
            elif item.scope.kind == "group":
                if item.items:
                    inp, out = self.io(item)
                    units.append(Unit("module", _snake(item.scope.name),
                                      self.chain(item, item.scope.name), [inp], out,
                                      numbered=False))
            elif item.scope.kind == "repeat":
                iterations = [item]
                while i < len(items) and isinstance(items[i], ScopeItems) and \
                        items[i].scope.kind == "repeat" and items[i].scope.id == item.scope.id:
                    iterations.append(items[i])
                    i += 1
                if any(it.items and self.io_of(it) is None for it in iterations):
                    for it in iterations:  # a skip in or out of an iteration: inline
                        units.extend(self.units_of(it, prev))
                else:
                    units.append(self.repeat_unit(iterations, prev))
            elif item.scope.name == "residual" and item.scope.index == 0:
                units.extend(self.units_of(item, prev))
            elif item.items:
                inp, out = self.io(item)
                ctor = self.chain(item)
                if item.scope.name == "residual":
                    units.append(Unit("shortcut", "shortcut", Opt(ctor, Value(True, "project")),
                                      [inp], out))
                elif item.scope.name == "outputs":  # an output's head, named after it
                    units.append(Unit("branch", self.output_names[item.scope.index], ctor,
                                      [inp], out, numbered=False))
                else:  # a merge's branches: branch1, branch2, ...; a one-branch merge's
                    # branch is named after it (`gate(...)`: gate)
                    base = item.scope.name if item.scope.count == 1 else \
                        f"branch{item.scope.index + 1}"
                    units.append(Unit("branch", base, ctor, [inp], out))
            for unit in units:  # attributes keep the data-flow order (torchvision's)
                if unit.rank < 0:
                    unit.rank = next(self.ranks)
            if units:
                prev = units[-1].output
        return self.shortcuts(units)

    def node_unit(self, node: Node) -> Unit:
        step = self.steps[node.id]
        inputs = [self.resolve(u) for u in step.inputs]
        base = re.sub(r"\d+$", "", step.name) or "layer"
        if step.op == "module":
            return Unit("layer", base, self.layer(step), inputs, node.id, step)
        return Unit("function" if step.op == "function" else "flatten", base, None, inputs,
                    node.id, step)

    def layer(self, step: lowering.Step) -> Layer:
        keys = tuple(step.kwargs)
        defaults = step.recipe.defaults
        return Layer(step, keys, [Value(step.kwargs[k], k, defaults.get(k, ANY)) for k in keys])

    def block_unit(self, holder: ScopeItems) -> Unit:
        scope = holder.scope
        base = _snake(scope.name)
        nodes = holder.nodes()
        if len(nodes) == 1 and all(isinstance(i, Node) for i in holder.items):
            step = self.steps.get(nodes[0].id)
            if step is not None and step.op == "module":  # a def of one layer: that layer
                unit = self.node_unit(nodes[0])
                unit.base = base
                return unit
        inp, out = self.io(holder)
        return Unit("module", base, Call(self.instance(holder, scope.name, inp, out)), [inp], out)

    def repeat_unit(self, iterations: list[ScopeItems], prev) -> Unit:
        full = [it for it in iterations if it.items]
        if not full:
            return Unit("module", "repeat", Runs(None), [prev], prev)
        # The first iteration on its own (it alone reads the repeat's input, so its width
        # often differs), then runs of equal iterations: `Unit(in_channels, c), *[Unit(c, c)
        # for _ in range(n - 1)]`, the same shape of code for every n >= 1.
        runs: list[tuple[object, Value]] = [(self.chain(full[0]), Value(1, "count"))]
        last = None
        for it in full[1:]:
            ctor = self.chain(it)
            mark = fingerprint(ctor)
            if len(runs) > 1 and mark == last:
                runs[-1][1].value += 1
            else:
                runs.append((ctor, Value(1, "count")))
            last = mark
        if len(runs) == 1:
            runs.append((None, Value(0, "count")))
        return Unit("module", "repeat", Runs(runs), [self.io(full[0])[0]], self.io(full[-1])[1])

    def chain(self, holder: ScopeItems, name: str | None = None):
        """A branch, an iteration or a named group as one constructor: a layer, a block,
        nn.Sequential of them, or (with merges or flattening inside) a class of its own,
        named after the group if it has a name."""
        if not holder.items:
            return None
        inp, out = self.io(holder)
        units = self.units_of(holder, inp)
        links = [inp] + [u.output for u in units]
        simple = all(u.kind in ("layer", "module") and u.inputs == [links[k]]
                     and not (u.step is not None and u.step.flatten)
                     for k, u in enumerate(units))
        if simple and links[-1] == out:
            if len(units) == 1:
                return units[0].ctor
            return Seq([u.ctor for u in units])
        return Call(self.instance(holder, name, inp, out, anonymous=True))

    def shortcuts(self, units: list[Unit]) -> list[Unit]:
        """A residual's projection (the layers a pass inserted on its shortcut) becomes one
        `shortcut` unit, and an identity shortcut an empty one, so calls with and without a
        projection share a class. The projection runs where the data flow puts it, after
        the body (torchvision's `downsample`), so exports list weights in module order."""
        graph = self.graph
        by_output = {u.output: u for u in units}
        out: list[Unit] = list(units)
        for unit in units:
            if unit.kind != "function" or unit.step is None:
                continue
            node = graph[unit.step.node]
            for position, edge in enumerate(node.inputs):
                if edge.role != SHORTCUT:
                    continue
                v = self.resolve(edge.node)
                chain = []
                while v in by_output and by_output[v].kind == "layer" and graph[v].implicit \
                        and graph.uses(graph[v]) == 1:
                    chain.append(by_output[v])
                    v = by_output[v].inputs[0]
                if chain:
                    chain.reverse()
                    ctors = [u.ctor for u in chain]
                    short = Unit("shortcut", "shortcut",
                                 Opt(ctors[0] if len(ctors) == 1 else Seq(ctors),
                                     Value(True, "project")), [v], chain[-1].output,
                                 rank=chain[0].rank)
                    where = out.index(chain[0])
                    out[where:where + len(chain)] = [short]
                elif not (v in by_output and by_output[v].kind == "shortcut"):
                    alias = ("identity", unit.step.node)
                    short = Unit("shortcut", "shortcut", Opt(None, Value(False, "project")),
                                 [v], alias, rank=unit.rank - 0.5)
                    out.insert(out.index(unit), short)
                    unit.inputs = [alias if k == position else u
                                   for k, u in enumerate(unit.inputs)]
        return out

    # -- instances and classes -------------------------------------------------------------
    def instance(self, holder: ScopeItems, name: str | None, inp, out, *,
                 model: bool = False, anonymous: bool = False) -> Instance:
        units = self.units_of(holder, inp)
        body = self.body(units, inp, out, model=model)
        scope = holder.scope
        args = dict(scope.args) if scope.kind == "block" and not anonymous else {}
        inst = Instance(args, self.graph[inp].shape.c, body,
                        scope.defaulted if args else frozenset())
        self.assign("<model>" if model else name, inst)
        inst.fingerprint = (tuple((k, _plain(v)) for k, v in args.items()), inst.in_channels,
                            body.sequential, body.units,
                            tuple((n, fingerprint(c)) for n, c in body.attrs))
        return inst

    def body(self, units: list[Unit], inp, out, *, model: bool = False) -> Body:
        names: dict[str, int] = {}
        taken: set[str] = set()
        for unit in sorted(units, key=lambda u: u.rank):  # named in attribute order
            unit.name = _unique(unit.base, names, taken, numbered=unit.numbered and
                                unit.kind not in ("shortcut", "branch"))
        local = {inp: 0}
        rows = []
        for k, unit in enumerate(units, 1):
            ins = tuple(local[v] for v in unit.inputs)
            local[unit.output] = k
            rows.append((unit.kind, unit.name, ins, unit.detail()))
        returned = [self.resolve(v) for v in self.returned_list] \
            if model and self.output_names else [out]
        rows.append(("return", "", tuple(local[v] for v in returned), ()))
        chained = all(u.inputs == [([inp] + [w.output for w in units])[k]]
                      for k, u in enumerate(units))
        # A chain of blocks and repeats is nn.Sequential with numbered elements (`stage2.0`);
        # a chain of named layers is nn.Sequential too, its layers assigned by name in order
        # (nn.Sequential runs its children in the order they were assigned): no forward.
        plain = not model and chained and units and units[-1].output == out and \
            all(u.kind in ("module", "layer") and not u.step_flattens() for u in units)
        sequential = "numbered" if plain and (len(units) >= 2 or isinstance(
            units[0].ctor, Runs)) and all(
            u.kind == "module" and isinstance(u.ctor, (Call, Runs)) for u in units) else \
            "named" if plain else ""
        attrs = [(u.name, u.ctor) for u in sorted(units, key=lambda u: u.rank)
                 if u.ctor is not None or u.kind == "shortcut"]
        shapes = [self.graph[u.output].shape if isinstance(u.output, int) else None
                  for u in units]
        names = self.graph.tensor_names
        labels = tuple(names.get(u.output) if isinstance(u.output, int) else None
                       for u in units)
        return Body(sequential, attrs, tuple(rows), shapes, labels)

    def assign(self, name: str | None, inst: Instance) -> None:
        groups = self.by_name.setdefault(name, [])
        for group in groups:
            try:
                group.template = unify_bodies(group.template, inst.body)
            except Mismatch:
                continue
            group.instances.append(inst)
            inst.group = group
            return
        group = Group(name, inst.body, [inst])
        inst.group = group
        groups.append(group)
        self.groups.append(group)


# Attribute names a submodule must not take: nn.Module's and nn.Sequential's public
# attributes (a group called `forward` or `eval` would hide the method), and the model's
# `cnndsl_info`. tests/test_structure.py checks this against torch's own classes.
MODULE_ATTRIBUTES = frozenset("""
T_destination add_module append apply bfloat16 buffers call_super_init children cnndsl_info
compile cpu cuda double dump_patches eval extend extra_repr float forward get_buffer
get_extra_state get_parameter get_submodule half insert ipu load_state_dict modules mtia
named_buffers named_children named_modules named_parameters parameters pop
register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
register_full_backward_hook register_full_backward_pre_hook
register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module
register_parameter register_state_dict_post_hook register_state_dict_pre_hook requires_grad_
set_extra_state set_submodule share_memory state_dict to to_empty train training type xpu
zero_grad""".split())


def _first_id(item) -> int:
    if isinstance(item, Node):
        return item.id
    nodes = item.nodes()
    return min(n.id for n in nodes) if nodes else 2**62


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower().strip("_") or "block"


def _unique(base: str, counts: dict, taken: set, *, numbered: bool) -> str:
    if base in MODULE_ATTRIBUTES or base.startswith("_"):
        base = base.strip("_") + "_"  # `forward_`, never the method it would hide
    if not numbered and base not in taken:
        taken.add(base)
        return base
    while True:
        counts[base] = counts.get(base, 0) + 1
        n = counts[base]
        name = f"{base}{n}" if numbered or n > 1 else base
        if not numbered and n == 1:
            continue
        if name not in taken:
            taken.add(name)
            return name


# -- the classes' constructor arguments ------------------------------------------------------------

def finalize(group: Group, *, model: bool = False) -> None:
    """Choose the class's arguments and each slot's expression; fill each call's arguments."""
    template = group.template
    slot_list: list[Value] = []
    for _, ctor in template.attrs:
        slots(ctor, slot_list)
    columns: list[list] = [[] for _ in slot_list]
    for inst in group.instances:
        values: list = []
        for k, (_, ctor) in enumerate(template.attrs):
            walk(ctor, inst.body.attrs[k][1], values)
        for column, value in zip(columns, values):
            column.append(value)
    candidates = {} if model else _candidates(group)
    used: dict[str, Param] = {}
    fresh: dict[str, Param] = {}
    presence = {id(c.present): c for _, c in template.attrs if isinstance(c, Opt)}
    exprs: list = [None] * len(slot_list)
    for k, (slot, column) in enumerate(zip(slot_list, columns)):
        if id(slot) not in presence:
            exprs[k] = _choose(slot, column, candidates, used, fresh, group)
    group.exprs = exprs
    for k, (slot, column) in enumerate(zip(slot_list, columns)):
        if id(slot) in presence:
            opt = presence[id(slot)]
            known = {v for v in column if v is not ANY}
            cond = None if len(known) < 2 else \
                _projection_condition(group, opt, k, candidates, column)
            if cond is not None:
                group.conditions[id(opt)] = cond
                exprs[k] = cond
                for name in candidates:
                    if re.search(rf"\b{name}\b", cond.code):
                        _use(name, candidates, used, group)
            else:
                exprs[k] = _choose(slot, column, candidates, used, fresh, group)
    _merge_runs(group, columns, candidates, used, fresh)
    order = [n for n in candidates if n in used and n == "in_channels"]
    order += [n for n in candidates if n in used and n != "in_channels"
              and used[n].default is ANY]
    order += list(fresh)
    order += [n for n in candidates if n in used and n != "in_channels"
              and used[n].default is not ANY]
    codes = [e.code for k, e in enumerate(group.exprs) if k not in group.dropped]
    codes += [e.code for e in group.merged.values()]
    params = [used.get(n) or fresh[n] for n in order
              if any(re.search(rf"\b{n}\b", code) for code in codes)]
    for k, p in enumerate(params):  # defaults only on a suffix
        if p.default is not ANY and any(q.default is ANY for q in params[k + 1:]):
            p.default = ANY
    group.params = params
    for i, inst in enumerate(group.instances):
        inst.params = [candidates[p.name][i] if p.name in candidates else
                       fresh_values(group, p.name)[i] for p in params]


def _merge_runs(group: Group, columns, candidates, used, fresh) -> None:
    """A repeat's first iteration and the run after it that build alike (the same code):
    one run, its count chosen afresh (`range(n - 1)` rather than a head and `range(n - 2)`).
    Recorded in group.merged under (id(runs), index of the first)."""
    at = 0

    def visit(ctor) -> None:
        nonlocal at
        if ctor is None:
            return
        if isinstance(ctor, Seq):
            for item in ctor.items:
                visit(item)
            return
        if isinstance(ctor, Opt):
            at += 1
            visit(ctor.ctor)
            return
        if not isinstance(ctor, Runs):
            flat: list[Value] = []
            slots(ctor, flat)
            at += len(flat)
            return
        spans = []
        for item, _ in ctor.runs or ():
            start = at
            visit(item)
            spans.append((start, at))
            at += 1  # the count
        for i in range(len(spans) - 1):
            (a0, a1), (b0, b1) = spans[i], spans[i + 1]
            first, second = ctor.runs[i][0], ctor.runs[i + 1][0]
            if first is None or second is None or fingerprint_shape(first) != \
                    fingerprint_shape(second) or [e.code for e in group.exprs[a0:a1]] != \
                    [e.code for e in group.exprs[b0:b1]]:
                continue
            total = [ANY if x is ANY and y is ANY else (0 if x is ANY else x) +
                     (0 if y is ANY else y) for x, y in zip(columns[a1], columns[b1])]
            group.merged[(id(ctor), i)] = _choose(Value(None, "count"), total, candidates,
                                                  used, fresh, group)
            group.dropped |= {a1, b1}
            break

    for _, ctor in group.template.attrs:
        visit(ctor)


def fingerprint_shape(ctor) -> tuple:
    """A constructor's structure without its numbers."""
    if isinstance(ctor, Layer):
        return ("L", ctor.step.module, ctor.keys)
    if isinstance(ctor, Call):
        return ("C", id(ctor.instance.group))
    if isinstance(ctor, Seq):
        return ("S", *map(fingerprint_shape, ctor.items))
    return (type(ctor).__name__,)


def fresh_values(group: Group, name: str) -> list:
    return group.__dict__.setdefault("_fresh", {})[name]


def _candidates(group: Group) -> dict[str, list]:
    out = {"in_channels": [inst.in_channels for inst in group.instances]}
    if group.name is not None:
        first = group.instances[0].args
        for name in first:
            column = [inst.args.get(name, ANY) for inst in group.instances]
            if all(isinstance(v, (int, float, bool, tuple)) for v in column):
                out[name] = column
    return out


def _default_of(group: Group, name: str):
    """A def parameter's default, where every call that left it out got the same value."""
    if name == "in_channels":
        return ANY
    values = {_plain(inst.args[name]) for inst in group.instances if name in inst.defaulted}
    if len(values) != 1:
        return ANY
    return next(inst.args[name] for inst in group.instances if name in inst.defaulted)


def _choose(slot: Value, column: list, candidates, used, fresh, group) -> Expr:
    known = [(i, v) for i, v in enumerate(column) if v is not ANY]
    if not known:
        return Literal(slot.default if slot.default is not ANY else 0)
    first = known[0][1]
    constant = all(same(v, first) for _, v in known)
    names = list(candidates)  # in_channels first: a def parameter that only repeats the
    # input's width (MobileNet's `cin`) is left out of the class
    matches = [n for n in names if all(same(candidates[n][i], v) for i, v in known)]
    if constant:  # a name only where it is unambiguous; 0 and 1 are too often a coincidence
        if slot.default is not ANY and same(first, slot.default) or isinstance(first, bool) \
                or first in (0, 1):
            return Literal(first)
        if "in_channels" in matches and slot.hint.endswith("in_channels"):
            return _use("in_channels", candidates, used, group)
        own = [n for n in matches if n != "in_channels"] or matches
        if len(own) == 1:
            return _use(own[0], candidates, used, group)
        return Literal(first)
    if matches:
        return _use(matches[0], candidates, used, group)
    if all(type(v) is int for _, v in known):
        if slot.hint == "padding":  # (k - 1) // 2 before any coincidence of another name
            names = sorted(names, key=lambda n: not any(
                all(type(candidates[n][i]) is int and v == (candidates[n][i] - 1) // 2
                    for i, v in known) for _ in (0,)))
        for name in names:
            column_p = candidates[name]
            if not all(type(column_p[i]) is int for i, _ in known):
                continue
            pairs = [(column_p[i], v) for i, v in known]
            for expr in _arithmetic(name, pairs, slot.hint):
                _use(name, candidates, used, group)
                return expr
    return _fresh(slot.hint, column, fresh, group)


def _arithmetic(name: str, pairs, hint: str = ""):
    p0, v0 = pairs[0]
    if hint == "padding" and all(v == (p - 1) // 2 for p, v in pairs):  # a "same" padding
        yield Expr(f"({name} - 1) // 2", lambda env: (env[name] - 1) // 2)
        return
    if p0 and v0 % p0 == 0 and v0 // p0 > 1 and all(v == p * (v0 // p0) for p, v in pairs):
        yield Expr(f"{v0 // p0} * {name}", lambda env, k=v0 // p0: k * env[name])
        return
    if v0 and p0 % v0 == 0 and p0 // v0 > 1 and all(p % (p0 // v0) == 0 and v == p // (p0 // v0)
                                                     for p, v in pairs):
        yield Expr(f"{name} // {p0 // v0}", lambda env, k=p0 // v0: env[name] // k)
        return
    d = v0 - p0
    if d and abs(d) <= 16 and all(v - p == d for p, v in pairs):
        code = f"{name} + {d}" if d > 0 else f"{name} - {-d}"
        yield Expr(code, lambda env, d=d: env[name] + d)


def _use(name: str, candidates, used, group) -> Expr:
    if name not in used:
        first = candidates[name][0]
        used[name] = Param(name, _kind(first), _default_of(group, name))
    return Expr(name, lambda env: env[name])


def _fresh(hint: str, column: list, fresh, group) -> Expr:
    base = re.sub(r"\W", "_", hint).strip("_") or "arg"
    name = base
    k = 1
    while name in fresh or name in ("in_channels", "self") or \
            (group.name is not None and name in group.instances[0].args):
        k += 1
        name = f"{base}{k}"
    first = next(v for v in column if v is not ANY)
    fresh[name] = Param(name, _kind(first))
    filled = [v if v is not ANY else first for v in column]
    group.__dict__.setdefault("_fresh", {})[name] = filled
    return Expr(name, lambda env: env[name])


def _kind(value) -> str:
    return "bool" if isinstance(value, bool) else type(value).__name__


def _projection_condition(group, opt: Opt, k: int, candidates, present):
    first = opt.ctor.items[0] if isinstance(opt.ctor, Seq) else opt.ctor
    if not isinstance(first, Layer) or not {"in_channels", "out_channels"} <= set(first.keys) \
            or any(group.exprs[k + 1 + i] is None for i in range(len(first.keys))):
        return None
    at = {key: k + 1 + i for i, key in enumerate(first.keys)}
    parts = []
    stride = group.exprs[at["stride"]] if "stride" in at else Literal(1)
    if not (isinstance(stride, Literal) and same(stride.value, 1)):
        parts.append((stride, Literal(1)))
    parts.append((group.exprs[at["in_channels"]], group.exprs[at["out_channels"]]))
    code = " or ".join(f"{a.code} != {b.code}" for a, b in parts)
    env_names = list(candidates)
    for i, inst in enumerate(group.instances):
        env = {n: candidates[n][i] for n in env_names}
        try:
            got = any(a.evaluate(env) != b.evaluate(env) for a, b in parts)
        except (KeyError, TypeError):
            return None
        if got != present[i]:
            return None
    return Expr(code, lambda env: any(a.evaluate(env) != b.evaluate(env) for a, b in parts))


# -- the whole network -----------------------------------------------------------------------------

@dataclass
class ModulePlan:
    groups: list[Group]  # the classes, each after the ones it uses
    model: Group  # the network itself (one instance)
    custom: list[str]  # cnndsl.torch_modules classes the source copies
    input_shape: object


def plan(graph, *, logits: bool = False) -> ModulePlan:
    graph = as_graph(graph)
    steps = lowering.plan(graph, logits=logits)
    builder = Builder(graph, steps)
    tree = graph.scope_tree(all_scopes=True)
    model = builder.instance(tree, None, graph.input, builder.resolve(steps.output),
                             model=True)
    model_group = model.group
    builder.groups.remove(model_group)
    groups = dependency_order(builder.groups)
    for group in groups:
        finalize(group)
    finalize(model_group, model=True)
    custom = sorted({s.module for s in steps.steps if s.module and s.recipe.custom})
    return ModulePlan(groups, model_group, custom, graph.input_node.shape)


def dependency_order(groups: list[Group]) -> list[Group]:
    """The classes, each after the classes its template calls: a template may come to call
    a class made after it (a repeat empty in the first call, filled in a later one)."""
    done: dict[int, Group] = {}

    def visit(group: Group) -> None:
        if id(group) in done:
            return
        done[id(group)] = group  # templates never call their own class: no cycle to guard
        for child in _called(group.template):
            visit(child)
        done.pop(id(group))
        done[id(group)] = group

    for group in groups:
        visit(group)
    return list(done.values())


def _called(body: Body) -> list[Group]:
    out: list[Group] = []

    def walk_ctor(ctor) -> None:
        if isinstance(ctor, Call):
            out.append(ctor.instance.group)
        elif isinstance(ctor, Seq):
            for item in ctor.items:
                walk_ctor(item)
        elif isinstance(ctor, Runs):
            for item, _ in ctor.runs or ():
                walk_ctor(item)
        elif isinstance(ctor, Opt):
            walk_ctor(ctor.ctor)

    for _, ctor in body.attrs:
        walk_ctor(ctor)
    return out

