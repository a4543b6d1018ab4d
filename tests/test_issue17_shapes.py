"""Regression tests for issue 17's wrong answers, F1 (non-square windows on square inputs) and
F2 (a repeated merge operand is lost), and for what the differential test
(tests/test_differential.py) found besides.

Every expected number is computed here with torch itself (the modules built by hand), never
taken from cnndsl.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cnndsl
from cnndsl.errors import CnnShapeError


def torch_out(x, *modules):
    with torch.no_grad():
        for m in modules:
            x = m.eval()(torch.flatten(x, 1) if isinstance(m, nn.Linear) else x)
    return x


def n_params(*modules):
    return sum(p.numel() for m in modules for p in m.parameters())


def chw(t):
    return list(t.shape[1:])


def check(text, x, modules, *, drop_optional=False, **variables):
    """cnndsl's static output and parameter count, and the compiled model's output shape, are
    PyTorch's."""
    want = torch_out(x, *modules)
    graph = cnndsl.build_graph(text, drop_optional=drop_optional, **variables)
    assert graph.graph["totals"]["output"].as_list() == chw(want), text
    assert graph.graph["totals"]["params"] == n_params(*modules), text
    if not drop_optional:
        model = cnndsl.compile(text, seed=0, **variables).eval()
        with torch.no_grad():
            assert chw(model(x)) == chw(want), text
    return graph


# -- F1: non-square windows on square inputs ---------------------------------------------------

def test_f1_conv_square_kernel_non_square_padding():
    x = torch.randn(1, 3, 8, 8)
    conv = nn.Conv2d(3, 4, 3, padding=(0, 1))
    assert chw(torch_out(x, conv)) == [4, 6, 8]  # the 6x8x4
    check("input 8x8x3\nCONV(4, 3, pad=0x1)", x, [conv])


def test_f1_maxpool_non_square_stride():
    x = torch.randn(1, 4, 8, 8)
    pool = nn.MaxPool2d(2, stride=(2, 1))
    assert chw(torch_out(x, pool)) == [4, 4, 7]  # the 4x7x4
    check("input 8x8x4\nMAXPOOL(2, s=2x1)", x, [pool])


def test_f1_non_square_stride_before_fc():
    """`CONV(4, 3, s=1x2, pad=1) - FC(10)` on 8x8x3: the width does not fit exactly, so the
    strict default refuses it (it was accepted with 2,682 parameters, and the compiled model
    failed at its first forward); with floor rounding it is PyTorch's 8x4x4 and 1,402
    parameters."""
    with pytest.raises(CnnShapeError, match=r"width|4\.5"):  # (8 - 3 + 2)/2 + 1 = 4.5
        cnndsl.build_graph("input 8x8x3\nCONV(4, 3, s=1x2, pad=1) - FC(10)")
    x = torch.randn(1, 3, 8, 8)
    conv, fc = nn.Conv2d(3, 4, 3, stride=(1, 2), padding=1), nn.Linear(4 * 8 * 4, 10)
    assert n_params(conv, fc) == 1402
    check("input 8x8x3\nrounding = floor\nCONV(4, 3, s=1x2, pad=1) - FC(10)", x, [conv, fc])


@pytest.mark.parametrize("h, w", [(8, 8), (8, 6)])
def test_f1_residual_projection_with_non_square_stride(h, w):
    """residual(ADAPTIVEAVGPOOL(4x2)): the shortcut's 1x1 projection has stride 2x4 (8x8) or
    2x3 (8x6); it was refused on the square input."""
    x = torch.randn(2, 3, h, w)
    body = nn.AdaptiveAvgPool2d((4, 2))
    stride = (2, 4) if w == 8 else (2, 3)
    proj = nn.Conv2d(3, 3, 1, stride=stride)
    with torch.no_grad():
        want = body(x) + proj(x)
    graph = cnndsl.build_graph(f"input {h}x{w}x3\nresidual(ADAPTIVEAVGPOOL(4x2))")
    assert graph.graph["totals"]["output"].as_list() == chw(want) == [3, 4, 2]
    assert graph.graph["totals"]["params"] == n_params(proj) == 12
    model = cnndsl.compile(f"input {h}x{w}x3\nresidual(ADAPTIVEAVGPOOL(4x2))", seed=0).eval()
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert conv.stride == stride
    conv.load_state_dict(proj.state_dict())
    with torch.no_grad():
        assert torch.allclose(model(x.clone()), want, rtol=1e-4, atol=1e-5)


F1_LAYERS = [  # (layer, torch module for 3 input channels): square kernel, per-axis rest
    ("CONV(4, 3, s=2x1)", lambda: nn.Conv2d(3, 4, 3, stride=(2, 1))),
    ("CONV(4, 3, s=1x3, pad=2x0)", lambda: nn.Conv2d(3, 4, 3, stride=(1, 3), padding=(2, 0))),
    ("CONV(4, 3, d=1x2)", lambda: nn.Conv2d(3, 4, 3, dilation=(1, 2))),
    ("CONV(4, 3, d=2x1, pad=same)", lambda: nn.Conv2d(3, 4, 3, dilation=(2, 1),
                                                      padding=(2, 1))),
    ("CONV(6, 1, s=2x1, groups=3)", lambda: nn.Conv2d(3, 6, 1, stride=(2, 1), groups=3)),
    ("DWCONV(3, s=1x2, pad=1)", lambda: nn.Conv2d(3, 3, 3, stride=(1, 2), padding=1,
                                                  groups=3)),
    ("DWCONV(3, pad=1x0, m=2)", lambda: nn.Conv2d(3, 6, 3, padding=(1, 0), groups=3)),
    ("DWCONV(2, d=3x1)", lambda: nn.Conv2d(3, 3, 2, dilation=(3, 1), groups=3)),
    ("MAXPOOL(3, s=1x2, pad=1x0)", lambda: nn.MaxPool2d(3, (1, 2), (1, 0))),
    ("MAXPOOL(2, 2x1, round=ceil)", lambda: nn.MaxPool2d(2, (2, 1), ceil_mode=True)),
    ("AVGPOOL(3, s=3x1, round=ceil)", lambda: nn.AvgPool2d(3, (3, 1), ceil_mode=True)),
    ("AVGPOOL(2, pad=1x0)", lambda: nn.AvgPool2d(2, 2, (1, 0))),
    ("SEPCONV(5, 3, s=2x1)", lambda: nn.Sequential(
        nn.Conv2d(3, 3, 3, stride=(2, 1), padding=1, groups=3), nn.Conv2d(3, 5, 1))),
]


@pytest.mark.parametrize("layer, make", F1_LAYERS, ids=[t for t, _ in F1_LAYERS])
@pytest.mark.parametrize("size", [7, 8])
def test_f1_square_window_with_per_axis_arguments_on_a_square_input(layer, make, size):
    x = torch.randn(1, 3, size, size)
    module = make()
    check(f"input {size}x{size}x3\nrounding = floor\n{layer}", x, [module])


# -- F2: a repeated merge operand --------------------------------------------------------------

def compiled(text, **kw):
    return cnndsl.compile(text, seed=0, **kw).eval()


def test_f2_concat_identity_twice():
    x = torch.randn(2, 2, 4, 4)
    want = torch.cat([x, x], 1)
    text = "input 4x4x2\nconcat(identity, identity)"
    assert cnndsl.build_graph(text).graph["totals"]["output"].as_list() == chw(want) == [4, 4, 4]
    with torch.no_grad():
        assert torch.equal(compiled(text)(x.clone()), want)


def test_f2_add_identity_three_times():
    x = torch.randn(2, 2, 4, 4)
    text = "input 4x4x2\nadd(identity, identity, identity)"
    assert cnndsl.build_graph(text).graph["totals"]["output"].as_list() == [2, 4, 4]
    with torch.no_grad():
        assert torch.allclose(compiled(text)(x.clone()), x + x + x)


def test_f2_concat_keeps_the_operands_order():
    x = torch.randn(2, 2, 4, 4)
    want = torch.cat([x, torch.relu(x), x], 1)
    text = "input 4x4x2\nconcat(identity, RELU, identity)"
    assert cnndsl.build_graph(text).graph["totals"]["output"].as_list() == chw(want) == [6, 4, 4]
    with torch.no_grad():
        assert torch.equal(compiled(text)(x.clone()), want)


@pytest.mark.parametrize("text", ["concat(id, identity, RELU)", "concat(RELU, identity, id)",
                                  "concat(identity, (RELU) * 0, RELU, identity)",
                                  "add(RELU, identity, identity)",
                                  "add(identity, RELU, (TANH) * 0)"])
def test_f2_repeated_operands_in_every_position(text):
    x = torch.randn(2, 2, 4, 4)
    branches = [b.strip() for b in text[text.index("(") + 1:-1].replace("(RELU) * 0", "id")
                .replace("(TANH) * 0", "id").split(",")]
    values = [torch.relu(x) if b == "RELU" else x for b in branches]
    want = torch.cat(values, 1) if text.startswith("concat") else sum(values)
    spec = f"input 4x4x2\n{text}"
    assert cnndsl.build_graph(spec).graph["totals"]["output"].as_list() == chw(want)
    with torch.no_grad():
        assert torch.allclose(compiled(spec)(x.clone()), want)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_f2_sweep_of_an_empty_repeat_in_a_concat(n):
    """concat((CONV(8, 3, pad=1) - RELU) * N, identity) - CONV(4, 1) on 8x8x16: with N = 0
    the concat is (x, x), 32 channels, and the 1x1 CONV has 32*4 + 4 = 132 parameters (68
    reported)."""
    x = torch.randn(1, 16, 8, 8)
    convs = [nn.Conv2d(16 if i == 0 else 8, 8, 3, padding=1) for i in range(n)]
    with torch.no_grad():
        y = x
        for c in convs:
            y = torch.relu(c(y))
        cat = torch.cat([y, x], 1)
    head = nn.Conv2d(cat.shape[1], 4, 1)
    if n == 0:
        assert n_params(head) == 132
    text = ("input 8x8x16\nN = 1\n"
            "concat((CONV(8, 3, pad=1) - RELU) * N, identity) - CONV(4, 1)")
    graph = cnndsl.build_graph(text, N=n)
    assert graph.graph["totals"]["params"] == n_params(*convs, head)
    assert graph.graph["totals"]["output"].as_list() == chw(head(cat))
    with torch.no_grad():
        assert chw(compiled(text, N=n)(x)) == [4, 8, 8]


def test_f2_dropped_optional_branch_of_a_concat():
    """`--optional both` on concat(identity, CONV(...)?): without the optional layer the
    concat is (x, x)."""
    x = torch.randn(1, 16, 8, 8)
    head = nn.Conv2d(32, 4, 1)
    text = "input 8x8x16\nconcat(identity, CONV(8, 3, pad=1)?) - CONV(4, 1)"
    graph = cnndsl.build_graph(text, drop_optional=True)
    assert graph.graph["totals"]["params"] == n_params(head) == 132
    assert graph.graph["totals"]["output"].as_list() == chw(head(torch.cat([x, x], 1)))


def test_f2_through_cnndsl_sweep():
    """The same two specs through the sweep API: `-D N=0..2` and `--optional both`."""
    from cnndsl.parser import parse
    from cnndsl.sweep import parse_axis, run_sweep

    text = "input 8x8x16\nconcat((CONV(8, 3, pad=1) - RELU) * N, identity) - CONV(4, 1)"
    rows = run_sweep(parse(text), [parse_axis("N=0..2")])
    # 1x1 CONV on 16 (x, x), 24, 24 channels; 3x3 CONVs of 16->8 (1,160) and 8->8 (584)
    head = [n_params(nn.Conv2d(c, 4, 1)) for c in (32, 24, 24)]
    body = [0, 1160, 1160 + 584]
    assert [r.params for r in rows] == [h + b for h, b in zip(head, body)]
    assert rows[0].params == 132
    text = "input 8x8x16\nconcat(identity, CONV(8, 3, pad=1)?) - CONV(4, 1)"
    rows = run_sweep(parse(text), [], optional="both")
    assert sorted(r.params for r in rows) == sorted(
        [n_params(nn.Conv2d(16, 8, 3), nn.Conv2d(24, 4, 1)), n_params(nn.Conv2d(32, 4, 1))])


# -- found by the differential test, beyond F1 and F2 ------------------------------------------

@pytest.mark.parametrize("layer, make", [
    ("MAXPOOL(4, round=ceil)", lambda: nn.MaxPool2d(4, ceil_mode=True)),
    ("AVGPOOL(4, round=ceil)", lambda: nn.AvgPool2d(4, ceil_mode=True)),
    ("MAXPOOL(6, pad=1, ceil_mode=true)", lambda: nn.MaxPool2d(6, 6, 1, ceil_mode=True)),
    ("AVGPOOL(3, 3, pad=1x0, round=ceil)", lambda: nn.AvgPool2d(3, 3, (1, 0), ceil_mode=True)),
])
def test_ceil_pool_whose_window_overhangs_a_small_input_is_what_torch_computes(layer, make):
    """With ceil_mode PyTorch accepts a window larger than the padded input when it still
    starts inside it (its one window overhangs by less than the stride): MAXPOOL(4,
    round=ceil) on 3x3 is 1x1 there. cnndsl refused it ("the 4x4 window is larger than its
    padded input"), though its docs only ask that the last window start inside the input."""
    x = torch.randn(1, 2, 3, 2) if "1x0" in layer else torch.randn(1, 2, 3, 3)
    size = "x".join(map(str, [*x.shape[2:], x.shape[1]]))
    check(f"input {size}\n{layer}", x, [make()])


def test_explicit_shortcut_of_another_shape_is_refused_not_projected():
    """residual(body, shortcut) gives the shortcut explicitly: when it does not end in the
    body's shape, PyTorch's sum fails, and cnndsl must say so rather than put a 1x1 projection
    (here 544 parameters the spec never wrote) after the written shortcut."""
    x = torch.randn(1, 16, 8, 8)
    with pytest.raises(RuntimeError):
        nn.Conv2d(16, 32, 3, padding=1)(x) + nn.Conv2d(16, 16, 1)(x)
    for text in ["residual(CONV(32, 3, pad=1), CONV(16, 1))",
                 "residual(CONV(32, 3, pad=1) - BN, shortcut=RELU)"]:
        with pytest.raises(CnnShapeError):
            cnndsl.build_graph(f"input 8x8x16\n{text}")
