"""Position-wise bias (BIAS): a learned bias per position and channel, AlphaGo's last layer."""
from __future__ import annotations

from .base import LayerKind, Recipe, register


@register
class PositionBias(LayerKind):
    name = "BIAS"
    aliases = ("POSITIONBIAS", "POSITION_BIAS", "POSBIAS")
    family = "norm"
    weighted = True
    doc = ("Adds a learned bias tensor of the input's own shape: one bias per position and "
           "channel (H*W*C parameters). AlphaGo's policy network ends in a 1x1 convolution "
           "\"with a different bias for each position\": CONV(1, 1, bias=false) - BIAS.")

    def count_params(self, p, ins, out):
        return ins[0].numel, 0

    def recipe(self, p, ins, out):
        # torch.nn has no such module; backends map the name to their own small module
        # holding nn.Parameter(torch.zeros(shape)) and returning x + bias.
        return Recipe("PositionBias", dict(shape=tuple(ins[0].as_list())), custom=True)

    def label(self, p):
        return "BIAS"

    def inputs_per_neuron(self, p, ins, out, n_params):
        return 2  # its input plus the bias of its position

    def explain(self, p, ins, out, n_params):
        s = ins[0]
        if not s.is_volume:
            return [f"parameters {n_params:,}, one bias per value"]
        return [f"parameters {s.h}*{s.w}*{s.c} = {n_params:,}, one bias per position and "
                "channel"]
