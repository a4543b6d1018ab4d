"""The few torch modules cnndsl's recipes name that torch.nn lacks (copied into generated code)."""
from __future__ import annotations

import torch
from torch import nn


class PositionBias(nn.Module):
    """A learned bias of the input's own shape (C, H, W): one per position and channel."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


class Crop(nn.Module):
    """A window of each map: `height` rows from row `top`, `width` columns from `left`."""

    def __init__(self, top: int, left: int, height: int, width: int) -> None:
        super().__init__()
        self.top, self.left, self.height, self.width = top, left, height, width

    def extra_repr(self) -> str:
        return f"top={self.top}, left={self.left}, height={self.height}, width={self.width}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.top:self.top + self.height, self.left:self.left + self.width]
