"""The graph's joins and its entry: ADD (residual sums), CONCAT (inception) and INPUT."""
from __future__ import annotations

from ..errors import CnnShapeError
from ..ir import SHORTCUT
from ..shapes import Shape
from .base import LayerKind, Param, Recipe, register


@register
class Input(LayerKind):
    name = "INPUT"
    family = "input"
    callable = False
    min_inputs = max_inputs = 0
    doc = "The network's input volume (from the `input` statement or --input)."

    def infer(self, p, ins, ctx, site):
        return ctx.input

    def recipe(self, p, ins, out):
        return Recipe()

    def label(self, p):
        return "INPUT"

    def inputs_per_neuron(self, p, ins, out, n_params):
        return 0


def _projection_stride(short: Shape, body: Shape) -> tuple[int, int] | None:
    """The smallest stride whose 1x1, floor-rounded convolution maps short's H x W to body's
    ((H - 1) // s + 1 = h: 56 -> 28 with stride 2, and 9 -> 5 too, as PyTorch computes it)."""
    strides = []
    for n, m in ((short.h, body.h), (short.w, body.w)):
        fits = [s for s in range(1, n + 1) if (n - 1) // s + 1 == m]
        if not fits:
            return None
        strides.append(fits[0])
    return tuple(strides)


@register
class Add(LayerKind):
    name = "ADD"
    family = "merge"
    callable = False
    min_inputs, max_inputs = 2, None
    merge_builtin = "add"
    # Set by residual(...), never written by users: whether an identity shortcut of another
    # shape is projected (an explicit shortcut is not), and with conv1x1 + BN (the body
    # normalises, as torchvision's downsample) or conv1x1 + bias.
    params = (Param("project", "bool", False), Param("project_bn", "bool", False))
    doc = "Elementwise sum of branches of equal shape (`add(...)`, `residual(...)`)."
    draw = {"shape": "circle", "label": "+", "fontsize": "14", "width": "0.3",
            "height": "0.3", "fixedsize": "true"}

    def insertions(self, p, ins, ctx, site, roles):
        # residual(...): a shortcut whose shape differs from the body's gets a 1x1 projection,
        # when the shortcut is the implicit identity; a written one must match the body.
        idx = roles.index(SHORTCUT) if SHORTCUT in roles else None
        if idx is None or ins[0] == ins[idx]:
            return []
        if not p.get("project"):
            raise CnnShapeError(
                f"residual: the shortcut gives {ins[idx]} but the body {ins[0]}; a written "
                "shortcut must end in the body's shape", site.span,
                help="make the shortcut end in the body's shape, or leave it out: an identity "
                     "shortcut gets the 1x1 projection by itself")
        body, short = ins[0], ins[idx]
        if not (body.is_volume and short.is_volume):
            return []  # infer() reports the mismatch
        stride = _projection_stride(short, body)
        if stride is None:
            raise CnnShapeError(
                f"residual: no 1x1 projection takes the shortcut {short} to the body's {body}",
                site.span, help="the body must keep or shrink the spatial size; or give the "
                                "shortcut explicitly: residual(body, shortcut)")
        proj = [("CONV", {"filters": body.c, "kernel": (1, 1), "stride": stride,
                          "pad": (0, 0), "dilation": None, "groups": 1,
                          "bias": not p.get("project_bn"), "round": "floor"})]
        if p.get("project_bn"):
            proj.append(("BN", {"eps": 1e-5, "momentum": 0.1}))
        return [(idx, proj)]

    def infer(self, p, ins, ctx, site):
        first = ins[0]
        for i, other in enumerate(ins[1:], 2):
            if other != first:
                raise CnnShapeError(
                    f"add: branch {i} has shape {other} but branch 1 has {first}; "
                    "ADD needs equal shapes", site.span,
                    help="make the branches end in the same volume, or use concat(...)")
        return first

    def recipe(self, p, ins, out):
        return Recipe(function="add")

    def inputs_per_neuron(self, p, ins, out, n_params):
        return len(ins)

    def explain(self, p, ins, out, n_params):
        return [f"the sum of {len(ins)} volumes of {out}, value by value; no parameters"]


@register
class Concat(LayerKind):
    name = "CONCAT"
    family = "merge"
    callable = False
    min_inputs, max_inputs = 2, None
    merge_builtin = "concat"
    doc = "Depthwise concatenation of branches with equal H and W (GoogLeNet's inception)."

    def infer(self, p, ins, ctx, site):
        first = ins[0]
        for i, other in enumerate(ins[1:], 2):
            if first.is_volume != other.is_volume or (
                    first.is_volume and (first.h, first.w) != (other.h, other.w)):
                raise CnnShapeError(
                    f"concat: branch {i} is {other} but branch 1 is {first}; CONCAT needs "
                    "equal height and width", site.span,
                    help="give the branches the same stride and size-preserving padding")
        channels = sum(s.c for s in ins)
        return Shape.volume(first.h, first.w, channels) if first.is_volume else \
            Shape.vector(channels)

    def explain(self, p, ins, out, n_params):
        return [f"channels {' + '.join(str(s.c) for s in ins)} = {out.c}, stacked in depth"]

    def recipe(self, p, ins, out):
        return Recipe(function="cat", kwargs={"dim": 1})
