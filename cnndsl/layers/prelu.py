"""PRELU: a leaky ReLU whose slope is learned, one for all channels or one per channel."""
from __future__ import annotations

from .activation import Activation
from .base import Param, Recipe, register


@register
class PReLU(Activation):
    name = "PRELU"
    doc = ("max(a*x, x) with a learned slope `a` (He et al. 2015): one shared slope, or one "
           "per channel with `per_channel=true`; starts at `init` = 0.25, as PyTorch's.")
    params = (Param("per_channel", "bool", False, ("channelwise",)),
              Param("init", "float", 0.25))
    torch_name = "PReLU"

    def count_params(self, p, ins, out):
        return (ins[0].c if p["per_channel"] else 1), 0

    def recipe(self, p, ins, out):
        return Recipe("PReLU", dict(num_parameters=ins[0].c if p["per_channel"] else 1,
                                    init=p["init"]),
                      defaults={"num_parameters": 1, "init": 0.25})

    def inputs_per_neuron(self, p, ins, out, n_params):
        return 1

    def explain(self, p, ins, out, n_params):
        slopes = f"1 slope x {ins[0].c} channels" if p["per_channel"] else "1 shared slope"
        return [f"max(a*x, x) on each of the {out.numel:,} values; parameters {slopes} = "
                f"{n_params:,}"]

    def label(self, p):
        return "PRELU/c" if p["per_channel"] else "PRELU"
