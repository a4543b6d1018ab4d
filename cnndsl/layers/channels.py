"""SPLIT and SHUFFLE: ShuffleNet v2's channel split and channel shuffle."""
from __future__ import annotations

from ..errors import CnnArgumentError, CnnShapeError
from ..shapes import Shape
from .base import REQUIRED, LayerKind, Param, Recipe, register, volume_in


@register
class ChannelSplit(LayerKind):
    name = "SPLIT"
    aliases = ("CHANNELSPLIT", "CHANNEL_SPLIT", "CHUNK")
    family = "reshape"
    spellings = ("slice", "narrow")
    doc = ("`SPLIT(part, of=2)`: the part-th of `of` equal groups of channels (1-based), as "
           "torch's `x.chunk(of, dim=1)[part - 1]`; ShuffleNet v2's channel split is "
           "`concat(SPLIT(1), SPLIT(2) - ...)`.")
    params = (Param("part", "count", REQUIRED, ("index",)),
              Param("of", "count", 2, ("parts", "chunks")))

    def check_bound(self, values, span):
        if values["part"] > values["of"]:
            raise CnnArgumentError(f"SPLIT: part {values['part']} of {values['of']} does not "
                                   "exist", span, help=f"parts are 1 to {values['of']}")

    def infer(self, p, ins, ctx, site):
        shape = ins[0]
        if shape.c % p["of"]:
            raise CnnShapeError(f"SPLIT: {shape.c} channels do not split into {p['of']} equal "
                                "parts", site.span, help="split a number of channels that "
                                f"{p['of']} divides")
        c = shape.c // p["of"]
        return Shape.volume(shape.h, shape.w, c) if shape.is_volume else Shape.vector(c)

    def recipe(self, p, ins, out):
        return Recipe("ChannelSplit", dict(parts=p["of"], index=p["part"] - 1), custom=True,
                      positional=("parts", "index"), aliases_input=True)

    def label(self, p):
        return f"SPLIT {p['part']}/{p['of']}"

    def explain(self, p, ins, out, n_params):
        lo = (p["part"] - 1) * out.c
        return [f"channels {lo + 1} to {lo + out.c} of {ins[0].c}; no parameters"]


@register
class ChannelShuffle(LayerKind):
    name = "SHUFFLE"
    aliases = ("CHANNELSHUFFLE", "CHANNEL_SHUFFLE")
    family = "reshape"
    spellings = ("permute", "interleave")
    doc = ("`SHUFFLE(groups=2)`: ShuffleNet's channel shuffle; the channels, seen as a groups x "
           "(C/groups) table, are read column by column.")
    params = (Param("groups", "count", 2, ("g",)),)

    def infer(self, p, ins, ctx, site):
        shape = volume_in(self.name, ins[0], site)
        if shape.c % p["groups"]:
            raise CnnShapeError(f"SHUFFLE: {shape.c} channels do not form {p['groups']} equal "
                                "groups", site.span, help="shuffle a number of channels that "
                                "the groups divide")
        return shape

    def recipe(self, p, ins, out):
        # with 1 group, or one channel a group, the shuffle is the identity and `.contiguous()`
        # hands back its input's storage: no in-place layer may follow it
        return Recipe("ChannelShuffle", dict(groups=p["groups"]), custom=True,
                      positional=("groups",), aliases_input=True)

    def label(self, p):
        return f"SHUFFLE {p['groups']}"

    def explain(self, p, ins, out, n_params):
        g = p["groups"]
        return [f"{out.c} channels as {g} groups of {out.c // g}, interleaved; no parameters"]
