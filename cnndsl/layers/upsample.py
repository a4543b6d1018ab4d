"""Upsampling (UPSAMPLE): each map resized by a whole factor or to a size, by nearest-neighbour,
bilinear or bicubic interpolation, as PyTorch's nn.Upsample / F.interpolate."""
from __future__ import annotations

import math
from fractions import Fraction

from ..errors import CnnArgumentError
from ..limits import MAX_AXIS
from ..shapes import Shape
from .base import (LayerKind, Param, Recipe, Symbol, coerce, pair_str, register, volume_in,
                   word_error)
from .deconv import one_or_pair

MODES = ("nearest", "bilinear", "bicubic")


def coerce_word(kind: str, param: Param, value, span, words: tuple[str, ...]):
    """A bare word out of `words` (`mode=bilinear`), with a 'did you mean' for a near miss."""
    if isinstance(value, Symbol) and value.lower() in words:
        return value.lower()
    raise word_error(kind, param, value, span, f"{', '.join(words[:-1])} or {words[-1]}",
                     words)


@register
class Upsample(LayerKind):
    name = "UPSAMPLE"
    aliases = ("UPSAMPLING", "UPSAMPLE2D", "UPSAMPLING2D", "RESIZE", "INTERPOLATE")
    family = "pool"
    draw = {"shape": "trapezium"}
    doc = ("Resizes each map: by a whole `factor` per axis (H*f x W*f) or to a `size`, "
           "with `mode` nearest (each value copied into an f x f block), bilinear or bicubic "
           "(`align_corners` as PyTorch's). No parameters. Bare: factor 2, nearest.")
    foreign_names = {
        "UNPOOL": "cnndsl has no unpooling (it needs the pooling's indices): UPSAMPLE(2) "
                  "copies each value into a 2x2 block, DECONV(c, 2, s=2) learns the block",
        "MAXUNPOOL": "cnndsl has no unpooling (it needs the pooling's indices): UPSAMPLE(2) "
                     "copies each value into a 2x2 block, DECONV(c, 2, s=2) learns the block",
        "DOWNSAMPLE": "shrink with MAXPOOL or AVGPOOL, a strided CONV, or "
                      "UPSAMPLE(size=HxW, mode=bilinear) to a smaller size; UPSAMPLE grows",
        "UPSAMPLINGNEAREST2D": "write UPSAMPLE(2) (mode=nearest is the default)",
        "UPSAMPLINGBILINEAR2D": "write UPSAMPLE(2, mode=bilinear, align_corners=true): PyTorch's "
                                "UpsamplingBilinear2d aligns the corners",
    }
    params = (
        Param("factor", "pair", None, ("scale", "scale_factor")),
        Param("mode", "word", "nearest"),
        Param("size", "pair", None, ("output_size",)),
        Param("align_corners", "bool", False),
    )

    def coerce(self, param, value, span):
        if param.type == "word":
            return coerce_word(self.name, param, value, span, MODES)
        return coerce(self.name, param, value, span)

    def check_bound(self, values, span):
        if values["factor"] is not None and values["size"] is not None:
            raise CnnArgumentError("UPSAMPLE: give a factor or a size, not both", span,
                                   help="UPSAMPLE(2) doubles H and W; UPSAMPLE(size=56x56) "
                                        "resizes to 56x56")
        if values["align_corners"] and values["mode"] == "nearest":
            raise CnnArgumentError(
                "UPSAMPLE: align_corners is for the interpolating modes, not nearest", span,
                help="write mode=bilinear with it, or leave align_corners out")
        for name in ("factor", "size"):
            if values[name] is not None and max(values[name]) > MAX_AXIS:
                raise CnnArgumentError(f"UPSAMPLE: the {name} {pair_str(values[name])} is "
                                       f"more than PyTorch can size ({MAX_AXIS:,})", span)

    def resolve(self, p, ins, ctx, site):
        volume_in(self.name, ins[0], site)
        if p["factor"] is None and p["size"] is None:
            p = dict(p, factor=(2, 2))
        return p

    @staticmethod
    def out_hw(p, ins):
        if p["size"] is not None:
            return p["size"]
        return ins[0].h * p["factor"][0], ins[0].w * p["factor"][1]

    def infer(self, p, ins, ctx, site):
        shape = ins[0]
        h, w = self.out_hw(p, ins)
        if max(h, w) > MAX_AXIS:
            raise CnnArgumentError(f"{site.label}: the output {h:,}x{w:,} is more than "
                                   f"PyTorch can size ({MAX_AXIS:,} on an axis)", site.span)
        return Shape.volume(h, w, shape.c)

    def explain(self, p, ins, out, n_params):
        shape = ins[0]
        if p["size"] is not None:
            size = f"size {shape.h}x{shape.w} resized to {out.h}x{out.w}"
        elif p["factor"][0] == p["factor"][1] and shape.h == shape.w:
            size = f"size {shape.h}*{p['factor'][0]} = {out.h}"
        else:
            size = (f"height {shape.h}*{p['factor'][0]} = {out.h}; "
                    f"width {shape.w}*{p['factor'][1]} = {out.w}")
        how = {"nearest": "each output copies its nearest input",
               "bilinear": "each output a weighted average of its 2x2 nearest inputs",
               "bicubic": "each output a weighted sum of its 4x4 nearest inputs"}[p["mode"]]
        corners = " (align_corners: the corner values kept)" if p["align_corners"] else ""
        return [f"{size}; {how}{corners}; no parameters, each channel on its own"]

    def window(self, p, ins):
        # the inputs one output reads (1, 2 or 4 per axis), 1/factor input pixels apart
        reads = {"nearest": 1, "bilinear": 2, "bicubic": 4}[p["mode"]]
        steps = tuple(Fraction(n, o) for n, o in zip((ins[0].h, ins[0].w), self.out_hw(p, ins)))
        return (reads, reads), steps, (1, 1)

    def reads(self, p, ins, out, axis):
        """F.interpolate's source index for output i (its edge clamping left out, as a
        convolution's padding): nearest floor(i*n/o); bilinear and bicubic from (i + 1/2)*n/o
        - 1/2, or i*(n - 1)/(o - 1) with align_corners, and the 1 or 3 next inputs unless
        the source falls on an input, whose weight is then the only one not 0."""
        n, o = (ins[0].h, ins[0].w)[axis], (out.h, out.w)[axis]
        if p["align_corners"]:  # one output: torch reads the first input
            scale = Fraction(n - 1, o - 1) if o > 1 else Fraction(0)
        else:
            scale = Fraction(n, o)
        if p["mode"] == "nearest":
            return scale, lambda i: (i * scale.numerator // scale.denominator,) * 2

        def first_last(i):
            source = i * scale if p["align_corners"] else (i + Fraction(1, 2)) * scale - \
                Fraction(1, 2)
            j = math.floor(source)
            if source == j:
                return j, j
            return (j, j + 1) if p["mode"] == "bilinear" else (j - 1, j + 2)
        return scale, first_last

    def inputs_per_neuron(self, p, ins, out, n_params):
        return {"nearest": 1, "bilinear": 4, "bicubic": 16}[p["mode"]]

    def recipe(self, p, ins, out):
        kwargs = {"scale_factor": float(p["factor"][0]) if p["factor"][0] == p["factor"][1]
                  else tuple(float(f) for f in p["factor"])} if p["size"] is None else \
            {"size": one_or_pair(p["size"])}
        kwargs["mode"] = p["mode"]
        if p["mode"] != "nearest":
            kwargs["align_corners"] = p["align_corners"]
        return Recipe("Upsample", kwargs, defaults={"mode": "nearest"})

    def label(self, p):
        factor = p["factor"] or (2, 2)
        to = f"to {pair_str(p['size'])}" if p["size"] is not None else \
            f"x{factor[0]}" if factor[0] == factor[1] else f"x{pair_str(factor)}"
        return f"UPSAMPLE {to}, {p['mode']}"
