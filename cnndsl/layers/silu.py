"""SILU (Swish): x * sigmoid(x), the activation of EfficientNet and MobileNet v3."""
from __future__ import annotations

from .activation import Activation
from .base import register


@register
class SiLU(Activation):
    name = "SILU"
    aliases = ("SWISH",)
    doc = "x * sigmoid(x) (Swish with beta = 1; EfficientNet, MobileNet v3)."
    torch_name = "SiLU"
    formula = "x * sigmoid(x)"

    def torch_kwargs(self, p):
        return {"inplace": True}
