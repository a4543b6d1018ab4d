"""HARDSWISH and HARDSIGMOID: MobileNet v3's piecewise-linear activations."""
from __future__ import annotations

from .activation import Activation
from .base import register


@register
class Hardswish(Activation):
    name = "HARDSWISH"
    aliases = ("HSWISH", "H_SWISH", "HARD_SWISH")
    doc = "x * relu6(x + 3) / 6 (MobileNet v3's h-swish)."
    torch_name = "Hardswish"
    formula = "x * min(max(x + 3, 0), 6) / 6"


@register
class Hardsigmoid(Activation):
    name = "HARDSIGMOID"
    aliases = ("HSIGMOID", "H_SIGMOID", "HARD_SIGMOID")
    doc = "relu6(x + 3) / 6 (MobileNet v3's h-sigmoid, its squeeze-and-excitation gate)."
    torch_name = "Hardsigmoid"
    formula = "min(max(x + 3, 0), 6) / 6"
