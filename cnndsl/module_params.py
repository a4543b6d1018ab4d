"""A generated class's constructor arguments (each slot's expression, each call's values)
and its attributes' names; no torch here.

The numbers in which a class's instances differ become the class's constructor arguments,
named after the def's parameters (or `in_channels`) where the values say so on every call, and
checked on every call: a name never changes what a model computes.
"""
from __future__ import annotations

import re

from .pysource import Expr, Literal, same
from .unify import ANY, Group, Layer, Opt, Param, Runs, Seq, Value, fingerprint_shape, plain, \
    slots, walk


# -- the attributes' names ---------------------------------------------------------------------

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


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower().strip("_") or "block"


def unique_name(base: str, counts: dict, taken: set, *, numbered: bool) -> str:
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
    values = {plain(inst.args[name]) for inst in group.instances if name in inst.defaulted}
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
