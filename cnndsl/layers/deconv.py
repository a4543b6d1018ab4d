"""Transposed convolution (DECONV): the convolution's size formula run backwards, for
networks that output images (U-Net's up-convolutions, autoencoder decoders, FCN)."""
from __future__ import annotations

import math
from fractions import Fraction

from ..errors import CnnArgumentError, CnnShapeError
from ..limits import MAX_AXIS
from ..shapes import Shape
from .base import (REQUIRED, LayerKind, Param, Recipe, check_input_size, pair_str, register,
                   volume_in)
from .conv import check_groups


def one_or_pair(pair):
    """torch reads 2 and (2, 2) alike: one number when both axes agree (the generated
    source then reads as a person writes it)."""
    return pair[0] if pair[0] == pair[1] else tuple(pair)


def transposed_size(n: int, k: int, s: int, p: int, d: int, op: int) -> int:
    """One axis: W2 = (W1 - 1)*S - 2P + D*(F - 1) + OP + 1 (PyTorch's ConvTranspose2d)."""
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def transposed_formula(n: int, k: int, s: int, p: int, d: int, op: int) -> str:
    dk = f"({k} - 1)" if d == 1 else f"{d}*({k} - 1)"
    return f"({n} - 1)*{s} - 2*{p} + {dk} + {op} + 1"


@register
class TransposedConv(LayerKind):
    name = "DECONV"
    aliases = ("CONVTRANSPOSE", "CONVTRANSPOSE2D", "CONV_TRANSPOSE", "TRANSPOSEDCONV",
               "TRANSPOSECONV", "DECONVOLUTION", "UPCONV")
    family = "conv"
    weighted = True
    takes_activation = True
    doc = ("Transposed convolution (\"deconvolution\", PyTorch's ConvTranspose2d): `filters` "
           "kernels of `kernel`x`kernel`; each input value is spread over a kernel-sized "
           "window of the output, windows `stride` apart, so the size grows: "
           "W2 = (W1 - 1)*S - 2P + D*(F - 1) + OP + 1.")
    params = (
        Param("filters", "count", REQUIRED, ("n", "k_out", "channels", "out", "out_channels")),
        Param("kernel", "pair", REQUIRED, ("f", "size", "k", "kernel_size")),
        Param("stride", "pair", (1, 1), ("s",)),
        Param("pad", "pad", (0, 0), ("p", "padding")),
        Param("out_pad", "pad", (0, 0), ("op", "output_padding")),
        Param("dilation", "pair", (1, 1), ("d",)),
        Param("groups", "count", 1, ("g",)),
        Param("bias", "bool", True),
        Param("in_channels", "count", None, keyword_only=True),
    )

    def check_bound(self, values, span):
        for name in ("pad", "out_pad"):
            if values[name] == "same" or (values[name] == "valid" and name == "out_pad"):
                raise CnnArgumentError(
                    f"DECONV: `{name}` must be a number or HxW, not `{values[name]}`", span,
                    help="a transposed convolution's padding takes rows off the output: "
                         "with stride S, kernel F = 2P + S gives S times the input size")
            if values[name] == "valid":
                values[name] = (0, 0)
        for axis, op, s, d in zip(("height", "width"), values["out_pad"], values["stride"],
                                  values["dilation"]):
            if op >= s and op >= d:
                where = "" if values["out_pad"][0] == values["out_pad"][1] else f" ({axis})"
                raise CnnArgumentError(
                    f"DECONV: output padding {op} must be smaller than the stride {s} or the "
                    f"dilation {d}{where}", span,
                    help="output padding picks one of the S sizes a stride-S convolution maps "
                         "to the same output: 0 to S - 1 (PyTorch's rule)")

    def resolve(self, p, ins, ctx, site):
        shape = volume_in(self.name, ins[0], site)
        check_input_size(self.name, "in_channels", p.get("in_channels"), shape.c, site)
        check_groups(p, shape, site)
        return p

    def infer(self, p, ins, ctx, site):
        shape = ins[0]
        sizes = []
        per_axis = list(zip(("height", "width"), (shape.h, shape.w), p["kernel"], p["stride"],
                            p["pad"], p["dilation"], p["out_pad"]))
        square = per_axis[0][1:] == per_axis[1][1:]
        for axis, n, k, s, pad, d, op in per_axis:
            size = transposed_size(n, k, s, pad, d, op)
            where = "" if square else f" ({axis})"
            if size < 1:
                raise CnnShapeError(
                    f"{site.label}: the padding takes the whole output away{where}: "
                    f"{transposed_formula(n, k, s, pad, d, op)} = {size}", site.span,
                    help="use a padding of at most "
                         f"{(transposed_size(n, k, s, 0, d, op) - 1) // 2}")
            if size > MAX_AXIS:
                raise CnnShapeError(
                    f"{site.label}: the output{where} is {size:,}, more than PyTorch can size "
                    f"({MAX_AXIS:,})", site.span)
            sizes.append(size)
        return Shape.volume(sizes[0], sizes[1], p["filters"])

    def window(self, p, ins):
        """In input pixels: the kernel's taps an output meets are gcd(d, s)/s of them, d/gcd
        input pixels apart, so the window spans ceil(k*g/s) inputs; the stride is 1/s."""
        taps, gaps = [], []
        for k, s, d in zip(p["kernel"], p["stride"], p["dilation"]):
            g = math.gcd(d, s)
            taps.append(-(-k * g // s))
            gaps.append(d // g)
        return tuple(taps), tuple(Fraction(1, s) for s in p["stride"]), tuple(gaps)

    def reads(self, p, ins, out, axis):
        """Output i meets tap t of input j where i = j*s - pad + t*d."""
        k, s, pad, d = (p[name][axis] for name in ("kernel", "stride", "pad", "dilation"))

        def first_last(i):
            found = [(i + pad - t * d) // s for t in range(k) if (i + pad - t * d) % s == 0]
            return (min(found), max(found)) if found else None
        return Fraction(1, s), first_last

    def count_params(self, p, ins, out):
        kh, kw = p["kernel"]
        weights = ins[0].c * (p["filters"] // p["groups"]) * kh * kw
        return weights + (p["filters"] if p["bias"] else 0), 0

    def count_macs(self, p, ins, out):
        # every input value is multiplied into a kernel window of each of its group's filters
        kh, kw = p["kernel"]
        shape = ins[0]
        return shape.h * shape.w * shape.c * kh * kw * (p["filters"] // p["groups"])

    def inputs_per_neuron(self, p, ins, out, n_params):
        # An output value receives from the input values whose windows cover it: k*k*cin/g
        # spread over stride*stride outputs, on average (more where windows overlap)
        return round(self.count_macs(p, ins, out) / out.numel) + (1 if p["bias"] else 0)

    def spelling_notes(self, written):
        if written in ("CONVTRANSPOSE2D", "CONVTRANSPOSE"):
            return [("ConvTranspose2d takes the filters first here, as CONV does: PyTorch's "
                    "ConvTranspose2d(128, 64, 2, stride=2) is ConvTranspose2d(64, 2, s=2) (the "
                    "input channels come from the layer before)")]
        return []

    def explain(self, p, ins, out, n_params):
        shape = ins[0]
        axes = [f"{transposed_formula(n, k, s, pad, d, op)} = {o}" for n, k, s, pad, d, op, o in
                zip((shape.h, shape.w), p["kernel"], p["stride"], p["pad"], p["dilation"],
                    p["out_pad"], (out.h, out.w))]
        size = f"size {axes[0]}" if shape.h == shape.w and axes[0] == axes[1] else \
            f"height {axes[0]}; width {axes[1]}"
        kh, kw = p["kernel"]
        per_filter = f"{kh}*{kw}*{shape.c // p['groups']}" + (" + 1" if p["bias"] else "")
        return [f"{size} ((W - 1)*S - 2P + D*(F - 1) + OP + 1)",
                f"parameters {p['filters']} filters x ({per_filter}) = {n_params:,}"]

    def recipe(self, p, ins, out):
        return Recipe("ConvTranspose2d", {
            "in_channels": ins[0].c, "out_channels": p["filters"], "kernel_size": p["kernel"],
            "stride": p["stride"], "padding": p["pad"],
            "output_padding": one_or_pair(p["out_pad"]), "groups": p["groups"],
            "bias": p["bias"], "dilation": p["dilation"]},
            positional=("in_channels", "out_channels"),
            defaults={"stride": 1, "padding": 0, "output_padding": 0, "groups": 1,
                      "bias": True, "dilation": 1}, accumulable=True)

    def label(self, p):
        k, s = p["kernel"], p["stride"]
        ss = str(s[0]) if s[0] == s[1] else pair_str(s)
        extra = f", g{p['groups']}" if p["groups"] > 1 else ""
        d = p["dilation"]
        if d != (1, 1):
            extra += f", d{d[0] if d[0] == d[1] else pair_str(d)}"
        return f"DECONV {pair_str(k)}/{ss}, {p['filters']}{extra}"
