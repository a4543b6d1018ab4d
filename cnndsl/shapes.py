"""Volumes and the lecture's sizing formula W2 = (W1 - F + 2P)/S + 1, with its rounding modes."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import CnnShapeError, Span

ROUNDING_MODES = ("strict", "floor", "ceil")


@dataclass(frozen=True)
class Shape:
    """A volume H x W x C (as the notes write it) or a flat vector of N values."""

    c: int
    h: int | None = None
    w: int | None = None

    @classmethod
    def volume(cls, h: int, w: int, c: int) -> "Shape":
        return cls(c, h, w)

    @classmethod
    def vector(cls, n: int) -> "Shape":
        return cls(n)

    @property
    def is_volume(self) -> bool:
        return self.h is not None

    @property
    def numel(self) -> int:
        return self.c * (self.h or 1) * (self.w or 1)

    def __str__(self) -> str:
        return f"{self.h}x{self.w}x{self.c}" if self.is_volume else str(self.c)

    def as_list(self) -> list[int]:
        """PyTorch order: [C, H, W] or [N]."""
        return [self.c, self.h, self.w] if self.is_volume else [self.c]


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def _formula(n, k, s, p, d) -> str:
    kk = k if d == 1 else f"({d}*({k} - 1) + 1)"  # the dilated window, subtracted whole
    return f"({n} - {kk} + 2*{p})/{s} + 1"


def out_size(n: int, k: int, s: int, p: int, d: int = 1, *, rounding: str = "strict",
             what: str = "layer", axis: str = "", span: Span | None = None,
             pool: bool = False, round_hint: str = "") -> int:
    """One spatial dimension after a window of size k, stride s, padding p, dilation d.

    strict: the window must fit exactly (the lecture's "stride 3 doesn't fit");
    floor: PyTorch's rule; ceil: PyTorch's ceil_mode (pooling), whose last window must start
    inside the input or its left padding.
    """
    eff = d * (k - 1) + 1
    padded = n + 2 * p
    where = f" ({axis})" if axis else ""
    if pool and rounding == "ceil":
        # PyTorch's ceil_mode: round up, then drop a last window that would start in the right
        # padding. A window may overhang a small input (MAXPOOL(4, round=ceil) on 3x3 is 1x1).
        out = (padded - eff + s - 1) // s + 1
        if (out - 1) * s >= n + p:
            out -= 1
        if out >= 1:
            return out
    if eff > padded:
        window = f"the {eff}x{eff} window" if not axis else f"the window, {eff} along the {axis},"
        raise CnnShapeError(
            f"{what}: {window} is larger than its padded input{where}: "
            f"{n} + 2*{p} = {padded}",
            span, help=f"use a kernel of at most {padded}, or pad the input "
                       f"(pad={math.ceil((eff - n) / 2)})")
    exact = (padded - eff) / s + 1
    if (padded - eff) % s == 0:
        return (padded - eff) // s + 1
    if rounding == "floor":
        return (padded - eff) // s + 1
    if rounding == "ceil" and not pool:
        raise CnnShapeError(
            f"{what}: a convolution cannot round up{where}: {_formula(n, k, s, p, d)} = "
            f"{_fmt(exact)}, and PyTorch's convolutions always round down",
            span, help=_fit_help(n, eff, s, p, pool, "round=floor").replace(
                "round=floor (PyTorch's rule", "round=floor on this layer (PyTorch's rule")
            + "; ceil rounding is for pooling")
    article = "an" if str(k).startswith("8") or k in (11, 18) else "a"
    # Square windows on square inputs say `3x3 window`; one axis of another says its own size.
    window = f"{article} {k}x{k} window" if not axis else f"a window of {k}"
    extent = "high" if axis == "height" else "wide"
    raise CnnShapeError(
        f"{what}: {window} with stride {s} and pad {p} doesn't fit the {n}-{extent} "
        f"input{where}: {_formula(n, k, s, p, d)} = {_fmt(exact)} is not an integer",
        span, help=_fit_help(n, eff, s, p, pool, round_hint))


def explain_size(n: int, k: int, s: int, p: int, d: int, out: int) -> str:
    """The lecture's formula for one axis, worked out: `(32 - 5 + 2*0)/1 + 1 = 28`, with the
    rounding when the window does not fit exactly (`= 13.50, rounded down to 13`)."""
    exact = (n + 2 * p - (d * (k - 1) + 1)) / s + 1
    text = f"{_formula(n, k, s, p, d)} = {_fmt(exact)}"
    if exact != out:
        text += f", rounded {'down' if out < exact else 'up'} to {out}"
    return text


def _fit_help(n: int, eff: int, s: int, p: int, pool: bool, round_hint: str) -> str:
    ideas = []
    pads = [q for q in range(0, eff) if (n + 2 * q - eff) % s == 0 and n + 2 * q >= eff]
    if pads and (not pool or pads[0] <= eff // 2):
        ideas.append(f"pad={pads[0]}")
    # Only neighbouring strides: "stride 1" always fits and is never what the author meant.
    strides = [t for t in (s - 1, s + 1) if t >= 2 and (n + 2 * p - eff) % t == 0]
    if strides:
        ideas.append(" or ".join(f"stride {t}" for t in strides))
    floor = (n + 2 * p - eff) // s + 1
    ideas.append(f"{round_hint or 'round=floor'} (PyTorch's rule: {floor})")
    return "use " + ", or ".join(ideas)
