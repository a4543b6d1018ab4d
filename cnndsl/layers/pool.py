"""Pooling: MAXPOOL/POOL and AVGPOOL windows, global and adaptive average pooling."""
from __future__ import annotations

import math
from fractions import Fraction

from ..errors import CnnArgumentError, CnnShapeError
from ..limits import MAX_AXIS
from ..shapes import Shape
from .base import LayerKind, Param, Recipe, pair_str, register, volume_in
from .conv import explain_window, resolve_window, strided_reads, window_out


@register
class MaxPool(LayerKind):
    name = "MAXPOOL"
    aliases = ("POOL", "MAX_POOL", "MAXPOOL2D", "SUBSAMPLE")
    family = "pool"
    doc = ("Max pooling over `kernel`x`kernel` windows; `stride` defaults to the kernel, "
           "padding to 0. Bare: 2x2, stride 2 (the lecture's common setting).")
    torch_name = "MaxPool2d"
    params = (
        Param("kernel", "pair", None, ("f", "size", "k", "kernel_size")),
        Param("stride", "pair", None, ("s",)),
        Param("pad", "pad", None, ("p", "padding")),
        Param("round", "rounding", None, ("rounding",)),
        Param("ceil_mode", "bool", False, keyword_only=True),  # PyTorch's spelling of round=ceil
    )

    def resolve(self, p, ins, ctx, site):
        volume_in(self.name, ins[0], site)
        if p.get("ceil_mode"):
            p = dict(p, round="ceil")
        p = resolve_window(self.name, p, ins, ctx, site, bare_kernel=2, bare_pad_same=False,
                           pool=True)
        p["dilation"] = (1, 1)
        if any(pad * 2 > k for pad, k in zip(p["pad"], p["kernel"])):
            raise CnnShapeError(f"{site.label}: padding {pair_str(p['pad'])} is more than half "
                                f"the {pair_str(p['kernel'])} window", site.span,
                                help="pooling padding must be at most kernel/2 (PyTorch's rule)")
        return p

    def infer(self, p, ins, ctx, site):
        h, w = window_out(self.name, p, ins[0], site, pool=True)
        return Shape.volume(h, w, ins[0].c)

    def window(self, p, ins):
        return p["kernel"], p["stride"], (1, 1)

    def reads(self, p, ins, out, axis):
        return strided_reads(p["kernel"][axis], p["stride"][axis], p["pad"][axis])

    def explain(self, p, ins, out, n_params):
        return [explain_window(p, ins[0], out) + "; no parameters, each channel on its own"]

    def recipe(self, p, ins, out):
        kwargs = dict(kernel_size=p["kernel"], stride=p["stride"], padding=p["pad"],
                      ceil_mode=p["round"] == "ceil")
        defaults = {"padding": 0, "ceil_mode": False}
        if self.torch_name == "AvgPool2d":
            kwargs["count_include_pad"] = defaults["count_include_pad"] = True
        return Recipe(self.torch_name, kwargs, defaults=defaults)

    def label(self, p):
        k, s = p["kernel"], p["stride"]
        ss = str(s[0]) if s[0] == s[1] else pair_str(s)
        return f"{self.name} {pair_str(k)}/{ss}"


@register
class AvgPool(MaxPool):
    name = "AVGPOOL"
    aliases = ("AVG_POOL", "AVGPOOL2D", "AVERAGEPOOL")
    doc = "Average pooling, with the same arguments and defaults as MAXPOOL."
    torch_name = "AvgPool2d"


@register
class GlobalAvgPool(LayerKind):
    name = "GAP"
    aliases = ("GLOBALAVGPOOL", "GLOBALPOOL", "GLOBAL_AVG_POOL", "GLOBALAVERAGEPOOL")
    family = "pool"
    doc = "Global average pooling: HxWxC -> 1x1xC (ResNet's and GoogLeNet's head)."

    def infer(self, p, ins, ctx, site):
        shape = volume_in(self.name, ins[0], site)
        return Shape.volume(1, 1, shape.c)

    def window(self, p, ins):
        return (ins[0].h, ins[0].w), (1, 1), (1, 1)

    def reads(self, p, ins, out, axis):
        return strided_reads((ins[0].h, ins[0].w)[axis], 1, 0)

    def explain(self, p, ins, out, n_params):
        s = ins[0]
        return [f"each of the {s.c} {s.h}x{s.w} maps averaged to one value; no parameters"]

    def recipe(self, p, ins, out):
        return Recipe("AdaptiveAvgPool2d", dict(output_size=(1, 1)))


@register
class AdaptiveAvgPool(LayerKind):
    name = "ADAPTIVEAVGPOOL"
    aliases = ("ADAPTIVEPOOL", "ADAPTIVE_AVG_POOL")
    family = "pool"
    doc = ("Average pooling to a fixed `size` (torchvision's AlexNet and VGG put one before "
           "the classifier); the window is computed from the input.")
    params = (Param("size", "pair", (1, 1), ("output", "s", "output_size")),)

    def check_bound(self, values, span):
        # PyTorch repeats inputs to upsample, so a size above the input's is allowed, up to
        # what its 32-bit sizes hold (issue 17, F6)
        if values["size"] is not None and max(values["size"]) > MAX_AXIS:
            raise CnnArgumentError(
                f"ADAPTIVEAVGPOOL: the output size {pair_str(values['size'])} is larger than "
                f"PyTorch can size ({MAX_AXIS:,} on an axis)", span)

    def infer(self, p, ins, ctx, site):
        shape = volume_in(self.name, ins[0], site)
        return Shape.volume(p["size"][0], p["size"][1], shape.c)

    def window(self, p, ins):
        (h, w), (oh, ow) = (ins[0].h, ins[0].w), p["size"]
        return (_widest(h, oh), _widest(w, ow)), (max(1, h // oh), max(1, w // ow)), (1, 1)

    def reads(self, p, ins, out, axis):
        # PyTorch's window i: from floor(i*n/o) up to ceil((i+1)*n/o), not included
        n, o = (ins[0].h, ins[0].w)[axis], p["size"][axis]
        return Fraction(n, o), lambda i: (i * n // o, -(-(i + 1) * n // o) - 1)

    def recipe(self, p, ins, out):
        return Recipe("AdaptiveAvgPool2d", dict(output_size=p["size"]))

    def label(self, p):
        return f"ADAPTIVEAVGPOOL {pair_str(p['size'])}"


def _widest(size: int, out: int) -> int:
    """The widest of PyTorch's adaptive windows, which run from floor(i*size/out) to
    ceil((i+1)*size/out): window i is ceil((r + size)/out) wide for r = i*size mod out, and
    those remainders are the multiples of gcd(size, out) below out, so the widest has
    r = out - gcd. In O(1): a loop over the windows took minutes for a size of 10^12
    (issue 17, F6). It holds for out > size too (PyTorch repeats inputs when upsampling)."""
    return -(-(out - math.gcd(size, out) + size) // out)
