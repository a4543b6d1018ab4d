"""Fully connected layers and the layers that reshape or regularise: FC, FLATTEN, DROPOUT."""
from __future__ import annotations

from ..errors import CnnShapeError
from ..shapes import Shape
from .base import LayerKind, Param, Recipe


class FullyConnected(LayerKind):
    name = "FC"
    aliases = ("LINEAR", "DENSE", "FULLYCONNECTED", "FULLY_CONNECTED")
    family = "dense"
    weighted = True
    doc = ("Fully connected layer with `units` outputs; a volume is flattened first "
           "(\"32x32x3 -> stretch to 3072 x 1\"). Bare `FC` is the classifier (`classes` "
           "units) when only SOFTMAX or DROPOUT follow it, else a hidden layer of `fc_width`.")
    params = (Param("units", "count", None, ("n", "out", "neurons")), Param("bias", "bool", True))
    paper_token = r"fc-(\d+)"  # VGG: FC-4096

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
        return p

    def infer(self, p, ins, ctx, site):
        return Shape.vector(p["units"])

    def window(self, p, ins):
        if ins[0].is_volume:
            return (ins[0].h, ins[0].w), (1, 1), (1, 1)
        return None

    def count_params(self, p, ins, out):
        return ins[0].numel * p["units"] + (p["units"] if p["bias"] else 0), 0

    def count_macs(self, p, ins, out):
        return ins[0].numel * p["units"]

    def recipe(self, p, ins, out):
        return Recipe("Linear", dict(in_features=ins[0].numel, out_features=p["units"],
                                     bias=p["bias"]), flatten=ins[0].is_volume)

    def label(self, p):
        return f"FC {p['units']}"


class Flatten(LayerKind):
    name = "FLATTEN"
    aliases = ("STRETCH",)
    family = "reshape"
    passive_tail = True
    doc = "Flattens a volume HxWxC into a vector of H*W*C values (FC does this by itself)."

    def infer(self, p, ins, ctx, site):
        return Shape.vector(ins[0].numel)

    def recipe(self, p, ins, out):
        return Recipe("Flatten", {})


class Dropout(LayerKind):
    name = "DROPOUT"
    aliases = ("DROP",)
    family = "regularize"
    passive_tail = True
    doc = "Dropout with probability `p` (default 0.5, as AlexNet); identity in eval mode."
    params = (Param("p", "prob", 0.5, ("rate",)),)

    def recipe(self, p, ins, out):
        return Recipe("Dropout", dict(p=p["p"]))

    def label(self, p):
        return f"DROPOUT {p['p']:g}"


KINDS = (FullyConnected(), Flatten(), Dropout())
