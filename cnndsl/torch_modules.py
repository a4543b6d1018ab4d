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


class ChannelSplit(nn.Module):
    """One of `parts` equal groups of channels: torchvision's ShuffleNet v2 `x.chunk(2, dim=1)`."""

    def __init__(self, parts: int, index: int) -> None:
        super().__init__()
        self.parts, self.index = parts, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.chunk(self.parts, dim=1)[self.index]


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle, as torchvision's `channel_shuffle`."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).contiguous()
        return x.view(n, c, h, w)


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of each position of an N x C x H x W tensor (ConvNeXt's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class LayerScale(nn.Module):
    """A learned factor per channel (ConvNeXt's layer_scale, C x 1 x 1 on volumes)."""

    def __init__(self, channels: int, init: float = 1e-6, volume: bool = True) -> None:
        super().__init__()
        shape = (channels, 1, 1) if volume else (channels,)
        self.scale = nn.Parameter(torch.full(shape, float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class StochasticDepth(nn.Module):
    """torchvision's StochasticDepth(p, mode="row"): in training, each sample's input is
    dropped with probability p and the rest scaled by 1 / (1 - p); identity in eval."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        noise = torch.empty([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype, device=x.device)
        noise = noise.bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise


class Outputs(nn.Module):
    """A network's several outputs: all of them as a named tuple in training mode, the first
    (the main one) alone in eval mode, as torchvision's GoogLeNet and Inception v3 return."""

    def __init__(self, class_name: str, names: tuple[str, ...]) -> None:
        super().__init__()
        from collections import namedtuple

        self.names = tuple(names)
        self.tuple_type = namedtuple(class_name, self.names)

    def extra_repr(self) -> str:
        return ", ".join(self.names)

    def forward(self, *outputs: torch.Tensor):
        if self.training:
            return self.tuple_type(*outputs)
        return outputs[0]
