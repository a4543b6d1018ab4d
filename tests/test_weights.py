"""cnndsl.transfer_weights cannot pair modules wrongly without saying so.

A module source is paired by its place in the data flow (torch.fx) and the result checked
against the source's outputs; where modules of equal shapes sit in symmetric places the
outputs decide, and where nothing gives the source's outputs, nothing is copied and
WeightsMismatch says why. The expected outputs are always the source's own (torchvision's or
a hand-written torch module's), never cnndsl's.
"""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import cnndsl
from cnndsl.weights import WeightsMismatch

# NOTES.md item 2: a projection created before a body whose first layers have its shapes
BLOCK = "input 9x9x8\nrounding = floor\nresidual(CONV(16, 1, 2, bias=false) - BN - {act}) - RELU"


class ProjectionFirst(nn.Module):
    """torchvision's RegNet order: `proj` is created (and called) before the body `f`."""

    def __init__(self, act: type[nn.Module] = nn.Tanh):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))
        self.f = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16), act())
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.proj(x) + self.f(x))


class Untraceable(ProjectionFirst):
    """The same network with data-dependent control flow, which torch.fx cannot trace."""

    def forward(self, x):
        if x.sum() > float("inf"):
            return x
        return super().forward(x)


def randomised(model: nn.Module, seed: int = 0, convs: bool = True) -> nn.Module:
    """Non-trivial batch-norm statistics, and (`convs`, for shallow models whose outputs
    stay finite) distinct convolution weights, so that every pairing shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                size = module.running_mean.shape
                module.weight.copy_(0.5 + torch.rand(size, generator=generator))
                module.bias.copy_(torch.randn(size, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(size, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(size, generator=generator))
            elif convs and isinstance(module, nn.Conv2d):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator))
    return model.eval()


def difference(theirs: nn.Module, ours: nn.Module, shape) -> float:
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = theirs.eval()(x), ours.eval()(x)
    return ((got - expected).abs().max() / expected.abs().max()).item()


def state(model: nn.Module) -> dict:
    return {key: value.clone() for key, value in model.state_dict().items()}


def unchanged(model: nn.Module, before: dict) -> bool:
    return all(torch.equal(before[key], value) for key, value in model.state_dict().items())


def test_a_projection_created_before_the_body_is_paired_by_its_place():
    """NOTES.md's reproduction: creation order pairs `proj` with the body (outputs then differ
    by ~1); in the data flow they are two chains of equal shapes from the block's input,
    told apart by what follows them (the body's Tanh), and the outputs confirm it."""
    torch.manual_seed(0)
    theirs = randomised(ProjectionFirst())
    ours = cnndsl.compile(BLOCK.format(act="TANH"), seed=0)
    report = cnndsl.transfer_weights(theirs, ours)
    assert difference(theirs, ours, (8, 9, 9)) == 0
    pairs = {t.source: t.target for t in report.transfers}
    assert pairs == {"f.0": "conv1", "f.1": "bn1", "proj.0": "shortcut.0",
                     "proj.1": "shortcut.1"}
    assert report.pairing == "data flow" and report.check.startswith("outputs agree")
    assert "paired by data flow; outputs agree" in str(report)


def test_the_flat_model_goes_onto_the_class_per_def_one_by_data_flow():
    """make test-long's differential run: `residual(residual(GAP), CONV(1, 1, s=3))` makes the
    inner residual's projection after the written shortcut in the flat model (the shape pass
    inserts it) and before it in the generated classes (the inner block is built first). Two
    1x1 stride-3 convolutions of one shape, on the same input: only the data flow (one with a
    bias, feeding the inner sum) tells them apart."""
    spec = "input 3x3x1\nrounding = floor\nresidual(residual(GAP), CONV(1, 1, s=3, bias=false))\n"
    flat = cnndsl.compile(spec, seed=1, flat=True).eval()
    nested = cnndsl.compile(spec, seed=2).eval()
    assert [n for n, _ in flat.named_parameters()] == ["conv1.weight", "conv2.weight",
                                                       "conv2.bias"]
    assert [n for n, _ in nested.named_parameters()] == ["shortcut.weight", "shortcut.bias",
                                                         "shortcut2.weight"]
    report = cnndsl.transfer_weights(flat, nested)
    assert {t.source: t.target for t in report.transfers} == {"conv1": "shortcut2",
                                                              "conv2": "shortcut"}
    assert difference(flat, nested, (1, 3, 3)) == 0


class Shift(nn.Module):
    """A bias per position, added by an operation torch.fx traces (no leaf module)."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(1, 3, 3))

    def forward(self, x):
        return x + self.bias


class SecondMadeFirst(nn.Module):
    def __init__(self):
        super().__init__()
        self.second, self.first = Shift(), Shift()

    def forward(self, x):
        return self.second(self.first(x))


def test_tensors_added_by_traced_operations_keep_their_place_in_the_flow():
    """`BIAS - BIAS`: each bias is added by an operation torch.fx traces through, so the flow
    of modules had no edge from the first to the second and the two looked interchangeable
    (make test-long's differential run). Creation order would pair `second` with `bias1`;
    the data flow pairs them by place even without the outputs to check."""
    torch.manual_seed(0)
    theirs = SecondMadeFirst()
    ours = generated_model("input 3x3x1\nBIAS - BIAS\n")  # no input shape known to check
    report = cnndsl.transfer_weights(theirs, ours)  # was refused: "same place in the flow"
    assert {t.source: t.target for t in report.transfers} == {"first": "bias1",
                                                              "second": "bias2"}
    assert report.pairing == "data flow" and "input shape is not known" in report.check
    assert difference(theirs, ours, (1, 3, 3)) < 1e-6


def generated_model(spec: str) -> nn.Module:
    """The model of `cnndsl compile -o net.py`'s source, run as a user would import it."""
    from cnndsl.api import check_spec
    from cnndsl.codegen import to_source

    namespace = {"__name__": "generated"}
    exec(compile(to_source(check_spec(spec), class_name="Net"), "<net.py>", "exec"), namespace)
    return namespace["Net"]().eval()


class ClampedBody(ProjectionFirst):
    """The body's activation spelled `clamp(min=0)`: ReLU's values, another operation."""

    def __init__(self):
        super().__init__(act=nn.Identity)

    def forward(self, x):
        return self.relu(self.proj(x) + self.f(x).clamp(min=0))


def test_where_only_the_outputs_tell_symmetric_modules_apart_they_decide():
    torch.manual_seed(0)
    theirs = randomised(ClampedBody())
    ours = cnndsl.compile(BLOCK.format(act="RELU"), seed=0)
    report = cnndsl.transfer_weights(theirs, ours)
    assert difference(theirs, ours, (8, 9, 9)) == 0
    assert {t.source: t.target for t in report.transfers}["proj.0"] == "shortcut.0"
    assert report.pairing.startswith("data flow, with `proj.0`, `proj.1`, `f.0`, `f.1` "
                                     "(equal shapes in symmetric places) told apart by the "
                                     "outputs (2 pairings tried)")


def test_creation_order_alone_would_have_been_wrong():
    """The same transfer from the state_dict (paired in creation order, which cannot be
    checked) gives different outputs: what the module source is protected from."""
    torch.manual_seed(0)
    theirs = randomised(ProjectionFirst())
    ours = cnndsl.compile(BLOCK.format(act="TANH"), seed=0)
    report = cnndsl.transfer_weights(theirs.state_dict(), ours)
    assert report.pairing == "creation order" and report.check.startswith("not checked")
    assert report.transfers[0].source == "proj.0" and report.transfers[0].target == "conv1"
    assert difference(theirs, ours, (8, 9, 9)) > 0.1


def test_when_no_pairing_gives_the_outputs_nothing_is_copied():
    """The body ends in SIGMOID here, the source's in TANH: no pairing of the symmetric
    modules computes the source's outputs, so it raises, naming them, and copies nothing."""
    torch.manual_seed(0)
    theirs = randomised(ProjectionFirst())
    ours = cnndsl.compile(BLOCK.format(act="SIGMOID"), seed=0)
    before = state(ours)
    with pytest.raises(WeightsMismatch) as info:
        cnndsl.transfer_weights(theirs, ours)
    message = str(info.value)
    assert "`proj.0`, `proj.1`, `f.0`, `f.1` have the same shapes" in message
    assert "compute different outputs: they differ by" in message
    assert "nothing was copied (verify=False copies them anyway)" in message
    assert unchanged(ours, before)
    report = cnndsl.transfer_weights(theirs, ours, verify=False)
    assert report.check == "not checked (verify=False)"


def test_a_different_parameter_free_layer_is_a_mismatch():
    """Unambiguous pairing, different function (TANH against RELU): the outputs say so."""
    torch.manual_seed(0)
    theirs = randomised(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Conv2d(4, 2, 1)))
    ours = cnndsl.compile("input 6x6x3\nCONV(4, 3) - RELU - CONV(2, 1)", seed=0)
    before = state(ours)
    with pytest.raises(WeightsMismatch, match="Every module was paired by its place in the "
                                              "data flow, so the networks differ between"):
        cnndsl.transfer_weights(theirs, ours)
    assert unchanged(ours, before)


def test_an_untraceable_source_falls_back_to_creation_order_and_is_checked():
    torch.manual_seed(0)
    theirs = randomised(Untraceable())
    ours = cnndsl.compile(BLOCK.format(act="TANH"), seed=0)
    before = state(ours)
    with pytest.raises(WeightsMismatch) as info:
        cnndsl.transfer_weights(theirs, ours, source_name="the block")
    message = str(info.value)
    assert "paired in creation order because the source cannot be traced by torch.fx" in message
    assert "(a projection before a block's body), they are swapped" in message
    assert unchanged(ours, before)
    # in the model's own order, the fallback pairs and checks it
    same_order = randomised(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1)))
    flat = cnndsl.compile("input 6x6x3\nCONV(4, 3) - RELU - CONV(2, 1)", seed=0)
    report = cnndsl.transfer_weights(same_order, flat)
    assert report.pairing == "creation order, which agrees with the data flow"
    assert difference(same_order, flat, (3, 6, 6)) == 0


def test_a_trailing_softmax_against_logits_still_checks():
    torch.manual_seed(0)
    theirs = randomised(nn.Sequential(nn.Flatten(), nn.Linear(12, 5)))
    ours = cnndsl.compile("input 2x2x3\nFC(5) - SOFTMAX", seed=0)
    report = cnndsl.transfer_weights(theirs, ours)
    assert report.check.startswith("outputs agree")


def test_unknown_input_shape_with_symmetric_modules_is_refused():
    """A model that is not cnndsl's carries no input shape: symmetric modules cannot be told
    apart, so it asks for one rather than guess."""
    torch.manual_seed(0)
    theirs = randomised(ProjectionFirst())
    ours = randomised(ProjectionFirst(), seed=1)
    with pytest.raises(WeightsMismatch, match=r"pass input_shape=\(C, H, W\)"):
        cnndsl.transfer_weights(theirs, ours)
    report = cnndsl.transfer_weights(theirs, ours, input_shape=(8, 9, 9))
    assert difference(theirs, ours, (8, 9, 9)) == 0 and report.check.startswith("outputs agree")


REGNET = """input 224x224x3
classes = 1000
rounding = floor
gw = 8
def cbr(c, k=1, s=1, g=1) = CONV(c, k, s, pad=(k - 1) / 2, groups=g, bias=false) - BN - RELU
def se(squeeze) = gate(GAP - CONV(squeeze, 1) - RELU - CONV(in.c, 1) - SIGMOID)
def f(c, s) = cbr(c) - cbr(c, 3, s, c / gw) - se(round(in.c / 4)) - CONV(c, 1, bias=false) - BN
def proj(c, s) = CONV(c, 1, s, bias=false) - BN
def block(c, s=1) = {block}
def stage(c, n) = block(c, 2) - block(c) * (n - 1)
cbr(32, 3, 2) - stage(48, 1) - stage(104, 3) - stage(208, 6) - stage(440, 6) - GAP - FC(classes)
"""


@pytest.mark.parametrize("block", [
    "if(s == 1 and in.c == c, residual(f(c, s)), residual(f(c, s), proj(c, s))) - RELU",
    "residual(f(c, s)) - RELU",  # the projection residual(...) adds is RegNet's
])
def test_regnet_written_naturally_takes_torchvisions_weights(block):
    """NOTES.md item 1: torchvision's ResBottleneckBlock creates `proj` before `f`; written
    with residual(...), the body comes first, and the data flow pairs them anyway."""
    torch.manual_seed(0)
    theirs = randomised(torchvision.models.regnet_y_400mf(weights=None), convs=False)
    ours = cnndsl.compile(text=REGNET.replace("{block}", block), input="64x64x3", logits=True,
                          seed=0)
    assert sum(p.numel() for p in ours.parameters()) == 4_344_144  # torchvision's count
    report = cnndsl.transfer_weights(theirs, ours, source_name="regnet_y_400mf")
    assert report.pairing == "data flow" and report.check.startswith("outputs agree")
    pairs = {t.source: t.target for t in report.transfers}
    assert pairs["trunk_output.block1.block1-0.proj.0"].startswith("stage1.0.shortcut")
    assert pairs["trunk_output.block1.block1-0.f.a.0"] == "stage1.0.f1.cbr1.conv1"
    assert difference(theirs, ours, (3, 64, 64)) <= 1e-5


def test_equal_shapes_connected_differently_are_refused_by_name():
    """Two 1x1 convolutions in a chain against the same two side by side: creation order
    and shapes agree, the data flow does not."""
    chain = nn.Sequential(nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1))
    ours = cnndsl.compile("input 3x3x4\nadd(CONV(4, 1), CONV(4, 1))", seed=0)
    before = state(ours)
    with pytest.raises(WeightsMismatch) as info:
        cnndsl.transfer_weights(chain, ours, source_name="the chain", verify=False)
    message = str(info.value)
    assert "the chain's modules have the model's shapes in creation order, but they are " \
           "connected differently" in message
    assert "the model's `branch1` (weight 4x4x1x1, bias 4, reading the input) has no " \
           "module of the chain with its shapes in its place" in message
    assert unchanged(ours, before)
    # checked, creation order is tried, and the outputs refuse it
    with pytest.raises(WeightsMismatch, match=r"compute different outputs: they differ by .*"
                                              r"Modules were paired in creation order because "
                                              r"the data flows differ \(the model's `branch1`"):
        cnndsl.transfer_weights(chain, ours, source_name="the chain")
    assert unchanged(ours, before)


class SideBySide(nn.Module):
    """Two 1x1 convolutions summed: not a cnndsl model, so no input shape is known."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.a(x) + self.b(x)


def test_different_data_flows_that_cannot_be_run_are_refused():
    chain = nn.Sequential(nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1))
    ours = SideBySide()
    before = state(ours)
    with pytest.raises(WeightsMismatch, match=r"connected differently: the model's `a` .*"
                                              r"and the outputs cannot be compared here \(the "
                                              r"model's input shape is not known"):
        cnndsl.transfer_weights(chain, ours)
    assert unchanged(ours, before)
