"""Issue 19, part 2: named tensors (`X as name`, `@name`) and UPSAMPLE/CROP to a named
tensor's size, against networks built by hand with torch (never through cnndsl).

A hypothesis strategy draws a chain of convolutions (per-axis kernels and paddings, on
non-square inputs) and pools, some of whose outputs are named, then merges (`concat`, `add`)
whose operands are `identity` or named tensors, each brought to the current size by
`CROP(@here)` or `UPSAMPLE(size=@here)` where it differs, in any operand position, a name
read 0, 1 or more times. The same description runs as plain torch; cnndsl must agree on every
shape and parameter count, and its compiled model (classes and --flat) on the output, with
the hand-built weights copied in by where each layer is written.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, note, settings
from hypothesis import strategies as st

import cnndsl
from cnndsl.api import check_spec
from cnndsl.errors import CnnNameError


def torchvision_centre(size: int, keep: int) -> int:
    """torchvision's center_crop offset, int(round((size - keep) / 2.0)): halves to even."""
    return round((size - keep) / 2.0)


@st.composite
def cases(draw):
    h, w = draw(st.integers(4, 9)), draw(st.integers(4, 9))
    c = draw(st.integers(1, 3))
    shapes: dict[str, tuple[int, int, int]] = {}
    items: list[str] = []
    ops: list[tuple] = []
    cur = (c, h, w)
    if draw(st.booleans()):
        items.append("identity as t0")
        shapes["t0"] = cur
        ops.append(("tag", "t0"))
    for i in range(1, draw(st.integers(1, 4)) + 1):
        kind = draw(st.sampled_from(["conv", "conv", "pool", "up"]))
        if kind == "pool" and cur[1] % 2 == 0 and cur[2] % 2 == 0 and cur[1] > 2:
            items.append("MAXPOOL(2)")
            ops.append(("pool",))
            cur = (cur[0], cur[1] // 2, cur[2] // 2)
        elif kind == "up":
            items.append("UPSAMPLE(2)")
            ops.append(("up2",))
            cur = (cur[0], cur[1] * 2, cur[2] * 2)
        else:
            out = draw(st.integers(1, 4))
            kh = draw(st.sampled_from([1, 3])) if cur[1] >= 3 else 1
            kw = draw(st.sampled_from([1, 3])) if cur[2] >= 3 else 1
            ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
            items.append(f"CONV({out}, {kh}x{kw}, pad={ph}x{pw})")
            ops.append(("conv", cur[0], out, (kh, kw), (ph, pw), len(items) - 1))
            cur = (out, cur[1] - kh + 1 + 2 * ph, cur[2] - kw + 1 + 2 * pw)
        if draw(st.booleans()):
            name = f"t{i}"
            items[-1] += f" as {name}"
            shapes[name] = cur
            ops.append(("tag", name))
    for m in range(draw(st.integers(1, 2))):
        here = f"m{m}"
        items[-1] += f" as {here}"
        shapes[here] = cur
        ops.append(("tag", here))
        merge = draw(st.sampled_from(["concat", "add"]))
        names = [n for n in shapes if not n.startswith("m")]
        n_ops = draw(st.integers(2, 3))
        operands, texts = [], []
        for _ in range(n_ops):
            ref = draw(st.sampled_from(["identity"] + names)) if names else "identity"
            parts = [] if ref == "identity" else [f"@{ref}"]
            steps = []
            src = cur if ref == "identity" else shapes[ref]
            if src[1:] != cur[1:]:
                if src[1] >= cur[1] and src[2] >= cur[2] and draw(st.booleans()):
                    parts.append(f"CROP(@{here})")
                    steps.append(("crop", cur[1], cur[2]))
                else:
                    parts.append(f"UPSAMPLE(size=@{here})")
                    steps.append(("resize", cur[1], cur[2]))
            if merge == "add" and src[0] != cur[0]:
                parts.append(f"CONV({cur[0]}, 1)")
                steps.append(("conv", src[0], cur[0], (1, 1), (0, 0), None))
            operands.append((ref, steps))
            texts.append(" - ".join(parts) or "identity")
        if all(ref != "identity" for ref, _ in operands):  # else the chain so far is unused
            k = draw(st.integers(0, n_ops - 1))
            operands[k], texts[k] = ("identity", []), "identity"
        items.append(f"{merge}({', '.join(texts)})")
        ops.append(("merge", merge, operands, len(items) - 1))
        cur = (sum(shapes[r][0] if r != "identity" and not any(s[0] == "conv" for s in st_)
                   else cur[0] if r == "identity" else st_[-1][2]
                   for r, st_ in operands), cur[1], cur[2]) if merge == "concat" else cur
    text = f"input {h}x{w}x{c}\n" + " - ".join(items) + "\n"
    return text, ops, (c, h, w), cur


class Hand:
    """The description run as plain torch; its convolutions' weights by where they are."""

    def __init__(self, ops, seed: int = 0):
        self.ops = ops
        self.gen = torch.Generator().manual_seed(seed)
        self.weights: list[tuple[torch.Tensor, torch.Tensor]] = []

    def conv(self, step, x):
        _, cin, cout, k, p, _ = step
        wt = torch.randn(cout, cin, *k, generator=self.gen) * 0.3
        b = torch.randn(cout, generator=self.gen) * 0.1
        self.weights.append((wt, b))
        return F.conv2d(x, wt, b, padding=p)

    def run(self, x):
        names = {}
        for op in self.ops:
            if op[0] == "tag":
                names[op[1]] = x
            elif op[0] == "pool":
                x = F.max_pool2d(x, 2)
            elif op[0] == "up2":
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            elif op[0] == "conv":
                x = self.conv(op, x)
            else:
                outs = []
                for ref, steps in op[2]:
                    y = x if ref == "identity" else names[ref]
                    for s in steps:
                        if s[0] == "crop":
                            top = torchvision_centre(y.shape[2], s[1])
                            left = torchvision_centre(y.shape[3], s[2])
                            y = y[..., top:top + s[1], left:left + s[2]]
                        elif s[0] == "resize":
                            y = F.interpolate(y, size=(s[1], s[2]), mode="nearest")
                        else:
                            y = self.conv(s, y)
                    outs.append(y)
                x = torch.cat(outs, 1) if op[1] == "concat" else sum(outs[1:], outs[0])
        return x


def copy_weights(model, graph, hand: Hand) -> None:
    """The hand-built convolutions' weights onto the compiled model's, in the order the
    hand-built network made them: the text order of the chain and, in a merge, operand order,
    which is the order cnndsl creates its nodes (ids)."""
    convs = [n for n in sorted(graph.nodes.values(), key=lambda n: n.id)
             if n.n_params and n.params.get("kernel") is not None]
    assert len(convs) == len(hand.weights)
    modules = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    by_shape = {}
    for m in modules:
        by_shape.setdefault(id(m), m)
    # the compiled model's Conv2d modules are created in data-flow order; map node -> module
    order = [n.id for n in graph.order() if n in convs]
    for node, (wt, b) in zip(convs, hand.weights):
        module = modules[order.index(node.id)]
        with torch.no_grad():
            module.weight.copy_(wt)
            module.bias.copy_(b)


@pytest.mark.slow  # hypothesis against hand-built torch, as tests/test_differential.py
@settings(max_examples=25, deadline=None)
@given(cases(), st.booleans())
def test_named_tensor_skips_agree_with_hand_built_torch(case, flat):
    text, ops, (c, h, w), out = case
    note(text)
    graph = check_spec(text)
    x = torch.randn(2, c, h, w, generator=torch.Generator().manual_seed(1))
    hand = Hand(ops)
    expected = hand.run(x)
    assert tuple(expected.shape[1:]) == out
    assert graph.totals["output"].as_list() == list(expected.shape[1:])
    assert graph.totals["params"] == sum(wt.numel() + b.numel() for wt, b in hand.weights)
    model = cnndsl.compile(text=text, seed=0, flat=flat).eval()
    copy_weights(model, graph, hand)
    with torch.no_grad():
        got = model(x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_a_name_is_one_tensor_not_a_copy_of_its_layers():
    """`x1 = CONV(...)` used twice builds the layers twice; `CONV(...) as x1` then `@x1` twice
    reads one tensor: one node, three consumers."""
    copied = check_spec("input 8x8x3\nx1 = CONV(4, 1)\nconcat(x1, x1)")
    named = check_spec("input 8x8x3\nCONV(4, 1) as x1 - concat(@x1, @x1, identity)")
    assert copied.totals["params"] == 2 * 16
    assert named.totals["params"] == 16
    conv = next(n for n in named if n.n_params)
    assert named.uses(conv) == 3


@pytest.mark.parametrize("text, message", [
    ("CONV(4, 1) - concat(@a, identity) - RELU as a", "`@a` is read before it is named"),
    ("CONV(4, 1) - concat(@b, identity)", "no tensor is named `b`"),
    ("def f = concat(@a, identity)\nCONV(4, 1) as a - f",
     "`@a` is named in the network, outside every def, not in def `f`"),
    ("(CONV(4, 1) as a) * 2", "the tensor name `a` is given again by a second copy"),
    ("CONV(4, 1) as a - CONV(4, 1) as a", "the tensor name `a` is given twice"),
    ("CONV(4, 1) as a - CONV(2, 1) - @a", "the output of this CONV is never used"),
    ("FC(10) as v - CONV(4, 1) - UPSAMPLE(size=@v)", "`@v` is a vector of 10 values"),
    ("CONV(4, 1) as a - concat(CONV(4, 3, pad=1) - MAXPOOL(2), @a)", "CONCAT"),
    ("RELU - outputs(a=identity)", "outputs needs at least two outputs"),
    ("RELU - outputs(a=identity, b=CONV(2, 1)) - RELU", "outputs(...) must end the network"),
])
def test_mistakes_are_located_with_help(text, message):
    with pytest.raises(cnndsl.CnnDslError) as info:
        check_spec("input 8x8x3\n" + text)
    assert message in str(info.value)
    rendered = info.value.render() if hasattr(info.value, "render") else str(info.value)
    assert "help" in rendered or info.value.help


def test_as_is_reserved_with_a_message():
    with pytest.raises(cnndsl.CnnDslError, match="`as` is a reserved word"):
        check_spec("input 8x8x3\nas = 3\nCONV(as, 1)")


def test_unknown_name_suggests_a_near_one():
    with pytest.raises(CnnNameError) as info:
        check_spec("input 8x8x3\nCONV(4, 1) as skip - concat(@skp, identity)")
    assert "did you mean `@skip`?" in info.value.help


def test_the_language_server_finds_a_named_tensors_definition_and_uses():
    from cnndsl import lsp, lsp_hover

    text = ("input 8x8x3\nCONV(4, 1) as skip - MAXPOOL(2) - UPSAMPLE(size=@skip)\n"
            "  - concat(@skip, identity)\n")
    analysis = lsp.analyze(text, "u.cnn")
    assert not analysis.diagnostics
    at = (2, text.split("\n")[2].index("@skip") + 1)
    assert lsp.definition(analysis, *at) == [(1, 14, 1, 18)]
    first = text.split("\n")[1].index("@skip")
    assert lsp.references(analysis, *at) == [(1, 14, 1, 18), (1, first, 1, first + 5),
                                             (2, 11, 2, 16)]
    hover, _ = lsp_hover.hover(analysis, *at)
    assert hover == "**tensor** `@skip` in the network: 8x8x4"


def test_a_named_tensor_as_a_gates_branch_and_a_chains_start():
    """`gate(@w - SIGMOID)` scales the current tensor by factors read off an earlier one;
    `@w - ...` starts a branch from it. Computed by hand from the compiled model's layers."""
    text = ("input 6x5x2\nCONV(3, 1) as w - CONV(3, 3, pad=1) - gate(@w - SIGMOID)\n"
            "  - add(identity, @w - CONV(3, 1))\n")
    model = cnndsl.compile(text=text, seed=0, flat=True).eval()
    conv1, conv2, conv3 = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    x = torch.randn(2, 2, 6, 5)
    with torch.no_grad():
        w = conv1(x)
        expected = conv2(w) * torch.sigmoid(w) + conv3(w)
        assert torch.allclose(model(x), expected, atol=1e-6)
    assert check_spec(text).uses(next(n for n in check_spec(text) if n.n_params)) == 3
