"""DROPPATH: stochastic depth, torchvision's StochasticDepth(p, mode="row")."""
from __future__ import annotations

from .base import LayerKind, Param, Recipe, register


@register
class DropPath(LayerKind):
    name = "DROPPATH"
    aliases = ("DROP_PATH", "STOCHASTICDEPTH", "STOCHASTIC_DEPTH")
    family = "regularize"
    doc = ("Stochastic depth (Huang et al. 2016): in training, each sample's whole input is "
           "zeroed with probability `p` and otherwise scaled by 1/(1 - p); identity in eval. "
           "Put it at the end of a residual body.")
    params = (Param("p", "prob", 0.2, ("rate",), hint="sd", block_rate=True),)

    def explain(self, p, ins, out, n_params):
        return [f"in training a sample's whole input is dropped with probability {p['p']:g}, "
                "else scaled; at inference it passes unchanged; no parameters"]

    def recipe(self, p, ins, out):
        return Recipe("StochasticDepth", dict(p=p["p"]), custom=True, positional=("p",),
                      aliases_input=True)

    def label(self, p):
        return f"DROPPATH {p['p']:g}"
