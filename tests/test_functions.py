"""The number functions (cnndsl/functions.py) and defs whose body is a number."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from torchvision.models._utils import _make_divisible

from cnndsl.errors import CnnArgumentError, CnnDslError, CnnNameError
from cnndsl.fmt import format_text

from conftest import build, layers_of


def filters(spec: str) -> list[int]:
    return [d["shape"].c for d in layers_of(build(spec)) if d["kind"] == "CONV"]


@given(st.floats(0.5, 5000, allow_nan=False), st.sampled_from([1, 2, 4, 8, 16, 32]))
def test_make_divisible_is_torchvisions(v, divisor):
    spec = f"input 4x4x3\nCONV(make_divisible({v!r}, {divisor}), 1)"
    assert filters(spec) == [_make_divisible(v, divisor)]


@pytest.mark.parametrize("v, expected", [(19.2, 24), (32 * 0.75, 24), (1280 * 1.4, 1792),
                                         (3.0, 8)])
def test_make_divisible_on_mobilenet_widths(v, expected):
    assert _make_divisible(v, 8) == expected  # the oracle says so too
    assert filters(f"input 4x4x3\nCONV(make_divisible({v}), 1)") == [expected]


def test_make_divisible_takes_keywords_and_a_floor():
    assert filters("input 4x4x3\nCONV(make_divisible(3, divisor=4, min_value=12), 1)") == [
        _make_divisible(3, 4, 12)]


@given(st.floats(0.5, 1000, allow_nan=False))
def test_round_floor_ceil_are_pythons(x):
    spec = f"input 4x4x3\nCONV(round({x!r}), 1) - CONV(floor({x!r}), 1) - CONV(ceil({x!r}), 1)"
    expected = [round(x), math.floor(x), math.ceil(x)]
    if min(expected) > 0:
        assert filters(spec) == expected


def test_round_takes_halves_to_even_as_python_does():
    assert filters("input 4x4x3\nCONV(round(2.5), 1) - CONV(round(3.5), 1)") == [2, 4]


def test_min_and_max_take_any_number_of_numbers():
    assert filters("input 4x4x3\nN = 7\nCONV(max(3, N, 5), 1) - CONV(min(N * 2, 9), 1)") == [7, 9]
    # one number is its own min and max (Python's min(1) would try to iterate it)
    assert filters("input 4x4x3\nCONV(min(3), 1) - CONV(max(2), 1)") == [3, 2]


def test_a_function_gives_a_repeat_count():
    graph = build("input 8x8x3\nN = 5\n(CONV(4, 3, pad=1) - RELU) * round(N / 2)")
    assert sum(1 for d in layers_of(graph) if d["kind"] == "CONV") == 2


def test_a_def_whose_body_is_a_number_is_a_function():
    spec = ("input 8x8x3\nalpha = 0.5\ndef ch(c) = make_divisible(c * alpha)\ndef two = 2\n"
            "CONV(ch(64), 3, pad=1) * two - CONV(ch(c=16), 1)")
    assert filters(spec) == [32, 32, 8]


def test_a_def_may_be_a_number_in_one_call_and_layers_in_another():
    spec = "input 8x8x3\ndef same(x) = x\nCONV(same(4), 3) * same(2) - same(RELU)"
    kinds = [d["kind"] for d in layers_of(build(spec))]
    assert kinds == ["CONV", "CONV", "RELU"]


@pytest.mark.parametrize("spec, error, message", [
    ("CONV(16, 3) - round(2.5)", CnnArgumentError, "`round(...)` is a number, not a layer"),
    ("CONV(rnd(2.5), 3)", CnnNameError, "unknown function `rnd`"),
    ("CONV(round(1, 2), 3)", CnnArgumentError, "round takes at most 1 argument; got 2"),
    ("CONV(round(y=1), 3)", CnnArgumentError, "round has no parameter `y`"),
    ("CONV(max(), 3)", CnnArgumentError, "max needs at least one number"),
    ("CONV(floor(RELU), 3)", CnnArgumentError, "expected a number"),
    ("CONV(make_divisible(20, 0), 3)", CnnArgumentError, "divisor must be a positive whole"),
    ("round = 3\nCONV(round, 3)", CnnNameError, "`round` is a built-in name"),
    ("def max(a, b) = a\nCONV(4, 3)", CnnNameError, "`max` is a built-in name"),
    ("def half(c) = c / 2\nFC(half)", CnnArgumentError, "half needs `c`"),
    ("def f(n) = f(n) + 1\nCONV(f(2), 3)", CnnDslError, "`f` refers to itself"),
    ("CONV(RELU(2), 3)", CnnArgumentError, "expected a number here, but layers cannot be one"),
    ("def ch(c) = c / 2\nCONV(4, 3) - ch(8)", CnnArgumentError, "`ch` gives a number, not layers"),
    ("def three = 3\nCONV(4, 3) - three", CnnArgumentError, "`three` gives a number, not layers"),
])
def test_mistakes_are_located_errors(spec, error, message):
    with pytest.raises(error) as info:
        build("input 8x8x3\n" + spec)
    assert message in info.value.message
    assert info.value.span is not None


def test_define_cannot_replace_a_function():
    with pytest.raises(CnnNameError) as info:
        build("input 8x8x3\nCONV(4, 3)", max=3)
    assert "`max` is a function, not a variable" in info.value.message


def test_fmt_keeps_arithmetic_between_function_calls_and_lowers_their_names():
    # `+` between two numbers is a sum: it must never become the layer separator `-`.
    text = "input 8x8x3\nN = 2\nCONV(ROUND(N) + Max(1, N), 3)\n"
    assert format_text(text) == "input 8x8x3\nN = 2\nCONV(round(N) + max(1, N), 3)\n"
    assert filters(format_text(text)) == filters(text) == [4]


# -- value mode against Python: random arithmetic with the functions ------------------------------

def _divide(a, b):
    # the language's `/`: a whole number when it divides exactly (docs/language.md)
    return a // b if isinstance(a, int) and isinstance(b, int) and a % b == 0 else a / b


LEAVES = st.integers(1, 12).map(lambda n: (str(n), n))


def _combine(children):
    pair = st.tuples(children, children)
    return st.one_of(
        pair.map(lambda p: (f"({p[0][0]} + {p[1][0]})", p[0][1] + p[1][1])),
        pair.map(lambda p: (f"({p[0][0]} - {p[1][0]})", p[0][1] - p[1][1])),
        pair.map(lambda p: (f"({p[0][0]} * {p[1][0]})", p[0][1] * p[1][1])),
        pair.filter(lambda p: p[1][1] != 0).map(
            lambda p: (f"({p[0][0]} / {p[1][0]})", _divide(p[0][1], p[1][1]))),
        children.map(lambda c: (f"round({c[0]})", int(round(c[1])))),
        children.map(lambda c: (f"floor({c[0]})", math.floor(c[1]))),
        children.map(lambda c: (f"ceil({c[0]})", math.ceil(c[1]))),
        pair.map(lambda p: (f"min({p[0][0]}, {p[1][0]})", min(p[0][1], p[1][1]))),
        pair.map(lambda p: (f"max({p[0][0]}, {p[1][0]})", max(p[0][1], p[1][1]))),
        children.map(lambda c: (f"max({c[0]})", c[1])),
        children.map(lambda c: (f"min({c[0]})", c[1])),
        children.filter(lambda c: c[1] > 0).map(
            lambda c: (f"make_divisible({c[0]})", _make_divisible(c[1], 8))),
    )


@given(st.recursive(LEAVES, _combine, max_leaves=6))  # below 12**6: no limit errors
def test_numbers_evaluate_as_python_computes_them(case):
    from cnndsl.parser import parse
    from cnndsl.values import Evaluator, Scope

    text, expected = case
    program = parse(f"input 4x4x1\nx = {text}\nRELU")
    assign = program.statements[1]
    got = Evaluator(program).value(assign.value, Scope({}))
    assert got == pytest.approx(expected, rel=1e-12) and type(got) is type(expected), text
