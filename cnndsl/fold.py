"""An imported network folded into a spec a person would write: forks and joins become
`residual(...)`/`concat(...)`, the layers of each module instance a unit, units of one class
that differ only in numbers one `def` with parameters, and runs of equal items `X * N`.

The structure comes from the graph alone: a fork's branches end where all its paths meet
(its immediate post-dominator). The units come from the module tree the source recorded
(torch.fx's nn_module_stack, an ONNX node's scope name). No torch here.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

from . import functions, layers
from .expand import BUILTINS
from .import_graph import CnnImportError, Network, Op, _attempt, recipe_matches
from .ir import BODY, SHORTCUT
from .layers import Site

MAX_PERIOD = 8  # the longest run of items a `(...) * N` repeat is looked for
KEYWORDS = {"stride": "s"}  # the short spelling the zoo's specs use
HINTS = {"filters": "c", "kernel": "k", "stride": "s", "pad": "p", "units": "n", "p": "drop"}


@dataclass(eq=False)
class Layer:
    op: Op


@dataclass(eq=False)
class Merge:
    builtin: str  # residual | concat | add
    branches: list  # lists of items; residual: [body] or [body, shortcut]
    op: Op


@dataclass(eq=False)
class Unit:
    """The items one module instance computed (`layer1.0`, a Bottleneck)."""

    path: str
    cls: str
    items: list
    family: Family | None = None


@dataclass(eq=False)
class Call:
    family: Family
    values: tuple  # the family's parameter values, in its def's order


@dataclass(eq=False)
class Repeat:
    items: list
    count: int


@dataclass(eq=False)
class Family:
    """Units of one class and one structure: one def."""

    key: tuple
    cls: str
    instances: list = field(default_factory=list)
    name: str = ""
    params: list = field(default_factory=list)  # [(name, default or None)]
    body: str = ""


# -- structure: chains, forks and joins ------------------------------------------------------

def structure(net: Network) -> list:
    """The network as a chain of Layer and Merge items from its input to its output."""
    users = net.users()
    seen: set[int] = set()
    return _chain(net, users, 0, net.ops[-1].index, seen)


def _region(net: Network, users, start: int, target: int) -> set[int]:
    """Ops on some path from start to target (ids are a topological order)."""
    back, stack = set(), [target]
    while stack:
        i = stack.pop()
        if i not in back and i >= start:
            back.add(i)
            stack.extend(net.ops[i].inputs)
    region, stack = set(), [start]
    while stack:
        i = stack.pop()
        if i not in region and i in back:
            region.add(i)
            stack.extend(users[i])
    return region


def _chain(net: Network, users, start: int, target: int, seen: set) -> list:
    if start == target:
        return []
    region = _region(net, users, start, target)
    ipdom = {target: target}

    def meet(a, b):
        while a != b:
            if a < b:
                a = ipdom[a]
            else:
                b = ipdom[b]
        return a

    for i in sorted(region, reverse=True):
        if i != target:
            succ = [u for u in users[i] if u in region]
            d = succ[0]
            for s in succ[1:]:
                d = meet(d, s)
            ipdom[i] = d
    items, cur = [], start
    while cur != target:
        succ = [u for u in users[cur] if u in region]
        if len(succ) == 1 and len(net.ops[succ[0]].inputs) == 1:
            cur = succ[0]
            items.append(Layer(_claim(net, cur, seen)))
            continue
        join = net.ops[ipdom[cur]]
        if len(join.inputs) < 2 or not join.kind.merge_builtin:
            raise CnnImportError("the branches from here meet in no add or concat: no .cnn "
                                 "form", f"{net.source}: {net.ops[cur].path}")
        branches = [_chain(net, users, cur, i, seen) for i in join.inputs]
        items.append(_merge(net, _claim(net, join.index, seen), branches, net.ops[cur]))
        cur = join.index
    return items


def _claim(net: Network, index: int, seen: set) -> Op:
    """An op placed once: one reached from two places is a graph the language cannot write
    (DenseNet's concatenation of every earlier layer)."""
    if index in seen:
        op = net.ops[index]
        raise CnnImportError("this layer's output is joined in more than one place (not a "
                             "series-parallel graph): no .cnn form", f"{net.source}: {op.path}",
                             help="residual(...), concat(...) and add(...) nest; their "
                                  "branches cannot share layers")
    seen.add(index)
    return net.ops[index]


def _ops(items) -> list[Op]:
    found = []
    for item in items:
        if isinstance(item, Layer):
            found.append(item.op)
        elif isinstance(item, Merge):
            for branch in item.branches:
                found += _ops(branch)
            found.append(item.op)
    return found


def _merge(net: Network, op: Op, branches: list, entry: Op):
    builtin = op.kind.merge_builtin
    if builtin == "gate":
        if branches[0]:
            raise CnnImportError("torch.mul of two computed maps has no .cnn form",
                                 f"{net.source}: {op.path}",
                                 help="gate(...) multiplies its input by what a branch of it "
                                      "computes (one weight per channel, or a map of its size)")
        return Merge("gate", [branches[1]], op)
    if builtin != layers.merge_kind("residual").merge_builtin or len(branches) != 2:
        return Merge(builtin, branches, op)
    if not branches[0] or not branches[1]:
        return Merge("residual", [branches[0] or branches[1]], op)
    body, short = sorted(branches, key=lambda b: -len(_ops(b)))
    if _ops(short)[0].index < _ops(body)[0].index:
        # computed before the body (RegNet's `proj(x) + f(x)`): residual(...) would build it
        # after, so its weights would come in another order
        return Merge("add", [short, body], op)
    if _is_projection(net, op, body, short, entry):
        return Merge("residual", [body], op)
    return Merge("residual", [body, short], op)


def _is_projection(net: Network, op: Op, body: list, short: list, entry: Op) -> bool:
    """Whether the shortcut is what residual(body) inserts by itself (torchvision's
    downsample: a 1x1 convolution, with BN where the body normalises)."""
    uses_bn = any(o.kind.batch_norm for o in _ops(body))
    site = Site(None, op.path)
    end = _ops(body)[-1].shape
    inserted = op.kind.insertions({"project": True, "project_bn": uses_bn}, [end, entry.shape],
                                  net.context, site, [BODY, SHORTCUT])
    steps = inserted[0][1] if inserted else []
    if len(steps) != len(short) or not all(isinstance(i, Layer) for i in short):
        return False
    shape = entry.shape
    for (name, args), item in zip(steps, short):
        kind = layers.get(name)
        if kind is not item.op.kind:
            return False
        p = {q.name: q.default for q in kind.params} | args
        got = _attempt(kind, p, [shape], net.context, site)
        theirs = kind.recipe(item.op.resolved, [shape], item.op.shape)
        if got is None or got[1] != item.op.shape or recipe_matches(
                got[2], _as_form(theirs)):
            return False
        shape = item.op.shape
    return True


def _as_form(recipe):
    from .import_graph import Form

    return Form(recipe.function or recipe.module, dict(recipe.kwargs))


# -- units: the module instances ---------------------------------------------------------------

def _owner(item, below: str):
    op = item.op
    for path, cls, plain in op.owners:
        if plain or not path.startswith(below):
            continue
        return path, cls
    return None


def units(items: list, below: str = "") -> list:
    """Consecutive items of one module instance grouped as a Unit, at every depth."""
    out: list = []
    for item in items:
        owner = _owner(item, below)
        if owner and out and isinstance(out[-1], Unit) and out[-1].path == owner[0]:
            out[-1].items.append(item)
        elif owner:
            out.append(Unit(owner[0], owner[1], [item]))
        else:
            out.append(item)
    for i, item in enumerate(out):
        if isinstance(item, Merge):
            item.branches = [units(b, below) for b in item.branches]
        if isinstance(item, Unit):
            item.items = units(item.items, item.path + ".")
            if len(item.items) == 1 and isinstance(item.items[0], Layer):
                out[i] = item.items[0]  # a unit of one layer is that layer
    return out


# -- families: units that differ only in numbers -----------------------------------------------

def _numeric(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
        isinstance(value, tuple) and all(isinstance(v, int) for v in value))


def exact_key(item) -> tuple:
    if isinstance(item, Layer):
        return ("L", item.op.kind.name, tuple(sorted(item.op.args.items())))
    if isinstance(item, Merge):
        return ("M", item.builtin, tuple(tuple(map(exact_key, b)) for b in item.branches))
    if isinstance(item, Call):
        return ("C", id(item.family), item.values)
    return ("R", tuple(map(exact_key, item.items)), item.count)


def shape_key(item) -> tuple:
    """The item with its numbers left out: items with equal keys differ only in numbers."""
    if isinstance(item, Layer):
        return ("L", item.op.kind.name,
                tuple(sorted((k, v) for k, v in item.op.args.items() if not _numeric(v))))
    if isinstance(item, Merge):
        return ("M", item.builtin, tuple(tuple(map(shape_key, b)) for b in item.branches))
    if isinstance(item, Call):
        return ("C", id(item.family))
    return ("R", tuple(map(shape_key, item.items)))


def compress(items: list) -> list:
    """Runs of equal items, then of equal pairs, ... up to MAX_PERIOD items, as Repeats: the
    shortest period first, so `(CONV - RELU) * 3 - MAXPOOL` nests rather than straddles."""
    for period in range(1, MAX_PERIOD + 1):
        items = _runs(items, period)
    return items


def _runs(items: list, p: int) -> list:
    keys = [exact_key(item) for item in items]
    out, i = [], 0
    while i < len(items):
        n = 1
        while keys[i + n * p:i + (n + 1) * p] == keys[i:i + p] and i + (n + 1) * p <= len(items):
            n += 1
        if n > 1:
            out.append(Repeat(items[i:i + p], n))
            i += p * n
        else:
            out.append(items[i])
            i += 1
    return out


def _height(item) -> int:
    if isinstance(item, Unit):
        return 1 + max((_height(i) for i in item.items), default=-1)
    if isinstance(item, Merge):
        return max((_height(i) for b in item.branches for i in b), default=-1)
    return -1


def _units_in(items, found: list) -> None:
    for item in items:
        if isinstance(item, Unit):
            found.append(item)
            _units_in(item.items, found)
        elif isinstance(item, Merge):
            for branch in item.branches:
                _units_in(branch, found)


def _settled(items: list) -> list:
    """Units already grouped replaced by calls of their def, or by their items where their
    class has one instance of that structure; then the runs folded."""
    out = []
    for item in items:
        if isinstance(item, Unit):
            if item.family is not None and len(item.family.instances) > 1:
                out.append(Call(item.family, item.values))
            else:  # its items, units among them settled too (a unit never grouped)
                out.extend(_settled(item.items) if any(isinstance(i, Unit)
                                                       for i in item.items) else item.items)
        elif isinstance(item, Merge):
            item.branches = [_settled(b) for b in item.branches]
            out.append(item)
        else:
            out.append(item)
    return compress(out)


def fold(net: Network, rates: bool = True) -> tuple[list[Family], list]:
    """The families (defs, innermost first) and the top-level chain. With `rates`, a
    stochastic depth rate that grows with the def's calls is written by the call's index
    (`0.1 * index(block) / count(block)`), not as a parameter."""
    items = units(structure(net))
    found: list[Unit] = []
    _units_in(items, found)
    families: dict[tuple, Family] = {}
    ordered: list[Family] = []
    heights = {id(u): _height(u) for u in found}  # before settling lowers them
    for height in sorted(set(heights.values())):
        level = [u for u in found if heights[id(u)] == height]
        new = []
        for unit in level:
            unit.items = _settled(unit.items)
            key = (height, unit.cls, tuple(map(shape_key, unit.items)))
            family = families.get(key)
            if family is None:
                family = families[key] = Family(key, unit.cls)
                new.append(family)
            family.instances.append(unit)
            unit.family = unit.family or family
        for family in new:
            if len(family.instances) > 1:
                _parametrize(family, ordered, rates)
                ordered.append(family)
    return ordered, _settled(items)


def _walk(items):
    """The entries that carry numbers, in the order the renderer reads them."""
    for item in items:
        if isinstance(item, (Layer, Call)):
            yield item
        elif isinstance(item, Repeat):
            yield item
            yield from _walk(item.items)
        elif isinstance(item, Merge):
            for branch in item.branches:
                yield from _walk(branch)


def _norm(value):
    if isinstance(value, tuple) and len(set(value)) == 1:
        return value[0]
    return value


def _written_keys(entry) -> set:
    if isinstance(entry, Layer):
        return {k for k, v in entry.op.args.items() if _numeric(v)}
    if isinstance(entry, Call):
        return {j for j, (value, (_, default)) in enumerate(zip(entry.values,
                                                               entry.family.params))
                if default is None or value != default}
    return {"count"}


def _slots(entry, keys: set) -> list[tuple[str, object]]:
    """(hint, value) for each number the entry writes, given the keys its position writes."""
    if isinstance(entry, Layer):
        op = entry.op
        return [(q.hint or HINTS.get(q.name, q.name),
                 _norm(op.resolved.get(q.name, op.args.get(q.name))))
                for q in op.kind.params if q.name in keys]
    if isinstance(entry, Call):
        return [(entry.family.params[j][0], entry.values[j]) for j in sorted(keys)]
    return [("n", entry.count)]


def _is_rate(entry, keys: set) -> list[bool]:
    """Which of the entry's slots (see _slots) is a stochastic depth rate."""
    if isinstance(entry, Layer):
        return [q.block_rate for q in entry.op.kind.params if q.name in keys]
    return [False] * len(_slots(entry, keys))


def rate_formula(column: tuple, name: str) -> str | None:
    """The rates of the def `name`'s calls, in order, as `p * index(name) / count(name)`
    (torchvision's EfficientNet) or `p * index(name) / (count(name) - 1)` (its ConvNeXt),
    where one of them gives every rate (within 1e-12, relative), the one with the shorter
    `p` where both do; else None. Two calls fit
    any line through zero: it takes three to show the rule."""
    n = len(column)
    if n < 3 or not all(isinstance(v, (int, float)) for v in column):
        return None
    forms = ((n, f"index({name}) / count({name})"),
             (n - 1, f"index({name}) / (count({name}) - 1)"))
    fits = []
    for blocks, text in forms:
        p = float(f"{column[-1] * blocks / (n - 1):.12g}")
        if 0 < p < 1 and all(math.isclose(p * i / blocks, v, rel_tol=1e-12, abs_tol=0.0)
                             for i, v in enumerate(column)):
            fits.append(f"{literal(p)} * {text}")
    # both are lines through zero: the one with the shorter rate is the rule the model used
    return min(fits, key=lambda f: len(f.split(" ")[0]), default=None)


def _parametrize(family: Family, ordered: list[Family], rates: bool = True) -> None:
    """The def's parameters from its instances' numbers: a number that never changes is
    written as it is; one that always equals another parameter, or a whole multiple of it,
    is written so (`4 * c`); the rest are parameters, with the most common value as the
    default where it is most of the calls."""
    walks = [list(_walk(unit.items)) for unit in family.instances]
    keys = [set().union(*(_written_keys(w[i]) for w in walks)) for i in range(len(walks[0]))]
    rows = [[slot for entry, k in zip(w, keys) for slot in _slots(entry, k)] for w in walks]
    hints = [hint for hint, _ in rows[0]]
    columns = [tuple(row[i][1] for row in rows) for i in range(len(hints))]
    family.name = _def_name(family.cls, ordered)
    formulas = {}
    if rates:
        flags = [flag for entry, k in zip(walks[0], keys) for flag in _is_rate(entry, k)]
        for i, column in enumerate(columns):
            if flags[i] and len(set(column)) > 1:
                formulas[i] = rate_formula(column, family.name)
    exprs, varying, params = _columns(hints, columns, formulas)
    family.params = params
    names = [name for name, _ in params]
    for unit in family.instances:
        unit.values = tuple(varying[name][family.instances.index(unit)] for name in names)
    family.body = Renderer(keys, exprs).chain(family.instances[0].items)


def _columns(hints, columns, formulas=None):
    exprs, varying, params = [], {}, []
    for i, (hint, column) in enumerate(zip(hints, columns)):
        if (formulas or {}).get(i):
            exprs.append(formulas[i])
            continue
        if len(set(column)) == 1:
            exprs.append(literal(column[0]))
            continue
        expr = None
        for name, other in varying.items():
            if column == other:
                expr = name
                break
            if all(isinstance(v, int) and isinstance(o, int) and o and v % o == 0
                   for v, o in zip(column, other)):
                ratios = {v // o for v, o in zip(column, other)}
                if len(ratios) == 1 and ratios.pop() > 1:
                    expr = f"{column[0] // other[0]} * {name}"
                    break
        if expr is None:
            expr = _unique(hint, varying)
            common, n = Counter(column).most_common(1)[0]
            params.append((expr, common if n >= 2 and 2 * n > len(column) else None))
            varying[expr] = column
        exprs.append(expr)
    params.sort(key=lambda p: p[1] is not None)  # parameters with defaults go last
    return exprs, varying, params


def _unique(hint: str, taken) -> str:
    name, n = hint, 1
    while name in taken or layers.lookup(name) or functions.lookup(name) or \
            name.lower() in BUILTINS:
        n += 1
        name = f"{hint}{n}"
    return name


def _def_name(cls: str, ordered: list[Family]) -> str:
    base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls).lower()
    base = re.sub(r"\W+", "_", base).strip("_") or "block"
    if not base[0].isalpha():
        base = "block_" + base
    taken = {f.name for f in ordered}
    name, n = base, 1
    while name in taken or layers.lookup(name) or functions.lookup(name) or \
            name in BUILTINS:
        n += 1
        name = f"{base}{n}"
    return name


def literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    if isinstance(value, float):
        return repr(float(f"{value:.12g}"))  # 1 - 0.9997 is 0.0003
    return str(value)


# -- text -------------------------------------------------------------------------------------

class Renderer:
    """Items as spec text; the numbers are taken, in order, from `exprs` (a parameter, a
    literal, `4 * c`), at the keys each position writes."""

    def __init__(self, keys: list[set], exprs: list[str], overrides: dict | None = None):
        self.keys, self.exprs = keys, iter(exprs)
        self.position = 0
        self.overrides = overrides or {}  # {(position, param): text}: `FC(classes)`

    def chain(self, items) -> str:
        return " - ".join(self.item(item) for item in items)

    def item(self, item) -> str:
        if isinstance(item, Merge):
            texts = [self.chain(b) or "identity" for b in item.branches]
            inner = ", ".join(texts)
            if len(inner) > 60:
                inner = "\n" + ",\n".join(texts) + ",\n"
            return f"{item.builtin}({inner})"
        keys = self.keys[self.position]
        position = self.position
        self.position += 1
        if isinstance(item, Repeat):
            count = next(self.exprs)
            inner = self.chain(item.items)
            simple = len(item.items) == 1 and not isinstance(item.items[0], Repeat)
            return f"{inner} * {count}" if simple else f"({inner}) * {count}"
        if isinstance(item, Call):
            args = []
            for j in sorted(keys):
                name, default = item.family.params[j]
                text = next(self.exprs)
                args.append(text if default is None else f"{name}={text}")
            return f"{item.family.name}({', '.join(args)})" if args else item.family.name
        return self.layer(item.op, keys, position)

    def layer(self, op: Op, keys: set, position: int) -> str:
        written = {}
        for q in op.kind.params:
            if q.name in keys:
                text = next(self.exprs)
                written[q.name] = self.overrides.get((position, q.name), text)
            elif q.name in op.args:
                written[q.name] = literal(op.args[q.name])
        args = []
        for q in [q for q in op.kind.params if not q.keyword_only][:2]:
            if q.name not in written:
                break
            args.append(written.pop(q.name))
        args += [f"{KEYWORDS.get(name, name)}={text}" for name, text in written.items()]
        return f"{op.kind.name}({', '.join(args)})" if args else op.kind.name


def top_level(items: list, classes_at=None) -> str:
    """The network expression: the chain with its own numbers."""
    walk = list(_walk(items))
    keys = [_written_keys(entry) for entry in walk]
    exprs = [literal(v) for entry, k in zip(walk, keys) for _, v in _slots(entry, k)]
    overrides = {}
    if classes_at is not None:
        for i, entry in enumerate(walk):
            if isinstance(entry, Layer) and entry.op is classes_at[0]:
                overrides[(i, classes_at[1])] = "classes"
    return Renderer(keys, exprs, overrides).chain(items)
