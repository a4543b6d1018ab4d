"""Python source pieces for generated code: literals, argument expressions, and calls laid out
as `ruff format` lays them out (100 columns), so generated files pass `ruff format --check`."""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass

WIDTH = 100


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
    if isinstance(value, str) and value.isidentifier() and value.isascii():
        return f'"{value}"'  # a mode's name (`"bilinear"`): a plain word, nothing to escape
    if isinstance(value, tuple):
        items = [literal(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    raise TypeError(f"a recipe argument must be a number, a bool, a word or a tuple, not "
                    f"{value!r}")


def same(a, b) -> bool:
    """Equal and of one type: True is not 1, 1.0 is not 1."""
    return type(a) is type(b) and a == b


class Expr:
    """An argument's source and how to compute it from the class's arguments."""

    def __init__(self, code: str, evaluate):
        self.code = code
        self.evaluate = evaluate


class Literal(Expr):
    def __init__(self, value):
        super().__init__(literal(value), lambda env: value)
        self.value = value


def class_name_of(text: str, default: str = "Block") -> str:
    """`bottleneck` -> `Bottleneck`, `conv_bn` -> `ConvBn`."""
    words = [w for w in re.split(r"[^0-9A-Za-z]+", text) if w]
    name = "".join(w[:1].upper() + w[1:] for w in words)
    return name if name[:1].isalpha() else default + name


# -- layout -----------------------------------------------------------------------------------

@dataclass
class Call:
    """`head(arg, ...)`; an argument is source text or another Call, Repeat or List."""

    head: str
    args: list
    close: str = ")"  # ") -> None:" for a def line


@dataclass
class Repeat:
    """`*[element for _ in range(count)]`."""

    element: object
    count: str


@dataclass
class List:
    items: list


def flat(item) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, Call):
        return f"{item.head}({', '.join(map(flat, item.args))}{item.close}"
    if isinstance(item, Repeat):
        return f"*[{flat(item.element)} for _ in range({item.count})]"
    return f"[{', '.join(map(flat, item.items))}]"


def call_lines(prefix: str, item, indent: int, suffix: str = "", comment: str = "") -> list[str]:
    """`prefix + item + suffix` at `indent`, split over lines where it does not fit in 100
    columns the way ruff's formatter splits it: first the outermost brackets' contents on one
    line of their own, else one argument per line with a trailing comma."""
    pad = " " * indent
    one = f"{pad}{prefix}{flat(item)}{suffix}"
    if comment and len(one) + 2 + len(comment) <= WIDTH:
        return [f"{one}  {comment}"]
    if len(one) <= WIDTH or isinstance(item, str):
        return [one]
    if isinstance(item, Call):
        opening, parts, closing = f"{prefix}{item.head}(", item.args, item.close + suffix
    elif isinstance(item, Repeat):
        inner = f"{pad}    {flat(item.element)} for _ in range({item.count})"
        if len(inner) <= WIDTH:
            return [f"{pad}{prefix}*[", inner, f"{pad}]{suffix}"]
        return [f"{pad}{prefix}*[", *call_lines("", item.element, indent + 4),
                f"{pad}    for _ in range({item.count})", f"{pad}]{suffix}"]
    else:
        opening, parts, closing = f"{prefix}[", item.items, "]" + suffix
    body = f"{pad}    {', '.join(map(flat, parts))}"
    if len(body) <= WIDTH:
        return [f"{pad}{opening}", body, f"{pad}{closing}"]
    lines = [f"{pad}{opening}"]
    for part in parts:
        lines += call_lines("", part, indent + 4, ",")
    return lines + [f"{pad}{closing}"]


# -- what generated code may do ----------------------------------------------------------------

class UnsafeSource(ValueError):
    """Generated code that does something other than build torch modules: a bug in cnndsl."""


_CALLABLE_NAMES = frozenset({"super", "range", "tuple", "print", "float", "int", "len"})
_TORCH_FUNCTIONS = frozenset({"cat", "flatten", "randn", "zeros", "ones", "full", "empty",
                              "no_grad"})
_STATEMENTS = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.If,
               ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.With)


def check_generated(source: str) -> None:
    """Refuse generated source unless it only imports torch and builds and calls torch
    modules and its own classes: the in-memory model runs this code (cnndsl.torch_backend),
    so it is checked as carefully as the spec text it came from (docs/compile.md)."""
    tree = ast.parse(source)
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    allowed = _CALLABLE_NAMES | classes
    local = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
             and isinstance(n.ctx, ast.Store)} | {n.arg for n in ast.walk(tree)
                                                  if isinstance(n, ast.arg)}
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and not isinstance(node, _STATEMENTS):
            raise UnsafeSource(f"line {node.lineno}: a {type(node).__name__} statement")
        if isinstance(node, ast.Import) and [a.name for a in node.names] != ["torch"]:
            raise UnsafeSource(f"line {node.lineno}: imports other than torch")
        if isinstance(node, ast.ImportFrom) and (node.module, [a.name for a in node.names]) \
                not in (("torch", ["nn"]), ("typing", ["NamedTuple"])):
            raise UnsafeSource(f"line {node.lineno}: imports other than torch")
        if isinstance(node, ast.Attribute) and node.attr.startswith("__") and \
                node.attr != "__init__":
            raise UnsafeSource(f"line {node.lineno}: the attribute {node.attr}")
        if isinstance(node, ast.Name) and node.id.startswith("__") and node.id != "__name__":
            raise UnsafeSource(f"line {node.lineno}: the name {node.id}")
        if isinstance(node, ast.Call):
            func = node.func
            root = func
            while isinstance(root, (ast.Attribute, ast.Call)):  # super().__init__, Net().eval()
                root = root.value if isinstance(root, ast.Attribute) else root.func
            fine = isinstance(root, ast.Name) and (
                root.id in allowed or root.id in local or root.id == "nn"
                or (root.id == "torch" and isinstance(func, ast.Attribute)
                    and func.value is root and func.attr in _TORCH_FUNCTIONS))
            if not fine:
                raise UnsafeSource(f"line {node.lineno}: a call of {ast.unparse(node.func)}")
