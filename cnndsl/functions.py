"""The language's number functions (round, floor, ceil, min, max, make_divisible): one place each.

They go wherever a number goes (`CONV(make_divisible(32 * alpha))`, `(CONV - RELU) *
round(n / 2)`) and never stand for layers. Their names are reserved as layer names are.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from .errors import CnnArgumentError, Span

_NO_DEFAULT = object()


@dataclass(frozen=True)
class Function:
    name: str
    params: tuple[tuple[str, object], ...]  # (name, default); a default of None: optional
    apply: Callable[..., int | float]
    doc: str
    variadic: bool = False  # min and max take one or more numbers

    def signature(self) -> str:
        if self.variadic:
            return f"{self.name}(a, b, ...)"
        shown = [p if d is _NO_DEFAULT else f"{p}={d}" for p, d in self.params]
        return f"{self.name}({', '.join(shown)})"

    def bind(self, args: list[tuple[float, Span]], kwargs: list[tuple[str, float, Span]],
             span: Span) -> list:
        """Positional and keyword numbers -> the arguments of `apply`, in order."""
        if self.variadic:
            if kwargs:
                raise CnnArgumentError(f"{self.name} takes numbers only, no keywords",
                                       kwargs[0][2], help=self.signature())
            if not args:
                raise CnnArgumentError(f"{self.name} needs at least one number", span,
                                       help=self.signature())
            return [value for value, _ in args]
        names = [p for p, _ in self.params]
        if len(args) > len(names):
            raise CnnArgumentError(
                f"{self.name} takes at most {len(names)} argument{'s' * (len(names) != 1)}; "
                f"got {len(args)}", args[len(names)][1], help=self.signature())
        values = {name: value for name, (value, _) in zip(names, args)}
        for key, value, kspan in kwargs:
            if key not in names:
                raise CnnArgumentError(f"{self.name} has no parameter `{key}`", kspan,
                                       help=self.signature())
            if key in values:
                raise CnnArgumentError(f"{self.name}: `{key}` is given twice", kspan,
                                       help=self.signature())
            values[key] = value
        for name, default in self.params:
            if name not in values:
                if default is _NO_DEFAULT:
                    raise CnnArgumentError(f"{self.name} needs `{name}`", span,
                                           help=self.signature())
                values[name] = default
        return [values[name] for name in names]


def make_divisible(v, divisor=8, min_value=None) -> int:
    """torchvision's `_make_divisible` (MobileNet v2/v3, EfficientNet): the multiple of
    `divisor` nearest to v, at least `min_value` (default: divisor), and never more than
    10% below v."""
    if divisor <= 0 or divisor != int(divisor):
        raise ValueError("the divisor must be a positive whole number")
    divisor = int(divisor)
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return int(new_v)


FUNCTIONS: dict[str, Function] = {f.name: f for f in (
    Function("round", (("x", _NO_DEFAULT),), lambda x: int(round(x)),
             "the nearest whole number; halves go to the even one, as Python's and "
             "torchvision's round do (round(2.5) = 2, round(3.5) = 4)"),
    Function("floor", (("x", _NO_DEFAULT),), lambda x: int(math.floor(x)),
             "the whole number at or below x (Keras' int(filters * alpha))"),
    Function("ceil", (("x", _NO_DEFAULT),), lambda x: int(math.ceil(x)),
             "the whole number at or above x"),
    Function("min", (), lambda *xs: min(xs), "the smallest of its numbers", variadic=True),
    Function("max", (), lambda *xs: max(xs), "the largest of its numbers", variadic=True),
    Function("make_divisible", (("v", _NO_DEFAULT), ("divisor", 8), ("min_value", None)),
             make_divisible,
             "the multiple of divisor nearest to v, at least divisor and never 10% below v: "
             "torchvision's channel rounding for width multipliers"),
)}


def lookup(name: str) -> Function | None:
    """The function a name calls, ignoring case (as layer names do), or None."""
    return FUNCTIONS.get(name.lower())
