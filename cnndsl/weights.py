"""Weights by structure: a model's (or a state_dict's) tensors copied onto a compiled model,
paired by structure, not by name.

Names differ between any two codebases (torchvision's `layer1.0.downsample.0` is a
projection a spec writes inside `residual(...)`), so modules holding tensors are paired by
what they hold and where they sit:

- a module is paired by its place in the data flow: both models are traced with torch.fx
  into graphs of the modules that hold tensors, linked where one's output reaches the other
  through parameter-free operations; each module is paired with the one of equal shapes in
  the same place (refined from the input forward and from the output backward). Where both
  models create their modules in the same order, that order agrees with the data flow and is
  used as it is. Modules of equal shapes in symmetric places (a projection and a body's
  first convolution, both reading a block's input) are told apart by the operations without
  weights just after them (the body's activation). Then both models run on one random input
  and must agree within 1e-5 of their scale; where they do not, the other pairings the data
  flow allows are tried, and if none agrees nothing is copied;
- a state_dict (which cannot be run) is paired in creation order, as two builds of one
  architecture usually create their modules, and only the shapes are checked.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import UsageError


class WeightsMismatch(UsageError):
    """The source's weights do not fit the model: the first module where they differ."""


@dataclass(frozen=True)
class Transfer:
    """One module's tensors: where they came from and where they went."""

    source: str  # the module's path in the source (`layer1.0.conv1`)
    target: str  # its path in the model (`conv5`)
    tensors: tuple[tuple[str, tuple[int, ...]], ...]  # (name in the model, shape)


@dataclass(frozen=True)
class Report:
    """What transfer_weights copied, module by module in the model's order, how the modules
    were paired (`pairing`: "data flow", "creation order, which agrees with the data flow",
    "creation order"), and how the result was checked (`check`: the outputs' agreement, or
    why they were not compared)."""

    transfers: tuple[Transfer, ...]
    pairing: str = "creation order"
    check: str = "not checked"

    @property
    def tensors(self) -> int:
        return sum(len(t.tensors) for t in self.transfers)

    @property
    def values(self) -> int:
        total = 0
        for t in self.transfers:
            for _, shape in t.tensors:
                n = 1
                for d in shape:
                    n *= d
                total += n
        return total

    def __str__(self) -> str:
        width = max((len(t.source) for t in self.transfers), default=0)
        lines = [f"{t.source or '(root)':<{width}}  ->  {t.target or '(root)'}  "
                 f"{_describe(t.tensors)}" for t in self.transfers]
        lines.append(f"{len(self.transfers):,} modules, {self.tensors:,} tensors, "
                     f"{self.values:,} values")
        lines.append(f"paired by {self.pairing}; {self.check}")
        return "\n".join(lines)


def _describe(tensors) -> str:
    return ", ".join(f"{name} {'x'.join(map(str, shape)) or 'scalar'}"
                     for name, shape in tensors)


def _modules(state: Mapping) -> list[tuple[str, list[tuple[str, object]]]]:
    """The state's tensors grouped by the module holding them, in order."""
    groups: dict[str, list[tuple[str, object]]] = {}
    for key, value in state.items():
        module, _, name = key.rpartition(".")
        groups.setdefault(module, []).append((name, value))
    return list(groups.items())


def state_of(source) -> Mapping:
    """A module's state_dict, or a state_dict (or a checkpoint holding one) as given."""
    import torch

    if isinstance(source, torch.nn.Module):
        return source.state_dict()
    if isinstance(source, Mapping):
        if source and all(isinstance(v, torch.Tensor) for v in source.values()):
            return source
        for key in ("state_dict", "model_state_dict", "model"):
            inner = source.get(key)
            if isinstance(inner, Mapping) and inner and all(
                    isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
    raise UsageError("the weights must be a torch module or a state_dict (a dict of tensors, "
                     "or a checkpoint holding one under 'state_dict' or 'model')")


def transfer_weights(source, model, *, source_name: str = "the source", verify: bool = True,
                     input_shape=None) -> Report:
    """Copy `source`'s parameters and buffers onto `model` by structure and return a report.

    `source` is a torch module or a state_dict. A module is paired with `model` by the data
    flow (torch.fx; creation order where it cannot be traced), then, with `verify`, both run
    on one random input in eval mode and must agree within 1e-5 of their scale (pairings
    the data flow leaves open are decided so). A state_dict is paired in creation order.
    `input_shape` (C, H, W, or (N,) for vectors) is the input to check with; by default the
    compiled model's own. On any mismatch nothing is copied and WeightsMismatch says where.
    """
    import torch

    theirs, ours = _modules(state_of(source)), _modules(model.state_dict())
    order_error = _order_error(theirs, ours, source_name)
    order = None if order_error else [(i, i) for i in range(len(ours))]
    if not isinstance(source, torch.nn.Module):
        if order_error:
            raise WeightsMismatch(order_error)
        transfers = _apply(theirs, ours, order, model)
        return Report(transfers, "creation order",
                      "not checked: a state_dict cannot be run (pass the module itself to "
                      "have it paired by data flow and the outputs compared)")

    flows, difference = _flows(source, model, theirs, ours), None
    if isinstance(flows, str):  # cannot be traced: creation order, checked by the outputs
        if order_error:
            raise WeightsMismatch(order_error)
        candidates, pairing, ambiguous = iter([order]), "creation order", None
        fallback = flows
    else:
        src, dst = flows
        first = _flow_pairing(src, dst)
        fallback = None
        if first is None:  # different structures: the order names the first difference
            if order_error:
                raise WeightsMismatch(order_error)
            difference = _first_difference(src, dst, ours, source_name)
            if not verify:
                raise WeightsMismatch(
                    f"{source_name}'s modules have the model's shapes in creation order, but "
                    f"they are connected differently: {difference}; nothing was copied")
            # creation order, which only the outputs can confirm
            candidates, pairing, ambiguous = iter([order]), "creation order", None
            fallback = f"the data flows differ ({difference})"
        elif order is not None and sorted(order) == sorted(first):
            candidates, pairing = iter([order]), "creation order, which agrees with the data flow"
        else:
            candidates, pairing = iter([first]), "data flow"
        if first is not None:
            ambiguous = _ambiguous(src, theirs)
            if ambiguous:
                candidates = _chain_unique(candidates, _alternatives(src, dst))

    pairs = next(candidates)
    checker = _Checker.make(source, model, input_shape) if verify else None
    agrees, measure = (None, "") if checker is None else (None, checker)
    tried, first_measure = 0, ""
    if isinstance(checker, _Checker):
        try:
            while pairs is not None:
                tried += 1
                # the paired tensors are tried without touching the model (functional_call)
                agrees, measure = checker.check(_new_state(theirs, ours, pairs),
                                                every_size=tried == 1)
                if agrees is not False:
                    break
                first_measure = first_measure or measure
                pairs = next(candidates, None) if tried < MAX_TRIES else None
        finally:
            checker.restore()
    if agrees is None:  # not compared
        if difference:
            raise WeightsMismatch(
                f"{source_name}'s modules have the model's shapes in creation order, but they "
                f"are connected differently: {difference}, and the outputs cannot be compared "
                f"here ({measure}); nothing was copied")
        if ambiguous and verify:
            raise WeightsMismatch(
                f"{_list(ambiguous)} have the same shapes and the same place in "
                f"{source_name}'s data flow, so only the outputs can tell which is which, "
                f"and they cannot be compared here ({measure}): pass input_shape=(C, H, W), "
                "or verify=False to pair them in creation order")
        why = "not checked (verify=False)" if checker is None else f"not checked: {measure}"
        return Report(_apply(theirs, ours, pairs, model), pairing, why)
    if agrees:
        if tried > 1:
            pairing = (f"data flow, with {_list(ambiguous)} (equal shapes in symmetric places) "
                       f"told apart by the outputs ({tried} pairings tried)")
        return Report(_apply(theirs, ours, pairs, model), pairing, measure)
    message = (f"the weights fit module by module, but {source_name} and the model "
               f"compute different outputs: {first_measure}")
    if fallback and fallback.startswith("the data flows differ"):
        message += (f". Modules were paired in creation order because {fallback}")
    elif fallback:
        message += (f". Modules were paired in creation order because {fallback}: where "
                    f"{source_name} creates modules of equal shapes in another order than the "
                    "model (a projection before a block's body), they are swapped; write the "
                    "model to create them in its order, or give a source torch.fx can trace")
    elif ambiguous:
        message += (f". {_list(ambiguous)} have the same shapes and the same place in "
                    f"the data flow, and none of the {tried} pairings of them tried gives "
                    f"{source_name}'s outputs, so the networks differ between their weighted "
                    "layers (an activation, a pooling, a softmax or another layer without "
                    "weights)")
    else:
        message += (". Every module was paired by its place in the data flow, so the networks "
                    "differ between their weighted layers (an activation, a pooling, a softmax "
                    "or another layer without weights)")
    raise WeightsMismatch(message + "; nothing was copied (verify=False copies them anyway)")


MAX_TRIES = 64  # pairings tried against the outputs where the data flow leaves some open
INPUT, OUTPUT = -1, -2  # the data-flow graphs' nodes besides the modules' indices
CHECK_SIZE = 32  # the largest side the outputs are compared at, where the network allows
TAIL = 3  # how many operations without weights after a module tell symmetric ones apart


def _order_error(theirs, ours, source_name: str) -> str | None:
    """Why pairing in creation order fails: the first module that differs, or None."""
    for index in range(max(len(theirs), len(ours))):
        if index >= len(theirs) or index >= len(ours):
            extra = ours[index] if index >= len(theirs) else theirs[index]
            owner = "the model" if index >= len(theirs) else source_name
            return (f"{source_name} has {len(theirs):,} modules with weights and the model "
                    f"{len(ours):,}: {owner}'s `{extra[0]}` ({_describe(_shapes(extra[1]))}) "
                    "has no counterpart")
        (their_path, their_tensors), (our_path, our_tensors) = theirs[index], ours[index]
        their_shapes, our_shapes = _shapes(their_tensors), _shapes(our_tensors)
        if [s for _, s in their_shapes] != [s for _, s in our_shapes]:
            return (f"module {index + 1} differs: {source_name}'s `{their_path}` holds "
                    f"{_describe(their_shapes)}, but the model's `{our_path}` holds "
                    f"{_describe(our_shapes)}")
    return None


def _new_state(theirs, ours, pairs) -> dict:
    """The model's state_dict from the paired modules (source index, model index)."""
    state = {}
    for their_index, our_index in pairs:
        our_path, our_tensors = ours[our_index]
        for (_, value), (name, _) in zip(theirs[their_index][1], our_tensors):
            state[f"{our_path}.{name}" if our_path else name] = value
    return state


def _apply(theirs, ours, pairs, model) -> tuple[Transfer, ...]:
    """Load the paired tensors onto the model; what went where, in the model's order."""
    model.load_state_dict(_new_state(theirs, ours, pairs))
    return tuple(Transfer(theirs[i][0], ours[j][0], tuple(_shapes(ours[j][1])))
                 for i, j in sorted(pairs, key=lambda pair: pair[1]))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().split("\n")[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _list(paths, limit: int = 6) -> str:
    shown = ", ".join(f"`{p}`" for p in paths[:limit])
    return shown + (f" and {len(paths) - limit:,} more" if len(paths) > limit else "")


# --- the data flow -------------------------------------------------------------------------


@dataclass
class _Flow:
    """A model's data flow between its modules holding tensors (networkx.DiGraph): a node is
    the index of its first module (several, where one call holds the tensors of several),
    `members` its modules' indices, `labels` the shapes they hold, `tails` the operations
    without weights up to TAIL steps after it; `colors` are filled in by _flow_pairing, the
    same numbering for both models."""

    graph: object
    members: dict
    labels: dict
    colors: dict
    tails: dict  # node -> the names of the operations without weights just after it


def _flows(source, model, theirs, ours):
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
        return f"cannot be traced by torch.fx ({_first_line(exc)})"
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
            frontier[node] = reached
    if not nx.is_directed_acyclic_graph(graph):
        return "uses a module holding tensors more than once (shared weights)"
    labels = {INPUT: "input", OUTPUT: "output"}
    for node, mine in members.items():
        labels[node] = tuple(tuple(s for _, s in _shapes(groups[i][1])) for i in mine)
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


def _flow_pairing(src: _Flow, dst: _Flow):
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


def _alternatives(src: _Flow, dst: _Flow):
    for mapping in _isomorphisms(src, dst):
        pairs = _group_pairs(src, dst, mapping)
        if pairs is not None:
            yield pairs


def _chain_unique(*iterables):
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


def _ambiguous(src: _Flow, theirs) -> list[str]:
    """The source's modules that share their shapes and place with another."""
    from collections import Counter

    counts = Counter(src.colors[node] for node in src.members)
    return [theirs[i][0] or "(root)" for node, mine in sorted(src.members.items())
            if counts[src.colors[node]] > 1 for i in mine]


def _first_difference(src: _Flow, dst: _Flow, ours, source_name: str) -> str:
    """The model's first module, in creation order, whose place has no counterpart."""
    from collections import Counter

    theirs = Counter(src.colors[node] for node in src.members)
    for node in sorted(dst.members):
        if theirs[dst.colors[node]] == 0:
            reads = sorted(f"`{ours[p][0]}`" if p >= 0 else "the input"
                           for p in dst.graph.predecessors(node))
            return (f"the model's `{ours[node][0]}` ({_describe(_shapes(ours[node][1]))}, "
                    f"reading {', '.join(reads) or 'nothing'}) has no module of {source_name} "
                    "with its shapes in its place in the data flow")
    return "the data flows differ"


# --- the check against the outputs ---------------------------------------------------------


class _Checker:
    """The source's output on one random input in eval mode, and the model's with a candidate
    state (torch.func.functional_call: the model's own tensors are not touched). Both
    models' modes are restored after. The input is at most CHECK_SIZE on a side where the
    network takes it (the pairing is the same at any size), else the model's own size."""

    def __init__(self, source, model, sizes, places, tolerance, modes):
        self.source, self.model, self.sizes, self.places = source, model, sizes, places
        self.tolerance, self.modes = tolerance, modes
        self.expected: dict[int, object] = {}

    @classmethod
    def make(cls, source, model, input_shape):
        """A checker, or why the outputs cannot be compared."""
        import torch

        shape = input_shape
        for holder in (model, source):
            if shape is None:
                shape = (getattr(holder, "cnndsl_info", None) or {}).get("input_shape")
        if shape is None:
            return "the model's input shape is not known (pass input_shape=(C, H, W))"
        shape = [int(d) for d in shape]
        places = []
        for module in (source, model):
            tensor = next(iter(module.state_dict().values()), None)
            if tensor is None or tensor.device.type == "meta":
                return "a model has no weights to run (meta)"
            places.append((tensor.device, tensor.dtype if tensor.is_floating_point()
                           else torch.float32))
        cpu = all(d.type == "cpu" for d, _ in places)
        if all(t in (torch.float32, torch.float64) for _, t in places):
            tolerance = 1e-5 if cpu else 1e-3  # CUDA's convolutions may use TF32
        else:
            tolerance = 5e-2
        sizes = [shape]
        if len(shape) == 3 and max(shape[1:]) > CHECK_SIZE:
            sizes.insert(0, [shape[0], min(shape[1], CHECK_SIZE), min(shape[2], CHECK_SIZE)])
        modes = [(m, m.training) for module in (source, model) for m in module.modules()]
        source.eval()
        model.eval()
        return cls(source, model, sizes, places, tolerance, modes)

    def _input(self, size):
        import torch

        return torch.randn(1, *size, generator=torch.Generator().manual_seed(0))

    def _expected(self, k: int):
        """The source's output at sizes[k], or why there is none."""
        import torch

        if k not in self.expected:
            size = self.sizes[k]
            try:
                with torch.no_grad():
                    value = _output(self.source(self._input(size).to(*self.places[0])))
            except Exception as exc:  # noqa: BLE001 (a size the network does not take)
                value = f"the source fails on a random {_size(size)} input: {_first_line(exc)}"
            if value is None:
                value = "the source's output is not a tensor"
            elif not isinstance(value, str) and not torch.isfinite(value).all():
                value = "the source's output is not finite"
            self.expected[k] = value
        return self.expected[k]

    def check(self, state, *, every_size: bool = True) -> tuple[bool | None, str]:
        """Whether the model with `state` computes the source's output (None: not compared),
        and by how much. The sizes are tried in turn until one agrees (every_size), or the
        first one the source takes only."""
        import torch
        from torch.func import functional_call

        result: tuple[bool | None, str] = (None, "")
        for k, size in enumerate(self.sizes):
            expected = self._expected(k)
            if isinstance(expected, str):
                result = result if result[0] is False else (None, expected)
                continue
            try:
                with torch.no_grad():
                    got = _output(functional_call(
                        self.model, state, (self._input(size).to(*self.places[1]),)))
            except Exception as exc:  # noqa: BLE001 (a size the network does not take)
                reason = f"the model fails on a random {_size(size)} input: {_first_line(exc)}"
                result = result if result[0] is False else (None, reason)
                continue
            result = self._compare(expected, got, size)
            if result[0] or not every_size:
                return result
        return result

    def _compare(self, expected, got, size) -> tuple[bool, str]:
        where = f"on one random {_size(size)} input in eval mode"
        if got is None or got.numel() != expected.numel():
            return False, (f"the source's output is {tuple(expected.shape)}, the model's "
                           f"{None if got is None else tuple(got.shape)}, {where}")
        expected = expected.reshape(got.shape)
        best = None
        for a, b in ((expected, got), *_softmaxes(expected, got)):
            worst = (a - b).abs().max().item()
            scale = max(a.abs().max().item(), b.abs().max().item())
            if worst <= self.tolerance * scale or worst == 0:
                return True, (f"outputs agree within {worst / scale if scale else 0:.1e} "
                              f"of their scale {where}")
            best = best or (worst, scale)
        worst, scale = best
        return False, (f"they differ by {worst:.3g} ({worst / scale:.2g} of the output's "
                       f"scale) {where}")

    def restore(self) -> None:
        for module, training in self.modes:
            module.training = training


def _size(size) -> str:
    """[C, H, W] as cnndsl writes volumes, HxWxC."""
    return "x".join(map(str, list(size[1:]) + list(size[:1])))


def _output(value):
    """A model's output as a float tensor on the CPU (the first tensor of a tuple)."""
    import torch

    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        return None
    return value.detach().to("cpu", torch.float64)


def _softmaxes(expected, got):
    """A spec's trailing SOFTMAX against a source's logits, and the other way round."""
    if expected.dim() != 2:
        return ()
    return ((expected.softmax(1), got), (expected, got.softmax(1)))



def _shapes(tensors) -> list[tuple[str, tuple[int, ...]]]:
    return [(name, tuple(value.shape)) for name, value in tensors]


def load_weights(path) -> Mapping:
    """A state_dict file (torch.save), read with weights_only=True: no code runs."""
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a weights file") from None
    except Exception as exc:  # noqa: BLE001 (torch.load's refusals: unpickling, zip and format errors)
        first = str(exc).strip().split("\n")[0]
        raise UsageError(f"{path} is not a state_dict file torch can read safely: "
                         f"{first}") from None
    return state_of(data)
