"""Fully connected layers and the layers that reshape or regularise: FC, FLATTEN, DROPOUT."""
from __future__ import annotations

from fractions import Fraction

from ..errors import CnnShapeError
from ..shapes import Shape
from .base import LayerKind, Param, Recipe, check_input_size, register


@register
class FullyConnected(LayerKind):
    name = "FC"
    aliases = ("LINEAR", "DENSE", "FULLYCONNECTED", "FULLY_CONNECTED")
    family = "dense"
    weighted = True
    takes_activation = True
    doc = ("Fully connected layer with `units` outputs; a volume is flattened first "
           "(\"32x32x3 -> stretch to 3072 x 1\"). Bare `FC` is the classifier (`classes` "
           "units) when only SOFTMAX or DROPOUT follow it, else a hidden layer of `fc_width`.")
    params = (Param("units", "count", None, ("n", "out", "neurons", "out_features")),
              Param("bias", "bool", True), Param("in_features", "count", None, keyword_only=True))
    paper_token = r"fc-(\d+)"  # VGG: FC-4096

    def bind(self, args, kwargs, span):
        # Two numbers in a row are PyTorch's Linear(in_features, out_features[, bias]); the
        # input size is then checked against the layer before. FC(10, false) is ours.
        if len(args) >= 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                  for v, _ in args[:2]):
            (n_in, n_span), rest = args[0], args[1:]
            return super().bind(rest, [*kwargs, ("in_features", n_in, n_span, n_span)], span)
        return super().bind(args, kwargs, span)

    def from_paper_token(self, match):
        return (int(match[1]),), {}

    def resolve(self, p, ins, ctx, site):
        if p["units"] is None:
            if site.is_head:
                if ctx.classes is None:
                    raise CnnShapeError(
                        "the classifier FC needs a size: the spec does not say how many "
                        "classes", site.span,
                        help="add `classes = 10` to the spec, pass --classes 10, or write FC(10)")
                p = dict(p, units=ctx.classes)
            else:
                p = dict(p, units=ctx.fc_width)
        if ins[0].numel == 0:
            raise CnnShapeError(f"{site.label} receives an empty volume", site.span)
        check_input_size(self.name, "in_features", p.get("in_features"), ins[0].numel, site,
                         unit="values")
        return p

    def infer(self, p, ins, ctx, site):
        return Shape.vector(p["units"])

    def window(self, p, ins):
        if ins[0].is_volume:
            return (ins[0].h, ins[0].w), (1, 1), (1, 1)
        return None

    def reads(self, p, ins, out, axis):
        if ins[0].is_volume:  # every position, as global pooling
            n = (ins[0].h, ins[0].w)[axis]
            return Fraction(1), lambda i: (i, i + n - 1)
        return None

    def count_params(self, p, ins, out):
        return ins[0].numel * p["units"] + (p["units"] if p["bias"] else 0), 0

    def count_macs(self, p, ins, out):
        return ins[0].numel * p["units"]

    def explain(self, p, ins, out, n_params):
        n_in = ins[0]
        inputs = f"{n_in.h}*{n_in.w}*{n_in.c} = {n_in.numel:,} inputs, " if n_in.is_volume \
            else ""
        per_unit = f"({n_in.numel:,} + 1)" if p["bias"] else f"{n_in.numel:,}"
        return [f"{inputs}parameters {p['units']:,} units x {per_unit} = {n_params:,}"]

    def recipe(self, p, ins, out):
        return Recipe("Linear", dict(in_features=ins[0].numel, out_features=p["units"],
                                     bias=p["bias"]), flatten=ins[0].is_volume,
                      positional=("in_features", "out_features"), defaults={"bias": True},
                      accumulable=True)

    def label(self, p):
        return f"FC {p['units']}"


@register
class Flatten(LayerKind):
    name = "FLATTEN"
    aliases = ("STRETCH",)
    family = "reshape"
    passive_tail = True
    doc = "Flattens a volume HxWxC into a vector of H*W*C values (FC does this by itself)."

    def infer(self, p, ins, ctx, site):
        return Shape.vector(ins[0].numel)

    def explain(self, p, ins, out, n_params):
        s = ins[0]
        return [f"{s.h}*{s.w}*{s.c} = {s.numel:,} values in a row"] if s.is_volume else []

    def recipe(self, p, ins, out):
        return Recipe("Flatten", {}, aliases_input=True)


@register
class Dropout(LayerKind):
    name = "DROPOUT"
    aliases = ("DROP",)
    family = "regularize"
    passive_tail = True
    doc = "Dropout with probability `p` (default 0.5, as AlexNet); identity in eval mode."
    params = (Param("p", "prob", 0.5, ("rate",)),)

    def explain(self, p, ins, out, n_params):
        return [f"in training each value is zeroed with probability {p['p']:g} and the rest "
                f"scaled by 1/{1 - p['p']:g}; at inference it passes unchanged; no parameters"]

    def recipe(self, p, ins, out):
        return Recipe("Dropout", dict(p=p["p"]), aliases_input=True)

    def label(self, p):
        return f"DROPOUT {p['p']:g}"
