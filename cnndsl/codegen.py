"""Checked IR -> standalone, readable PyTorch source: one nn.Module class, imports only torch."""
from __future__ import annotations

import ast
import math
import unicodedata
from pathlib import Path

from . import lowering
from .ir import as_graph
from .version import __version__

# Characters that would hide, reorder or break lines of the text they sit in.
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def literal(value) -> str:
    """Python source for a recipe argument; anything but plain data is refused."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write the number {value!r} as source")
        return repr(float(value))
    if isinstance(value, tuple):
        items = [literal(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    raise TypeError(f"a recipe argument must be a number, a bool or a tuple, not {value!r}")


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


def allocate_registers(plan: lowering.Plan) -> dict[int, str]:
    """Variable names for values: x, x1, x2 ..., reused once a value is dead (less memory)."""
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
            if uses[u] == 0 and u != plan.output:
                released.append(reg[u])
        # The lowest register this step frees, else the lowest free one: the trunk stays x.
        if released or free:
            target = min(released or free, key=_register_index)
            (released if released else free).remove(target)
        else:
            target, count = f"x{count}", count + 1
        free.extend(released)
        reg[step.node] = target
        if uses.get(step.node, 0) == 0 and step.node != plan.output:
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


def to_source(graph, *, logits: bool = False, class_name: str = "Net") -> str:
    """The network as a standalone Python file defining `class_name` (see docs/compile.md)."""
    graph = as_graph(graph)
    plan = lowering.plan(graph, logits=logits)
    source = graph.source
    totals = graph.totals
    custom = sorted({s.module for s in plan.steps if s.module and s.recipe.custom})
    class_name = free_class_name(class_name, custom)
    lines = [f'"""{class_name}: PyTorch code generated by cnndsl {__version__}.', "",
             f"Spec {docstring_text(source.name)}:", ""]
    # Split on "\n" only: every other line break is escaped, so the docstring holds the text.
    lines += [f"    {docstring_text(line)}" if line else "" for line in source.text.split("\n")]
    lines += ["", f"Input {shape_text(plan.input_shape)} (C x H x W), output "
              f"{shape_text(graph[plan.output].shape)}, "
              f"{totals['params']:,} parameters.", '"""', "import torch", "from torch import nn",
              "", ""]
    for name in custom:
        lines += [custom_class_source(name), "", ""]
    lines += [f"class {class_name}(nn.Module):",
              f'    """The network; forward takes N x {shape_text(plan.input_shape)} tensors."""', "",
              "    def __init__(self) -> None:", "        super().__init__()"]
    for step in plan.steps:
        if step.op == "module":
            note = f"  # {comment_text(step.label)}" if " " in step.label else ""
            lines.append(f"        self.{step.name} = {module_call(step)}{note}")
    reg = allocate_registers(plan)
    lines += ["", "    def forward(self, x: torch.Tensor) -> torch.Tensor:"]
    previous = 0
    for step in plan.steps:
        lines.append(f"        {forward_line(step, reg, step.block_id != previous)}")
        previous = step.block_id
    lines += [f"        return {reg[plan.output]}", "", "",
              'if __name__ == "__main__":',
              f"    model = {class_name}().eval()",
              "    with torch.no_grad():",
              f"        y = model(torch.randn(1, {', '.join(map(str, plan.input_shape.as_list()))}))",
              f'    print("{class_name}:", tuple(y.shape))', ""]
    return "\n".join(lines)
