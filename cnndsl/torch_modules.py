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
