"""Checked IR -> the compiled model's module classes: one per `def`, repeats as nn.Sequential,
named branches (`shortcut`, `branch1`...). What cnndsl.codegen writes and cnndsl.torch_backend
runs; no torch here.

Every call of a def is an instance, read off the scope tree (the Builder). Instances whose
structure agrees share one class (their template: cnndsl.unify); the numbers in which they
differ become the class's constructor arguments (cnndsl.module_params). Instances that cannot
agree (a different number of repeat runs) get a class each (`Stage`, `Stage2`).
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from . import lowering
from .ir import SHORTCUT, Graph, Node, ScopeItems, as_graph
from .module_params import finalize, snake_case, unique_name
from .unify import ANY, Body, Call, Group, Instance, Layer, Mismatch, Opt, Runs, Seq, Unit, \
    Value, fingerprint, plain, unify_bodies


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
                    units.append(Unit("module", snake_case(item.scope.name),
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
        base = snake_case(scope.name)
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
        inst.fingerprint = (tuple((k, plain(v)) for k, v in args.items()), inst.in_channels,
                            body.sequential, body.units,
                            tuple((n, fingerprint(c)) for n, c in body.attrs))
        return inst

    def body(self, units: list[Unit], inp, out, *, model: bool = False) -> Body:
        names: dict[str, int] = {}
        taken: set[str] = set()
        for unit in sorted(units, key=lambda u: u.rank):  # named in attribute order
            unit.name = unique_name(unit.base, names, taken, numbered=unit.numbered and
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


def _first_id(item) -> int:
    if isinstance(item, Node):
        return item.id
    nodes = item.nodes()
    return min(n.id for n in nodes) if nodes else 2**62
