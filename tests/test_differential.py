"""Differential test: cnndsl against networks built by hand with torch.nn.

A hypothesis strategy draws a random network as a small description (layers, chains,
repeats `(X) * N` with N = 0..3, optional `X?`, `concat`/`add` whose branches may repeat the
same operand in any position, `residual` with and without a shortcut projection) and turns it
into BOTH
  (a) the cnndsl spec text, and
  (b) a network built directly with torch.nn from the description (never through cnndsl).
The hand-built network is run as it is built, so every expected shape is PyTorch's real
output shape, every parameter count a real `numel`, and the MACs of CONV/FC come from those
real shapes. Then:
  * cnndsl.build_graph must agree per layer (kind, shape, parameters, MACs) and in total;
  * a spec that PyTorch cannot run (a window larger than its padded input, a merge of
    mismatched shapes, ...) must be refused with the matching error, and a spec PyTorch
    runs must never be refused (with `rounding = floor`);
  * cnndsl.compile(text, seed=0), with the hand-built weights copied in by position, must
    compute the same output; for a subset, so must the generated `.py`.

Windows are drawn per axis (kernel `KxL`, stride `SxT`, padding `PxQ`, dilation `DxE`), often
on square inputs with a square kernel and a non-square stride/padding/dilation (issue 17,
F1); merges often take `identity`, `id`, an empty repeat or a dropped optional layer more than
once (issue 17, F2).

Issue 13's constructs are drawn too, each against torch's or torchvision's own module: SiLU
(Swish), Hardswish, Hardsigmoid, Mish, PReLU (one slope or one per channel), LayerNorm
(torchvision's ConvNeXt LayerNorm2d on volumes), layer scale, stochastic depth (eval: identity;
also at a rate per block, `index(blk)` / `count(blk)`), `gate(...)` (squeeze-and-excitation or
a same-shape branch; an empty branch is refused, as residual's), SPLIT (torch's chunk) and
SHUFFLE (torchvision's channel_shuffle), alone and as ShuffleNet's unit; `def blkN = ...` blocks
called by name and repeated 0 to 3 times, whose sizes and conditions read `in.c`, `in.h`, `in.w`
(the block's input; the network's outside blocks); comparisons joined by `and`/`or`; and
`if(condition, A[, B])`, the condition worked out in Python from the same shape.

Parameter order: both networks register their modules in data-flow order with ties broken by
creation, the spec's layers created in the order the text writes them and the projections a
`residual` adds on its shortcut created after all of them (in the data-flow order of their
`residual`s).
"""
from __future__ import annotations

import heapq

import pytest
import torch
from hypothesis import given, note, reject, settings, strategies as st
import torch.nn.functional as F
from torch import nn

import cnndsl
from cnndsl.api import check_spec
from cnndsl.codegen import to_source
from cnndsl.errors import CnnArgumentError, CnnDslError, CnnShapeError, CnnSyntaxError

from conftest import layers_of

pytestmark = pytest.mark.slow  # hypothesis against hand-built torch; `make test-fast` skips it

RTOL, ATOL = 1e-4, 1e-5
PROJECTION = 1_000_000  # provisional node ids of shortcut projections (renumbered later)


# -- the hand-built network ------------------------------------------------------------------

# The most values one layer of a random network may make per sample, and the most parameters
# in all: repeats of concatenations and upsamplings grow a rare draw past a gigabyte, and
# 10,000 examples of those (`make test-long`) grew the process past 10 GB.
MAX_VALUES = 1_000_000


class Invalid(Exception):
    """PyTorch (or the documented semantics) cannot build or run this network; cnndsl must
    refuse it with `error`."""

    def __init__(self, why: str, error=CnnShapeError):
        super().__init__(why)
        self.error = error


class PosBias(nn.Module):
    """A learned bias per position and channel (the input's own shape)."""

    def __init__(self, shape):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(shape))

    def forward(self, x):
        return x + self.bias


class Node:
    def __init__(self, id, kind, module, inputs, value, flatten=False):
        self.id, self.kind, self.module, self.inputs = id, kind, module, tuple(inputs)
        self.value, self.flatten = value, flatten


def run_node(node: Node, values: list[torch.Tensor]) -> torch.Tensor:
    if node.kind == "CONCAT":
        return torch.cat(values, 1)
    if node.kind == "ADD":
        if len({tuple(v.shape) for v in values}) != 1:  # no broadcasting: equal shapes only
            raise RuntimeError("add of unequal shapes " + str([tuple(v.shape) for v in values]))
        out = values[0]
        for v in values[1:]:
            out = out + v
        return out
    if node.kind == "MUL":  # gate(branch): the input times the branch, value by value or
        main, gate = values  # each map by its channel's factor (1x1xC); no other broadcast
        if gate.shape != main.shape and not (
                main.dim() == 4 and gate.shape[1:] == (main.shape[1], 1, 1)):
            raise RuntimeError(f"gate of {tuple(gate.shape[1:])} on {tuple(main.shape[1:])}")
        return main * gate
    (x,) = values
    if node.flatten and x.dim() > 2:
        x = torch.flatten(x, 1)
    return node.module(x)


class Builder:
    """Builds the network node by node, running each node on a real tensor as it is made."""

    def __init__(self, x: torch.Tensor, drop_optional: bool = False, strict: bool = False):
        self.nodes: dict[int, Node] = {0: Node(0, "INPUT", None, (), x)}
        self.next_id = 1
        self.next_projection = PROJECTION
        self.drop = drop_optional
        self.repeated = False  # a merge takes the same node more than once (issue 17, F2)
        self.strict = strict  # `rounding = strict`: windows must fit exactly
        self.inexact = ""  # the first layer whose window does not fit exactly
        self.ins = [tuple(x.shape[1:])]  # what in.c/in.h/in.w read: the innermost block's input
        self.params = 0  # of the modules made so far

    def shape(self, v):
        return tuple(self.nodes[v].value.shape[1:])

    def add(self, kind, module, inputs, *, flatten=False, projection=False):
        values = [self.nodes[u].value for u in inputs]
        if module is not None:
            module.eval()
        node = Node(None, kind, module, inputs, None, flatten)
        try:
            with torch.no_grad():
                node.value = run_node(node, values)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise Invalid(f"{kind}: {exc}") from None
        if node.value.numel() == 0:  # torch's ConvTranspose2d without bias gives 3x0 maps
            raise Invalid(f"{kind}: an empty output {tuple(node.value.shape[1:])}")
        if module is not None:
            self.params += sum(p.numel() for p in module.parameters())
        if node.value[0].numel() > MAX_VALUES or self.params > MAX_VALUES:
            reject()  # too large to be worth running, here or while a chain probes its shape
        if projection:
            node.id, self.next_projection = self.next_projection, self.next_projection + 1
        else:
            node.id, self.next_id = self.next_id, self.next_id + 1
        self.nodes[node.id] = node
        return node.id

    def layer(self, kind, make, src, *, volume=True, flatten=False):
        x = self.nodes[src].value
        if volume and x.dim() != 4:
            raise Invalid(f"{kind} needs a volume, got {tuple(x.shape[1:])}")
        try:
            module = make(torch.flatten(x, 1) if flatten and x.dim() > 2 else x)
        except (RuntimeError, ValueError) as exc:
            raise Invalid(f"{kind}: {exc}") from None
        return self.add(kind, module, [src], flatten=flatten)

    def order(self) -> list[Node]:
        """Data-flow order, ties broken by creation; projections renumbered after every spec
        node, in the data-flow order of the ADDs they feed."""
        plain = {v: n for v, n in self.nodes.items() if v < PROJECTION}

        def spec_source(u):  # the spec node a projection chain starts from
            while u >= PROJECTION:
                u = self.nodes[u].inputs[0]
            return u

        preds = {v: {spec_source(u) for u in n.inputs} for v, n in plain.items()}
        renumber, fresh = {}, self.next_id
        for v in topo(preds):
            for u in self.nodes[v].inputs:
                chain = []
                while u >= PROJECTION and u not in renumber:
                    chain.append(u)
                    u = self.nodes[u].inputs[0]
                for w in reversed(chain):
                    renumber[w], fresh = fresh, fresh + 1
        ids = {v: renumber.get(v, v) for v in self.nodes}
        preds = {ids[v]: {ids[u] for u in n.inputs} for v, n in self.nodes.items()}
        by_id = {ids[v]: n for v, n in self.nodes.items()}
        return [by_id[v] for v in topo(preds)]


def topo(preds: dict[int, set[int]]) -> list[int]:
    """Kahn's algorithm taking the smallest ready id first."""
    waiting = {v: len(p) for v, p in preds.items()}
    succ: dict[int, list[int]] = {v: [] for v in preds}
    for v, p in preds.items():
        for u in p:
            succ[u].append(v)
    ready = [v for v, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        v = heapq.heappop(ready)
        out.append(v)
        for w in succ[v]:
            waiting[w] -= 1
            if not waiting[w]:
                heapq.heappush(ready, w)
    return out


class HandNet(nn.Module):
    """The hand-built network: torch.nn modules registered in data-flow order, and a forward
    that runs the nodes in that order (torch.cat for CONCAT, + for ADD)."""

    def __init__(self, nodes: list[Node]):
        super().__init__()
        self.nodes = nodes
        self.layers = nn.ModuleList(n.module for n in nodes if n.module is not None)

    def forward(self, x):
        values = {}
        for n in self.nodes:
            values[n.id] = x if n.kind == "INPUT" else run_node(
                n, [values[u] for u in n.inputs])
        return values[self.nodes[-1].id]  # the one sink: every node flows into it


def expected_rows(nodes: list[Node]) -> list[tuple]:
    """(kind, shape C,H,W, parameters, MACs) per node, from the real modules and tensors."""
    rows = []
    values = {n.id: n.value for n in nodes}
    for n in nodes:
        if n.kind == "INPUT":
            continue
        params = sum(p.numel() for p in n.module.parameters()) if n.module is not None else 0
        macs = 0
        if isinstance(n.module, nn.Conv2d):
            m, (_, oc, oh, ow) = n.module, n.value.shape
            kh, kw = m.kernel_size
            macs = oh * ow * oc * kh * kw * (m.in_channels // m.groups)
        elif isinstance(n.module, nn.Linear):
            macs = n.module.in_features * n.module.out_features
        elif isinstance(n.module, nn.ConvTranspose2d):
            # every input value times a kernel window of each of its group's filters
            m, (_, ic, ih, iw) = n.module, values[n.inputs[0]].shape
            kh, kw = m.kernel_size
            macs = ih * iw * ic * kh * kw * (m.out_channels // m.groups)
        rows.append((n.kind, tuple(n.value.shape[1:]), params, macs))
    return rows


# -- descriptions: spec text + how to build them by hand ---------------------------------------

def pair(v, form=0):
    a, b = v
    return f"{a}x{b}" if a != b or form else str(a)


def check_fit(b: Builder, src: int, window, text: str):
    """Under `rounding = strict` a window must fit exactly: (n + 2p - d(k-1) - 1) % s == 0 on
    both axes, unless the layer says round=floor or round=ceil."""
    if not b.strict or window is None or window[4] is not None:
        return
    k, s, p, d, _ = window
    for n, kk, ss, pp, dd in zip(b.shape(src)[1:], k, s, p, d):
        if (n + 2 * pp - dd * (kk - 1) - 1) % ss:
            b.inexact = b.inexact or f"{text} does not fit {b.shape(src)} exactly"


class Layer:
    def __init__(self, text, kind, make, volume=True, flatten=False, window=None):
        self.text, self.kind, self.make = text, kind, make
        self.volume, self.flatten = volume, flatten
        self.window = window  # (kernel, stride, pad, dilation, round) for CONV, DWCONV, POOLs

    def build(self, b: Builder, src: int) -> int:
        out = b.layer(self.kind, self.make, src, volume=self.volume, flatten=self.flatten)
        check_fit(b, src, self.window, self.text)
        return out


class Multi:
    """One written layer that is several nodes (SEPCONV: DWCONV then a 1x1 CONV)."""

    def __init__(self, text, parts, window=None):
        self.text, self.parts, self.window = text, parts, window

    def build(self, b, src):
        first = src
        for kind, make in self.parts:
            src = b.layer(kind, make, src)
        check_fit(b, first, self.window, self.text)
        return src


class Identity:
    def __init__(self, text="identity"):
        self.text = text

    def build(self, b, src):
        return src


class Chain:
    def __init__(self, items):
        self.items = items
        self.text = " - ".join(i.text for i in items)

    def build(self, b, src):
        for item in self.items:
            src = item.build(b, src)
        return src


class Repeat:
    def __init__(self, body, n, form=0):
        self.body, self.n = body, n
        self.text = f"({body.text}) * {n}" if form == 0 else f"{n} * ({body.text})"

    def build(self, b, src):
        for _ in range(self.n):
            src = self.body.build(b, src)
        return src


class Optional:
    def __init__(self, body):
        self.body = body
        self.text = f"({body.text})?" if isinstance(body, (Chain, Repeat)) else f"{body.text}?"

    def build(self, b, src):
        return src if b.drop else self.body.build(b, src)


class Merge:
    def __init__(self, op, branches):
        self.op, self.branches = op, branches
        self.text = f"{op.lower()}({', '.join(br.text for br in branches)})"

    def build(self, b, src):
        outs = [br.build(b, src) for br in self.branches]
        b.repeated |= len(set(outs)) < len(outs)
        return b.add(self.op, None, outs)


def bn_for(x):
    bn = (nn.BatchNorm2d if x.dim() == 4 else nn.BatchNorm1d)(x.shape[1])
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    return bn


class Residual:
    """residual(body[, shortcut]): body + shortcut; when the shapes differ, a written shortcut
    is refused, and the implicit one gets a 1x1 convolution with the body's channels and the
    stride that maps its size to the body's (bias-free and followed by BN when the body has
    a BN), as the docs say and as torchvision's ResNets do."""

    def __init__(self, body, shortcut=None, form=0):
        self.body, self.shortcut = body, shortcut
        if shortcut is None:
            self.text = f"residual({body.text})"
        elif form == 0:
            self.text = f"residual({body.text}, {shortcut.text})"
        else:
            self.text = f"residual({body.text}, shortcut={shortcut.text})"

    def build(self, b, src):
        start = b.next_id
        body = self.body.build(b, src)
        if body == src:
            raise Invalid("the residual body has no layers", CnnArgumentError)
        uses_bn = any(b.nodes[v].kind == "BN" for v in range(start, b.next_id))
        short = src if self.shortcut is None else self.shortcut.build(b, src)
        want, have = b.shape(body), b.shape(short)
        if want != have and self.shortcut is not None:
            # docs/language.md: a written shortcut (`identity` too) gets no projection
            raise Invalid(f"residual: a written shortcut gives {have}, the body {want}")
        if want != have:
            if len(want) != 3 or len(have) != 3:
                raise Invalid(f"residual: {have} + {want}")
            strides = []
            for n, m in zip(have[1:], want[1:]):
                fits = [s for s in range(1, n + 1) if (n - 1) // s + 1 == m]
                if not fits:
                    raise Invalid(f"residual: no 1x1 projection takes {have} to {want}")
                strides.append(fits[0])
            conv = nn.Conv2d(have[0], want[0], 1, stride=tuple(strides), bias=not uses_bn)
            short = b.add("CONV", conv, [short], projection=True)
            if uses_bn:
                short = b.add("BN", bn_for(b.nodes[short].value), [short], projection=True)
        return b.add("ADD", None, [body, short])


# -- drawing descriptions ---------------------------------------------------------------------

NOMINAL = (4, 8, 8)  # the shape assumed where an earlier layer is already invalid


def probe(desc, shape, drop=False):
    """The output shape of desc on an input of `shape` (None: invalid)."""
    if shape is None:
        return None
    b = Builder(torch.zeros(1, *shape), drop)
    try:
        return b.shape(desc.build(b, 0))
    except Invalid:
        return None


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def window(draw, shape, *, pool, keep_hw, wild):
    """(kernel, stride, pad, dilation) per axis, each a pair; often a square kernel with a
    non-square stride, padding or dilation."""
    _, h, w = shape
    ks, ss, ps, ds = [], [], [], []
    for axis, n in enumerate((h, w)):
        if axis == 1 and draw(st.integers(0, 9)) < 6:
            k = ks[0]
        else:
            k = draw(st.integers(1, 5)) if not keep_hw else draw(st.sampled_from([1, 3, 3, 5]))
        if pool:
            d = 1
        elif axis == 1 and draw(st.booleans()):
            d = ds[0]
        else:
            d = draw(st.sampled_from([1, 1, 1, 2, 3]))
        if keep_hw:
            if pool and k % 2 == 0:
                k -= 1
            s, p = 1, d * (k - 1) // 2
            if (d * (k - 1)) % 2:
                d = 1
                p = (k - 1) // 2
        else:
            s = ss[0] if axis == 1 and draw(st.booleans()) else draw(st.integers(1, 3))
            p = ps[0] if axis == 1 and draw(st.booleans()) else draw(st.integers(0, 2))
            if pool and not wild:
                p = min(p, k // 2)
            if not wild:
                while d * (k - 1) + 1 > n + 2 * p:
                    if d > 1:
                        d -= 1
                    else:
                        k -= 1
                if pool:
                    p = min(p, k // 2)
        ks.append(k), ss.append(s), ps.append(p), ds.append(d)
    return tuple(ks), tuple(ss), tuple(ps), tuple(ds)


@st.composite
def dilation_groups_bias(draw, d, g, bias):
    """A convolution's last arguments as a spec may write them (defaults sometimes too)."""
    args = []
    if d != (1, 1) or draw(st.integers(0, 4)) == 4:
        args.append(f"{draw(st.sampled_from(['d', 'dilation']))}={pair(d)}")
    if g != 1 or draw(st.integers(0, 4)) == 4:
        args.append(f"groups={g}")
    if not bias:
        args.append("bias=false")
    return args


@st.composite
def conv_layer(draw, shape, keep_hw, keep_c, wild):
    c = shape[0]
    k, s, p, d = draw(window(shape, pool=False, keep_hw=keep_hw, wild=wild))
    g = draw(st.sampled_from(divisors(c)))
    f = c if keep_c else g * draw(st.integers(1, max(1, 8 // g)))
    if keep_c:
        g = draw(st.sampled_from(divisors(c)))
    if wild and draw(st.booleans()):
        g = draw(st.integers(1, 4))  # may divide neither the channels nor the filters
    cin = None  # in_channels=, PyTorch's spelling: checked against the input
    if draw(st.integers(0, 5)) == 5:
        cin = c + draw(st.sampled_from([0, 0, 1])) if wild else c
    bias = draw(st.booleans())
    args = [str(f), pair(k, draw(st.integers(0, 2)) == 2)]
    if s != (1, 1) or draw(st.booleans()):
        args.append(draw(st.sampled_from(["s=", "stride=", ""])) + pair(s))
    pad_same = all(dd * (kk - 1) % 2 == 0 and pp == dd * (kk - 1) // 2
                   for kk, pp, dd in zip(k, p, d))
    if pad_same and draw(st.integers(0, 3)) == 3:
        args.append("pad=same")
    elif p != (0, 0) or draw(st.booleans()):
        args.append(f"{draw(st.sampled_from(['pad', 'p', 'padding']))}={pair(p)}")
    args += draw(dilation_groups_bias(d, g, bias))
    if cin is not None:
        args.append(f"in_channels={cin}")
    text = f"CONV({', '.join(args)})"
    return Layer(text, "CONV", lambda x: nn.Conv2d(
        cin or x.shape[1], f, k, stride=s, padding=p, dilation=d, groups=g, bias=bias),
        window=(k, s, p, d, None))


@st.composite
def dwconv_layer(draw, shape, keep_hw, keep_c, wild):
    k, s, p, d = draw(window(shape, pool=False, keep_hw=keep_hw, wild=wild))
    m = 1 if keep_c else draw(st.sampled_from([1, 1, 2]))
    bias = draw(st.booleans())
    args = [pair(k)]
    if s != (1, 1) or draw(st.booleans()):
        args.append(f"s={pair(s)}")
    args.append(f"pad={pair(p)}")
    if m != 1:
        args.append(f"m={m}")
    if d != (1, 1):
        args.append(f"d={pair(d)}")
    if not bias:
        args.append("bias=false")
    return Layer(f"DWCONV({', '.join(args)})", "DWCONV", lambda x: nn.Conv2d(
        x.shape[1], x.shape[1] * m, k, stride=s, padding=p, dilation=d, groups=x.shape[1],
        bias=bias), window=(k, s, p, d, None))


@st.composite
def sepconv_layer(draw, shape, keep_hw, keep_c, wild):
    c = shape[0]
    k = (draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 3, 5])))
    if draw(st.booleans()):
        k = (k[0], k[0])
    s = (1, 1) if keep_hw else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    f = c if keep_c else draw(st.integers(1, 8))
    p = ((k[0] - 1) // 2, (k[1] - 1) // 2)
    text = f"SEPCONV({f}, {pair(k)}" + (f", s={pair(s)})" if s != (1, 1) else ")")
    return Multi(text, [
        ("DWCONV", lambda x: nn.Conv2d(x.shape[1], x.shape[1], k, stride=s, padding=p,
                                       groups=x.shape[1])),
        ("CONV", lambda x: nn.Conv2d(x.shape[1], f, 1))], window=(k, s, p, (1, 1), None))


@st.composite
def pool_layer(draw, shape, keep_hw, keep_c, wild):
    kind = draw(st.sampled_from(["MAXPOOL", "AVGPOOL"]))
    k, s, p, _ = draw(window(shape, pool=True, keep_hw=keep_hw, wild=wild))
    ceil = draw(st.booleans())
    rnd = "ceil" if ceil else None
    default_stride = not keep_hw and draw(st.integers(0, 4)) == 4
    if default_stride:
        s = k
    args = [pair(k)]
    if not default_stride:
        args.append(pair(s) if draw(st.booleans()) else f"s={pair(s)}")
    if p != (0, 0) or draw(st.integers(0, 3)) == 3:
        args.append(f"pad={pair(p)}")
    if ceil:
        args.append(draw(st.sampled_from(["round=ceil", "ceil_mode=true"])))
    elif draw(st.integers(0, 3)) == 3:
        args.append("round=floor")
        rnd = "floor"
    if kind == "MAXPOOL":
        make = lambda x: nn.MaxPool2d(k, s, p, ceil_mode=ceil)  # noqa: E731
    else:
        make = lambda x: nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=True)  # noqa
    return Layer(f"{kind}({', '.join(args)})", kind, make, window=(k, s, p, (1, 1), rnd))


@st.composite
def adaptive_layer(draw, shape, keep_hw, keep_c, wild):
    out = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    if draw(st.booleans()):
        out = (out[0], out[0])
    if keep_hw:
        out = shape[1:]
    return Layer(f"ADAPTIVEAVGPOOL({pair(out, draw(st.booleans()))})", "ADAPTIVEAVGPOOL",
                 lambda x: nn.AdaptiveAvgPool2d(out))


# -- layers of networks that output images (issue 19) -----------------------------------------

class CenterCrop(nn.Module):
    """torchvision's center_crop, which pads a window larger than its input: the spec must
    be refused there instead."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, x):
        from torchvision.transforms.functional import center_crop

        if self.size[0] > x.shape[2] or self.size[1] > x.shape[3]:
            raise RuntimeError(f"crop {self.size} of {tuple(x.shape[2:])}")
        return center_crop(x, list(self.size))


class Interpolate(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs

    def forward(self, x):
        return F.interpolate(x, **self.kwargs)


@st.composite
def deconv_layer(draw, shape, keep_hw, keep_c, wild):
    c = shape[0]
    ks, ss, ps, ds, ops = [], [], [], [], []
    for axis in range(2):
        same = axis == 1 and draw(st.integers(0, 9)) < 6
        k = ks[0] if same else draw(st.sampled_from([1, 2, 3, 3, 4]))
        d = ds[0] if same else draw(st.sampled_from([1, 1, 1, 2]))
        if keep_hw:  # W2 = W1 when 2P = D(F - 1) with stride 1
            k = k if k % 2 else k - 1
            s, p, op = 1, d * (k - 1) // 2, 0
        else:
            s = ss[0] if same else draw(st.integers(1, 3))
            p = ps[0] if same else draw(st.integers(0, 2 if wild else 1))
            # output padding below the stride or the dilation (wild: not always)
            op = draw(st.integers(0, max(s, d) - (0 if wild else 1)))
        ks.append(k), ss.append(s), ps.append(p), ds.append(d), ops.append(op)
    k, s, p, d, op = (tuple(v) for v in (ks, ss, ps, ds, ops))
    g = draw(st.sampled_from(divisors(c)))
    f = c if keep_c else g * draw(st.integers(1, max(1, 8 // g)))
    if wild and draw(st.booleans()):
        g = draw(st.integers(1, 4))  # may divide neither the channels nor the filters
    bias = draw(st.booleans())
    name = draw(st.sampled_from(["DECONV", "ConvTranspose2d", "CONVTRANSPOSE", "UPCONV"]))
    args = [str(f), pair(k, draw(st.integers(0, 2)) == 2)]
    if s != (1, 1) or draw(st.booleans()):
        args.append(draw(st.sampled_from(["s=", "stride=", ""])) + pair(s))
    if p != (0, 0) or draw(st.booleans()):
        args.append(f"{draw(st.sampled_from(['pad', 'p', 'padding']))}={pair(p)}")
    if op != (0, 0) or draw(st.integers(0, 3)) == 3:
        args.append(f"{draw(st.sampled_from(['op', 'out_pad', 'output_padding']))}={pair(op)}")
    args += draw(dilation_groups_bias(d, g, bias))
    error = CnnArgumentError if any(o >= a and o >= b for o, a, b in zip(op, s, d)) else None
    return Layer(f"{name}({', '.join(args)})", "DECONV", lambda x: _refuse(error) or
                 nn.ConvTranspose2d(x.shape[1], f, k, stride=s, padding=p, output_padding=op,
                                    groups=g, bias=bias, dilation=d))


def _refuse(error):
    """PyTorch refuses an output padding too large only at the forward; cnndsl at check."""
    if error is not None:
        raise Invalid("output padding not below the stride or the dilation", error)


@st.composite
def upsample_layer(draw, shape, keep_hw, keep_c, wild):
    mode = draw(st.sampled_from(["nearest", "bilinear", "bicubic"]))
    corners = None if mode == "nearest" else draw(st.booleans())
    kwargs = {"mode": mode} if mode == "nearest" else {"mode": mode, "align_corners": corners}
    if keep_hw:
        size = tuple(shape[1:])
        text, kwargs["size"] = f"size={pair(size)}", size
    elif draw(st.booleans()):
        size = (draw(st.integers(1, 16)), draw(st.integers(1, 16)))
        text, kwargs["size"] = f"{draw(st.sampled_from(['size', 'output_size']))}={pair(size)}", \
            size
    else:
        factor = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        kwargs["scale_factor"] = factor
        text = pair(factor) if draw(st.booleans()) else f"scale_factor={pair(factor)}"
    if mode != "nearest" or draw(st.booleans()):
        text += f", mode={mode}"
    if corners or (corners is False and draw(st.booleans())):
        text += f", align_corners={str(corners).lower()}"
    name = draw(st.sampled_from(["UPSAMPLE", "RESIZE", "INTERPOLATE", "Upsample"]))
    return Layer(f"{name}({text})", "UPSAMPLE", lambda x: Interpolate(**kwargs))


@st.composite
def reshape_layer(draw, shape, keep_hw, keep_c, wild):
    numel = int(torch.tensor(shape).prod())
    c = draw(st.sampled_from(divisors(numel)))
    h = draw(st.sampled_from(divisors(numel // c)))
    w = numel // c // h
    if keep_hw or keep_c:
        c, h, w = shape
    if wild and draw(st.booleans()):
        w += 1  # does not multiply out: refused
    text = f"{draw(st.sampled_from(['RESHAPE', 'UNFLATTEN', 'View']))}({h}x{w}x{c})"
    if c == 1 and draw(st.booleans()):
        text = f"RESHAPE({h}x{w})"
    return Layer(text, "RESHAPE", lambda x: nn.Unflatten(1, (c, h, w)), volume=False,
                 flatten=True)


@st.composite
def crop_layer(draw, shape, keep_hw, keep_c, wild):
    _, h, w = shape
    most = 2 if wild else 0
    size = (draw(st.integers(1, h + most)), draw(st.integers(1, w + most)))
    if keep_hw:
        size = (h, w)
    return Layer(f"CROP({pair(size, draw(st.booleans()))})", "CROP",
                 lambda x: CenterCrop(size))


@st.composite
def pad_layer(draw, shape, keep_hw, keep_c, wild):
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    sides = {"top": ph, "bottom": ph, "left": pw, "right": pw}
    args = [pair((ph, pw))] if (ph, pw) != (0, 0) or draw(st.booleans()) else []
    for side in sides:
        if draw(st.integers(0, 3)) == 3:
            sides[side] = draw(st.integers(0, 4 if wild else 2))
            args.append(f"{side}={sides[side]}")
    mode = draw(st.sampled_from(["constant", "constant", "reflect", "replicate", "circular"]))
    value = draw(st.sampled_from([0.0, 0.0, 1.5, -2.0])) if mode == "constant" else 0.0
    if mode != "constant" or draw(st.integers(0, 3)) == 3:
        args.append(f"mode={mode}")
    if value:
        args.append(f"value={value}")
    padding = (sides["left"], sides["right"], sides["top"], sides["bottom"])
    if keep_hw:
        args, padding = ["0"], (0, 0, 0, 0)
    make = {"constant": lambda x: nn.ConstantPad2d(padding, value),
            "reflect": lambda x: nn.ReflectionPad2d(padding),
            "replicate": lambda x: nn.ReplicationPad2d(padding),
            "circular": lambda x: nn.CircularPad2d(padding)}[mode]
    name = draw(st.sampled_from(["PAD", "ZEROPAD", "ZeroPad2d"])) if mode == "constant" and \
        not value else "PAD"
    return Layer(f"{name}({', '.join(args)})", "PAD", make)


@st.composite
def shuffle_layer(draw, shape, keep_hw, keep_c, wild):
    c, h, w = shape
    shuffle = draw(st.booleans())
    fits = [r for r in (1, 2, 3) if (c % (r * r) if shuffle else h % r or w % r) == 0]
    r = draw(st.integers(1, 3)) if wild else draw(st.sampled_from(fits))
    if shuffle:
        args = draw(st.sampled_from([f"{r}", f"r={r}", f"upscale_factor={r}"]))
        return Layer(f"PIXELSHUFFLE({args})", "PIXELSHUFFLE", lambda x: nn.PixelShuffle(r))
    args = draw(st.sampled_from([f"{r}", f"r={r}", f"downscale_factor={r}"]))
    return Layer(f"PIXELUNSHUFFLE({args})", "PIXELUNSHUFFLE", lambda x: nn.PixelUnshuffle(r))


IMAGE_LAYERS = {"deconv": deconv_layer, "upsample": upsample_layer, "reshape": reshape_layer,
                "crop": crop_layer, "pad": pad_layer, "shuffle": shuffle_layer}


POINTWISE = [
    ("RELU", "RELU", lambda x: nn.ReLU(), False),
    ("RELU6", "RELU6", lambda x: nn.ReLU6(), False),
    ("TANH", "TANH", lambda x: nn.Tanh(), False),
    ("SIGMOID", "SIGMOID", lambda x: nn.Sigmoid(), False),
    ("GELU", "GELU", lambda x: nn.GELU(), False),
    ("ELU(0.5)", "ELU", lambda x: nn.ELU(0.5), False),
    ("LEAKYRELU(0.2)", "LEAKYRELU", lambda x: nn.LeakyReLU(0.2), False),
    ("BN", "BN", bn_for, False),
    ("DROPOUT(0.3)", "DROPOUT", lambda x: nn.Dropout(0.3), False),
    ("BIAS", "BIAS", lambda x: PosBias(tuple(x.shape[1:])), False),
    ("LRN(3)", "LRN", lambda x: nn.LocalResponseNorm(3, 1e-4, 0.75, 2.0), True),
    # issue 13's kinds, against torch's and torchvision's own modules
    ("SILU", "SILU", lambda x: nn.SiLU(), False),
    ("SWISH", "SILU", lambda x: nn.SiLU(), False),
    ("HARDSWISH", "HARDSWISH", lambda x: nn.Hardswish(), False),
    ("HSIGMOID", "HARDSIGMOID", lambda x: nn.Hardsigmoid(), False),
    ("MISH", "MISH", lambda x: nn.Mish(), False),
    ("PRELU", "PRELU", lambda x: prelu_for(1, 0.25), False),
    ("PRELU(per_channel=true)", "PRELU", lambda x: prelu_for(x.shape[1], 0.25), False),
    ("PRELU(init=0.1)", "PRELU", lambda x: prelu_for(1, 0.1), False),
    ("LAYERNORM", "LAYERNORM", lambda x: layernorm_for(x, 1e-5), False),
    ("LN(eps=1e-6)", "LAYERNORM", lambda x: layernorm_for(x, 1e-6), False),
    ("LAYERSCALE(0.5)", "LAYERSCALE", lambda x: HandScale(x), False),
    ("DROPPATH(0.3)", "DROPPATH", lambda x: stochastic_depth(0.3), False),
    ("STOCHASTICDEPTH", "DROPPATH", lambda x: stochastic_depth(0.2), False),
]


def prelu_for(n, init):
    m = nn.PReLU(n, init)
    with torch.no_grad():
        m.weight.uniform_(-0.5, 0.5)  # copied onto cnndsl's: a slope other than init
    return m


def layernorm_for(x, eps):
    if x.dim() == 4:
        from torchvision.models.convnext import LayerNorm2d

        m = LayerNorm2d(x.shape[1], eps=eps)
    else:
        m = nn.LayerNorm(x.shape[1], eps=eps)
    with torch.no_grad():
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(-0.5, 0.5)
    return m


class HandScale(nn.Module):
    """A learned factor per channel, as torchvision's CNBlock holds it (C x 1 x 1)."""

    def __init__(self, x):
        super().__init__()
        shape = (x.shape[1], 1, 1) if x.dim() == 4 else (x.shape[1],)
        self.layer_scale = nn.Parameter(torch.rand(shape) + 0.5)

    def forward(self, x):
        return x * self.layer_scale


def stochastic_depth(p):
    from torchvision.ops import StochasticDepth

    return StochasticDepth(p, "row")  # eval: identity


@st.composite
def pointwise_layer(draw, shape):
    vector = shape is not None and len(shape) == 1
    text, kind, make, volume = draw(st.sampled_from(
        [p for p in POINTWISE if not (vector and p[3])]))
    if kind == "BN" and shape is not None and draw(st.booleans()):
        channels = shape[0] + draw(st.sampled_from([0] * 7 + [1]))  # a wrong size: refused
        text = f"{draw(st.sampled_from(['BN', 'BatchNorm2d']))}({channels})"
        def make(x, channels=channels):
            return bn_for(x[:, :1].expand(-1, channels, *x.shape[2:]))
    if kind == "LAYERNORM" and shape is not None and draw(st.integers(0, 2)) == 2:
        channels = shape[0] + draw(st.sampled_from([0] * 5 + [1]))  # a wrong size: refused
        text = f"LAYERNORM({channels})"
        def make(x, channels=channels):
            return layernorm_for(x[:, :1].expand(-1, channels, *x.shape[2:]), 1e-5)
    return Layer(text, kind, make, volume=volume)


@st.composite
def fc_layer(draw, shape):
    units = draw(st.integers(1, 12))
    bias = draw(st.booleans())
    numel = None if shape is None else int(torch.tensor(shape).prod())
    written = None
    if numel is not None and draw(st.integers(0, 3)) == 3:
        written = numel + draw(st.sampled_from([0] * 7 + [1]))  # a wrong size: refused
        text = f"Linear({written}, {units}" + (", bias=false)" if not bias else ")")
    else:
        text = f"FC({units}" + (", bias=false)" if not bias else ")")
    return Layer(text, "FC", lambda x: nn.Linear(written or x.shape[1], units, bias=bias),
                 volume=False, flatten=True)


def relu():
    return Layer("RELU", "RELU", lambda x: nn.ReLU(), volume=False)


@st.composite
def identity_like(draw, drop):
    """A branch that is its input: `identity`, `id`, an empty repeat, a dropped optional."""
    options = [Identity("identity"), Identity("id"), Repeat(relu(), 0),
               Repeat(Chain([Layer("CONV(3, 1)", "CONV", None), Layer("BN", "BN", None)]), 0, 1)]
    if drop:  # drop_optional=True: X? is no layer at all
        options += [Optional(relu()), Optional(Chain([Layer("CONV(2, 3)", "CONV", None),
                                                      relu()]))]
    return draw(st.sampled_from(options))


# -- issue 13: gate, SPLIT, SHUFFLE, in.c/in.h/in.w, comparisons and if(...) ------------------

class Gate:
    """gate(branch): its input times the branch's output (squeeze-and-excitation)."""

    def __init__(self, branch):
        self.branch = branch
        self.text = f"gate({branch.text})"

    def build(self, b, src):
        out = self.branch.build(b, src)
        if out == src:  # as residual's body: x * x is refused, not a typo's silent square
            raise Invalid("the gate's branch has no layers", CnnArgumentError)
        return b.add("MUL", None, [src, out])


class ChannelSplit(nn.Module):
    """torch's x.chunk(of, 1)[part - 1], refused where the parts are unequal (the docs)."""

    def __init__(self, part, of):
        super().__init__()
        self.part, self.of = part, of

    def forward(self, x):
        if x.shape[1] % self.of:
            raise RuntimeError(f"{x.shape[1]} channels in {self.of} unequal parts")
        return x.chunk(self.of, 1)[self.part - 1]


class ChannelShuffle(nn.Module):
    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        from torchvision.models.shufflenetv2 import channel_shuffle

        return channel_shuffle(x, self.groups)


@st.composite
def split_layer(draw, shape, wild):
    c = shape[0] if shape is not None else 4
    fits = [n for n in (1, 2, 3, 4) if c % n == 0]
    of = draw(st.integers(1, 4)) if wild else draw(st.sampled_from(fits))
    part = draw(st.integers(1, of))
    text = draw(st.sampled_from([f"SPLIT({part}, {of})", f"SPLIT({part}, of={of})",
                                 f"CHUNK(part={part}, of={of})"] +
                                ([f"SPLIT({part})"] if of == 2 else [])))
    return Layer(text, "SPLIT", lambda x: ChannelSplit(part, of), volume=False)


@st.composite
def channel_shuffle_layer(draw, shape, wild):
    fits = [g for g in (1, 2, 3, 4) if shape[0] % g == 0]
    g = draw(st.integers(1, 4)) if wild else draw(st.sampled_from(fits))
    text = draw(st.sampled_from([f"SHUFFLE({g})", f"SHUFFLE(groups={g})",
                                 f"CHANNELSHUFFLE({g})"] + (["SHUFFLE"] if g == 2 else [])))
    return Layer(text, "SHUFFLE", lambda x: ChannelShuffle(g))


@st.composite
def gate_item(draw, shape, depth, ctx):
    """gate(SE branch) with literal widths, gate(identity-like), or gate(a same-shape chain)."""
    kind = draw(st.sampled_from(["se", "se", "same", "identity"]))
    if kind == "identity":
        return Gate(draw(identity_like(ctx["drop"])))
    if kind == "same" or shape is None or len(shape) != 3:
        return Gate(draw(chain(shape, depth + 1, ctx, keep_hw=True, keep_c=True, max_size=2)))
    c = shape[0] + (draw(st.sampled_from([0] * 7 + [1])) if ctx["wild"] else 0)
    q = draw(st.integers(1, max(1, c)))
    act = draw(st.sampled_from(["RELU", "SILU", "HARDSWISH"]))
    squash = draw(st.sampled_from(["SIGMOID", "HARDSIGMOID"]))
    acts = {"RELU": nn.ReLU, "SILU": nn.SiLU, "HARDSWISH": nn.Hardswish,
            "SIGMOID": nn.Sigmoid, "HARDSIGMOID": nn.Hardsigmoid}
    squeeze = Layer(f"CONV({q}, 1)", "CONV", lambda x: nn.Conv2d(x.shape[1], q, 1))
    excite = Layer(f"CONV({c}, 1)", "CONV", lambda x: nn.Conv2d(x.shape[1], c, 1))
    if draw(st.booleans()):  # widths from in.c: the block's input (the network's outside)
        squeeze = InLayer("CONV(max(1, floor(in.c / 4)), 1)", "CONV", "max(1, c // 4)",
                          lambda x, n: nn.Conv2d(x.shape[1], n, 1))
        excite = InLayer("CONV(in.c, 1)", "CONV", "c", lambda x, n: nn.Conv2d(x.shape[1], n, 1))
    return Gate(Chain([
        Layer("GAP", "GAP", lambda x: nn.AdaptiveAvgPool2d(1)), squeeze,
        Layer(act, act, lambda x: acts[act]()), excite,
        Layer(squash, squash, lambda x: acts[squash]())]))


@st.composite
def shuffle_unit(draw, shape, depth, ctx):
    """ShuffleNet v2's unit: concat(SPLIT(1), SPLIT(2) - branch) - SHUFFLE(2), with other
    part counts and the parts in either order."""
    c = shape[0] if shape is not None else 4
    of = draw(st.sampled_from([n for n in (2, 2, 3) if c % n == 0] or [2]))
    half = probe(Layer("SPLIT(1)", "SPLIT", lambda x: ChannelSplit(1, of), volume=False),
                 shape)
    branch = draw(chain(half, depth + 1, ctx, keep_hw=True, keep_c=True, max_size=3))
    parts = [Layer(f"SPLIT({k}, {of})", "SPLIT", lambda x, k=k: ChannelSplit(k, of),
                   volume=False) for k in range(1, of + 1)]
    parts[-1] = Chain([parts[-1], branch])
    if draw(st.booleans()):
        parts.reverse()
    g = draw(st.sampled_from([1, of]))
    return Chain([Merge("CONCAT", parts),
                  Layer(f"SHUFFLE({g})", "SHUFFLE", lambda x: ChannelShuffle(g))])


class Missing:
    """in.h or in.w of a vector: reading it is an error (cnndsl: a located one)."""

    def _fail(self, *args):
        raise Invalid("a vector has no height or width", CnnArgumentError)

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _fail
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __floordiv__ = _fail
    __hash__ = None


def read_in(shape):
    """The values in.c, in.h, in.w give for a block's input shape."""
    if len(shape) == 3:
        return {"c": shape[0], "h": shape[1], "w": shape[2]}
    return {"c": shape[0], "h": Missing(), "w": Missing()}


@st.composite
def in_number(draw, volume):
    """A whole number >= 1 written with in.c/in.h/in.w, and how to work it out: Python's
    expression over c, h, w (the same precedence and short-circuiting as the spec's)."""
    fields = ["c", "c", "h", "w"] if volume else ["c"]
    f = draw(st.sampled_from(fields))
    form = draw(st.integers(0, 5))
    if form == 0:
        return f"in.{f}", f
    if form == 1:
        m = draw(st.integers(2, 3))
        return f"in.{f} * {m}", f"{f} * {m}"
    if form == 2:
        d = draw(st.integers(0, 3))
        return f"in.{f} + {d}", f"{f} + {d}"
    if form == 3:
        return f"max(1, floor(in.{f} / 2))", f"max(1, {f} // 2)"
    if form == 4:  # a comparison is a number too
        g = draw(st.sampled_from(fields))
        return f"in.{f} + (in.{g} >= 3)", f"{f} + int({g} >= 3)"
    g = draw(st.sampled_from(fields))
    return f"if(in.{f} > in.{g}, in.{f}, in.{g} + 1)", f"({f} if {f} > {g} else {g} + 1)"


class InLayer:
    """A layer whose size is written with in.c/in.h/in.w: CONV(in.c * 2, 1), FC(in.h + 1)."""

    def __init__(self, template, kind, python, make, volume=True, flatten=False):
        self.template, self.kind, self.python = template, kind, python
        self.make, self.volume, self.flatten = make, volume, flatten
        self.text = template

    def build(self, b, src):
        n = eval(self.python, {"max": max, "int": int}, read_in(b.ins[-1]))
        if isinstance(n, Missing):  # a bare in.h of a vector, no arithmetic to refuse it
            n._fail()
        return b.layer(self.kind, lambda x: self.make(x, n), src, volume=self.volume,
                       flatten=self.flatten)


@st.composite
def in_layer(draw, shape, fc):
    volume = shape is None or len(shape) == 3
    expr, python = draw(in_number(draw(st.booleans()) or volume))
    if fc:
        return InLayer(f"FC({expr})", "FC", python,
                       lambda x, n: nn.Linear(x.shape[1], n), volume=False, flatten=True)
    k = draw(st.sampled_from([1, 3]))
    return InLayer(f"CONV({expr}, {k}, pad={k // 2})", "CONV", python,
                   lambda x, n: nn.Conv2d(x.shape[1], n, k, padding=k // 2))


class Block:
    """`def blkN = body`, called by name: in.c/in.h/in.w inside read the call's input."""

    def __init__(self, name, body, ctx):
        self.body, self.text = body, name
        ctx["defs"].append(f"def {name} = {body.text}")

    def build(self, b, src):
        b.ins.append(b.shape(src))
        try:
            return self.body.build(b, src)
        finally:
            b.ins.pop()


@st.composite
def condition(draw, volume):
    """A comparison, or two or three joined by `and`/`or`, on in.c/in.h/in.w and numbers."""
    texts, pythons = [], []
    for i in range(draw(st.integers(1, 3))):
        if i:
            op = draw(st.sampled_from(["and", "or"]))
            texts.append(op), pythons.append(op)
        left, pl = draw(in_number(volume)) if draw(st.integers(0, 4)) else ("2", "2")
        cmp = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
        right = draw(st.integers(1, 8))
        texts.append(f"{left} {cmp} {right}"), pythons.append(f"({pl}) {cmp} {right}")
    return " ".join(texts), " ".join(pythons)


class If:
    """if(condition, then[, else]): the branch the block's input chooses; no else: identity."""

    def __init__(self, cond, python, then, other):
        self.cond, self.python, self.then, self.other = cond, python, then, other
        self.text = f"if({cond}, {then.text}" + (f", {other.text})" if other else ")")

    def build(self, b, src):
        holds = eval(self.python, {"max": max, "int": int}, read_in(b.ins[-1]))
        branch = self.then if holds else self.other
        return src if branch is None else branch.build(b, src)


@st.composite
def if_item(draw, shape, depth, ctx, keep_hw, keep_c):
    volume = shape is None or len(shape) == 3
    cond, python = draw(condition(draw(st.integers(0, 5)) == 5 or volume))
    then = draw(chain(shape, depth + 1, ctx, keep_hw=keep_hw, keep_c=keep_c, max_size=2))
    other = None if draw(st.booleans()) else draw(
        chain(shape, depth + 1, ctx, keep_hw=keep_hw, keep_c=keep_c, max_size=2))
    return If(cond, python, then, other)


@st.composite
def block_item(draw, shape, depth, ctx, keep_hw, keep_c):
    ctx["blocks"][0] += 1
    name = f"blk{ctx['blocks'][0]}"
    inner = dict(ctx, block=name)
    body = draw(chain(shape, depth + 1, inner, keep_hw=keep_hw, keep_c=keep_c, max_size=3))
    if draw(st.integers(0, 2)) == 2:  # an if(...) as the whole body reads the block's input
        body = draw(if_item(shape, depth + 1, inner, keep_hw, keep_c))
    block = Block(name, body, ctx)
    n = draw(st.sampled_from([None, None, 0, 1, 2, 3]))
    return block if n is None else Repeat(block, n, draw(st.integers(0, 1)))


@st.composite
def item(draw, shape, depth, ctx, keep_hw=False, keep_c=False):
    """One element of a chain, drawn to suit `shape` (C,H,W or N; None: unknown)."""
    wild = ctx["wild"]
    vector = shape is not None and len(shape) == 1
    vol = NOMINAL if shape is None or vector else shape
    choices = ["pointwise"] * 3
    if not vector or shape is None:
        choices += ["conv"] * 4 + ["pool"] * 3 + ["dwconv", "sepconv", "deconv"]
        if not keep_hw and not keep_c:
            choices += ["upsample", "crop", "pad", "shuffle"]
    if shape is not None and not keep_hw and not keep_c:
        choices += ["reshape"]
        if not keep_hw:
            choices += ["adaptive"]
        if not keep_hw and not keep_c:
            choices += ["gap"]
    if depth < 2:
        choices += ["add", "residual", "repeat", "optional"] + ([] if keep_c else ["concat"])
        choices += ["gate", "block", "block", "if"]
        if not vector and not keep_hw:
            choices += ["unit"]
    if not keep_hw and not keep_c and depth == 0:
        choices += ["fc"]
    if not keep_c:
        choices += ["split"] + (["in"] if not vector or shape is None else [])
    if not vector or shape is None:
        choices += ["chshuffle"]
    if ctx["block"] is not None:
        choices += ["ramp"]
    choice = draw(st.sampled_from(choices))
    if choice == "gate":
        return draw(gate_item(shape, depth, ctx))
    if choice == "unit":
        return draw(shuffle_unit(shape, depth, ctx))
    if choice == "block":
        return draw(block_item(shape, depth, ctx, keep_hw, keep_c))
    if choice == "if":
        return draw(if_item(shape, depth, ctx, keep_hw, keep_c))
    if choice == "split":
        return draw(split_layer(shape, ctx["wild"]))
    if choice == "chshuffle":
        return draw(channel_shuffle_layer(vol, ctx["wild"]))
    if choice == "ramp":  # stochastic depth per block: identity in eval, no parameters
        p = draw(st.sampled_from(["0.3", "0.5"]))
        return Layer(f"DROPPATH({p} * index({ctx['block']}) / count({ctx['block']}))",
                     "DROPPATH", lambda x: stochastic_depth(0.0), volume=False)
    if choice == "in":
        return draw(in_layer(shape, fc=not keep_hw and depth == 0 and draw(st.booleans())))
    if choice == "pointwise":
        return draw(pointwise_layer(shape))
    if choice in IMAGE_LAYERS:
        return draw(IMAGE_LAYERS[choice](vol if choice != "reshape" else shape, keep_hw,
                                         keep_c, wild))
    if choice == "conv":
        return draw(conv_layer(vol, keep_hw, keep_c, wild))
    if choice == "dwconv":
        return draw(dwconv_layer(vol, keep_hw, keep_c, wild))
    if choice == "sepconv":
        return draw(sepconv_layer(vol, keep_hw, keep_c, wild))
    if choice == "pool":
        return draw(pool_layer(vol, keep_hw, keep_c, wild))
    if choice == "adaptive":
        return draw(adaptive_layer(vol, keep_hw, keep_c, wild))
    if choice == "gap":
        return Layer(draw(st.sampled_from(["GAP", "GLOBALAVGPOOL"])), "GAP",
                     lambda x: nn.AdaptiveAvgPool2d(1))
    if choice == "fc":
        return draw(fc_layer(shape))
    if choice in ("concat", "add"):
        n = draw(st.integers(2, 4))
        branches = []
        for _ in range(n):
            if draw(st.integers(0, 9)) < 4:
                branches.append(draw(identity_like(ctx["drop"])))
            else:
                branches.append(draw(chain(shape, depth + 1, ctx, keep_hw=not wild,
                                           keep_c=keep_c or (choice == "add" and not wild),
                                           max_size=2)))
        return Merge(choice.upper(), branches)
    if choice == "residual":
        body = draw(chain(shape, depth + 1, ctx, keep_hw=keep_hw, keep_c=keep_c, max_size=3))
        if draw(st.integers(0, 3)):
            return Residual(body)
        out = probe(body, shape, ctx["drop"])
        form = draw(st.integers(0, 1))
        if out is None or out == shape or shape is None or len(out) != 3 or len(shape) != 3:
            return Residual(body, draw(identity_like(ctx["drop"])), form)
        strides = []
        for n, m in zip(shape[1:], out[1:]):
            fits = [s for s in range(1, n + 1) if (n - 1) // s + 1 == m] or [1]
            strides.append(fits[0])
        strides = tuple(strides)
        short = Layer(f"CONV({out[0]}, 1, s={pair(strides)}, bias=false)", "CONV",
                      lambda x: nn.Conv2d(x.shape[1], out[0], 1, stride=strides, bias=False),
                      window=((1, 1), strides, (0, 0), (1, 1), None))
        if draw(st.booleans()):
            short = Chain([short, Layer("BN", "BN", bn_for)])
        return Residual(body, short, form)
    if choice == "repeat":
        body = draw(chain(shape, depth + 1, ctx, keep_hw=keep_hw, keep_c=keep_c, max_size=2))
        return Repeat(body, draw(st.sampled_from([0, 1, 2, 3])), draw(st.integers(0, 3)) // 3)
    body = draw(item(shape, depth + 1, ctx, keep_hw=keep_hw, keep_c=keep_c))
    return Optional(body)


@st.composite
def chain(draw, shape, depth, ctx, keep_hw=False, keep_c=False, max_size=4):
    items = []
    for _ in range(draw(st.integers(1, max_size))):
        it = draw(item(shape, depth, ctx, keep_hw=keep_hw, keep_c=keep_c))
        items.append(it)
        shape = probe(it, shape, ctx["drop"])
    return items[0] if len(items) == 1 else Chain(items)


class Case:
    def __init__(self, text, drop, net=None, rows=None, x=None, error=None, why="",
                 repeated=False):
        self.text, self.drop, self.net, self.rows, self.x = text, drop, net, rows, x
        self.error, self.why, self.repeated = error, why, repeated

    def __repr__(self):
        extra = ", drop_optional=True" if self.drop else ""
        verdict = f"torch refuses: {self.why}" if self.error else "torch runs it"
        return f"Case({self.text!r}{extra})  # {verdict}"


@st.composite
def cases(draw):
    h = draw(st.integers(3, 12))
    w = h if draw(st.integers(0, 9)) < 6 else draw(st.integers(3, 12))
    c = draw(st.integers(1, 4))
    # Rare variants are drawn as the high end of a range: hypothesis shrinks towards 0, so a
    # falsifying example comes out in the plain variant when that still fails.
    ctx = {"wild": draw(st.integers(0, 9)) == 9, "drop": draw(st.integers(0, 5)) == 5,
           "defs": [], "blocks": [0], "block": None}
    strict = draw(st.integers(0, 5)) == 5  # else `rounding = floor`, PyTorch's rule
    shape = (h * c,) if draw(st.integers(0, 11)) == 11 else (c, h, w)  # sometimes a vector
    net = draw(chain(shape, 0, ctx, max_size=5))
    rounding = draw(st.sampled_from(["", "rounding = strict\n"])) if strict else \
        "rounding = floor\n"
    size = "x".join(map(str, shape[1:] + shape[:1]))
    defs = "".join(d + "\n" for d in ctx["defs"])
    text = f"input {size}\n{rounding}{defs}{net.text}\n"
    x = torch.randn(2, *shape)
    b = Builder(x, ctx["drop"], strict)
    try:
        out = net.build(b, 0)
        if out == 0:
            raise Invalid("the network has no layers", CnnSyntaxError)
        if b.inexact:
            raise Invalid(b.inexact)
    except Invalid as exc:
        return Case(text, ctx["drop"], error=exc.error, why=str(exc), repeated=b.repeated)
    nodes = b.order()
    hand = HandNet(nodes).eval()
    assert nodes[-1].id == out
    return Case(text, ctx["drop"], hand, expected_rows(nodes), x, repeated=b.repeated)


# -- the comparisons --------------------------------------------------------------------------

def cnndsl_model(case):
    """The flat model, whose modules follow the graph's order as the hand-built one does (a
    class per def nests an inner residual's projection inside its block, before an outer
    written shortcut; tests/test_structure.py checks that form against this one)."""
    if not case.drop:
        return cnndsl.compile(case.text, seed=0, flat=True).eval()
    from cnndsl.torch_backend import to_module

    return to_module(check_spec(case.text, drop_optional=True), flat=True).eval()


def copy_weights(src: nn.Module, dst: nn.Module, text: str):
    """Parameters, then buffers, by position: both modules create them in data-flow order."""
    for what in ("parameters", "buffers"):
        mine, theirs = list(getattr(src, what)()), list(getattr(dst, what)())
        assert [tuple(t.shape) for t in mine] == [tuple(t.shape) for t in theirs], \
            f"{what} differ in shape or order for\n{text}"
        with torch.no_grad():
            for a, b in zip(mine, theirs):
                b.copy_(a)


def check_static(case):
    if case.error is not None:
        with pytest.raises(CnnDslError) as info:
            cnndsl.build_graph(case.text, drop_optional=case.drop)
        # cnndsl reports what the expander finds (an empty residual body) before any shape,
        # so a spec with both kinds of fault may be refused for the earlier one
        assert isinstance(info.value, case.error) or (
            not isinstance(info.value, CnnShapeError) and case.error is CnnShapeError), (
            f"expected {case.error.__name__}, got {info.value!r}\n{case.text}")
        return None
    graph = cnndsl.build_graph(case.text, drop_optional=case.drop)  # torch runs it: no refusal
    got = [(d["kind"], tuple(d["shape"].as_list()), d["n_params"], d["macs"])
           for d in layers_of(graph)]
    names = [d["name"] for d in layers_of(graph)]
    for i, (g, e) in enumerate(zip(got, case.rows)):
        assert g == e, (f"layer {i + 1} ({names[i]}): cnndsl (kind, C/H/W, params, MACs) "
                        f"{g}, PyTorch {e}\n{case.text}")
    assert len(got) == len(case.rows), (f"cnndsl has {len(got)} layers, PyTorch "
                                        f"{len(case.rows)}:\n{got}\n{case.rows}\n{case.text}")
    totals = graph.graph["totals"]
    y = case.net(case.x)
    assert tuple(totals["output"].as_list()) == tuple(y.shape[1:]), case.text
    assert totals["params"] == sum(p.numel() for p in case.net.parameters()), case.text
    assert totals["macs"] == sum(r[3] for r in case.rows), case.text
    running = sum(t.numel() for n, t in case.net.named_buffers() if "running" in n)
    assert totals["buffers"] == running, case.text
    return y


def assert_same_output(expected, model, case, what):
    with torch.no_grad():
        got = model(case.x.clone())
    assert got.shape == expected.shape, f"{what}: {tuple(got.shape)} vs {tuple(expected.shape)}"
    assert torch.allclose(got, expected, rtol=RTOL, atol=ATOL), \
        f"{what}: max difference {(got - expected).abs().max().item():g}\n{case.text}"


@given(cases())
def test_cnndsl_agrees_with_a_hand_built_torch_network(case):
    note(case.text)
    with torch.no_grad():
        y = check_static(case)
    if y is None:
        return
    model = cnndsl_model(case)
    copy_weights(case.net, model, case.text)
    assert_same_output(y, model, case, "compiled model")


# A fifth of the default profile's examples (40), a tenth of the long one's (1,000): writing,
# compiling and running the source costs about as much as the rest of the check.
@settings(max_examples=max(40, settings().max_examples // 10))
@given(cases())
def test_generated_source_agrees_with_a_hand_built_torch_network(case):
    note(case.text)
    with torch.no_grad():
        y = check_static(case)
    if y is None:
        return
    graph = check_spec(case.text, drop_optional=case.drop)
    namespace = {"__name__": "cnndsl_generated"}
    exec(compile(to_source(graph, class_name="Generated"), "<generated>", "exec"), namespace)
    model = namespace["Generated"]().eval()
    # The source's modules follow its classes, not the graph: an inner residual's projection
    # comes before an outer written shortcut (`residual(residual(GAP), CONV(1, 1, s=3))`),
    # so the hand-built weights go to the flat model by order, and from it to the source's
    # model by data flow (transfer_weights, which checks the two agree)
    flat = cnndsl_model(case)
    copy_weights(case.net, flat, case.text)
    cnndsl.transfer_weights(flat, model, input_shape=tuple(case.x.shape[1:]))
    assert_same_output(y, model, case, "generated .py")
