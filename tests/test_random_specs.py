"""Random valid specs: static shapes and parameter counts agree with a real torch forward pass."""
from __future__ import annotations

import pytest

import torch
from hypothesis import assume, given, strategies as st

import cnndsl
from cnndsl.errors import CnnArgumentError, CnnShapeError, CnnSyntaxError

from conftest import layers_of

pytestmark = pytest.mark.slow  # hypothesis against torch; `make test-fast` skips it

channels = st.integers(1, 8)


# Per-axis windows (issue 17, F1): square kernels with a non-square stride, padding or
# dilation are drawn as often as the rest, and the inputs are mostly square.
STRIDES = ["1", "1", "2", "1x2", "2x1"]
PADS = ["0", "same", "1", "2", "0x1", "1x0", "2x1"]
DILATIONS = ["", "", ", d=2", ", d=1x2", ", d=2x1"]

# Merges whose operands repeat (issue 17, F2): the same node in several positions.
REPEATED = ["concat(identity, identity)", "concat(identity, RELU, identity)",
            "concat(id, CONV({a}, 1), identity)", "concat(CONV({a}, 1), identity, identity)",
            "concat((RELU) * 0, identity, CONV({b}, 3, pad=1))", "add(identity, identity)",
            "add(identity, RELU, identity)", "add(RELU, (CONV({a}, 1)) * 0, identity)"]


@st.composite
def layer(draw, depth=0):
    if draw(st.integers(0, 4)) == 4:
        return draw(image_layer())
    choice = draw(st.integers(0, 11 if depth < 2 else 6))
    c = draw(channels)
    if choice == 0:
        k = draw(st.sampled_from([1, 3, 5, "1x3", "3x1"]))
        s = draw(st.sampled_from(STRIDES))
        pad = draw(st.sampled_from(PADS if isinstance(k, int) else ["0", "same", "1", "0x1"]))
        bias = draw(st.sampled_from(["", ", bias=false"]))
        d = draw(st.sampled_from(DILATIONS))
        return f"CONV({c}, {k}, s={s}, pad={pad}{bias}{d})"
    if choice == 1:
        k = draw(st.sampled_from(["2", "3", "3x2", "2x3"]))
        s = draw(st.sampled_from(["1", "2", "1x2", "2x1", "2x3"]))
        pad = draw(st.sampled_from(["", "", ", pad=1", ", pad=1x0", ", pad=0x1"]))
        kind = draw(st.sampled_from(["MAXPOOL", "AVGPOOL"]))
        rnd = draw(st.sampled_from(["", ", round=ceil", ", round=floor"]))
        return f"{kind}({k}, {s}{pad}{rnd})"
    if choice == 2:
        return draw(st.sampled_from(["RELU", "BN", "TANH", "SIGMOID", "LEAKYRELU(0.1)", "RELU6",
                                     "ELU", "GELU", "SILU", "LRN", "DROPOUT(0.3)", "HARDSWISH",
                                     "HARDSIGMOID", "MISH", "PRELU", "PRELU(per_channel=true)",
                                     "LAYERNORM", "LAYERSCALE(0.5)", "DROPPATH(0.2)"]))
    if choice == 3:
        s = draw(st.sampled_from(STRIDES))
        pad = draw(st.sampled_from(["1", "1x0", "0x1"]))
        return f"DWCONV(3, s={s}, pad={pad}{draw(st.sampled_from(DILATIONS))})"
    if choice == 4:
        return f"SEPCONV({c}, 3, s={draw(st.sampled_from(STRIDES))})"
    if choice == 5:
        size = draw(st.sampled_from(["2", "3x2", "2x4"]))
        return draw(st.sampled_from([f"CONV({c}, 1x3, pad=0x1, groups=1)",
                                     f"ADAPTIVEAVGPOOL({size})"]))
    if choice == 6:
        # issue 13: gates (1x1xC and full-shape branches), SPLIT/SHUFFLE, in.c and if(...),
        # through the spec's own defs (MODERN_DEFS), whose `in` is the current volume
        return draw(st.sampled_from(["CONV", "se", "se(4)", "gate(TANH)", "half", "widen(2)",
                                     "widen(1)", "SHUFFLE(1)", "CONCAT_SPLIT"])).replace(
            "CONCAT_SPLIT", f"concat(SPLIT(1, of=1), CONV({c}, 1))")
    if choice == 7:
        body = draw(chain(depth + 1))
        return f"residual({body})"
    if choice == 8:
        a, b = draw(channels), draw(channels)
        return f"concat(CONV({a}, 1), CONV({b}, 3, pad=1), identity)"
    if choice in (9, 10):
        a, b = draw(channels), draw(channels)
        return draw(st.sampled_from(REPEATED)).format(a=a, b=b)
    body = draw(chain(depth + 1))
    return f"({body}) * {draw(st.integers(0, 3))}"


# Layers of networks that output images (issue 19): every argument, each axis on its own.
DECONV_KERNELS = ["1", "2", "3", "4", "2x3", "3x1"]


def _axes(text):
    a, _, b = text.partition("x")
    return (int(a), int(b or a))


@st.composite
def image_layer(draw):
    c = draw(channels)
    choice = draw(st.integers(0, 6))
    if choice == 0:
        k, s = draw(st.sampled_from(DECONV_KERNELS)), draw(st.sampled_from(STRIDES + ["3"]))
        d = draw(st.sampled_from(["1", "1", "2", "1x2"]))
        # output padding below the stride or the dilation, per axis
        op = [draw(st.integers(0, max(a, b) - 1)) for a, b in zip(_axes(s), _axes(d))]
        pad = draw(st.sampled_from(["0", "1", "1x0", "0x1"]))
        groups = draw(st.sampled_from(["", "", ", groups=2"]))
        bias = draw(st.sampled_from(["", ", bias=false"]))
        name = draw(st.sampled_from(["DECONV", "ConvTranspose2d", "CONVTRANSPOSE"]))
        return (f"{name}({c * 2 if groups else c}, {k}, s={s}, pad={pad}, "
                f"op={op[0]}x{op[1]}, d={d}{groups}{bias})")
    if choice == 1:
        mode = draw(st.sampled_from(["nearest", "bilinear", "bicubic"]))
        corners = "" if mode == "nearest" else draw(st.sampled_from(
            ["", ", align_corners=true", ", align_corners=false"]))
        size = draw(st.sampled_from(["2", "3", "2x1", "1x3", "size=5", "size=7x4",
                                     "size=3x9"]))
        return f"{draw(st.sampled_from(['UPSAMPLE', 'RESIZE']))}({size}, mode={mode}{corners})"
    if choice == 2:  # an FC sized for it, so the values multiply out
        h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        return f"FC({h * w * c}) - {draw(st.sampled_from(['RESHAPE', 'UNFLATTEN']))}({h}x{w}x{c})"
    if choice == 3:
        return f"CROP({draw(st.sampled_from(['1', '2', '3x2', '1x4', '5']))})"
    if choice == 4:
        pad = draw(st.sampled_from(["1", "2x0", "0x1", "1, top=2", "right=3", "bottom=1, left=2"]))
        mode = draw(st.sampled_from(["", ", value=0.5", ", mode=reflect", ", mode=replicate",
                                     ", mode=circular"]))
        return f"PAD({pad}{mode})"
    r = draw(st.integers(2, 3))
    if choice == 5:
        return f"CONV({c * r * r}, 1) - PIXELSHUFFLE({r})"
    return f"PIXELUNSHUFFLE({r})"


@st.composite
def chain(draw, depth=0):
    items = draw(st.lists(layer(depth), min_size=1, max_size=4))
    return " - ".join(items)


@st.composite
def spec(draw):
    h = draw(st.integers(6, 24))
    w = draw(st.sampled_from([h, h, h, draw(st.integers(6, 24))]))
    c = draw(channels)
    head = draw(st.sampled_from(["", " - FC(7)", " - GAP - FC(5) - SOFTMAX", " - FLATTEN"]))
    return f"input {h}x{w}x{c}\nwidth = 4\nrounding = floor\n{MODERN_DEFS}{draw(chain())}{head}\n"


MODERN_DEFS = ("def se(r=1) = gate(GAP - CONV(max(1, floor(in.c / r)), 1) - RELU - CONV(in.c, 1)"
               " - SIGMOID)\n"
               "def half = if(in.c == 2 * floor(in.c / 2), concat(SPLIT(1), SPLIT(2)"
               " - CONV(in.c / 2, 1))\n"
               "  - SHUFFLE(2), SHUFFLE(1))\n"
               "def widen(e) = if(e != 1, CONV(in.c * e, 1)) - PRELU(per_channel=true)\n")


# The most parameters, and values computed per sample, of one random network: a rare draw
# (an FC after upsampled, concatenated volumes) has 100 million parameters; 10,000 examples
# of those (`make test-long`) grew the process to 23 GB until the kernel killed it.
MAX_VALUES = 4_000_000


def static_graph(text):
    try:
        graph = cnndsl.build_graph(text)
    except CnnShapeError:
        assume(False)  # a random window that does not fit: not a valid spec
    except (CnnArgumentError, CnnSyntaxError) as exc:  # `(X) * 0` left a body with no layers
        assert "no layers" in str(exc), text
        assume(False)
    values = sum(d["shape"].numel for _, d in graph.nodes(data=True))
    assume(graph.graph["totals"]["params"] <= MAX_VALUES and values <= MAX_VALUES)
    return graph


@given(spec())
def test_static_shapes_and_counts_match_torch(text):
    graph = static_graph(text)
    torch.manual_seed(0)
    model = cnndsl.compile(text, seed=0, flat=True).eval()  # a submodule per layer, by name
    shapes = {}
    by_name = {d["name"]: d for d in layers_of(graph)}
    for name, module in model.named_modules():
        if name in by_name:
            module.register_forward_hook(
                lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:])))
    ctx = graph.graph["context"].input
    x = torch.randn(2, ctx.c, ctx.h, ctx.w)
    with torch.no_grad():
        y = model(x)
    out = graph.graph["totals"]["output"]
    assert tuple(y.shape) == (2, *out.as_list()), text
    merges_only = all(d["kind"] in ("ADD", "CONCAT", "MUL") for d in by_name.values())
    assert shapes or merges_only, "no module was matched to a layer by name"
    for name, shape in shapes.items():
        assert shape == tuple(by_name[name]["shape"].as_list()), (text, name)
    assert sum(p.numel() for p in model.parameters()) == graph.graph["totals"]["params"]
    running = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    assert running == graph.graph["totals"]["buffers"]


@given(spec())
def test_optimize_computes_what_the_plain_model_computes(text):
    """BN folding, channels_last and the fused convolutions (ReLU, ReLU6, residual sums) of
    optimize=True change no output, whatever the graph around them."""
    ctx = static_graph(text).graph["context"].input
    plain = cnndsl.compile(text, seed=0).eval()
    fast = cnndsl.compile(text, seed=0, optimize=True)
    x = torch.randn(2, ctx.c, ctx.h, ctx.w)
    with torch.inference_mode():
        expected, got = plain(x), fast(x)
    tolerance = 1e-4 * max(1.0, expected.abs().max().item())
    assert (got - expected).abs().max().item() <= tolerance, text
