"""LAYERNORM over channels (ConvNeXt's LayerNorm2d) and LAYERSCALE (a learned factor per
channel)."""
from __future__ import annotations

from ..errors import CnnArgumentError
from .base import LayerKind, Param, Recipe, check_input_size, register


@register
class LayerNorm(LayerKind):
    name = "LAYERNORM"
    aliases = ("LN", "LAYER_NORM", "LAYERNORM2D")
    family = "norm"
    doc = ("Layer normalisation over the channels of each position (ConvNeXt's LayerNorm2d on "
           "a volume; PyTorch's LayerNorm on a vector): a scale and a shift per channel, "
           "`eps` = 1e-5 as PyTorch's (ConvNeXt uses 1e-6).")
    params = (Param("channels", "count", None, ("normalized_shape", "c")),
              Param("eps", "float", 1e-5))

    def check_bound(self, values, span):
        if values["eps"] < 0:
            raise CnnArgumentError(f"LAYERNORM: `eps` must be at least 0, not "
                                   f"{values['eps']:g}", span)

    def resolve(self, p, ins, ctx, site):
        check_input_size(self.name, "channels", p.get("channels"), ins[0].c, site)
        return p

    def count_params(self, p, ins, out):
        return 2 * ins[0].c, 0

    def recipe(self, p, ins, out):
        volume = ins[0].is_volume
        return Recipe("LayerNorm2d" if volume else "LayerNorm",
                      dict(normalized_shape=ins[0].c, eps=p["eps"]), custom=volume,
                      positional=("normalized_shape",), defaults={"eps": 1e-5})

    def label(self, p):
        return "LAYERNORM"

    def inputs_per_neuron(self, p, ins, out, n_params):
        return ins[0].c + 1  # every channel of its position, through the mean and variance

    def explain(self, p, ins, out, n_params):
        return [f"each position's {ins[0].c} channels to mean 0 and variance 1, then a scale "
                f"and a shift per channel: parameters 2 x {ins[0].c} = {n_params:,}"]


@register
class LayerScale(LayerKind):
    name = "LAYERSCALE"
    aliases = ("LAYER_SCALE",)
    family = "norm"
    doc = ("A learned factor per channel (CaiT's and ConvNeXt's layer scale), starting at "
           "`init` = 1e-6.")
    params = (Param("init", "float", 1e-6),)

    def count_params(self, p, ins, out):
        return ins[0].c, 0

    def recipe(self, p, ins, out):
        return Recipe("LayerScale", dict(channels=ins[0].c, init=p["init"],
                                         volume=ins[0].is_volume),
                      custom=True, positional=("channels",), defaults={"init": 1e-6,
                                                                       "volume": True})

    def label(self, p):
        return "LAYERSCALE"

    def inputs_per_neuron(self, p, ins, out, n_params):
        return 1

    def explain(self, p, ins, out, n_params):
        return [f"each channel times its own learned factor: parameters 1 x {ins[0].c} = "
                f"{n_params:,}"]
