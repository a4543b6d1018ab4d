"""Shared helpers for the test suite."""
from __future__ import annotations

import networkx as nx
import pytest

import cnndsl


def layers_of(graph):
    """Checked nodes (without INPUT) in data-flow order."""
    order = nx.lexicographical_topological_sort(graph)
    return [graph.nodes[v] for v in order if graph.nodes[v]["kind"] != "INPUT"]


def shapes_of(graph):
    return [str(d["shape"]) for d in layers_of(graph)]


def build(text, **kw):
    return cnndsl.build_graph(text, **kw)


@pytest.fixture
def build_graph():
    return build
