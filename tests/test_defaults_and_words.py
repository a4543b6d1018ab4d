"""A def parameter's default may read the parameters before it, evaluated per call; a name in
an argument is the variable or parameter of that name wherever one is in scope, and a word
(`pad=same`, `mode=bilinear`) only where none is; did-you-mean never offers the name that
failed (docs/language.md, "Blocks: `def`" and "Words")."""
from __future__ import annotations

import pytest

from cnndsl import functions, layers
from cnndsl.errors import CnnDslError, CnnNameError, did_you_mean

from conftest import build, layers_of


def params(text: str) -> list[tuple]:
    return [(d["kind"], d["params"], str(d["shape"])) for d in layers_of(build(text))]


# -- defaults read the parameters before them ------------------------------------------------

def test_a_default_reads_an_earlier_parameter_as_each_call_binds_it():
    text = """input 8x8x4
def stage(c, r=1, r1=r) = CONV(c, 3, pad=r1)
stage(4) - stage(4, 0) - stage(4, r1=1) - stage(r=0, c=4)
"""
    pads = [p["pad"] for _, p, _ in params(text)]
    assert pads == [(1, 1), (0, 0), (1, 1), (0, 0)]


def test_a_parameter_d_passed_as_pad_is_the_parameter_not_a_word():
    # the report: `d`'s default `r` was read outside the call, as the bare word `r`
    text = "input 8x8x4\ndef stage(c, r=1, d=r) = CONV(c, 3, pad=d)\nstage(4) - stage(4, 0)\n"
    assert [p["pad"] for _, p, _ in params(text)] == [(1, 1), (0, 0)]
    text = "input 8x8x4\ndef stage(c, d=same) = CONV(c, 3, pad=d)\nstage(4) - stage(4, 0)\n"
    assert [p["pad"] for _, p, _ in params(text)] == [(1, 1), (0, 0)]


def test_a_default_computes_from_earlier_parameters_and_a_variable():
    text = """input 8x8x4
e = 2
def widen(c, w=c * e) = CONV(w, 1) - CONV(c, 1)
widen(4) - widen(4, 3) - widen(8)
"""
    assert [p["filters"] for _, p, _ in params(text)] == [8, 4, 3, 4, 16, 8]


def test_a_parameter_reads_a_variable_of_its_name_only_after_it():
    # `c` in the default of `k` is the parameter, not the variable c = 5
    text = "input 8x8x4\nc = 5\ndef f(c, k=c) = CONV(c, k, pad=same)\nf(4, 1) - f(3)\n"
    assert [p["kernel"] for _, p, _ in params(text)] == [(1, 1), (3, 3)]


@pytest.mark.parametrize("text, message, where", [
    ("input 8x8x4\ndef f(c, r1=r, r=1) = CONV(c, r1)\nf(4)\n",
     "the default of `r1` reads `r`, a parameter after it", (2, 13)),
    ("input 8x8x4\nr = 1\ndef f(c, r=r) = CONV(c, r)\nf(4)\n",
     "the default of `r` reads `r`, its own parameter", (3, 12)),
    # refused where it is written, called or not
    ("input 8x8x4\ndef f(c, k=k + 1) = CONV(c, k)\nRELU\n",
     "the default of `k` reads `k`, its own parameter", (2, 12)),
])
def test_a_default_cannot_read_itself_or_a_later_parameter(text, message, where):
    with pytest.raises(CnnNameError) as info:
        build(text)
    assert info.value.message == message
    assert (info.value.span.line, info.value.span.column) == where
    assert "did you mean" not in (info.value.help or "")


# -- did-you-mean never offers the name that failed ----------------------------------------

def test_did_you_mean_never_offers_the_name_itself():
    assert did_you_mean("r", ["r"]) is None
    assert did_you_mean("r", ["r", "R"]) == "R"
    assert did_you_mean("r", ["r", "r1"]) in (None, "r1")


@pytest.mark.parametrize("text, name, where", [
    # the argument is read where the call is written, which has no `k`
    ("input 8x8x4\ndef f(c, k) = CONV(c, k)\nf(4, k)\n", "k", (3, 6)),
    ("input 8x8x4\ndef f(c, k) = CONV(c, 3) * k\nf(4, k)\n", "k", (3, 6)),
    ("input 8x8x4\nCONV(4, k)\n", "k", (2, 9)),
])
def test_an_undefined_argument_is_reported_where_it_is_written(text, name, where):
    with pytest.raises(CnnNameError) as info:
        build(text)
    assert info.value.message == f"undefined variable `{name}`"
    assert (info.value.span.line, info.value.span.column) == where
    assert f"did you mean `{name}`" not in info.value.render()


# -- words: a variable or parameter of the name wins ---------------------------------------

# Every keyword that takes words, in a call that builds on an 8x8x4 input.
CALLS = {
    ("CONV", "pad"): "CONV(4, 3, {})", ("CONV", "bias"): "CONV(4, 3, {})",
    ("CONV", "round"): "CONV(4, 3, {})",
    ("DWCONV", "pad"): "DWCONV(3, {})", ("DWCONV", "bias"): "DWCONV(3, {})",
    ("DWCONV", "round"): "DWCONV(3, {})",
    ("SEPCONV", "pad"): "SEPCONV(4, 3, {})", ("SEPCONV", "bias"): "SEPCONV(4, 3, {})",
    ("SEPCONV", "round"): "SEPCONV(4, 3, {})",
    ("DECONV", "pad"): "DECONV(4, 3, s=2, {})", ("DECONV", "out_pad"): "DECONV(4, 3, s=2, {})",
    ("DECONV", "bias"): "DECONV(4, 3, {})",
    ("UPSAMPLE", "mode"): "UPSAMPLE(2, {})",
    ("UPSAMPLE", "align_corners"): "UPSAMPLE(2, mode=bilinear, {})",
    ("PAD", "pad"): "PAD({})", ("PAD", "mode"): "PAD(1, {})",
    ("FC", "bias"): "FC(3, {})",
    ("MAXPOOL", "pad"): "MAXPOOL(3, 1, {})", ("MAXPOOL", "round"): "MAXPOOL(3, 2, {})",
    ("MAXPOOL", "ceil_mode"): "MAXPOOL(3, 2, round=floor, {})",
    ("AVGPOOL", "pad"): "AVGPOOL(3, 1, {})", ("AVGPOOL", "round"): "AVGPOOL(3, 2, {})",
    ("AVGPOOL", "ceil_mode"): "AVGPOOL(3, 2, round=floor, {})",
    ("PRELU", "per_channel"): "PRELU({})",
}
WORDS = {"pad": ("same", "valid"), "bool": ("true", "false", "yes", "no", "on", "off"),
         "rounding": ("strict", "floor", "ceil"), "word": None}
MODES = {"UPSAMPLE": ("nearest", "bilinear", "bicubic"),
         "PAD": ("constant", "reflect", "replicate", "circular")}


def word_keywords():
    for kind in sorted(set(layers.REGISTRY.values()), key=lambda k: k.name):
        if not kind.callable:
            continue
        for param in kind.params:
            if param.type in WORDS:
                yield kind.name, param.name, WORDS[param.type] or MODES[kind.name]


def test_every_keyword_that_takes_words_is_tested():
    assert {(k, p) for k, p, _ in word_keywords()} == set(CALLS)


def outcome(text: str):
    try:
        return params(text)
    except CnnDslError as exc:
        return exc.message


CASES = [(k, p, w, words) for k, p, words in word_keywords() for w in words]


@pytest.mark.parametrize("kind, param, word, words", CASES,
                         ids=[f"{k}-{p}-{w}" for k, p, w, _ in CASES])
def test_a_parameter_named_otherwise_passes_the_word_through(kind, param, word, words):
    call = CALLS[kind, param]
    direct = outcome(f"input 8x8x4\n{call.format(f'{param}={word}')}\n")
    through = outcome(f"input 8x8x4\ndef f(x) = {call.format(f'{param}=x')}\nf({word})\n")
    assert through == direct


@pytest.mark.parametrize("kind, param, word, words", CASES,
                         ids=[f"{k}-{p}-{w}" for k, p, w, _ in CASES])
def test_a_parameter_or_variable_named_like_a_word_wins(kind, param, word, words):
    call = CALLS[kind, param]
    other = next(w for w in reversed(words) if w != word)
    wanted = outcome(f"input 8x8x4\n{call.format(f'{param}={other}')}\n")
    # a parameter `same` bound to `valid` is read as valid in the body
    spec = f"input 8x8x4\ndef f({word}={other}) = {call.format(f'{param}={word}')}\nf\n"
    assert outcome(spec) == wanted
    # so is a variable `same = valid` (`floor` and `ceil` are functions: no variable's name)
    if functions.lookup(word):
        return
    spec = f"input 8x8x4\n{word} = {other}\n{call.format(f'{param}={word}')}\n"
    assert outcome(spec) == wanted


def test_a_variable_named_like_a_word_sets_the_rounding_setting():
    text = "input 7x7x4\nstrict = ceil\nrounding = strict\nMAXPOOL(2)\n"
    assert params(text)[0][2] == "4x4x4"


def test_a_name_that_is_neither_a_word_nor_a_variable_says_so_where_it_is_written():
    with pytest.raises(CnnDslError) as info:
        build("input 8x8x4\ndef f(c, d) = CONV(c, 3, pad=d)\nf(4, dd)\n")
    exc = info.value
    assert exc.message == "CONV: `pad` must be a number, HxW, `same` or `valid`, not `dd`"
    assert any("3:6" in note for note in exc.notes)
    assert "no variable or parameter `dd`" in exc.help
    with pytest.raises(CnnDslError) as info:
        build("input 8x8x4\ndef f(c, m) = UPSAMPLE(2, mode=m)\nf(4, bilinar)\n")
    assert info.value.help == "did you mean `bilinear`?"


# -- the formatter and the language server read a default as the expander does -------------

def test_fmt_keeps_an_earlier_parameter_in_a_default_as_written():
    from cnndsl.fmt import format_text
    text = "input 8x8x4\ndef f(c, relu=1, r1=relu * 2) = CONV(c, 3, pad=r1 / 2)\nf(4)\n"
    assert format_text(text) == text  # not `RELU * 2`, which would be the layer
    assert params(format_text(text)) == params(text)


def test_the_language_server_resolves_a_default_to_the_parameter_before_it():
    from cnndsl import lsp
    text = "input 8x8x4\nr = 2\ndef f(c, r=1, r1=r) = CONV(c, 3, pad=r1)\nf(4)\n"
    a = lsp.analyze(text)
    line = text.split("\n")[2]
    [definition] = lsp.definition(a, 2, line.index("r1=r") + 3)
    assert definition[:2] == (2, line.index("r=1"))
