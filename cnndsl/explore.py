"""The page to explore a network: one self-contained HTML file (no network access) in which
blocks and repeats unfold on click, a layer's numbers and formulas show on hover, a search box
finds a layer and the summary table beside the diagram is linked to its nodes.

The layout is the browser's own (nested boxes; a merge's branches side by side), so a fully
expanded ResNet-152 is ~600 elements that the page only shows or hides; nothing is vendored.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

from .drawing import block_depth
from .ir import SHORTCUT, Graph, Node, ScopeItems, as_graph
from .layers.base import DRAW_STYLES
from .limits import gc_paused
from .summary import count_of, human, rf_text

PAGE = Path(__file__).resolve().parent / "explore_page.html"


def explore_data(graph, *, expand: bool = False, depth: int | None = None) -> dict:
    """What the page draws, as JSON: every layer's numbers and the scope tree as nested boxes,
    each box marked `open` where the page starts with it unfolded: all with `expand`, those
    above `depth` (the blocks called fewer than `depth` def calls deep, and the repeats among
    them) with `depth`, none otherwise."""
    graph = as_graph(graph)
    with gc_paused():
        nodes = {str(n.id): _node_json(graph, n) for n in graph.order()}
        tree = _items(graph, graph.scope_tree(), _Opening(expand, depth))
    t = graph.totals
    return {"title": Path(graph.source.name).name,
            "totals": f"{count_of(t['params'], 'parameter')}, {human(t['macs'])}MACs, "
                      f"{count_of(t['layers'], 'layer')}; input {graph.input_node.shape}, "
                      f"output {graph.output_node.shape}",
            "nodes": nodes, "order": [n.id for n in graph.order()], "tree": tree}


def _node_json(graph: Graph, node: Node) -> dict:
    explain = []
    if node.inputs:
        explain = node.kind.explain(node.params, node.in_shapes, node.shape, node.n_params)
    return {"name": node.name, "label": node.label() if node.inputs else "input",
            "shape": str(node.shape), "ins": [str(s) for s in node.in_shapes],
            "params": node.n_params, "macs": node.macs, "rf": rf_text(node.rf),
            "explain": explain, "implicit": node.implicit,
            "color": node.kind.style().get("fillcolor", DRAW_STYLES["other"]["fillcolor"]),
            "line": node.span.line if node.span is not None else None}


class _Opening:
    """Which boxes the page shows unfolded at first."""

    def __init__(self, expand: bool, depth: int | None):
        self.expand, self.depth = expand, depth

    def __call__(self, scope) -> bool:
        if self.expand:
            return True
        if self.depth is None:
            return False
        # a block counts itself; a repeat, the blocks around it
        return block_depth(scope) < self.depth


def _items(graph: Graph, holder: ScopeItems, opening: _Opening) -> list:
    """A holder's items for the page: layers by id, blocks, repeats (their iterations
    together) and merges (their branches as columns, the residual's shortcut last)."""
    out: list = []
    merge: dict | None = None  # the branch construct being gathered
    repeat: dict | None = None  # the repeat whose iterations are being gathered
    for item in holder.items:
        if isinstance(item, Node):
            if merge is not None and len(item.inputs) <= 1:
                merge["shortcut"].append(item.id)  # a projection residual() inserted
                continue
            if merge is not None:
                if any(e.role == SHORTCUT for e in item.inputs) and not merge["shortcut"]:
                    merge["shortcut"] = ["identity"]
                out.append(merge)
                merge = None
            out.append(item.id)
            repeat = None
            continue
        scope = item.scope
        if scope.kind == "branch":
            if merge is None or merge["id"] != scope.id:
                merge = {"k": "merge", "name": scope.name, "id": scope.id, "cols": [],
                         "shortcut": []}
            merge["cols"].append(_items(graph, item, opening))
        elif scope.kind == "repeat":
            if repeat is None or repeat["id"] != scope.id:
                repeat = {"k": "repeat", "id": scope.id, "count": scope.count, "iters": [],
                          "open": opening(scope)}
                out.append(repeat)
            repeat["iters"].append(_items(graph, item, opening))
            _totals(repeat, item)
            continue
        else:
            args = ", ".join(f"{k}={v}" for k, v in scope.args.items())
            block = {"k": "block", "name": scope.name, "args": args,
                     "items": _items(graph, item, opening), "open": opening(scope)}
            _totals(block, item)
            block["out"] = str(item.nodes()[-1].shape)
            out.append(block)
        repeat = None
    if merge is not None:
        out.append(merge)
    return out


def _totals(box: dict, holder: ScopeItems) -> None:
    nodes = holder.nodes()
    box["layers"] = box.get("layers", 0) + len(nodes)
    box["params"] = box.get("params", 0) + sum(n.n_params for n in nodes)
    box["macs"] = box.get("macs", 0) + sum(n.macs for n in nodes)
    box["out"] = str(nodes[-1].shape) if nodes else box.get("out", "")


def explore_html(graph, *, expand: bool = False, depth: int | None = None) -> str:
    """The page, one self-contained HTML file (`expand`, `depth`: see explore_data)."""
    data = explore_data(graph, expand=expand, depth=depth)
    # `</` cannot end the script early once escaped; the JSON stays valid
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    values = {"TITLE": html.escape(data["title"]), "DATA": payload}
    # one pass, so that neither value is searched for the other's marker
    return re.sub(r"\{\{(TITLE|DATA)\}\}", lambda m: values[m.group(1)],
                  PAGE.read_text(encoding="utf-8"))
