"""MISH: x * tanh(softplus(x)) (Misra 2019)."""
from __future__ import annotations

from .activation import Activation
from .base import register


@register
class Mish(Activation):
    name = "MISH"
    doc = "x * tanh(ln(1 + e^x)) (Misra 2019; YOLOv4)."
    torch_name = "Mish"
    formula = "x * tanh(ln(1 + e^x))"

    def torch_kwargs(self, p):
        return {"inplace": True}
