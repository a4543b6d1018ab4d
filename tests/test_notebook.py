"""What `cnndsl.build_graph` returns shows itself in Jupyter: the diagram as SVG, the summary
as an HTML table, and a table with a note where Graphviz's `dot` is missing.

Numbers from the lecture notes' LeNet-5 analysis (CONV1 156 parameters, ~60K in all)."""
from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import networkx as nx
import pytest

import cnndsl
from cnndsl import notebook


@pytest.fixture(scope="module")
def lenet():
    return cnndsl.build_graph("zoo:lenet5")


def test_the_graph_is_still_a_networkx_digraph(lenet):
    assert isinstance(lenet, nx.DiGraph) and isinstance(lenet, notebook.Network)
    assert isinstance(lenet.copy(), notebook.Network)
    assert lenet.number_of_nodes() == 13 and lenet.graph["totals"]["params"] == 61_706


def test_jupyter_gets_an_svg_diagram_and_an_html_table(lenet):
    from IPython.core.formatters import DisplayFormatter

    bundle, _ = DisplayFormatter().format(lenet)
    svg = bundle["image/svg+xml"]
    assert ET.fromstring(svg[svg.index("<svg"):]).tag.endswith("svg")
    assert "CONV 5x5/1, 6" in svg
    html = bundle["text/html"]
    assert html.startswith("<svg")  # the diagram above the table
    table = html[html.index("<table>"):]
    # the notes' LeNet-5: CONV1 (28, 28, 6) with 156 parameters, ~60K parameters in all
    assert "<code>conv1</code>" in table and ">28x28x6<" in table and ">156<" in table
    assert "61,706 trainable" in table


def test_without_dot_the_html_says_so_and_shows_the_table(lenet, monkeypatch):
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "dot"
                        else real(name, *a, **k))
    assert lenet._repr_svg_() is None
    html = lenet._repr_html_()
    assert "not installed" in html and "apt-get install graphviz" in html
    assert "<svg" not in html and "<code>conv1</code>" in html
