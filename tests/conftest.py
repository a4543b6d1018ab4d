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


# Hypothesis: a few hundred examples in the default run; `make test-long` selects the
# 10,000-example profile (pytest --hypothesis-profile=long).
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("default", max_examples=200, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=10_000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")


def pytest_addoption(parser):
    parser.addoption("--run-long", action="store_true",
                     help="run the tests marked long (`make test-long`): every torchvision "
                          "builder's outputs")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-long"):
        return
    long = [item for item in items if item.get_closest_marker("long")]
    if long:
        config.hook.pytest_deselected(items=long)
        items[:] = [item for item in items if not item.get_closest_marker("long")]
