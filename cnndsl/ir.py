"""The layer graph (IR): a small directed graph with networkx.DiGraph's interface and semantics.

Why not networkx.DiGraph itself: importing networkx takes about 0.1 s (it imports all of its
algorithms and scans the installed packages' entry points for backends), a third of what a
`cnndsl check` or `cnndsl summary` costs in all. The pipeline needs only the storage (nodes with
attribute dicts, edges with attribute dicts, predecessors and successors in insertion order),
so it keeps that here, laid out as networkx lays it out (`_node`, `_succ`, `_pred`), with the
same method names, so that code written against one runs on the other and a test checks that
the two answer alike. `to_networkx()` hands the graph to networkx (what `cnndsl.build_graph`
returns), for its algorithms.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping


class DiGraph:
    """Directed graph: nodes are hashable ids with an attribute dict; edges carry a dict."""

    def __init__(self):
        self.graph: dict = {}
        self._node: dict = {}
        self._succ: dict = {}
        self._pred: dict = {}
        # Made once, as networkx caches them: the passes read graph.nodes[v] millions of times.
        self.nodes = NodeView(self._node)
        self.edges = EdgeView(self._succ)

    # -- building ------------------------------------------------------------------------
    def add_node(self, n, **attr) -> None:
        if n not in self._node:
            self._node[n] = attr
            self._succ[n] = {}
            self._pred[n] = {}
        else:
            self._node[n].update(attr)

    def add_edge(self, u, v, **attr) -> None:
        for n in (u, v):
            if n not in self._node:
                self.add_node(n)
        data = self._succ[u].get(v, {})
        data.update(attr)
        self._succ[u][v] = data
        self._pred[v][u] = data

    def remove_edge(self, u, v) -> None:
        try:
            del self._succ[u][v]
            del self._pred[v][u]
        except KeyError:
            raise KeyError(f"the edge {u}-{v} is not in the graph") from None

    def remove_node(self, n) -> None:
        try:
            succ = self._succ.pop(n)
        except KeyError:
            raise KeyError(f"the node {n} is not in the graph") from None
        for v in succ:
            del self._pred[v][n]
        for u in self._pred.pop(n):
            del self._succ[u][n]
        del self._node[n]

    # -- reading -------------------------------------------------------------------------
    def __iter__(self) -> Iterator:
        return iter(self._node)

    def __len__(self) -> int:
        return len(self._node)

    def __contains__(self, n) -> bool:
        return n in self.nodes  # False for an unhashable n, as networkx answers

    def number_of_nodes(self) -> int:
        return len(self._node)

    def number_of_edges(self) -> int:
        return sum(len(s) for s in self._succ.values())

    def has_node(self, n) -> bool:
        return n in self

    def has_edge(self, u, v) -> bool:
        return u in self._succ and v in self._succ[u]

    def is_directed(self) -> bool:
        return True

    def is_multigraph(self) -> bool:
        return False

    @property
    def adj(self) -> Mapping:
        return self._succ

    succ = adj

    @property
    def pred(self) -> Mapping:
        return self._pred

    def successors(self, n) -> Iterator:
        try:
            return iter(self._succ[n])
        except KeyError:
            raise KeyError(f"the node {n} is not in the graph") from None

    def predecessors(self, n) -> Iterator:
        try:
            return iter(self._pred[n])
        except KeyError:
            raise KeyError(f"the node {n} is not in the graph") from None

    def in_degree(self, n) -> int:
        return len(self._pred[n])

    def out_degree(self, n) -> int:
        return len(self._succ[n])

    # -- conversion ----------------------------------------------------------------------
    def to_networkx(self):
        """The same graph as a networkx.DiGraph (imports networkx). Attribute dicts are
        copied, their values shared, as networkx's own graph copies do."""
        import networkx as nx

        g = nx.DiGraph()
        g.graph.update(self.graph)
        g.add_nodes_from((n, dict(d)) for n, d in self._node.items())
        g.add_edges_from((u, v, dict(d)) for u, nbrs in self._succ.items()
                         for v, d in nbrs.items())
        return g

    def __repr__(self) -> str:
        return f"<cnndsl.ir.DiGraph with {len(self)} nodes and {self.number_of_edges()} edges>"


class NodeView(Mapping):
    """`graph.nodes`: node -> attribute dict; `graph.nodes(data=True)` gives (node, dict)."""

    __slots__ = ("_nodes",)

    def __init__(self, nodes: dict):
        self._nodes = nodes

    def __getitem__(self, n) -> dict:
        return self._nodes[n]

    def __iter__(self) -> Iterator:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, n) -> bool:
        try:
            return n in self._nodes
        except TypeError:
            return False

    def __call__(self, data=False, default=None):
        if data is False:
            return self
        if data is True:
            return list(self._nodes.items())
        return [(n, d.get(data, default)) for n, d in self._nodes.items()]


class EdgeView:
    """`graph.edges`: (u, v) pairs; `graph.edges[u, v]` is the edge's attribute dict."""

    __slots__ = ("_succ",)

    def __init__(self, succ: dict):
        self._succ = succ

    def __getitem__(self, edge) -> dict:
        u, v = edge
        return self._succ[u][v]

    def __iter__(self) -> Iterator:
        return ((u, v) for u, nbrs in self._succ.items() for v in nbrs)

    def __len__(self) -> int:
        return sum(len(nbrs) for nbrs in self._succ.values())

    def __contains__(self, edge) -> bool:
        try:
            u, v = edge
            return v in self._succ[u]
        except (TypeError, ValueError, KeyError):
            return False

    def __call__(self, data=False, default=None):
        if data is False:
            return list(self)
        if data is True:
            return [(u, v, d) for u, nbrs in self._succ.items() for v, d in nbrs.items()]
        return [(u, v, d.get(data, default)) for u, nbrs in self._succ.items()
                for v, d in nbrs.items()]
