"""Pairing by data flow: both models traced with torch.fx into graphs (networkx) of the modules
holding tensors, and each module paired with the one of equal shapes in the same place."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import first_line

INPUT, OUTPUT = -1, -2  # the data-flow graphs' nodes besides the modules' indices
TAIL = 3  # how many operations without weights after a module tell symmetric ones apart


@dataclass
class _Flow:
    """A model's data flow between its modules holding tensors (networkx.DiGraph): a node is
    the index of its first module (several, where one call holds the tensors of several),
    `members` its modules' indices, `labels` the shapes they hold, `tails` the operations
    without weights up to TAIL steps after it; `colors` are filled in by flow_pairing, the
    same numbering for both models."""

    graph: object
    members: dict
    labels: dict
    colors: dict
    tails: dict  # node -> the names of the operations without weights just after it


def flows(source, model, theirs, ours):
    """Both models' data flows, or why they cannot be had."""
    flows = []
    for who, module, groups in (("the source", source, theirs), ("the model", model, ours)):
        flow = _trace(module, groups)
        if isinstance(flow, str):
            return f"{who} {flow}"
        flows.append(flow)
    return tuple(flows)


def _trace(module, groups) -> _Flow | str:
    import warnings

    import networkx as nx
    import torch.fx

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.fx.symbolic_trace(module)
    except Exception as exc:  # noqa: BLE001 (any model torch.fx cannot follow)
        return f"cannot be traced by torch.fx ({first_line(exc)})"
    index = {path: i for i, path in enumerate(path for path, _ in groups)}
    below: dict[str, list[int]] = {}  # a module's path -> the groups at or under it
    for path, i in index.items():
        parts = path.split(".") if path else []
        for n in range(len(parts) + 1):
            below.setdefault(".".join(parts[:n]), []).append(i)
    parent = list(range(len(groups)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owned: dict[object, list[int]] = {}
    for node in traced.graph.nodes:
        if node.op == "call_module":
            mine = below.get(node.target, [])
        elif node.op == "get_attr":
            owner = node.target.rpartition(".")[0]
            mine = [index[owner]] if owner in index else []
        else:
            continue
        if mine:
            owned[node] = mine
            for i in mine[1:]:
                parent[find(i)] = find(mine[0])
    used = {i for mine in owned.values() for i in mine}
    for i in range(len(groups)):
        if i not in used:
            return f"does not use its `{groups[i][0]}` in forward"
    members: dict[int, list[int]] = {}
    for i in range(len(groups)):
        members.setdefault(find(i), []).append(i)
    members = {min(m): m for m in members.values()}
    node_of = {i: min(m) for m in members.values() for i in m}
    graph = nx.DiGraph()
    graph.add_nodes_from([INPUT, OUTPUT, *members])
    frontier: dict[object, frozenset] = {}
    for node in traced.graph.nodes:
        reached = frozenset().union(*(frontier.get(i, ()) for i in node.all_input_nodes))
        if node in owned:
            mine = node_of[owned[node][0]]
            graph.add_edges_from((p, mine) for p in reached)
            frontier[node] = frozenset((mine,))
        elif node.op == "placeholder":
            frontier[node] = frozenset((INPUT,))
        elif node.op == "output":
            graph.add_edges_from((p, OUTPUT) for p in reached)
        else:
            # An operation reading one module's tensor itself (a module torch.fx traces
            # through: `x + self.bias1.bias`) is that module's: what it reads flows into the
            # module, and its result comes out of it. Without this, `BIAS - BIAS` had no edge
            # from the first to the second, and the two looked interchangeable.
            direct = {node_of[owned[i][0]] for i in node.all_input_nodes
                      if i.op == "get_attr" and i in owned}
            if len(direct) == 1:
                (mine,) = direct
                graph.add_edges_from((p, mine) for p in reached if p != mine)
                frontier[node] = frozenset((mine,))
            else:
                frontier[node] = reached
    if not nx.is_directed_acyclic_graph(graph):
        return "uses a module holding tensors more than once (shared weights)"
    labels = {INPUT: "input", OUTPUT: "output"}
    for node, mine in members.items():
        labels[node] = tuple(tuple(s for _, s in shapes(groups[i][1])) for i in mine)
    modules = dict(traced.named_modules())
    tails: dict[int, list[str]] = {}
    for node, mine in owned.items():
        tail = tails.setdefault(node_of[mine[0]], [])
        reached, frontier_nodes = set(), list(node.users)
        for _ in range(TAIL):
            following = []
            for user in frontier_nodes:
                if user in reached or user in owned or user.op == "output":
                    continue
                reached.add(user)
                tail.append(_op_name(user, modules))
                following.extend(user.users)
            frontier_nodes = following
    return _Flow(graph, members, labels, {},
                 {node: tuple(sorted(tail)) for node, tail in tails.items()})


def _op_name(node, modules) -> str:
    """A parameter-free operation's name, the same for its module, function and method
    spellings (nn.ReLU, F.relu, x.relu_(); nn.AdaptiveAvgPool2d, F.adaptive_avg_pool2d)."""
    if node.op == "call_module":
        name = type(modules[node.target]).__name__
    elif node.op == "call_function":
        name = getattr(node.target, "__name__", str(node.target))
    else:
        name = str(node.target)
    name = name.lower().replace("_", "")
    return {"iadd": "add", "imul": "mul", "isub": "sub"}.get(name, name)


def _color(flow: _Flow, table: dict, *, tails: bool = False) -> dict:
    """Each node's class: its shapes (with `tails`, and the operations without weights after
    it) with its ancestry (from the input) and its descendants (to the output), numbered
    through `table`, which both models share, so that equal classes have equal numbers."""
    import networkx as nx

    graph = flow.graph
    labels = {node: (label, flow.tails.get(node)) if tails else label
              for node, label in flow.labels.items()}
    order = list(nx.topological_sort(graph))
    up: dict[int, int] = {}
    for node in order:
        key = ("up", labels[node], tuple(sorted(up[p] for p in graph.predecessors(node))))
        up[node] = table.setdefault(key, len(table))
    down: dict[int, int] = {}
    for node in reversed(order):
        key = ("down", labels[node], tuple(sorted(down[s] for s in graph.successors(node))))
        down[node] = table.setdefault(key, len(table))
    return {node: table.setdefault((up[node], down[node]), len(table)) for node in graph}


def flow_pairing(src: _Flow, dst: _Flow):
    """Module pairs (source index, model index) that map one data flow onto the other, in
    creation order within each class of equal shapes and place; None where none does."""
    from collections import Counter

    table: dict = {}
    src.colors, dst.colors = _color(src, table), _color(dst, table)
    if Counter(src.colors.values()) != Counter(dst.colors.values()):
        return None
    # Modules of equal shapes in symmetric places are told apart first by the operations
    # without weights after them (a body's activation, which a projection lacks), where both
    # models spell those alike; the outputs check it, and decide where they do not.
    finer = _color(src, table, tails=True), _color(dst, table, tails=True)
    attempts = [finer] if Counter(finer[0].values()) == Counter(finer[1].values()) else []
    for colors in (*attempts, (src.colors, dst.colors)):
        classes: dict[int, tuple[list, list]] = {}
        for side, flow in enumerate((src, dst)):
            for node in sorted(flow.graph):
                classes.setdefault(colors[side][node], ([], []))[side].append(node)
        mapping = {a: b for mine, yours in classes.values() for a, b in zip(mine, yours)}
        if _is_isomorphism(src, dst, mapping):
            return _group_pairs(src, dst, mapping)
    mapping = next(_isomorphisms(src, dst), None)
    return None if mapping is None else _group_pairs(src, dst, mapping)


def _isomorphisms(src: _Flow, dst: _Flow):
    from networkx.algorithms.isomorphism import DiGraphMatcher

    nx_src, nx_dst = src.graph.copy(), dst.graph.copy()
    for flow, graph in ((src, nx_src), (dst, nx_dst)):
        for node in graph:
            graph.nodes[node]["color"] = flow.colors[node]
    matcher = DiGraphMatcher(nx_src, nx_dst,
                             node_match=lambda a, b: a["color"] == b["color"])
    return matcher.isomorphisms_iter()


def alternatives(src: _Flow, dst: _Flow):
    for mapping in _isomorphisms(src, dst):
        pairs = _group_pairs(src, dst, mapping)
        if pairs is not None:
            yield pairs


def chain_unique(*iterables):
    seen = set()
    for iterable in iterables:
        for pairs in iterable:
            key = tuple(sorted(pairs))
            if key not in seen:
                seen.add(key)
                yield pairs


def _group_pairs(src: _Flow, dst: _Flow, mapping):
    pairs = []
    for node, mine in src.members.items():
        yours = dst.members.get(mapping[node])
        if yours is None or len(yours) != len(mine):
            return None
        pairs.extend(zip(mine, yours))
    return pairs


def _is_isomorphism(src: _Flow, dst: _Flow, mapping) -> bool:
    if mapping is None or len(mapping) != len(dst.graph):
        return False
    if any(src.colors[a] != dst.colors.get(b) for a, b in mapping.items()):
        return False
    edges = {(mapping[a], mapping[b]) for a, b in src.graph.edges}
    return edges == set(dst.graph.edges)


def ambiguous(src: _Flow, theirs) -> list[str]:
    """The source's modules that share their shapes and place with another."""
    from collections import Counter

    counts = Counter(src.colors[node] for node in src.members)
    return [theirs[i][0] or "(root)" for node, mine in sorted(src.members.items())
            if counts[src.colors[node]] > 1 for i in mine]


def first_difference(src: _Flow, dst: _Flow, ours, source_name: str) -> str:
    """The model's first module, in creation order, whose place has no counterpart."""
    from collections import Counter

    theirs = Counter(src.colors[node] for node in src.members)
    for node in sorted(dst.members):
        if theirs[dst.colors[node]] == 0:
            reads = sorted(f"`{ours[p][0]}`" if p >= 0 else "the input"
                           for p in dst.graph.predecessors(node))
            return (f"the model's `{ours[node][0]}` ({describe(shapes(ours[node][1]))}, "
                    f"reading {', '.join(reads) or 'nothing'}) has no module of {source_name} "
                    "with its shapes in its place in the data flow")
    return "the data flows differ"


def describe(tensors) -> str:
    """(name, shape) pairs as the messages write them (`weight 64x3x7x7, bias 64`); weights'
    report and its creation-order messages use it too."""
    return ", ".join(f"{name} {'x'.join(map(str, shape)) or 'scalar'}"
                     for name, shape in tensors)


def shapes(tensors) -> list[tuple[str, tuple[int, ...]]]:
    """A module's (name, tensor) pairs as (name, shape): the flow's labels, and weights'."""
    return [(name, tuple(value.shape)) for name, value in tensors]
