"""Pixel shuffle (PIXELSHUFFLE) and its inverse (PIXELUNSHUFFLE): channels traded for
resolution, the sub-pixel convolution of super-resolution networks (Shi et al. 2016)."""
from __future__ import annotations

from fractions import Fraction

from ..errors import CnnShapeError
from ..shapes import Shape
from .base import LayerKind, Param, Recipe, register, volume_in


@register
class PixelShuffle(LayerKind):
    name = "PIXELSHUFFLE"
    aliases = ("PIXEL_SHUFFLE", "SUBPIXEL")
    family = "reshape"
    draw = {"shape": "trapezium"}
    doc = ("Rearranges HxWx(C*r*r) into (H*r)x(W*r)xC: each group of r*r channels becomes an "
           "r x r block of one channel (PyTorch's PixelShuffle; `factor` r, default 2).")
    foreign_names = {
        "DEPTHTOSPACE": "write PIXELSHUFFLE(r) (PyTorch's order: channel c*r*r + i*r + j goes to "
                        "block position (i, j) of channel c; TensorFlow's depth_to_space "
                        "orders the channels the other way round)"}
    params = (Param("factor", "count", 2, ("r", "upscale_factor")),)
    torch_name = "PixelShuffle"
    torch_arg = "upscale_factor"

    def infer(self, p, ins, ctx, site):
        shape = volume_in(self.name, ins[0], site)
        r = p["factor"]
        if shape.c % (r * r):
            raise CnnShapeError(
                f"{site.label}: {shape.c} channels do not split into groups of "
                f"{r}*{r} = {r * r}", site.span,
                help=f"give the layer before a multiple of {r * r} filters "
                     f"(e.g. {r * r * max(1, round(shape.c / (r * r)))})")
        return Shape.volume(shape.h * r, shape.w * r, shape.c // (r * r))

    def window(self, p, ins):
        # each output is one input value; neighbouring outputs are 1/r input pixels apart
        return (1, 1), (Fraction(1, p["factor"]),) * 2, (1, 1)

    def reads(self, p, ins, out, axis):
        r = p["factor"]
        return Fraction(1, r), lambda i: (i // r, i // r)

    def explain(self, p, ins, out, n_params):
        s, r = ins[0], p["factor"]
        return [(f"size {s.h}*{r} x {s.w}*{r} = {out.h}x{out.w}; channels {s.c}/({r}*{r}) = "
                f"{out.c}; the same values rearranged, no parameters")]

    def recipe(self, p, ins, out):
        return Recipe(self.torch_name, {self.torch_arg: p["factor"]},
                      positional=(self.torch_arg,))

    def label(self, p):
        return f"{self.name} {p['factor']}"


@register
class PixelUnshuffle(PixelShuffle):
    name = "PIXELUNSHUFFLE"
    aliases = ("PIXEL_UNSHUFFLE",)
    draw = {"shape": "invtrapezium"}
    doc = ("PIXELSHUFFLE's inverse: (H*r)x(W*r)xC into HxWx(C*r*r) (PyTorch's "
           "PixelUnshuffle; H and W must be multiples of `factor` r, default 2).")
    foreign_names = {
        "SPACETODEPTH": "write PIXELUNSHUFFLE(r) (PyTorch's channel order, which differs from "
                        "TensorFlow's space_to_depth)"}
    params = (Param("factor", "count", 2, ("r", "downscale_factor")),)
    torch_name = "PixelUnshuffle"
    torch_arg = "downscale_factor"

    def window(self, p, ins):
        # each output position gathers an r x r block of the input, across its channels
        r = p["factor"]
        return (r, r), (r, r), (1, 1)

    def reads(self, p, ins, out, axis):
        r = p["factor"]
        return Fraction(r), lambda i: (i * r, i * r + r - 1)

    def infer(self, p, ins, ctx, site):
        shape = volume_in(self.name, ins[0], site)
        r = p["factor"]
        if shape.h % r or shape.w % r:
            raise CnnShapeError(
                f"{site.label}: a {shape.h}x{shape.w} input does not split into {r}x{r} "
                f"blocks: {shape.h} and {shape.w} must be multiples of {r}", site.span,
                help="CROP or PAD the input to a multiple first")
        return Shape.volume(shape.h // r, shape.w // r, shape.c * r * r)

    def explain(self, p, ins, out, n_params):
        s, r = ins[0], p["factor"]
        return [(f"size {s.h}/{r} x {s.w}/{r} = {out.h}x{out.w}; channels {s.c}*{r}*{r} = "
                f"{out.c}; the same values rearranged, no parameters")]
