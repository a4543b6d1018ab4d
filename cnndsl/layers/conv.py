"""Convolutions: CONV, DWCONV (depthwise) and SEPCONV (depthwise then pointwise)."""
from __future__ import annotations

import math

from ..errors import CnnArgumentError, CnnShapeError
from ..limits import MAX_AXIS
from ..shapes import Shape, explain_size, out_size
from .base import (Context, LayerKind, Param, Recipe, Site, Symbol, check_input_size, pair_str,
                   register, volume_in)


def resolve_window(kind: str, p: dict, ins: list[Shape], ctx: Context, site: Site,
                   *, bare_kernel: int, bare_pad_same: bool, pool: bool = False) -> dict:
    """Kernel, stride, padding, dilation and rounding made concrete for one input volume."""
    p = dict(p)
    bare = p.get("kernel") is None
    p["kernel"] = p["kernel"] or (bare_kernel, bare_kernel)
    p["stride"] = p["stride"] or ((p["kernel"] if pool else (1, 1)))
    p["dilation"] = p.get("dilation") or (1, 1)
    pad = p["pad"]
    if pad is None:
        pad = Symbol("same") if (bare and bare_pad_same) else (0, 0)
    if pad == "valid":
        pad = (0, 0)
    if pad == "same":
        halves = [d * (k - 1) for k, d in zip(p["kernel"], p["dilation"])]
        if any(h % 2 for h in halves):
            raise CnnShapeError(f"{kind}: pad=same needs an odd kernel, not "
                                f"{pair_str(p['kernel'])}", site.span,
                                help="give the padding as a number")
        pad = tuple(h // 2 for h in halves)
    p["pad"] = tuple(pad)
    shape = ins[0]
    if shape.is_volume:
        for axis, n, side in zip(("height", "width"), (shape.h, shape.w), p["pad"]):
            if n + 2 * side > MAX_AXIS:
                # PyTorch sizes it in 32 bits: pad=10^12 checked, then its forward computed a
                # negative output size (issue 17, F13)
                raise CnnShapeError(
                    f"{kind}: padding {side:,} makes the padded {axis} {n + 2 * side:,}, "
                    f"more than PyTorch can size ({MAX_AXIS:,})", site.span,
                    help="padding adds zeros on each side; same padding is (kernel - 1) / 2")
    p["round"] = p.get("round") or ctx.rounding
    return p


def window_out(kind: str, p: dict, shape: Shape, site: Site, pool: bool = False):
    hint = "round=floor on this layer, or `rounding = floor` for the spec"
    per_axis = list(zip((shape.h, shape.w), p["kernel"], p["stride"], p["pad"], p["dilation"]))
    # Each axis has its own formula; only when both axes are alike does one stand for both
    # (and the message then names no axis).
    square = per_axis[0] == per_axis[1]
    return [out_size(n, k, s, pad, d, rounding=p["round"], what=f"{site.label}",
                     axis="" if square else axis, span=site.span, pool=pool, round_hint=hint)
            for axis, (n, k, s, pad, d) in zip(("height", "width"), per_axis)]


def strided_reads(k: int, s: int, pad: int, d: int = 1):
    """A window of k taps d apart, s apart from one output to the next, from -pad: the
    receptive field's reads (LayerKind.reads: first, last, and the taps' distance)."""
    return s, lambda i: (i * s - pad, i * s - pad + (k - 1) * d, d)


def explain_window(p: dict, shape: Shape, out: Shape) -> str:
    """`size (32 - 5 + 2*2)/1 + 1 = 32`, once for a square window on a square input, else
    per axis."""
    axes = [explain_size(n, k, s, pad, d, o) for n, k, s, pad, d, o in zip(
        (shape.h, shape.w), p["kernel"], p["stride"], p["pad"], p["dilation"], (out.h, out.w))]
    if shape.h == shape.w and axes[0] == axes[1]:
        return f"size {axes[0]}"
    return f"height {axes[0]}; width {axes[1]}"


def check_groups(p: dict, shape: Shape, site: Site) -> None:
    if shape.c % p["groups"] or p["filters"] % p["groups"]:
        raise CnnShapeError(
            f"{site.label}: groups={p['groups']} must divide both the input channels "
            f"({shape.c}) and the filters ({p['filters']})", site.span)


def conv_label(name: str, p: dict, filters: int) -> str:
    k, s = p["kernel"], p["stride"]
    ks = str(k[0]) + "x" + str(k[1])
    ss = str(s[0]) if s[0] == s[1] else pair_str(s)
    extra = ""
    if p.get("groups", 1) > 1 and name == "CONV":
        extra = f", g{p['groups']}"
    if p["dilation"] != (1, 1):
        extra += f", d{p['dilation'][0]}"
    return f"{name} {ks}/{ss}, {filters}{extra}"


@register
class Conv(LayerKind):
    name = "CONV"
    aliases = ("CONV2D", "CONVOLUTION")
    family = "conv"
    weighted = True
    takes_activation = True  # and DWCONV, its subclass
    doc = ("Convolution: `filters` kernels of `kernel`x`kernel`, stride `s`, zero padding `pad`. "
           "Bare `CONV` is the lecture's common setting 3x3, stride 1, pad 1, with the filter "
           "count doubling from `width` each time the volume was halved.")
    params = (
        Param("filters", "count", None, ("n", "k_out", "channels", "out", "out_channels")),
        Param("kernel", "pair", None, ("f", "size", "k", "kernel_size")),
        Param("stride", "pair", None, ("s",)),
        Param("pad", "pad", None, ("p", "padding")),
        Param("dilation", "pair", None, ("d",)),
        Param("groups", "count", 1, ("g",)),
        Param("bias", "bool", True),
        Param("round", "rounding", None, ("rounding",)),
        Param("in_channels", "count", None, keyword_only=True),
    )

    paper_token = r"conv(\d+)-(\d+)"  # VGG: conv<kernel>-<filters>, size-preserving

    def from_paper_token(self, match):
        return (int(match[2]),), {"kernel": int(match[1]), "pad": Symbol("same")}

    def resolve(self, p, ins, ctx, site):
        shape = volume_in(self.name, ins[0], site)
        check_input_size(self.name, "in_channels", p.get("in_channels"), shape.c, site)
        p = resolve_window(self.name, p, ins, ctx, site, bare_kernel=3, bare_pad_same=True)
        if p["filters"] is None:
            halvings = max(0, int(math.floor(math.log2(ctx.input.h / shape.h)))) \
                if ctx.input.is_volume else 0
            p["filters"] = min(ctx.width * 2 ** halvings, max(ctx.max_width, ctx.width))
        check_groups(p, shape, site)
        return p

    def infer(self, p, ins, ctx, site):
        h, w = window_out(self.name, p, ins[0], site)
        return Shape.volume(h, w, p["filters"])

    def window(self, p, ins):
        return p["kernel"], p["stride"], p["dilation"]

    def reads(self, p, ins, out, axis):
        return strided_reads(p["kernel"][axis], p["stride"][axis], p["pad"][axis],
                             p["dilation"][axis])

    def count_params(self, p, ins, out):
        kh, kw = p["kernel"]
        weights = kh * kw * (ins[0].c // p["groups"]) * p["filters"]
        return weights + (p["filters"] if p["bias"] else 0), 0

    def count_macs(self, p, ins, out):
        kh, kw = p["kernel"]
        return out.h * out.w * out.c * kh * kw * (ins[0].c // p["groups"])

    def spelling_notes(self, written):
        # PyTorch's Conv2d(in_channels, out_channels, kernel_size) reads as filters, kernel,
        # stride here (the lecture's and Keras' order): say so when such a layer does not fit.
        if written == "CONV2D":
            return ["Conv2d takes the filters first, as Keras' Conv2D does: PyTorch's "
                    "Conv2d(3, 64, 3) is Conv2d(64, 3) here (the input channels come from the "
                    "layer before)"]
        return []

    def explain(self, p, ins, out, n_params):
        kh, kw = p["kernel"]
        per_filter = f"{kh}*{kw}*{ins[0].c // p['groups']}" + (" + 1" if p["bias"] else "")
        return [explain_window(p, ins[0], out),
                f"parameters {p['filters']} filters x ({per_filter}) = {n_params:,}"]

    def recipe(self, p, ins, out):
        return Recipe("Conv2d", dict(
            in_channels=ins[0].c, out_channels=p["filters"], kernel_size=p["kernel"],
            stride=p["stride"], padding=p["pad"], dilation=p["dilation"], groups=p["groups"],
            bias=p["bias"]), positional=("in_channels", "out_channels", "kernel_size"),
            defaults={"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True},
            accumulable=True)

    def label(self, p):
        return conv_label("CONV", p, p["filters"])


@register
class DepthwiseConv(Conv):
    name = "DWCONV"
    aliases = ("DEPTHWISE", "DEPTHWISECONV", "CONV_DW", "CONVDW")
    doc = ("Depthwise convolution (MobileNet): one `kernel`x`kernel` filter per input channel "
           "(groups = channels), `multiplier` filters each. Bare: 3x3, stride 1, pad 1.")
    params = (
        Param("kernel", "pair", None, ("f", "size", "k", "kernel_size")),
        Param("stride", "pair", None, ("s",)),
        Param("pad", "pad", None, ("p", "padding")),
        Param("multiplier", "count", 1, ("m",)),
        Param("dilation", "pair", None, ("d",)),
        Param("bias", "bool", True),
        Param("round", "rounding", None, ("rounding",)),
    )

    def resolve(self, p, ins, ctx, site):
        shape = volume_in(self.name, ins[0], site)
        p = resolve_window(self.name, p, ins, ctx, site, bare_kernel=3, bare_pad_same=True)
        p["groups"] = shape.c
        p["filters"] = shape.c * p["multiplier"]
        return p

    def label(self, p):
        return conv_label("DWCONV", p, p["filters"])


@register
class SeparableConv(LayerKind):
    name = "SEPCONV"
    aliases = ("SEPARABLECONV", "DSCONV")
    family = "conv"
    doc = ("Depthwise separable convolution: DWCONV(kernel, stride, pad) then a 1x1 CONV "
           "with `filters` outputs; it expands to those two layers.")
    params = (
        Param("filters", "count", None, ("n", "channels", "out")),
        Param("kernel", "pair", None, ("f", "size", "k", "kernel_size")),
        Param("stride", "pair", None, ("s",)),
        Param("pad", "pad", None, ("p", "padding")),
        Param("bias", "bool", True),
        Param("round", "rounding", None, ("rounding",)),
    )

    def macro(self, values):
        dw = {"kernel": values["kernel"], "stride": values["stride"], "pad": values["pad"],
              "multiplier": 1, "dilation": None, "bias": values["bias"],
              "round": values["round"]}
        if values["kernel"] is not None and values["pad"] is None:
            dw["pad"] = Symbol("same")
        pw = {"filters": values["filters"], "kernel": (1, 1), "stride": None, "pad": None,
              "dilation": None, "groups": 1, "bias": values["bias"], "round": None}
        return [("DWCONV", dw), ("CONV", pw)]

    def check_bound(self, values, span):
        if values["pad"] is not None and values["kernel"] is None:
            raise CnnArgumentError("SEPCONV: give the kernel with the padding", span)
