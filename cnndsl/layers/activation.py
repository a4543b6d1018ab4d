"""Activation functions, and SOFTMAX, the lecture's output layer."""
from __future__ import annotations

from ..shapes import Shape
from .base import LayerKind, Param, Recipe, register


class Activation(LayerKind):
    family = "activation"
    torch_name = ""
    formula = "f(x)"  # what it computes for each value, as `--explain` shows it

    def explain(self, p, ins, out, n_params):
        return [f"{self.formula.format(**p)}, applied to each of the {out.numel:,} values; "
                "no parameters"]

    def recipe(self, p, ins, out):
        return Recipe(self.torch_name, self.torch_kwargs(p))

    def torch_kwargs(self, p):
        return {}


@register
class ReLU(Activation):
    name = "RELU"
    doc = "Rectified linear unit max(0, x)."
    torch_name = "ReLU"
    formula = "max(0, x)"

    def torch_kwargs(self, p):
        return {"inplace": True}


@register
class ReLU6(Activation):
    name = "RELU6"
    doc = "min(max(0, x), 6) (MobileNet v2)."
    torch_name = "ReLU6"
    formula = "min(max(0, x), 6)"

    def torch_kwargs(self, p):
        return {"inplace": True}


@register
class LeakyReLU(Activation):
    name = "LEAKYRELU"
    aliases = ("LRELU", "LEAKY_RELU")
    doc = "max(slope*x, x); the notes' example uses slope 0.1, PyTorch's default is 0.01."
    torch_name = "LeakyReLU"
    formula = "max({slope:g}*x, x)"
    params = (Param("slope", "float", 0.01, ("alpha", "negative_slope")),)

    def torch_kwargs(self, p):
        return {"negative_slope": p["slope"]}

    def label(self, p):
        return f"LEAKYRELU {p['slope']:g}"


@register
class Sigmoid(Activation):
    name = "SIGMOID"
    doc = "1 / (1 + e^-x)."
    torch_name = "Sigmoid"
    formula = "1 / (1 + e^-x)"


@register
class Tanh(Activation):
    name = "TANH"
    doc = "tanh(x)."
    torch_name = "Tanh"
    formula = "tanh(x)"


@register
class ELU(Activation):
    name = "ELU"
    doc = "x for x >= 0, alpha*(e^x - 1) below."
    torch_name = "ELU"
    formula = "x if x >= 0, else {alpha:g}*(e^x - 1)"
    params = (Param("alpha", "float", 1.0),)

    def torch_kwargs(self, p):
        return {"alpha": p["alpha"]}


@register
class GELU(Activation):
    name = "GELU"
    doc = "Gaussian error linear unit."
    torch_name = "GELU"
    formula = "x * P(X <= x) for X ~ N(0, 1)"


@register
class Softmax(LayerKind):
    name = "SOFTMAX"
    aliases = ("SOFT_MAX",)
    family = "activation"
    passive_tail = True
    logits_drop = True
    paper_token = r"soft-max"  # VGG's table
    doc = ("Softmax over the flattened input. It is the lecture's output layer: when the spec "
           "sets `classes` and the input does not already hold that many values, the "
           "classifier FC(classes) is put in front of it (the LeNet-5 table's Softmax row, "
           "840 parameters).")

    def insertions(self, p, ins, ctx, site, roles):
        if ctx.classes is not None and ins[0].numel != ctx.classes:
            return [(0, [("FC", {"units": ctx.classes, "bias": True})])]
        return []

    def infer(self, p, ins, ctx, site):
        return Shape.vector(ins[0].numel)

    def recipe(self, p, ins, out):
        return Recipe("Softmax", {"dim": 1}, flatten=ins[0].is_volume)

    def inputs_per_neuron(self, p, ins, out, n_params):
        return ins[0].numel  # every output depends on every input through the sum

    def explain(self, p, ins, out, n_params):
        return [f"e^x_i / (the sum of e^x_j over all {out.numel:,} values), so they add up "
                "to 1; no parameters"]
