"""MUL, made by `gate(branch)`: the branch's output scales its input (squeeze-and-excitation)."""
from __future__ import annotations

from ..errors import CnnShapeError
from .base import LayerKind, Recipe, register


@register
class Mul(LayerKind):
    name = "MUL"
    family = "merge"
    callable = False
    min_inputs = max_inputs = 2
    merge_builtin = "gate"
    # Other frameworks' words for it: an unknown `mul(...)` or `scale(...)` points here.
    spellings = ("mul", "multiply", "scale", "se", "squeeze_excitation", "excite")
    doc = ("`gate(branch)`: the input times the branch's output, value by value; a 1x1xC "
           "branch (squeeze-and-excitation's channel weights) scales each of the C maps.")
    draw = {"shape": "circle", "label": "×", "fontsize": "14", "width": "0.3",
            "height": "0.3", "fixedsize": "true"}

    def infer(self, p, ins, ctx, site):
        main, gate = ins
        if gate == main or (main.is_volume and gate.is_volume and (gate.h, gate.w) == (1, 1)
                            and gate.c == main.c):
            return main
        want = f"1x1x{main.c} or {main}" if main.is_volume else str(main)
        raise CnnShapeError(
            f"gate: the branch gives {gate}, but it must give {want} to scale its input {main}",
            site.span, help=f"end the branch in {main.c} channels, e.g. "
                            f"gate(GAP - CONV(in.c / 4, 1) - RELU - CONV(in.c, 1) - SIGMOID)")

    def count_macs(self, p, ins, out):
        return 0  # as ADD: elementwise operations are not multiply-accumulates

    def inputs_per_neuron(self, p, ins, out, n_params):
        return 2

    def recipe(self, p, ins, out):
        return Recipe(function="mul")

    def label(self, p):
        return "MUL"

    def explain(self, p, ins, out, n_params):
        main, gate = ins
        how = "each map by its channel's weight" if gate != main else "value by value"
        return [f"the input {main} times the branch's {gate}, {how}; no parameters"]

