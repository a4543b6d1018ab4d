"""How a checked graph shows itself in Jupyter: the diagram as SVG, the summary as HTML.

`cnndsl.build_graph` returns a `Network`, a networkx.DiGraph like before, whose `_repr_svg_`
and `_repr_html_` Jupyter calls. Graphviz's `dot` draws the diagram; without it the HTML says
so and shows the summary table alone.
"""
from __future__ import annotations

import shutil

import networkx as nx

from .errors import UsageError
from .render import render_bytes_of
from .summary import format_html, summarize

NO_DOT = ("The diagram needs Graphviz's <code>dot</code> program, which is not installed "
          "(<code>apt-get install graphviz</code>); here is the summary table.")


class Network(nx.DiGraph):
    """The checked layer graph (a networkx.DiGraph; the typed graph is `graph["ir"]`)."""

    def _repr_svg_(self) -> str | None:
        """The folded graph-style diagram, or None where `dot` is missing or fails."""
        if shutil.which("dot") is None:
            return None
        try:
            return render_bytes_of(self, "svg").decode("utf-8")
        except UsageError:
            return None

    def _repr_html_(self) -> str:
        """The diagram (when `dot` can draw it) above the grouped summary table."""
        svg = self._repr_svg_()
        if svg is None:
            why = NO_DOT if shutil.which("dot") is None else (
                "Graphviz's <code>dot</code> could not draw this network; here is the "
                "summary table.")
            top = f'<p style="color:#7f8c8d">{why}</p>'
        else:
            top = svg[svg.index("<svg"):]  # the XML prolog and doctype cannot sit in HTML
        return top + format_html(summarize(self))

