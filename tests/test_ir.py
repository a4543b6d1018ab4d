"""cnndsl.ir.DiGraph answers as networkx.DiGraph does, for the interface the pipeline uses."""
from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cnndsl
from cnndsl import ir
from cnndsl.api import check_spec, layer_rows
from cnndsl.passes import data_flow_order
from cnndsl.lowering import plan
from cnndsl.render import build_diagram
from cnndsl.summary import summarize

NODES = st.integers(0, 7)
ATTRS = st.dictionaries(st.sampled_from(["kind", "index", "shape"]), st.integers(0, 3),
                        max_size=2)
OPS = st.lists(st.one_of(
    st.tuples(st.just("add_node"), NODES, ATTRS),
    st.tuples(st.just("add_edge"), st.tuples(NODES, NODES), ATTRS),
    st.tuples(st.just("remove_edge"), st.tuples(NODES, NODES), st.just({})),
    st.tuples(st.just("remove_node"), NODES, st.just({})),
), max_size=40)


def apply(graph, ops) -> list[str]:
    """Run the operations; which of them failed (both graphs must fail on the same ones)."""
    failed = []
    for i, (op, arg, attrs) in enumerate(ops):
        try:
            if op == "add_node":
                graph.add_node(arg, **attrs)
            elif op == "add_edge":
                graph.add_edge(*arg, **attrs)
            elif op == "remove_edge":
                graph.remove_edge(*arg)
            else:
                graph.remove_node(arg)
        except (KeyError, nx.NetworkXError):
            failed.append(i)
    return failed


def observe(graph) -> dict:
    """Everything the pipeline reads from a graph, in the order it reads it."""
    return {
        "graph": dict(graph.graph), "len": len(graph), "iter": list(graph),
        "nodes": list(graph.nodes), "node data": list(graph.nodes(data=True)),
        "node kind": list(graph.nodes(data="kind", default=-1)),
        "each node": [graph.nodes[n] for n in graph.nodes],
        "edges": list(graph.edges), "edge data": list(graph.edges(data=True)),
        "edge index": list(graph.edges(data="index")),
        "each edge": [graph.edges[u, v] for u, v in graph.edges],
        "succ": {n: list(graph.successors(n)) for n in graph},
        "pred": {n: list(graph.predecessors(n)) for n in graph},
        "pred map": {n: dict(graph.pred[n]) for n in graph},
        "succ map": {n: dict(graph.succ[n]) for n in graph},
        "degrees": {n: (graph.in_degree(n), graph.out_degree(n)) for n in graph},
        "contains": [n in graph for n in range(-1, 9)] + [[1] in graph],
        "has edge": [graph.has_edge(u, v) for u in range(8) for v in range(8)],
        "edge in": [(u, v) in graph.edges for u in range(8) for v in range(8)],
        "counts": (graph.number_of_nodes(), graph.number_of_edges(), len(graph.edges)),
    }


@given(OPS)
def test_the_ir_graph_behaves_as_networkx_digraph(ops):
    ours, theirs = ir.DiGraph(), nx.DiGraph()
    ours.graph["output"] = theirs.graph["output"] = 3
    assert apply(ours, ops) == apply(theirs, ops)
    assert observe(ours) == observe(theirs)
    converted = ours.to_networkx()
    assert type(converted) is nx.DiGraph
    assert nx.utils.graphs_equal(converted, theirs)
    assert list(converted.edges(data=True)) == list(theirs.edges(data=True))


def test_missing_nodes_and_edges_fail_as_in_networkx():
    g = ir.DiGraph()
    g.add_edge(1, 2, index=0)
    with pytest.raises(KeyError):
        g.remove_edge(2, 1)
    with pytest.raises(KeyError):
        list(g.successors(9))
    with pytest.raises(KeyError):
        g.nodes[9]
    assert g.edges[1, 2] == {"index": 0}


@pytest.mark.parametrize("spec", ["zoo:lenet5", "zoo:resnet18", "zoo:googlenet"])
def test_build_graph_is_networkx_with_the_pipelines_contents(spec):
    ours = check_spec(spec)
    public = cnndsl.build_graph(spec)
    assert type(ours) is ir.DiGraph and type(public) is nx.DiGraph
    assert data_flow_order(public) == list(nx.lexicographical_topological_sort(public))
    assert data_flow_order(ours) == data_flow_order(public)
    assert layer_rows(ours) == layer_rows(public)
    # the backends read either kind of graph alike
    assert summarize(ours).rows == summarize(public).rows
    assert plan(ours) == plan(public)
    assert build_diagram(ours).source == build_diagram(public).source
    # LeNet-5's 61,706 parameters (lecture notes), ResNet-18's 11,689,512 (torchvision)
    expected = {"zoo:lenet5": 61_706, "zoo:resnet18": 11_689_512}
    if spec in expected:
        assert public.graph["totals"]["params"] == expected[spec]
