"""Checked IR -> a list of torch steps read from the registry's recipes (no torch imported).

Both backends (cnndsl.torch_backend builds an nn.Module, cnndsl.codegen writes Python source)
walk the same plan, so the in-memory model and the generated file cannot drift apart.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

from . import layers
from .ir import DiGraph
from .passes import data_flow_order, inputs_of
from .shapes import Shape

# Modules whose output may be their input tensor itself (eval dropout, flatten views, in-place
# activations): an in-place activation after them would also overwrite that input.
_ALIASING = {"Dropout", "Flatten", "Identity"}
# Producers whose backward does not need their output: an ADD may accumulate into it in place
# (as torchvision's `out += identity`), saving an allocation per residual.
_ACCUMULATE_INTO = {"Conv2d", "BatchNorm2d", "BatchNorm1d", "Linear"}
# Window arguments torch reads alike as 3 or (3, 3): written as one number when square.
_PAIRS = ("kernel_size", "stride", "padding", "dilation", "output_size")


@dataclass(frozen=True)
class Step:
    """One node of the network as torch sees it."""

    node: int  # the graph node id
    name: str  # identifier: the submodule's attribute name (conv1, bn1, add1)
    op: str  # "module" | "add" | "concat" | "flatten"
    inputs: tuple[int, ...]  # node ids, in argument order
    shape: Shape  # the static output shape (per sample)
    module: str | None = None  # torch.nn (or cnndsl.torch_modules) class name
    kwargs: dict = field(default_factory=dict)
    flatten: bool = False  # flatten (N, C, H, W) -> (N, C*H*W) before the module
    label: str = ""  # "CONV 3x3/1, 64"
    block: str = ""  # the `def` blocks the node comes from, `stage.basic`
    block_id: int = 0  # which call of it (0: none)
    accumulate: bool = False  # ADD: sum into the first input's tensor (Tensor.add_)


@dataclass(frozen=True)
class Plan:
    input: int  # the INPUT node id
    input_shape: Shape
    output: int  # the node whose value the model returns
    steps: tuple[Step, ...]


def safe_identifier(text: str, default: str = "x") -> str:
    """A legal, non-keyword Python identifier made from any text."""
    name = re.sub(r"\W", "_", text, flags=re.ASCII).strip("_") or default
    if name[0].isdigit():
        name = f"{default}_{name}"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        name += "_"
    return name


def _block_of(data: dict) -> tuple[str, int]:
    """`stage.basic`: the `def` blocks around a node, outermost first; the innermost's id."""
    frames = [f for f in data.get("path", ()) if f.kind == "block"]
    if not frames:
        return "", 0
    return ".".join(safe_identifier(f.name, "block") for f in frames), frames[-1].id


def _step(graph: DiGraph, v: int, names: dict[int, str]) -> Step:
    data = graph.nodes[v]
    kind = layers.get(data["kind"])
    common = dict(node=v, name=names[v], inputs=tuple(inputs_of(graph, v)), shape=data["shape"],
                  label=kind.label(data["params"]))
    common["block"], common["block_id"] = _block_of(data)
    if kind.family == "merge":  # ADD, CONCAT: tensor operations, not modules
        return Step(op=data["kind"].lower(), **common)
    recipe = kind.recipe(data["params"], data["in_shapes"], data["shape"])
    if recipe.module is None or not re.fullmatch(r"[A-Z][A-Za-z0-9_]*", recipe.module):
        raise ValueError(f"layer kind {kind.name} has no torch recipe ({recipe.module!r})")
    kwargs = {k: v[0] if k in _PAIRS and isinstance(v, tuple) and len(set(v)) == 1 else v
              for k, v in recipe.kwargs.items()}
    return Step(op="module", module=recipe.module, kwargs=kwargs,
                flatten=recipe.flatten, **common)


def _owner_is_shared(graph: DiGraph, steps: dict[int, Step], v: int, start: int) -> bool:
    """Whether the tensor node v outputs may be seen by anyone but its one consumer."""
    while True:
        if v == start or graph.out_degree(v) > 1:
            return True
        step = steps.get(v)
        if step is None or not (step.op == "flatten" or step.module in _ALIASING
                                or step.kwargs.get("inplace") or step.accumulate):
            return False
        v = step.inputs[0]


def _may_accumulate(graph: DiGraph, steps: dict[int, Step], step: Step, start: int) -> bool:
    first = step.inputs[0]
    producer = steps.get(first)
    return (producer is not None and step.inputs.count(first) == 1
            and (producer.module in _ACCUMULATE_INTO or producer.op in ("add", "concat"))
            and not _owner_is_shared(graph, steps, first, start))


def plan(graph: DiGraph, *, logits: bool = False) -> Plan:
    """The torch steps of a checked graph, in data-flow order.

    logits=True drops a trailing SOFTMAX (keeping its flatten, so the output shape holds).
    An activation runs in place, and an ADD sums into its first operand, only where no
    other node can see the tensor overwritten.
    """
    order = data_flow_order(graph)
    start = next(v for v in order if graph.nodes[v]["kind"] == "INPUT")
    names = {v: safe_identifier(graph.nodes[v]["name"], "layer") for v in order}
    if len(set(names.values())) != len(names):
        raise ValueError("node names are not unique")
    output = graph.graph["output"]
    steps: dict[int, Step] = {}
    for v in order:
        if v == start:
            continue
        step = _step(graph, v, names)
        if v == output and logits and graph.nodes[v]["kind"] == "SOFTMAX":
            if not step.flatten:
                output = step.inputs[0]
                continue
            step = Step(node=v, name=step.name, op="flatten", inputs=step.inputs,
                        shape=step.shape, label="FLATTEN (logits)", block=step.block,
                        block_id=step.block_id)
        if step.kwargs.get("inplace") and _owner_is_shared(graph, steps, step.inputs[0], start):
            step = Step(**{**step.__dict__, "kwargs": {**step.kwargs, "inplace": False}})
        if step.op == "add" and _may_accumulate(graph, steps, step, start):
            step = Step(**{**step.__dict__, "accumulate": True})
        steps[v] = step
    return Plan(input=start, input_shape=graph.nodes[start]["shape"], output=output,
                steps=tuple(steps.values()))
