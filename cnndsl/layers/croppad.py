"""CROP (a centre window of each map) and PAD (rows and columns added on each side): the
valid-convolution U-Net's crop before its skip concatenation, and padding on its own."""
from __future__ import annotations

from fractions import Fraction

from ..errors import CnnArgumentError, CnnShapeError
from ..limits import MAX_AXIS
from ..shapes import Shape
from .base import REQUIRED, LayerKind, Param, Recipe, coerce, pair_str, register, volume_in
from .upsample import coerce_word


def crop_offsets(n: int, size: int) -> int:
    """Rows (or columns) a centre crop takes off before the window: torchvision's
    center_crop rounds (n - size)/2 to the nearest whole number, halves to the even one."""
    return round((n - size) / 2.0)


@register
class CenterCrop(LayerKind):
    name = "CROP"
    aliases = ("CENTERCROP", "CENTRECROP", "CENTER_CROP", "CROP2D")
    family = "reshape"
    doc = ("Keeps the centre `size` (HxW) window of each map, as torchvision's center_crop "
           "(an odd difference leaves the extra row below or above as it rounds (H - h)/2 "
           "to even); U-Net crops its skips so before concatenating them.")
    foreign_names = {
        "CROPPING2D": "CROP(HxW) keeps the centre HxW window; Keras' Cropping2D takes given "
                      "rows and columns off each side"}
    params = (Param("size", "pair", REQUIRED, ("output", "output_size")),)

    def infer(self, p, ins, ctx, site):
        shape = volume_in(self.name, ins[0], site)
        h, w = p["size"]
        if h > shape.h or w > shape.w:
            raise CnnShapeError(
                f"{site.label}: the {h}x{w} window is larger than its {shape.h}x{shape.w} "
                f"input", site.span,
                help=f"crop to at most {shape.h}x{shape.w}, or PAD the input by "
                     f"{pair_str((max(0, h - shape.h), max(0, w - shape.w)))} in all first")
        return Shape.volume(h, w, shape.c)

    def explain(self, p, ins, out, n_params):
        shape = ins[0]
        parts = []
        for axis, n, size in (("rows", shape.h, out.h), ("columns", shape.w, out.w)):
            first = crop_offsets(n, size)
            parts.append(f"{axis} {first} to {first + size - 1} of {n} ({n} - {size} = "
                         f"{n - size} taken off, {first} before and {n - size - first} after)")
        return ["; ".join(parts) + "; no parameters"]

    def reads(self, p, ins, out, axis):
        first = crop_offsets((ins[0].h, ins[0].w)[axis], (out.h, out.w)[axis])
        return Fraction(1), lambda i: (i + first, i + first)

    def recipe(self, p, ins, out):
        shape = ins[0]
        window = {"top": crop_offsets(shape.h, out.h), "left": crop_offsets(shape.w, out.w),
                  "height": out.h, "width": out.w}
        return Recipe("Crop", window, custom=True, aliases_input=True)

    def label(self, p):
        return f"CROP {pair_str(p['size'])}"


PAD_MODES = ("constant", "reflect", "replicate", "circular")
_PAD_MODULES = {"reflect": "ReflectionPad2d", "replicate": "ReplicationPad2d",
                "circular": "CircularPad2d"}


@register
class Pad(LayerKind):
    name = "PAD"
    aliases = ("ZEROPAD", "ZEROPAD2D", "CONSTANTPAD2D", "PADDING2D", "ZEROPADDING2D")
    family = "reshape"
    doc = ("Pads each map: `pad` rows above and below and columns left and right (HxW for "
           "different amounts), or each side on its own (`top`, `bottom`, `left`, `right`, "
           "which override `pad` on their side). `mode` constant (with `value`, default 0), "
           "reflect, replicate or circular, as PyTorch's padding modules.")
    params = (
        Param("pad", "pad", (0, 0), ("p", "padding")),
        Param("top", "nonneg", None), Param("bottom", "nonneg", None),
        Param("left", "nonneg", None), Param("right", "nonneg", None),
        Param("mode", "word", "constant"),
        Param("value", "float", 0.0),
    )

    def coerce(self, param, value, span):
        if param.type == "word":
            return coerce_word(self.name, param, value, span, PAD_MODES)
        value = coerce(self.name, param, value, span)
        if param.name == "pad" and value == "same":
            raise CnnArgumentError("PAD: `pad` must be a number or HxW, not `same`", span,
                                   help="PAD(1) adds one row or column on every side")
        return (0, 0) if value == "valid" else value

    def check_bound(self, values, span):
        sides = _sides(values)
        if values["value"] != 0 and values["mode"] != "constant":
            raise CnnArgumentError(f"PAD: `value` is for mode=constant, not {values['mode']}",
                                   span, help="leave value out, or write mode=constant")
        if max(sides.values()) > MAX_AXIS:
            raise CnnArgumentError(f"PAD: padding {max(sides.values()):,} is more than "
                                   f"PyTorch can size ({MAX_AXIS:,})", span)

    def resolve(self, p, ins, ctx, site):
        shape = volume_in(self.name, ins[0], site)
        sides = _sides(p)
        p = dict(p, sides=sides)
        # PyTorch's rules: a reflection cannot reach past the edge value it mirrors around,
        # a circular pad past one full turn
        limit = {"reflect": (1, "smaller than"), "circular": (0, "at most")}.get(p["mode"])
        if limit:
            for side, n in (("top", shape.h), ("bottom", shape.h), ("left", shape.w),
                            ("right", shape.w)):
                if sides[side] > n - limit[0]:
                    axis = "height" if side in ("top", "bottom") else "width"
                    raise CnnShapeError(
                        f"{site.label}: {p['mode']} padding of {sides[side]} on the {side} "
                        f"must be {limit[1]} the input's {axis} {n}", site.span,
                        help="use mode=constant or mode=replicate for more")
        return p

    def infer(self, p, ins, ctx, site):
        shape, s = ins[0], p["sides"]
        h, w = shape.h + s["top"] + s["bottom"], shape.w + s["left"] + s["right"]
        if max(h, w) > MAX_AXIS:
            raise CnnShapeError(f"{site.label}: the padded input {h:,}x{w:,} is more than "
                                f"PyTorch can size ({MAX_AXIS:,})", site.span)
        return Shape.volume(h, w, shape.c)

    def explain(self, p, ins, out, n_params):
        shape, s = ins[0], p["sides"]
        fill = {"constant": f"{p['value']:g}s", "reflect": "the values mirrored at the edge",
                "replicate": "copies of the edge value",
                "circular": "the values from the opposite edge"}[p["mode"]]
        return [(f"height {s['top']} + {shape.h} + {s['bottom']} = {out.h}; width "
                f"{s['left']} + {shape.w} + {s['right']} = {out.w}; filled with {fill}; "
                "no parameters")]

    def reads(self, p, ins, out, axis):
        # the added rows read none, as a convolution's padding: positions before the first
        before = p["sides"]["left" if axis else "top"]
        return Fraction(1), lambda i: (i - before, i - before)

    def recipe(self, p, ins, out):
        s = p["sides"]
        sides = (s["left"], s["right"], s["top"], s["bottom"])  # torch's order
        padding = sides[0] if len(set(sides)) == 1 else sides
        if p["mode"] != "constant":
            return Recipe(_PAD_MODULES[p["mode"]], {"padding": padding})
        if p["value"] == 0:
            return Recipe("ZeroPad2d", {"padding": padding}, positional=("padding",))
        return Recipe("ConstantPad2d", {"padding": padding, "value": p["value"]},
                      positional=("padding", "value"))

    def label(self, p):
        s = _sides(p)
        if len(set(s.values())) == 1:
            amount = str(s["top"])
        elif s["top"] == s["bottom"] and s["left"] == s["right"]:
            amount = f"{s['top']}x{s['left']}"
        else:
            amount = f"t{s['top']} b{s['bottom']} l{s['left']} r{s['right']}"
        mode = "" if p["mode"] == "constant" and p["value"] == 0 else \
            f", {p['mode']}" + (f" {p['value']:g}" if p["mode"] == "constant" else "")
        return f"PAD {amount}{mode}"


def _sides(p: dict) -> dict[str, int]:
    """Rows or columns added on each side: `pad` (H, W), overridden side by side."""
    (ph, pw) = p["pad"]
    sides = {"top": ph, "bottom": ph, "left": pw, "right": pw}
    return {side: amount if p[side] is None else p[side] for side, amount in sides.items()}
