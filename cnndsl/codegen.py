"""Checked IR -> standalone, readable PyTorch source: one nn.Module class, imports only torch."""
from __future__ import annotations

import ast
import re
import unicodedata
from pathlib import Path

from . import lowering, structure, unify
from .ir import as_graph
from .pysource import Call, List, Literal, Repeat, call_lines, class_name_of, flat, literal, same
from .unify import ANY, Opt, Runs, Seq
from .version import __version__

# Characters that would hide, reorder or break lines of the text they sit in.
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def docstring_text(text: str) -> str:
    """`text` escaped for a triple-quoted string: the string's value is `text` exactly.

    Backslashes, and each double quote followed by another or ending the text, are escaped,
    so nothing can end the string early; invisible or line-breaking characters become
    escapes (no "trojan source").
    """
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"' and text[i + 1:i + 2] in ('"', ""):
            out.append('\\"')  # no two quotes in a row, none last: never a closing """
        elif ch not in "\n\t" and unicodedata.category(ch) in _UNSAFE_CATEGORIES:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def comment_text(text: str) -> str:
    """Text safe inside a `#` comment: one line, printable."""
    return "".join(ch if unicodedata.category(ch) not in _UNSAFE_CATEGORIES and ch != "\n"
                   else " " for ch in text)


def module_call(step: lowering.Step) -> str:
    """`nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)`: the recipe's
    positional arguments first, torch's defaults left out, as a person writes it."""
    kwargs = dict(step.kwargs)
    recipe = step.recipe
    args = [literal(kwargs.pop(name)) for name in recipe.positional if name in kwargs]
    defaults = recipe.defaults
    for key, value in kwargs.items():
        if key in defaults and value == defaults[key] and type(value) is type(defaults[key]):
            continue
        args.append(f"{key}={literal(value)}")
    prefix = "" if recipe.custom else "nn."
    return f"{prefix}{step.module}({', '.join(args)})"


def custom_class_source(name: str) -> str:
    """The source of a cnndsl.torch_modules class, read without importing torch."""
    path = Path(__file__).with_name("torch_modules.py")
    text = path.read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return ast.get_source_segment(text, node)
    raise ValueError(f"no module class {name} in {path}")


def shape_text(shape) -> str:
    """PyTorch order: 64x56x56 (C x H x W) or 1000."""
    return "x".join(map(str, shape.as_list()))


def allocate_registers(plan: lowering.Plan, labels: dict[int, str] | None = None
                       ) -> dict[int, str]:
    """Variable names for values: x, x1, x2 ..., reused once a value is dead (less memory);
    a named tensor (`labels`: node id -> its `as` name) keeps a variable of its own name."""
    named: dict[int, str] = {}
    for v, label in (labels or {}).items():
        name = lowering.safe_identifier(label, "t")
        if v != plan.input and name not in _RESERVED_VARIABLES and \
                not re.fullmatch(r"x\d*", name) and name not in named.values():
            named[v] = name
    uses: dict[int, int] = {}
    for step in plan.steps:
        for u in set(step.inputs):
            uses[u] = uses.get(u, 0) + 1
    reg = {plan.input: "x"}
    free: list[str] = []
    count = 1
    for step in plan.steps:
        released = []
        for u in dict.fromkeys(step.inputs):
            uses[u] -= 1
            if uses[u] == 0 and u not in plan.returned and u not in named:
                released.append(reg[u])
        # The lowest register this step frees, else the lowest free one: the trunk stays x.
        if step.node in named:
            free.extend(released)
            reg[step.node] = named[step.node]
            continue
        if released or free:
            target = min(released or free, key=_register_index)
            (released if released else free).remove(target)
        else:
            target, count = f"x{count}", count + 1
        free.extend(released)
        reg[step.node] = target
        if uses.get(step.node, 0) == 0 and step.node not in plan.returned:
            free.append(target)
    return reg


def _register_index(name: str) -> int:
    return int(name[1:] or 0)


def forward_line(step: lowering.Step, reg: dict[int, str], new_block: bool) -> str:
    args = [reg[u] for u in step.inputs]
    if step.op == "module":
        x = f"torch.flatten({args[0]}, 1)" if step.flatten else args[0]
        code = f"self.{step.name}({x})"
    elif step.function == "add":
        code = "".join(f".add_({a})" for a in args[1:]) if step.accumulate else " + ".join(args)
        code = args[0] + code if step.accumulate else code
    elif step.function == "mul":
        code = " * ".join(args)
    elif step.function == "cat":
        extra = "".join(f", {k}={literal(v)}" for k, v in step.kwargs.items())
        code = f"torch.cat([{', '.join(args)}]{extra})"
    else:
        code = f"torch.flatten({args[0]}, 1)"
    note = "" if step.op == "module" else f"{step.name}: "
    where = f"  [{step.block}]" if step.block and new_block else ""
    return f"{reg[step.node]} = {code}  # {note}-> {shape_text(step.shape)}{where}"


# Names a forward's variable must not take: the method's own and the globals it calls.
_RESERVED_VARIABLES = frozenset({"self", "x", "torch", "nn", "identity", "super"})

# The file's other global names: the class must not shadow them. A spec saved as
# PositionBias.cnn, or --class-name torch, would otherwise rebind what the code calls.
_GLOBALS = frozenset({"torch", "nn", "model", "y"})


def free_class_name(wanted: str, custom=()) -> str:
    """`wanted` as an identifier that no other global of the generated file (the custom
    module classes copied into it, torch, nn, the __main__ block's names) or Python builtin
    (super, print, tuple) has: `_` appended until it is free."""
    import builtins

    name = lowering.safe_identifier(wanted, "Net")
    taken = _GLOBALS | set(custom) | set(dir(builtins))
    while name in taken:
        name += "_"
    return name


def to_flat_source(graph, *, logits: bool = False, class_name: str = "Net") -> str:
    """The network as one flat class, a statement per layer (`--flat`; docs/compile.md)."""
    graph = as_graph(graph)
    plan = lowering.plan(graph, logits=logits)
    custom = sorted({s.module for s in plan.steps if s.module and s.recipe.custom})
    class_name = free_class_name(class_name, custom)
    lines = header(graph, class_name, plan.input_shape, graph[plan.output].shape)
    for name in custom:
        lines += [custom_class_source(name), "", ""]
    lines += outputs_class(graph, class_name)
    lines += [f"class {class_name}(nn.Module):",
              f'    """The network; forward takes N x {shape_text(plan.input_shape)} tensors."""',
              "",
              "    def __init__(self) -> None:", "        super().__init__()"]
    for step in plan.steps:
        if step.op == "module":
            lines.append(f"        self.{step.name} = {module_call(step)}")
    reg = allocate_registers(plan, graph.tensor_names)
    lines += ["", f"    def forward(self, x: torch.Tensor) -> {returns(graph, class_name)}:"]
    previous = 0
    for step in plan.steps:
        lines.append(f"        {forward_line(step, reg, step.block_id != previous)}")
        previous = step.block_id
    lines += [*return_lines(graph, class_name, [reg[v] for v in plan.returned]), "", "",
              'if __name__ == "__main__":',
              f"    model = {class_name}().eval()",
              "    with torch.no_grad():",
              f"        y = model(torch.randn(1, "
              f"{', '.join(map(str, plan.input_shape.as_list()))}))",
              f'    print("{class_name}:", tuple(y.shape))', ""]
    return "\n".join(lines)


def outputs_name(class_name: str) -> str:
    return f"{class_name}Outputs"


def outputs_class(graph, class_name: str) -> list[str]:
    """Several outputs: the named tuple the model returns in training mode (torchvision's
    GoogLeNetOutputs, InceptionOutputs)."""
    if not graph.outputs:
        return []
    main = graph.outputs[0][0]
    return [f"class {outputs_name(class_name)}(NamedTuple):",
            (f'    """The outputs in training mode; in eval mode the model returns `{main}` '
             'alone."""'), "",
            *(f"    {name}: torch.Tensor" for name, _ in graph.outputs), "", ""]


def returns(graph, class_name: str) -> str:
    """The forward's return annotation."""
    return f"torch.Tensor | {outputs_name(class_name)}" if graph.outputs else "torch.Tensor"


def return_lines(graph, class_name: str, values: list[str], indent: int = 8) -> list[str]:
    """`return x`; with several outputs, all of them (a named tuple) in training mode and the
    main one in eval mode, as torchvision's GoogLeNet and Inception v3 return theirs."""
    pad = " " * indent
    if not graph.outputs:
        return [f"{pad}return {values[0]}"]
    fields = [f"{name}={v}" for (name, _), v in zip(graph.outputs, values)]
    return [f"{pad}if self.training:",
            *call_lines("return ", Call(outputs_name(class_name), fields), indent + 4),
            f"{pad}return {values[0]}"]


def header(graph, class_name: str, input_shape, output_shape, *,
           whole_spec: bool = True) -> list[str]:
    """The module docstring (the spec, its shapes and size) and the imports. Without
    `whole_spec`, the spec's comment lines after its first (its description) are left out."""
    source = graph.source
    sizes = (f"Input {shape_text(input_shape)} (C x H x W), output {shape_text(output_shape)}, "
             f"{graph.totals['params']:,} parameters.")
    spec = f"Spec {docstring_text(source.name)}:"
    lines = [f'"""{class_name}: PyTorch code generated by cnndsl {__version__}.', "",
             *([f"{sizes} {spec}"] if len(sizes) + len(spec) < 100 else [sizes, spec]), ""]
    # Split on "\n" only: every other line break is escaped, so the docstring holds the text.
    text = source.text.split("\n")
    if not whole_spec:
        text = text[:1] + [line for line in text[1:] if not line.lstrip().startswith("#")]
    while text and not text[-1].strip():
        text.pop()
    lines += [f"    {docstring_text(line)}" if line.strip() else "" for line in text]
    typing = ["from typing import NamedTuple", ""] if graph.outputs else []
    return lines + ['"""', "", *typing, "import torch", "from torch import nn", "", ""]


def main_block(class_name: str, input_shape) -> list[str]:
    """`python model.py` builds the model and prints its output shape for a random input."""
    size = ", ".join(map(str, input_shape.as_list()))
    shape = Call("tuple", [f"{class_name}().eval()(torch.randn(1, {size})).shape"])
    return ['if __name__ == "__main__":',
            *call_lines("", Call("print", [f'"{class_name}:"', shape]), 4), ""]


def to_source(graph, *, logits: bool = False, class_name: str = "Net",
              flat: bool = False) -> str:
    """The network as a standalone Python file defining `class_name` (see docs/compile.md):
    a class per def (cnndsl.structure), then the model, as torchvision's model files."""
    if flat:
        return to_flat_source(graph, logits=logits, class_name=class_name)
    graph = as_graph(graph)
    mp = structure.plan(graph, logits=logits)
    class_name = free_class_name(class_name, mp.custom)
    names = class_names(mp, class_name)
    lines = header(graph, class_name, mp.input_shape, graph.totals["output"], whole_spec=False)
    for name in mp.custom:
        lines += [custom_class_source(name), "", ""]
    for group in mp.groups:
        lines += ClassWriter(group, names).lines() + ["", ""]
    lines += outputs_class(graph, class_name)
    lines += ClassWriter(mp.model, names, model=True, input_shape=mp.input_shape,
                         graph=graph).lines()
    lines += ["", ""] + main_block(class_name, mp.input_shape)
    return "\n".join(lines)


def class_names(mp: structure.ModulePlan, model_name: str) -> dict[int, str]:
    """A class name per group: the def's name in CamelCase (`Block` for an unnamed branch or
    iteration), numbered where a def needs several classes, never another global's name."""
    import builtins

    taken = set(_GLOBALS) | set(mp.custom) | set(dir(builtins)) | {model_name}
    names = {id(mp.model): model_name}
    for group in mp.groups:
        base = class_name_of(group.name) if group.name else "Block"
        name, k = base, 1
        while name in taken:
            k += 1
            name = f"{base}{k}"
        taken.add(name)
        names[id(group)] = name
    return names


def plus_one(count) -> str:
    """The source of a count expression plus one: `n - 2` -> `n - 1`, `n - 1` -> `n`."""
    if isinstance(count, Literal):
        return str(count.value + 1)
    match = re.fullmatch(r"(\w+) ([+-]) (\d+)", count.code)
    if match is None:
        return f"{count.code} + 1"
    name, sign, d = match[1], match[2], int(match[3])
    d = d + 1 if sign == "+" else 1 - d
    return name if d == 0 else f"{name} + {d}" if d > 0 else f"{name} - {-d}"


class ClassWriter:
    """One generated class: its constructor from the group's template and expressions, its
    forward from the template's data flow."""

    def __init__(self, group: unify.Group, names: dict, *, model: bool = False,
                 input_shape=None, graph=None):
        self.group, self.names, self.model = group, names, model
        self.graph = graph  # the model's: its several outputs, if any
        self.input_shape = input_shape
        self.exprs = iter(group.exprs)
        self.skipped: set[str] = set()  # attributes no call has (a repeat of 0 everywhere)
        self.shortcuts: dict[str, str] = {}  # shortcut attribute -> "always" | "never" | "some"

    def lines(self) -> list[str]:
        group = self.group
        template = group.template
        base = "nn.Sequential" if template.sequential else "nn.Module"
        numbered = template.sequential == "numbered"
        out = [f"class {self.names[id(group)]}({base}):"]
        args = ["self"] + [f"{p.name}: {p.kind}" + (
            f" = {literal(p.default)}" if p.default is not ANY else "") for p in group.params]
        out += call_lines("def ", Call("__init__", args, ") -> None:"), 4)
        if numbered:
            elements = []
            for _, ctor in template.attrs:
                elements += self.elements(ctor)
            out += call_lines("", Call("super().__init__", elements), 8)
            return out
        out.append("        super().__init__()")
        for attr, ctor in template.attrs:
            out += self.attribute(attr, ctor)
        return out if template.sequential else out + [""] + self.forward()

    # -- constructors ------------------------------------------------------------------------
    def attribute(self, attr: str, ctor) -> list[str]:
        if isinstance(ctor, Opt):
            present = next(self.exprs)
            item = self.source(ctor.ctor) if ctor.ctor is not None else None
            if isinstance(present, Literal):
                self.shortcuts[attr] = "always" if present.value else "never"
                return [] if not present.value else call_lines(f"self.{attr} = ", item, 8)
            self.shortcuts[attr] = "some"
            return [f"        self.{attr} = None", f"        if {present.code}:",
                    *call_lines(f"self.{attr} = ", item, 12)]
        if isinstance(ctor, Runs) and ctor.runs is None:
            self.skipped.add(attr)
            return []
        return call_lines(f"self.{attr} = ", self.source(ctor), 8)

    def source(self, ctor):
        if isinstance(ctor, unify.Layer):
            return self.layer(ctor)
        if isinstance(ctor, unify.Call):
            child = ctor.instance.group
            exprs = [next(self.exprs) for _ in child.params]
            while exprs and isinstance(exprs[-1], Literal) and \
                    child.params[len(exprs) - 1].default is not ANY and \
                    same(exprs[-1].value, child.params[len(exprs) - 1].default):
                exprs.pop()
            return Call(self.names[id(child)], [e.code for e in exprs])
        if isinstance(ctor, Seq):
            items = []
            for item in ctor.items:
                items += self.elements(item)
            return Call("nn.Sequential", items)
        if isinstance(ctor, Runs):
            return Call("nn.Sequential", self.elements(ctor))
        raise AssertionError(ctor)

    def elements(self, ctor) -> list:
        """A constructor as nn.Sequential's elements: a repeat's runs spliced in."""
        if not isinstance(ctor, Runs):
            return [self.source(ctor)]
        out: list = []
        merged = None
        for i, (item, _) in enumerate(ctor.runs or ()):
            element = self.source(item) if item is not None else None
            count = next(self.exprs)
            if merged is not None:  # this run builds as the one before: one count for both
                count, merged = merged, None
            elif (id(ctor), i) in self.group.merged:
                merged = self.group.merged[(id(ctor), i)]
                continue
            if element is None or isinstance(count, Literal) and count.value == 0:
                continue
            if isinstance(count, Literal) and count.value == 1:
                out.append(element)
                continue
            if out and not isinstance(out[-1], Repeat) and flat(out[-1]) == flat(element):
                # X, *[X for _ in range(n - 1)]: *[X for _ in range(n)]
                out.pop()
                out.append(Repeat(element, plus_one(count)))
            else:
                out.append(Repeat(element, count.code))
        return out

    def layer(self, ctor: unify.Layer) -> Call:
        step = ctor.step
        recipe = step.recipe
        exprs = dict(zip(ctor.keys, (next(self.exprs) for _ in ctor.keys)))
        args = [exprs.pop(k).code for k in recipe.positional if k in exprs]
        for key, expr in exprs.items():
            default = recipe.defaults.get(key, ANY)
            if isinstance(expr, Literal) and default is not ANY and same(expr.value, default):
                continue
            args.append(f"{key}={expr.code}")
        return Call(("" if recipe.custom else "nn.") + step.module, args)

    # -- forward -----------------------------------------------------------------------------
    def forward(self) -> list[str]:
        rows = self.group.template.units
        shapes = self.group.template.shapes
        pending: dict[int, int] = {}
        for row in rows:
            for i in row[2]:
                pending[i] = pending.get(i, 0) + 1
        var = {0: "x"}
        live = {"x"}
        labelled: set[str] = set()
        kind = returns(self.graph, self.names[id(self.group)]) if self.model and \
            self.graph is not None else "torch.Tensor"
        out = [f"    def forward(self, x: torch.Tensor) -> {kind}:"]
        # A shortcut of the block's own input starts the forward, torchvision's
        # `identity = x`; a projection (`if self.shortcut is not None: ...`) stays in place.
        early: set[int] = set()
        for k, (kind, name, ins, _) in enumerate(rows[:-1], 1):
            how = self.shortcuts.get(name)
            if kind == "shortcut" and ins == (0,) and how in ("never", "some"):
                var[k] = self.fresh("identity", live)
                live.add(var[k])
                out.append(f"        {var[k]} = x")
                early.add(k)
                if how == "never":  # the input is read through `identity` from here on
                    pending[0] -= 1
        for k, (kind, name, ins, detail) in enumerate(rows[:-1], 1):
            if k in early and self.shortcuts[name] == "never":
                continue
            args = [var[i] for i in ins]
            for i in ins:
                pending[i] -= 1
            dying = [i for i in dict.fromkeys(ins) if pending[i] == 0]
            for i in dying:
                live.discard(var[i])
            if name in self.skipped:
                var[k] = args[0]
                live.add(args[0])
                continue
            label = self.label(k)
            if kind == "shortcut":
                target = var[k] if k in early else self.fresh("identity", live)
            elif label is not None:  # a named tensor (`X as skip`) keeps its name
                target = self.fresh(label, live | set(var.values()))
                labelled.add(target)
            elif kind == "branch":
                target = self.fresh(name, live)
            elif ins and ins[0] in dying and re.fullmatch(r"x|out\d*", args[0]):
                target = args[0]  # the trunk stays in its variable: out += identity
            elif "x" not in live:
                target = "x"
            elif ins and ins[0] in dying and args[0] not in labelled:
                target = args[0]
            else:
                target = self.fresh("out", live)
            live.add(target)
            var[k] = target
            comment = f"# {shape_text(shapes[k - 1])}" if self.model and shapes[k - 1] else ""
            out += self.statement(kind, name, detail, args, target, comment, k in early)
        if self.model and self.graph is not None and self.graph.outputs:
            out += return_lines(self.graph, self.names[id(self.group)],
                                [var[i] for i in rows[-1][2]])
        else:
            out.append(f"        return {var[rows[-1][2][0]]}")
        return out

    def label(self, k: int) -> str | None:
        """Row k's tensor name, as a variable name that cannot hide a name forward uses."""
        labels = self.group.template.labels
        name = labels[k - 1] if k - 1 < len(labels) else None
        if name is None:
            return None
        name = lowering.safe_identifier(name, "t")
        return None if name in _RESERVED_VARIABLES else name

    @staticmethod
    def fresh(base: str, live: set) -> str:
        name, k = base, 1
        while name in live or name == "x":
            k += 1
            name = f"{base}{k}"
        return name

    def statement(self, kind, name, detail, args, target, comment,
                  early: bool = False) -> list[str]:
        if kind == "shortcut":
            how = self.shortcuts.get(name, "always")
            if how == "never":
                return [f"        {target} = {args[0]}"]
            if how == "always":
                return call_lines(f"{target} = ", f"self.{name}({args[0]})", 8)
            first = [] if early else [f"        {target} = {args[0]}"]
            return first + [f"        if self.{name} is not None:",
                            f"            {target} = self.{name}({args[0]})"]
        if kind in ("module", "branch"):
            return call_lines(f"{target} = ", f"self.{name}({args[0]})", 8, comment=comment)
        _, function, flatten, accumulate, kwargs = detail
        if kind == "layer":
            if not flatten:
                return call_lines(f"{target} = ", f"self.{name}({args[0]})", 8,
                                  comment=comment)
            if target == args[0]:
                return [f"        {target} = torch.flatten({target}, 1)",
                        *call_lines(f"{target} = ", f"self.{name}({target})", 8,
                                    comment=comment)]
            return call_lines(f"{target} = ", f"self.{name}(torch.flatten({args[0]}, 1))", 8,
                              comment=comment)
        if kind == "flatten":
            return call_lines(f"{target} = ", f"torch.flatten({args[0]}, 1)", 8, comment=comment)
        if function == "add":
            if accumulate and target == args[0]:
                return [f"        {target} += {a}" for a in args[1:-1]] + \
                    call_lines(f"{target} += ", args[-1], 8, comment=comment)
            return call_lines(f"{target} = ", " + ".join(args), 8, comment=comment)
        if function == "mul":
            return call_lines(f"{target} = ", " * ".join(args), 8, comment=comment)
        if function == "cat":
            extra = [literal(v) for k, v in kwargs if k == "dim"]
            extra += [f"{k}={literal(v)}" for k, v in kwargs if k != "dim"]
            return call_lines(f"{target} = ", Call("torch.cat", [List(args), *extra]), 8,
                              comment=comment)
        raise ValueError(f"no source for the tensor function {function!r}")
