"""Checked IR -> a list of torch steps read from the registry's recipes (no torch imported).

Both backends (cnndsl.torch_backend builds an nn.Module, cnndsl.codegen writes Python source)
walk the same plan, so the in-memory model and the generated file cannot drift apart.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field, replace

from .ir import Graph, Node, as_graph
from .layers import Recipe
from .shapes import Shape

# Window arguments torch reads alike as 3 or (3, 3): written as one number when square.
_PAIRS = ("kernel_size", "stride", "padding", "dilation", "output_size")


@dataclass(frozen=True)
class Step:
    """One node of the network as torch sees it."""

    node: int  # the graph node id
    name: str  # identifier: the submodule's attribute name (conv1, bn1, add1)
    op: str  # "module" | "function" | "flatten"
    inputs: tuple[int, ...]  # node ids, in argument order (one may appear more than once)
    shape: Shape  # the static output shape (per sample)
    recipe: Recipe = field(default_factory=Recipe)  # the kind's torch form
    kwargs: dict = field(default_factory=dict)  # the module's (or function's) arguments
    label: str = ""  # "CONV 3x3/1, 64"
    block: str = ""  # the `def` blocks the node comes from, `stage.basic`
    block_id: int = 0  # which call of it (0: none)
    accumulate: bool = False  # a sum: into the first input's tensor (Tensor.add_)

    @property
    def module(self) -> str | None:
        return self.recipe.module if self.op == "module" else None

    @property
    def function(self) -> str | None:
        return self.recipe.function if self.op == "function" else None

    @property
    def flatten(self) -> bool:
        return self.recipe.flatten


@dataclass(frozen=True)
class Plan:
    input: int  # the INPUT node id
    input_shape: Shape
    output: int  # the node whose value the model returns
    steps: tuple[Step, ...]
    # several outputs (`outputs(...)`): (name, node) each, `output` first; empty: just one
    outputs: tuple[tuple[str, int], ...] = ()

    @property
    def returned(self) -> tuple[int, ...]:
        """Every node the model returns (in training mode)."""
        return tuple(v for _, v in self.outputs) or (self.output,)


def safe_identifier(text: str, default: str = "x") -> str:
    """A legal, non-keyword Python identifier made from any text."""
    name = re.sub(r"\W", "_", text, flags=re.ASCII).strip("_") or default
    if name[0].isdigit():
        name = f"{default}_{name}"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        name += "_"
    return name


def _block_of(node: Node) -> tuple[str, int]:
    """`stage.basic`: the `def` blocks around a node, outermost first; the innermost's id."""
    blocks = node.scope.blocks()
    if not blocks:
        return "", 0
    return ".".join(safe_identifier(b.name, "block") for b in blocks), blocks[-1].id


def _step(graph: Graph, node: Node, names: dict[int, str]) -> Step:
    recipe = node.kind.recipe(node.params, node.in_shapes, node.shape)
    block, block_id = _block_of(node)
    common = dict(node=node.id, name=names[node.id], inputs=tuple(e.node for e in node.inputs),
                  shape=node.shape, label=node.label(), block=block, block_id=block_id,
                  recipe=recipe)
    if recipe.function is not None:
        if recipe.function not in FUNCTIONS:
            raise ValueError(f"layer kind {node.kind.name}: unknown tensor function "
                             f"{recipe.function!r}")
        return Step(op="function", kwargs=dict(recipe.kwargs), **common)
    if recipe.module is None or not re.fullmatch(r"[A-Z][A-Za-z0-9_]*", recipe.module):
        raise ValueError(f"layer kind {node.kind.name} has no torch recipe ({recipe.module!r})")
    kwargs = {k: v[0] if k in _PAIRS and isinstance(v, tuple) and len(set(v)) == 1 else v
              for k, v in recipe.kwargs.items()}
    return Step(op="module", kwargs=kwargs, **common)


# The tensor functions a recipe may name (both backends implement each): "add" sums the
# inputs, "cat" joins them with the recipe's kwargs (dim), "mul" multiplies the first by the
# second (broadcasting a 1x1xC gate over HxW).
FUNCTIONS = ("add", "cat", "mul")


def _owner_is_shared(graph: Graph, steps: dict[int, Step], v: int, start: int) -> bool:
    """Whether the tensor node v outputs may be seen by anyone but its one consumer."""
    while True:
        if v == start or graph.uses(graph[v]) > 1:
            return True
        step = steps.get(v)
        if step is None or not (step.op == "flatten" or step.recipe.aliases_input
                                or step.kwargs.get("inplace") or step.accumulate):
            return False
        v = step.inputs[0]


def _may_accumulate(graph: Graph, steps: dict[int, Step], step: Step, start: int) -> bool:
    first = step.inputs[0]
    producer = steps.get(first)
    return (producer is not None and step.inputs.count(first) == 1
            and (producer.recipe.accumulable or producer.op == "function")
            and not _owner_is_shared(graph, steps, first, start))


def plan(graph, *, logits: bool = False) -> Plan:
    """The torch steps of a checked graph, in data-flow order.

    logits=True drops a trailing SOFTMAX (keeping its flatten, so the output shape holds).
    An activation runs in place, and a sum accumulates into its first operand, only where no
    other node can see the tensor overwritten.
    """
    graph = as_graph(graph)
    order = graph.order()
    start = graph.input
    names = {n.id: safe_identifier(n.name, "layer") for n in order}
    if len(set(names.values())) != len(names):
        raise ValueError("node names are not unique")
    output = graph.output
    steps: dict[int, Step] = {}
    for node in order:
        if node.id == start:
            continue
        step = _step(graph, node, names)
        if node.id == output and logits and node.kind.logits_drop:
            if not step.flatten:
                output = step.inputs[0]
                continue
            step = Step(node=node.id, name=step.name, op="flatten", inputs=step.inputs,
                        shape=step.shape, label="FLATTEN (logits)", block=step.block,
                        block_id=step.block_id)
        if step.kwargs.get("inplace") and _owner_is_shared(graph, steps, step.inputs[0], start):
            step = replace(step, kwargs={**step.kwargs, "inplace": False})
        if step.function == "add" and _may_accumulate(graph, steps, step, start):
            step = replace(step, accumulate=True)
        steps[node.id] = step
    outputs = tuple((name, output if v == graph.output else v) for name, v in graph.outputs)
    return Plan(input=start, input_shape=graph.input_node.shape, output=output,
                steps=tuple(steps.values()), outputs=outputs)
