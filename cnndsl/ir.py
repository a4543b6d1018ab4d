"""The layer graph (IR): typed layer nodes with ordered, role-tagged inputs, and the scope tree.

The expander builds it, the passes fill in each node's results, the backends read it. It is a
plain structure of our own rather than a networkx.DiGraph: a layer's inputs are an ordered list
in which one producer may appear twice (`concat(identity, identity)`), which a DiGraph (one
edge per pair of nodes) cannot hold, and importing networkx costs 0.1 s of a 0.14 s `cnndsl
summary` (docs/architecture.md). `Graph.to_networkx()` hands users a networkx view.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import Span
    from .layers import Context, LayerKind
    from .shapes import Shape

# Input roles. A chain's layer reads its one input as BODY; residual(...)'s sum reads the body's
# end and the SHORTCUT; add(...) and concat(...) read branch1, branch2, ... in argument order;
# gate(...)'s product reads its input as BODY and the branch's end as GATE.
BODY = "body"
SHORTCUT = "shortcut"
GATE = "gate"


def branch(k: int) -> str:
    """The role of a merge's k-th argument (1-based), as written."""
    return f"branch{k}"


@dataclass(frozen=True, slots=True)
class Edge:
    """One input of a node: the producer's id and the role it plays."""

    node: int
    role: str = BODY


class Scope:
    """One construct of the spec that encloses layers: a `def` call, one iteration of a repeat,
    one branch of a merge. The expander builds the tree once; summary rows, diagram clusters
    and generated modules all read it.

    `id` names the construct: the iterations of one repeat and the branches of one merge are
    sibling scopes sharing it (with `index` 0..count-1); each def call has its own.
    """

    __slots__ = (
        "_path",
        "args",
        "children",
        "count",
        "defaulted",
        "id",
        "index",
        "kind",
        "name",
        "parent",
        "span",
        "start",
    )

    def __init__(self, kind: str, name: str, id: int, index: int = 0, count: int = 1, *,
                 args: dict | None = None, span: Span | None = None,
                 parent: Scope | None = None, start: int = -1,
                 defaulted: frozenset = frozenset()):
        self.kind = kind  # "root" | "block" | "repeat" | "branch" | "group"
        self.name = name  # the def's name; "x3" for a repeat; "residual", "concat", "add"
        self.id = id
        self.index = index  # iteration or branch number, from 0
        self.count = count  # iterations or branches of the construct
        self.args = args or {}  # a block's bound arguments
        self.defaulted = defaulted  # the parameters a block call left to their defaults
        self.span = span  # the call, repeat or merge in the spec
        self.parent = parent
        self.start = start  # the id its first layer got or would get (an empty repeat's place)
        self.children: list[Scope] = []
        self._path: tuple[Scope, ...] | None = None
        if parent is not None:
            parent.children.append(self)

    def child(self, kind: str, name: str, id: int, index: int = 0, count: int = 1,
              **extra) -> Scope:
        return Scope(kind, name, id, index, count, parent=self, **extra)

    @property
    def path(self) -> tuple[Scope, ...]:
        """The enclosing scopes, outermost first, this one last (the root left out)."""
        if self._path is None:
            self._path = () if self.parent is None else (*self.parent.path, self)
        return self._path

    @property
    def depth(self) -> int:
        # The expander reads it for every expression it builds: the cached path, directly.
        return len(self._path if self._path is not None else self.path)

    @property
    def folded(self) -> bool:
        """A repeat of one or no iterations, or a named group (`features = ...`): kept in the
        tree (module classes need the place of every repeat, and a group's name), but tables
        and diagrams show its layers in the enclosing scope."""
        return (self.kind == "repeat" and self.count <= 1) or self.kind == "group"

    def blocks(self) -> list[Scope]:
        """The `def` calls around (and including) this scope, outermost first."""
        return [s for s in self.path if s.kind == "block"]

    def key(self) -> tuple:
        """What the scope is, from the root down: equal for the same construct of two builds
        of one spec (the frames of a node's path compare by value, as torch.fx's names do)."""
        return tuple((s.kind, s.name, s.id, s.index, s.count) for s in self.path)

    def __eq__(self, other) -> bool:
        return self is other or (isinstance(other, Scope) and self.key() == other.key())

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        where = f" {self.index + 1}/{self.count}" if self.count > 1 else ""
        return f"<Scope {self.kind} {self.name}{where} #{self.id}>"


@dataclass(eq=False, slots=True)
class Node:
    """One layer. The expander sets the first group of fields, the passes the second."""

    id: int
    kind: LayerKind
    inputs: list[Edge]
    span: Span
    scope: Scope
    bound: dict  # the arguments as written and bound: every parameter, None where defaulted
    written: str = ""  # how the spec spelled the layer: CONV2D, conv3-64, SEPCONV.DWCONV
    alias: str | None = None  # the paper's token it was written as (VGG's conv3-64), if any
    implicit: bool = False  # inserted by a pass (an `activation =` ReLU, a projection)
    # -- set by the passes -----------------------------------------------------------------
    params: dict | None = None  # the arguments resolved against the input shape
    shape: Shape | None = None  # the output, per sample
    in_shapes: list = field(default_factory=list)
    n_params: int = 0  # trainable
    n_buffers: int = 0  # non-trainable (BN's running statistics)
    macs: int = 0
    rf: tuple[int, int] = (1, 1)  # receptive field on the input, per axis
    jump: tuple[int, int] = (1, 1)  # distance on the input between neighbouring outputs
    windows: tuple = ()  # per axis, where each output's field lies (passes.Windows)
    name: str = ""  # unique, readable: conv1, relu2, add1

    @property
    def path(self) -> tuple[Scope, ...]:
        """The scopes around the layer, outermost first, folded repeats left out."""
        path = self.scope.path
        return path if not any(s.folded for s in path) else \
            tuple(s for s in path if not s.folded)

    def label(self) -> str:
        """`CONV 3x3/1, 64` (the resolved arguments once checked)."""
        return self.kind.label(self.params if self.params is not None else self.bound)

    def __repr__(self) -> str:
        return f"<Node {self.id} {self.kind.name} {self.name or ''}>"


class Graph:
    """The layers of one network, their inputs, the scope tree and the spec-wide facts."""

    def __init__(self):
        self.nodes: dict[int, Node] = {}
        self.root = Scope("root", "", 0)
        self.input: int | None = None  # the INPUT node's id
        self.output: int | None = None  # the node whose value the network returns
        # several outputs (`outputs(...)`): (name, node id) each, the main one (output) first
        self.outputs: list[tuple[str, int]] = []
        self.tensor_names: dict[int, str] = {}  # node id -> its first `as` name (generated code)
        self.tensor_sites: list[tuple[Span, int]] = []  # (an `as name`'s name, the node named)
        self._users: dict[int, list[int]] = {}  # producer -> consumers, once per edge
        self._order: list[Node] | None = None
        self._next_id = 0
        # Spec-wide facts (the expander, then the passes).
        self.source = None  # errors.Source
        self.input_dims: tuple[int, ...] | None = None
        self.input_span: Span | None = None
        self.network_span: Span | None = None
        self.settings: dict[str, Any] = {}
        self.unused_defines: list[str] = []
        self.optional_sites: list[tuple[int, int]] = []
        # node id -> the shape `in.c` read while the graph was built (the passes check them)
        self.shapes_read: dict[int, Shape] = {}
        self.shadowed: list[tuple[str, str, Span]] = []  # defs named as layers (a warning)
        self.context: Context | None = None
        self.totals: dict[str, Any] = {}

    # -- building -------------------------------------------------------------------------
    def add(self, kind: LayerKind, inputs: list[Edge], span: Span, scope: Scope, bound: dict,
            **fields) -> Node:
        node = Node(self._next_id, kind, list(inputs), span, scope, bound, **fields)
        self._next_id += 1
        self.nodes[node.id] = node
        self._users[node.id] = []
        for edge in node.inputs:
            self._users[edge.node].append(node.id)
        self._order = None
        return node

    def insert_after(self, producer: Node, kind: LayerKind, bound: dict, *,
                     span: Span | None = None, scope: Scope | None = None, **fields) -> Node:
        """A new node reading `producer`; everything that read `producer` reads it instead."""
        consumers = self._users[producer.id]
        self._users[producer.id] = []
        new = self.add(kind, [Edge(producer.id)], span or producer.span,
                       scope or producer.scope, bound, **fields)
        for v in dict.fromkeys(consumers):
            node = self.nodes[v]
            node.inputs = [Edge(new.id, e.role) if e.node == producer.id else e
                           for e in node.inputs]
            self._users[new.id] += [v] * sum(e.node == new.id for e in node.inputs)
        if self.output == producer.id:
            self.output = new.id
        self.outputs = [(name, new.id if v == producer.id else v) for name, v in self.outputs]
        return new

    def insert_before(self, consumer: Node, position: int, kind: LayerKind, bound: dict,
                      **fields) -> Node:
        """A new node between `consumer` and its input at `position` (which keeps its role)."""
        edge = consumer.inputs[position]
        self._users[edge.node].remove(consumer.id)
        new = self.add(kind, [Edge(edge.node)], consumer.span, consumer.scope, bound, **fields)
        consumer.inputs[position] = Edge(new.id, edge.role)
        self._users[new.id].append(consumer.id)
        return new

    # -- reading --------------------------------------------------------------------------
    def __getitem__(self, v: int) -> Node:
        return self.nodes[v]

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        """The nodes in data-flow order."""
        return iter(self.order())

    def order(self) -> list[Node]:
        """Data-flow order, ties broken by creation: the order networkx's
        lexicographical_topological_sort gives (names and tables follow it). Kept until the
        graph changes."""
        if self._order is None:
            waiting = {v: len(n.inputs) if len(n.inputs) < 2 else len({e.node for e in n.inputs})
                       for v, n in self.nodes.items()}
            ready = [v for v, n in waiting.items() if n == 0]
            heapq.heapify(ready)
            order = []
            while ready:
                v = heapq.heappop(ready)
                order.append(self.nodes[v])
                for w in dict.fromkeys(self._users[v]):
                    waiting[w] -= 1
                    if not waiting[w]:
                        heapq.heappush(ready, w)
            if len(order) != len(self.nodes):
                raise ValueError("the layer graph has a cycle")  # the expander never makes one
            self._order = order
        return self._order

    def inputs(self, node: Node) -> list[Node]:
        """The producers a node reads, in argument order; one may appear more than once."""
        return [self.nodes[e.node] for e in node.inputs]

    def users(self, node: Node) -> list[Node]:
        """The nodes that read this one, each once, in the order they were connected."""
        return [self.nodes[v] for v in dict.fromkeys(self._users[node.id])]

    def uses(self, node: Node) -> int:
        """How many inputs read this node (concat(identity, identity) reads it twice)."""
        return len(self._users[node.id])

    @property
    def next_id(self) -> int:
        """The id the next node will get (ids count up from 0: creation order)."""
        return self._next_id

    @property
    def input_node(self) -> Node:
        return self.nodes[self.input]

    @property
    def output_node(self) -> Node:
        return self.nodes[self.output]

    def scope_tree(self, *, all_scopes: bool = False) -> ScopeItems:
        """The scope tree with the layers in it, everything in data-flow order: what summary
        groups, render boxes and module classes are made from. Folded scopes (repeats of one
        iteration, named groups) are left out, their layers in the enclosing scope, unless
        `all_scopes`."""
        root = ScopeItems(self.root)
        for node in self.order():
            holder = root
            for scope in node.scope.path:
                if all_scopes or not scope.folded:
                    holder = holder.enter(scope)
            holder.items.append(node)
        return root

    # -- conversion -----------------------------------------------------------------------
    def to_networkx(self, graph_class=None):
        """A networkx.DiGraph view for users (imports networkx): node attributes under the
        field names, `kind` as its name, `inputs` as the ordered (producer, role) list; each
        edge's `index` is the first argument position it feeds and `roles` every role it
        plays. The typed graph itself is `graph.graph["ir"]`. `graph_class`: a DiGraph
        subclass to build (the API's, which shows itself in Jupyter)."""
        import networkx as nx

        g = (graph_class or nx.DiGraph)()
        g.graph.update(self.facts(), ir=self)
        for node in self.order():
            g.add_node(node.id, **node_dict(node))
        for node in self.order():
            for index, edge in enumerate(node.inputs):
                if g.has_edge(edge.node, node.id):
                    g.edges[edge.node, node.id]["roles"].append(edge.role)
                else:
                    g.add_edge(edge.node, node.id, index=index, roles=[edge.role])
        return g

    def facts(self) -> dict:
        return {"source": self.source, "input_dims": self.input_dims,
                "input_span": self.input_span, "network_span": self.network_span,
                "output": self.output, "outputs": self.outputs, "settings": self.settings,
                "unused_defines": self.unused_defines, "optional_sites": self.optional_sites,
                "context": self.context, "totals": self.totals}

    def __repr__(self) -> str:
        return f"<cnndsl.ir.Graph with {len(self)} layers>"


def node_dict(node: Node) -> dict:
    """A node's fields as the networkx view's attribute dict."""
    return {"kind": node.kind.name, "params": node.params if node.params is not None else
            node.bound, "bound": node.bound, "span": node.span, "path": node.path,
            "scope": node.scope, "written": node.written, "alias": node.alias,
            "implicit": node.implicit,
            "inputs": [(e.node, e.role) for e in node.inputs], "shape": node.shape,
            "in_shapes": node.in_shapes, "n_params": node.n_params, "n_buffers": node.n_buffers,
            "macs": node.macs, "rf": node.rf, "jump": node.jump, "name": node.name}


class ScopeItems:
    """A scope with what it holds in data-flow order: layers (Node) and inner scopes."""

    __slots__ = ("_open", "items", "scope")

    def __init__(self, scope: Scope):
        self.scope = scope
        self.items: list[Node | ScopeItems] = []
        self._open: dict[int, ScopeItems] = {}

    def enter(self, scope: Scope) -> ScopeItems:
        # A scope whose layers are interleaved with a sibling's (the branches of a merge
        # evaluated side by side) stays one entry: its layers join it where it first appeared.
        inner = self._open.get(id(scope))
        if inner is None:
            inner = self._open[id(scope)] = ScopeItems(scope)
            self.items.append(inner)
        return inner

    def nodes(self) -> list[Node]:
        """Every layer inside, in data-flow order."""
        out: list[Node] = []
        for item in self.items:
            out.extend(item.nodes() if isinstance(item, ScopeItems) else (item,))
        return out


def as_graph(graph) -> Graph:
    """The typed graph, from itself or from the networkx view `cnndsl.build_graph` returns."""
    if isinstance(graph, Graph):
        return graph
    inner = getattr(graph, "graph", {}).get("ir")
    if isinstance(inner, Graph):
        return inner
    raise TypeError(f"expected a checked cnndsl graph, not {type(graph).__name__}")
