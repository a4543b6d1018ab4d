"""Issue 13's constructs against torch and torchvision: the new activations, gate(...),
SPLIT/SHUFFLE, LAYERNORM, LAYERSCALE, DROPPATH, in.c, comparisons and if(...), defs named as
layers, and the did-you-mean for other frameworks' words."""
from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from conftest import build

import cnndsl
from cnndsl.errors import (
    CnnArgumentError,
    CnnDslError,
    CnnNameError,
    CnnShapeError,
    ShadowedLayerWarning,
)


def run(text: str, x: torch.Tensor, train: bool = False):
    model = cnndsl.compile(text, seed=0).train(train)
    with torch.no_grad():
        return model, model(x)


@pytest.mark.parametrize("name, reference", [
    ("HARDSWISH", F.hardswish), ("HSWISH", F.hardswish), ("HARDSIGMOID", F.hardsigmoid),
    ("MISH", F.mish), ("PRELU", lambda x: F.prelu(x, torch.tensor([0.25])))])
def test_activations_compute_torchs(name, reference):
    x = torch.randn(2, 3, 4, 4) * 4
    _, y = run(f"input 4x4x3\n{name}", x)
    assert torch.equal(y, reference(x))


def test_prelu_per_channel_has_one_slope_per_channel():
    graph = build("input 4x4x5\nPRELU(per_channel=true, init=0.1) - PRELU")
    assert graph.graph["totals"]["params"] == 5 + 1
    model, y = run("input 4x4x5\nPRELU(per_channel=true, init=0.1)", -torch.ones(1, 5, 4, 4))
    assert model.prelu1.weight.shape == (5,) and torch.allclose(y, torch.full_like(y, -0.1))


def test_gate_is_torchvisions_squeeze_and_excitation():
    se = torchvision.ops.SqueezeExcitation(16, 4).eval()
    model = cnndsl.compile("input 6x6x16\ngate(GAP - CONV(4, 1) - RELU - CONV(in.c, 1) - SIGMOID)",
                           seed=0).eval()
    cnndsl.transfer_weights(se, model)
    x = torch.randn(2, 16, 6, 6)
    with torch.no_grad():
        assert torch.equal(model(x), se(x))


def test_gate_of_the_same_shape_multiplies_value_by_value():
    _, y = run("input 4x4x3\ngate(SIGMOID)", x := torch.randn(2, 3, 4, 4))
    assert torch.equal(y, x * torch.sigmoid(x))


@pytest.mark.parametrize("text, message", [
    ("gate(GAP - CONV(8, 1))", "the branch gives 1x1x8, but it must give 1x1x16 or 6x6x16"),
    ("gate(CONV(16, 3))", "the branch gives 4x4x16"),
    ("gate(identity)", "the gate's branch has no layers"),
    ("gate(RELU, TANH)", "gate takes one branch"),
])
def test_gate_mistakes_are_located_errors(text, message):
    with pytest.raises(CnnDslError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build(f"input 6x6x16\n{text}")


def test_split_and_shuffle_are_torchvisions_shufflenet_unit_ops():
    from torchvision.models.shufflenetv2 import channel_shuffle

    x = torch.randn(2, 12, 3, 3)
    for part in (1, 2, 3):
        _, y = run(f"input 3x3x12\nSPLIT({part}, of=3)", x)
        assert torch.equal(y, x.chunk(3, dim=1)[part - 1])
    _, y = run("input 3x3x12\nSHUFFLE(3)", x)
    assert torch.equal(y, channel_shuffle(x, 3))
    with pytest.raises(CnnArgumentError, match="part 3 of 2 does not exist"):
        build("input 3x3x12\nSPLIT(3)")
    with pytest.raises(CnnShapeError, match="12 channels do not split into 5"):
        build("input 3x3x12\nSPLIT(1, of=5)")
    with pytest.raises(CnnShapeError, match="do not form 5 equal groups"):
        build("input 3x3x12\nSHUFFLE(5)")


@pytest.mark.parametrize("text", ["concat(SHUFFLE(1) - RELU, identity)",
                                  "add(SHUFFLE(2) - RELU, identity)",
                                  "concat(SHUFFLE(2) - RELU6, SPLIT(1))"])
def test_a_shuffle_that_changes_nothing_is_not_overwritten_in_place(text):
    """With 1 group (or one channel a group) torchvision's channel_shuffle returns its input's
    storage; an in-place ReLU after it overwrote the input the other branch reads (found by
    tests/test_differential.py)."""
    from torchvision.models.shufflenetv2 import channel_shuffle

    x = torch.randn(2, 2, 3, 4)
    groups = int(text.split("SHUFFLE(")[1][0])
    act = F.relu6 if "RELU6" in text else F.relu
    shuffled = act(channel_shuffle(x.clone(), groups))
    merges = {"concat": torch.cat([shuffled, x], 1), "add": shuffled + x}
    expected = merges[text[:text.index("(")]] \
        if "SPLIT" not in text else torch.cat([shuffled, x[:, :1]], 1)
    model = cnndsl.compile(f"input 3x4x2\n{text}").eval()
    source = {}
    exec(compile(__import__("cnndsl.codegen").codegen.to_source(  # noqa: S102
        cnndsl.build_graph(f"input 3x4x2\n{text}"), class_name="Net"), "<net>", "exec"), source)
    with torch.no_grad():
        torch.testing.assert_close(model(x.clone()), expected)
        torch.testing.assert_close(source["Net"]().eval()(x.clone()), expected)


def test_layernorm_is_convnexts_layernorm2d_and_layerscale_its_layer_scale():
    from torchvision.models.convnext import LayerNorm2d

    reference = LayerNorm2d(8, eps=1e-6)
    with torch.no_grad():
        reference.weight.uniform_()
        reference.bias.uniform_()
    model = cnndsl.compile("input 5x5x8\nLAYERNORM(eps=1e-6) - LAYERSCALE(0.5)", seed=0).eval()
    cnndsl.transfer_weights({"w": reference.weight, "b": reference.bias,
                             "s.scale": torch.full((8, 1, 1), 0.5)}, model)
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x) * 0.5)
    assert build("input 10\nLAYERNORM - LAYERSCALE").graph["totals"]["params"] == 30


def test_droppath_is_torchvisions_stochastic_depth():
    from torchvision.ops import StochasticDepth

    x = torch.randn(64, 4, 2, 2)
    model = cnndsl.compile("input 2x2x4\nDROPPATH(0.3)")
    reference = StochasticDepth(0.3, "row")
    torch.manual_seed(5)
    ours = model.train()(x)
    torch.manual_seed(5)
    assert torch.equal(ours, reference.train()(x))
    assert torch.equal(model.eval()(x), x)
    assert build("input 2x2x4\nDROPPATH(0.3)").graph["totals"]["params"] == 0


def test_generated_source_computes_what_the_module_does(tmp_path):
    import importlib.util

    text = ("input 8x8x16\ndef pw(c) = CONV(c, 1) - PRELU(per_channel=true) - HARDSWISH\n"
            "pw(16) - gate(GAP - CONV(4, 1) - MISH - CONV(in.c, 1) - HARDSIGMOID)"
            " - concat(SPLIT(1), SPLIT(2) - pw(in.c / 2)) - SHUFFLE(4)"
            " - residual(LAYERNORM - LAYERSCALE(0.1) - DROPPATH(0.1)) - SILU")
    model = cnndsl.compile(text, seed=0).eval()
    path = tmp_path / "net.py"
    path.write_text(cnndsl.api.compile_source(text) if hasattr(cnndsl.api, "compile_source")
                    else __import__("cnndsl.codegen").codegen.to_source(cnndsl.build_graph(text)))
    spec = importlib.util.spec_from_file_location("net", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = module.Net().eval()
    source.load_state_dict(model.state_dict())
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        assert torch.equal(source(x), model(x))


# -- in.c, in.h, in.w ------------------------------------------------------------------------

def test_in_is_the_blocks_input_everywhere_in_the_block():
    graph = build("input 8x8x16\ndef se(sq) = gate(GAP - CONV(sq, 1) - RELU - CONV(in.c, 1))\n"
                  "def mb(e) = CONV(in.c * e, 1) - se(in.c / 4)\nmb(6)")
    shapes = {d["name"]: d["shape"].as_list() for _, d in graph.nodes(data=True)}
    # se(in.c / 4) is read where it is written: mb's input, 16 / 4 = 4; inside se, in.c is 96
    assert shapes["conv1"] == [96, 8, 8] and shapes["conv2"] == [4, 1, 1]
    assert shapes["conv3"] == [96, 1, 1]


def test_in_reads_height_width_and_the_networks_input_outside_blocks():
    graph = build("input 12x10x3\ndef tile = CONV(in.h + in.w, 1)\n"
                  "CONV(in.c * 2, 3, pad=1) - MAXPOOL(2) - tile - FC(in.c)")
    assert graph.graph["totals"]["output"].as_list() == [3]
    shapes = [d["shape"].as_list() for _, d in graph.nodes(data=True)]
    assert [6, 12, 10] in shapes and [11, 6, 5] in shapes


def test_a_parameters_default_reads_the_blocks_input():
    graph = build("input 4x4x8\ndef f(c=in.c * 2) = CONV(c, 1)\nCONV(3, 1) - f - f(5)")
    assert graph.graph["totals"]["output"].as_list() == [5, 4, 4]
    assert [d["shape"].c for _, d in graph.nodes(data=True)] == [8, 3, 6, 5]


def test_a_number_def_reads_its_callers_input():
    graph = build("input 4x4x8\ndef half = in.c / 2\ndef f = CONV(half, 1)\nf - f - f")
    assert [d["shape"].c for _, d in graph.nodes(data=True)] == [8, 4, 2, 1]


@pytest.mark.parametrize("text, message", [
    ("CONV(in.x, 1)", "`in` has no `x`"),
    ("CONV(in.chanels, 1)", "did you mean `in.channels`?"),
])
def test_in_mistakes(text, message):
    with pytest.raises(CnnDslError, match=message.replace("(", r"\(")):
        build(f"input 4x4x8\n{text}")


def test_a_vector_has_only_in_c():
    with pytest.raises(CnnArgumentError, match="in.h: the input is a vector of 5 values"):
        build("input 4x4x8\ndef f = FC(in.h)\nFC(5) - f")


def test_a_bare_fc_read_by_in_is_refused_not_miscounted():
    with pytest.raises(CnnShapeError, match="`in` read"):
        # the bare FC is the classifier (10 units) only because DROPOUT alone follows it
        build("input 4x4x8\nclasses = 10\ndef f = DROPOUT(0.5 * (in.c == 10))\nFC - f")


# -- comparisons and if(...) ------------------------------------------------------------------

@pytest.mark.parametrize("condition, value", [
    ("3 == 3", 1), ("3 != 3", 0), ("2 < 3", 1), ("3 <= 2", 0), ("4 > 3", 1), ("3 >= 4", 0),
    ("1 == 1 and 2 == 3", 0), ("1 == 2 or 2 == 2", 1), ("0 and in.q", 0), ("1 or in.q", 1),
    ("1 == 1 or 0 and 0", 1), ("(1 == 1 or 0) and 0", 0)])
def test_conditions(condition, value):
    graph = build(f"input 4x4x2\nCONV(7 + ({condition}), 1)")
    assert graph.graph["totals"]["output"].c == 7 + value


def test_if_chooses_layers_numbers_or_leaves_a_layer_out():
    text = "input 4x4x2\ndef f(e) = if(e != 1, CONV(in.c * e, 1), TANH) - if(e > 2, RELU)\n" \
           "f(1) - f(3) - CONV(if(in.c > 4, 10, 20), 1)"
    kinds = [d["kind"] for _, d in build(text).nodes(data=True) if d["kind"] != "INPUT"]
    assert kinds == ["TANH", "CONV", "RELU", "CONV"]
    assert build(text).graph["totals"]["output"].c == 20  # outside blocks, in is the input: 2
    with pytest.raises(CnnArgumentError, match="if takes a condition"):
        build("input 4x4x2\nif(1)")


# -- names ------------------------------------------------------------------------------------

def test_a_def_may_take_a_layers_name_with_a_warning():
    text = "input 8x8x3\ndef pool = MAXPOOL(3, 2, round=floor)\nCONV(4, 3, pad=1) - pool - POOL(3)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = cnndsl.build_graph(text)
    assert [type(w.message) for w in caught] == [ShadowedLayerWarning]
    assert "`pool` means this definition" in str(caught[0].message)
    assert graph.graph["totals"]["output"].as_list() == [4, 1, 1]  # 8 -> 3 (3x3/2) -> 1 (3x3)
    r = subprocess.run([sys.executable, "-m", "cnndsl", "check", "-"], input=text,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0 and "cnndsl: warning: <stdin>:2:5: `pool` is defined" in r.stderr


@pytest.mark.parametrize("word, meant", [
    ("mul", "gate(...)"), ("scale", "gate(...)"), ("chunk", None), ("split", None),
    ("swish", None), ("shuffle", None), ("hswish", None), ("multiply", "gate(...)")])
def test_other_frameworks_words(word, meant):
    """Each is either an alias of the construct or gets a did-you-mean to it."""
    text = f"input 8x8x4\n{word}(RELU)" if meant else f"input 8x8x4\n{word}"
    if meant is None:
        try:
            build(text)
        except CnnArgumentError:
            pass  # an alias with a required argument (SPLIT's part): it resolved
        return
    with pytest.raises(CnnNameError) as info:
        build(text)
    assert f"did you mean `{meant}`?" in info.value.help


def test_builtin_names_stay_reserved():
    with pytest.raises(CnnNameError, match="`gate` is a built-in name"):
        build("input 4x4x2\ndef gate = RELU\ngate")


# -- index(block), count(block): stochastic depth per block ------------------------------------

def droppath_rates(text):
    return [d["bound"]["p"] if "bound" in d else None for _, d in build(text).nodes(data=True)
            if d["kind"] == "DROPPATH"]


def rates_of(text):
    model = cnndsl.compile(text, seed=0)
    return [m.p for m in model.modules() if type(m).__name__ == "StochasticDepth"]


def test_index_and_count_number_a_blocks_calls_in_data_flow_order():
    # torchvision's EfficientNet: p * block / blocks, blocks counted over the network,
    # those without a shortcut (the first of a stage) too: 0.2 * k / 5 for k = 1, 2, 4
    text = ("input 8x8x4\ndef b(c) = if(in.c == c, residual(CONV(c, 3, pad=1)"
            " - DROPPATH(0.2 * index(b) / count(b))), CONV(c, 1))\n"
            "b(4) * 3 - b(8) - b(8)")
    assert rates_of(text) == [0.2 * 0 / 5, 0.2 * 1 / 5, 0.2 * 2 / 5, 0.2 * 4 / 5]
    # ConvNeXt's rule reaches p at the last block: p * block / (blocks - 1)
    text = ("input 8x8x4\ndef cn = residual(CONV(4, 1) - DROPPATH(0.5 * index(cn)"
            " / (count(cn) - 1)))\ncn * 3")
    assert rates_of(text) == [0.0, 0.25, 0.5]


def test_index_is_the_innermost_open_call_read_anywhere_inside_it():
    # a block called from b, a number def and a global variable each read b's call
    text = ("input 8x8x4\nrate = 0.1 * index(b)\ndef half = 0.5 * index(b)\n"
            "def sd(q) = DROPPATH(q)\n"
            "def b = residual(CONV(4, 1) - sd(rate) - DROPPATH(half) - sd(0.1 * index(b)))\n"
            "b * 2")
    assert rates_of(text) == [0.0, 0.0, 0.0, 0.1, 0.5, 0.1]


def test_structured_source_takes_a_rate_that_differs_per_call_as_an_argument():
    from cnndsl.codegen import to_source

    text = ("input 8x8x4\ndef cn = residual(CONV(4, 1) - DROPPATH(0.3 * index(cn)"
            " / (count(cn) - 1)))\ncn * 4")
    source = to_source(cnndsl.build_graph(text), class_name="Net")
    assert "def __init__(self, in_channels: int, p: float)" in source and "Cn(4, 0.3)" in source
    namespace = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # noqa: S102
    assert [m.p for m in namespace["Net"]().modules()
            if type(m).__name__ == "StochasticDepth"] == rates_of(text)


@pytest.mark.parametrize("text, error, message", [
    ("def b = CONV(4, 1)\nCONV(index(b), 1)", CnnArgumentError,
     r"index\(b\) is read outside any call of `b`"),
    ("def b = CONV(4, 1)\nb - DROPPATH(index(c))", CnnArgumentError,
     "index takes the name of a block"),
    ("def b = CONV(4, 1)\nb - DROPPATH(count(b, 2))", CnnArgumentError,
     "count takes the name of a block"),
    ("def b = CONV(4, 1)\nb * 2 - RELU * count(b)", CnnDslError,
     "repeat count 1,000,000 exceeds"),
    ("def b = CONV(4, 1)\nb * (2 + (count(b) > 100))", CnnArgumentError,
     "count\\(...\\) changes the network it counts: `b` is called 2 times, not 3"),
    ("def b = residual(CONV(4, 1) - DROPPATH(index(b) / (count(b) - 1)))\nb", CnnArgumentError,
     "division by zero"),
])
def test_index_and_count_mistakes_are_located(text, error, message):
    with pytest.raises(error, match=message) as info:
        build(f"input 8x8x4\n{text}")
    assert info.value.span is not None and info.value.span.line >= 2
    if "exceeds" in message:
        assert "stands for 1,000,000 while the calls are being counted" in str(info.value)
