"""RESHAPE (UNFLATTEN): a vector, or a volume read in PyTorch's C, H, W order, laid out again
as a volume HxWxC: FLATTEN's inverse, the way from an autoencoder's bottleneck back to maps."""
from __future__ import annotations

import math

from ..errors import CnnArgumentError, CnnShapeError
from ..limits import MAX_AXIS
from ..shapes import Shape
from .base import REQUIRED, LayerKind, Param, Recipe, Symbol, _undefined, register


@register
class Reshape(LayerKind):
    name = "RESHAPE"
    aliases = ("UNFLATTEN", "VIEW")
    family = "reshape"
    doc = ("Lays the values out again as a volume `shape` HxWxC (HxW for one channel), in "
           "PyTorch's order (channel by channel, row by row): FLATTEN's inverse. "
           "H*W*C must equal the input's number of values.")
    params = (Param("shape", "volume", REQUIRED, ("size", "unflattened_size")),)

    def coerce(self, param, value, span):
        if isinstance(value, Symbol):
            _undefined(value, span)
        dims = value if isinstance(value, tuple) else (value,)
        if len(dims) not in (2, 3) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in dims):
            shown = "x".join(map(str, dims)) if isinstance(value, tuple) else repr(value)
            raise CnnArgumentError(
                f"{self.name}: `shape` must be a volume HxWxC, not {shown}", span,
                help="RESHAPE(7x7x64) makes a 7x7 volume of 64 channels; FLATTEN makes a "
                     "vector")
        if max(dims) > MAX_AXIS:
            raise CnnArgumentError(f"{self.name}: the shape {'x'.join(map(str, dims))} is more "
                                   f"than PyTorch can size ({MAX_AXIS:,} on an axis)", span)
        return dims if len(dims) == 3 else (*dims, 1)

    def infer(self, p, ins, ctx, site):
        h, w, c = p["shape"]
        have = ins[0]
        if h * w * c != have.numel:
            what = f"its input {have} has" if have.is_volume else "its input has"
            raise CnnShapeError(
                f"RESHAPE: {h}x{w}x{c} holds {h}*{w}*{c} = {h * w * c:,} values, but {what} "
                f"{have.numel:,}", site.span,
                help="the sizes must multiply out to the input's values: "
                     + _fits(have.numel, h, w, c))
        return Shape.volume(h, w, c)

    def spelling_notes(self, written):
        if written == "UNFLATTEN":
            return [("the shape is HxWxC here, as `input` writes it: PyTorch's "
                    "Unflatten(1, (64, 7, 7)) is UNFLATTEN(7x7x64)")]
        return []

    def explain(self, p, ins, out, n_params):
        have = ins[0]
        source = f"{have} volume" if have.is_volume else "vector"
        return [(f"{out.h}*{out.w}*{out.c} = {out.numel:,} values of the {source}, laid out as "
                f"{out.c} maps of {out.h}x{out.w}; no parameters")]

    def recipe(self, p, ins, out):
        return Recipe("Unflatten", {"dim": 1, "unflattened_size": (out.c, out.h, out.w)},
                      flatten=ins[0].is_volume, positional=("dim", "unflattened_size"),
                      aliases_input=True)

    def label(self, p):
        return "RESHAPE " + "x".join(map(str, p["shape"]))


def _fits(n: int, h: int, w: int, c: int) -> str:
    """Shapes that would multiply out: the channels for the given H x W, or H x W for the
    given channels (as square as the values allow)."""
    ideas = []
    if n % (h * w) == 0:
        ideas.append(f"{h}x{w}x{n // (h * w)}")
    if n % c == 0:
        area = n // c
        # bounded: the values may number 10^12 or more (issue 17's slow inputs)
        rows = next(d for d in range(min(math.isqrt(area), 100_000), 0, -1) if area % d == 0)
        if (rows, area // rows) != (h, w):
            ideas.append(f"{rows}x{area // rows}x{c}")
    return f"{n:,} values make {' or '.join(ideas)}" if ideas else \
        f"{n:,} values must be H*W*C"
