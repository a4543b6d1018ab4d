"""Issue 19: networks that output images, in the zoo, exact against their references.

torchvision's six segmentation builders (weights=None, weights_backbone=None,
aux_loss=False; `model(x)["out"]` is the output) are checked against torchvision itself: the
parameter count of the model it builds and the multiply-adds its convolutions do (counted
with forward hooks on the meta device), which with the auxiliary FCN head its weights carry
give the weights' published `num_params` and `_ops` (GMACs at the 520x520 resize size); and
the outputs of our compiled spec after torchvision's randomly initialised weights (and
non-trivial batch-norm statistics) are transferred onto it. U-Net is checked against the
sizes of the paper's Figure 1 and against plain PyTorch modules written below.
"""
from __future__ import annotations

from itertools import pairwise

import pytest
import torch
import torchvision
from test_torchvision_oracle import assert_transfer_gives_their_outputs, with_running_statistics
from torch import nn

import cnndsl
from cnndsl import modelzoo
from cnndsl.api import check_spec

# torchvision's segmentation builders the zoo writes, by family spec
FAMILIES = {
    "segmentation_resnet": ["fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50",
                            "deeplabv3_resnet101"],
    "segmentation_mobilenet_v3": ["deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"],
}
BUILDERS = [name for names in FAMILIES.values() for name in names]
# compared output for output in `make test` (a few seconds each); the rest in `make test-long`
REPRESENTATIVES = ["deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"]
RESIZE = 520  # the weights' transforms resize to 520; their `_ops` are at 520x520


def builder(name: str, aux: bool = False, device: str = "cpu") -> nn.Module:
    """torchvision's model, randomly initialised; LR-ASPP has no auxiliary head."""
    kwargs = {} if name.startswith("lraspp") else {"aux_loss": aux}
    with torch.device(device):
        return torchvision.models.get_model(name, weights=None, weights_backbone=None,
                                            **kwargs).eval()


def meta(name: str) -> dict:
    return torchvision.models.get_model_weights(name).DEFAULT.meta


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_macs(model: nn.Module, size: int) -> int:
    """The multiply-adds of a model's convolutions on a size x size input, from the shapes
    its forward pass gives (on the meta device: nothing is computed)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * module.in_channels // module.groups * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.Conv2d)]
    model(torch.empty(1, 3, size, size, device="meta"))
    for handle in handles:
        handle.remove()
    return total


def test_every_builder_resolves_in_the_zoo():
    assert set(BUILDERS) | set(FAMILIES) <= set(modelzoo.names())
    assert set(BUILDERS) <= set(torchvision.models.list_models(
        module=torchvision.models.segmentation))


@pytest.mark.parametrize("name", BUILDERS)
def test_parameters_are_torchvisions(name):
    """Equal to the model torchvision builds without the auxiliary head; with its
    parameters, equal to the weights' num_params (which count the auxiliary head)."""
    graph = check_spec(f"zoo:{name}")
    assert graph.totals["params"] == count(builder(name, device="meta"))
    assert graph.totals["params"] + count(builder(name, aux=True, device="meta")) - count(
        builder(name, device="meta")) == meta(name)["num_params"]
    ours = cnndsl.compile(f"zoo:{name}", device="meta")
    assert count(ours) == graph.totals["params"]


@pytest.mark.parametrize("name", BUILDERS)
def test_macs_are_torchvisions_at_520(name):
    """The convolutions' multiply-adds equal torchvision's at 520x520; with the auxiliary
    head's they round to the weights' `_ops` (GMACs, three decimals)."""
    graph = check_spec(f"zoo:{name}", input=f"{RESIZE}x{RESIZE}x3")
    assert str(graph.totals["output"]) == f"{RESIZE}x{RESIZE}x21"
    assert graph.totals["macs"] == conv_macs(builder(name, device="meta"), RESIZE)
    aux = conv_macs(builder(name, aux=True, device="meta"), RESIZE) - graph.totals["macs"]
    assert round((graph.totals["macs"] + aux) / 1e9, 3) == meta(name)["_ops"]


def check_outputs(name: str, size: int | tuple[int, int]) -> None:
    """Eval mode: our model's output is theirs["out"]. torchvision's state_dict is in the
    order our modules hold it (LR-ASPP's low-resolution classifier, the first operand of
    its sum, before the high one)."""
    h, w = (size, size) if isinstance(size, int) else size
    torch.manual_seed(0)
    theirs = with_running_statistics(builder(name)).eval()
    ours = cnndsl.compile(f"zoo:{name}", input=f"{h}x{w}x3", seed=0).eval()
    assert_transfer_gives_their_outputs(theirs, ours, theirs.state_dict(), (h, w),
                                        (2, 21, h, w), output=lambda y: y["out"])


# 64x64 for every builder; 72x72 where the maps are 9x9 (ResNet) and 5x5 (MobileNet), so that
# the last resize is by a factor that is not a whole number (72/5); 64x96, where the resizes
# (ASPP's pooling branch, LR-ASPP's, the last) go to a size that is not square
OUTPUT_CHECKS = [(name, 64) for name in REPRESENTATIVES] + [
    (name, (64, 96)) for name in REPRESENTATIVES] + [
    pytest.param(name, size, marks=pytest.mark.long) for name, size in
    [*((n, 64) for n in BUILDERS if n not in REPRESENTATIVES), ("fcn_resnet50", 72),
     ("lraspp_mobilenet_v3_large", 72), ("deeplabv3_resnet50", (64, 96))]]


@pytest.mark.slow
@pytest.mark.parametrize("name, size", OUTPUT_CHECKS,
                         ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else None)
def test_outputs_equal_torchvisions(name, size):
    check_outputs(name, size)


# -- the auxiliary heads (aux_loss=True, `-D aux=1`) --------------------------------------------

# torchvision's builders with an auxiliary FCN head (LR-ASPP has none)
AUX = [name for name in BUILDERS if not name.startswith("lraspp")]


@pytest.mark.parametrize("name", AUX)
def test_aux_parameters_are_torchvisions(name):
    """With `-D aux=1`: the parameters of torchvision's model built with aux_loss=True,
    which are the weights' published num_params; two outputs, `out` and `aux`."""
    graph = check_spec(f"zoo:{name}", aux=1)
    assert [output for output, _ in graph.outputs] == ["out", "aux"]
    expected = count(builder(name, aux=True, device="meta"))
    assert graph.totals["params"] == expected == meta(name)["num_params"]
    ours = cnndsl.compile(f"zoo:{name}", aux=1, device="meta")
    assert count(ours) == expected


@pytest.mark.parametrize("name", AUX)
def test_aux_macs_are_the_weights_ops(name):
    graph = check_spec(f"zoo:{name}", aux=1, input=f"{RESIZE}x{RESIZE}x3")
    assert graph.totals["macs"] == conv_macs(builder(name, aux=True, device="meta"), RESIZE)
    assert round(graph.totals["macs"] / 1e9, 3) == meta(name)["_ops"]


def check_aux_outputs(name: str, size: int) -> None:
    """In training mode (batch norm on the batch's statistics, both models' Dropout modules
    in eval mode, so that every output is a function of the weights and input alone) ours
    returns NetOutputs(out, aux), the values of torchvision's {"out": ..., "aux": ...}; in
    eval mode the main output alone, theirs["out"]. torchvision's state_dict (backbone,
    classifier, aux_classifier) is in our modules' order: the auxiliary head after the main
    one, as `outputs(...)` builds it."""
    torch.manual_seed(0)
    theirs = with_running_statistics(builder(name, aux=True))
    ours = cnndsl.compile(f"zoo:{name}", aux=1, input=f"{size}x{size}x3", seed=0)
    report = cnndsl.transfer_weights(theirs.state_dict(), ours, source_name="torchvision")
    assert report.values == sum(v.numel() for v in theirs.state_dict().values())
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    for model in (theirs, ours):
        model.train()
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    assert list(expected) == list(got._fields) == ["out", "aux"]
    for key, g in got._asdict().items():
        e = expected[key]
        assert g.shape == e.shape == (2, 21, size, size)
        assert (g - e).abs().max().item() <= 1e-5 * e.abs().max().item()
    theirs.eval()
    ours.eval()
    with torch.no_grad():
        e, g = theirs(x)["out"], ours(x)
    assert isinstance(g, torch.Tensor)
    assert (g - e).abs().max().item() <= 1e-5 * e.abs().max().item()


@pytest.mark.slow
@pytest.mark.parametrize("name", [
    pytest.param(n, marks=[] if n in REPRESENTATIVES else pytest.mark.long) for n in AUX])
def test_aux_outputs_equal_torchvisions(name):
    check_aux_outputs(name, 64)


# -- U-Net ------------------------------------------------------------------------------------

def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    top, left = (x.shape[2] - size) // 2, (x.shape[3] - size) // 2
    return x[:, :, top:top + size, left:left + size]


class ReferenceUNet(nn.Module):
    """The paper's U-Net written by hand: unpadded 3x3 convolutions with ReLU, 2x2 max
    pooling, 2x2 up-convolutions, the contracting path's maps cropped to the centre and
    concatenated before the expanding path's; padded=True is the common variant
    (milesial/Pytorch-UNet: padding 1, batch norm, no crop)."""

    def __init__(self, channels=1, classes=2, padded=False, base=64):
        super().__init__()
        widths = [base, 2 * base, 4 * base, 8 * base, 16 * base]

        def double(cin, cout):
            if padded:
                return nn.Sequential(
                    nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                    nn.BatchNorm2d(cout), nn.ReLU())
            return nn.Sequential(nn.Conv2d(cin, cout, 3), nn.ReLU(), nn.Conv2d(cout, cout, 3),
                                 nn.ReLU())

        self.down = nn.ModuleList([double(channels, base)] + [
            double(cin, cout) for cin, cout in pairwise(widths)])
        self.up = nn.ModuleList()
        for cin, cout in zip(widths[::-1], widths[-2::-1]):
            self.up.append(nn.ModuleList([nn.ConvTranspose2d(cin, cout, 2, stride=2),
                                          double(cin, cout)]))
        self.out = nn.Conv2d(base, classes, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        skips.pop()
        for (upconv, block), skip in zip(self.up, reversed(skips)):
            x = upconv(x)
            x = block(torch.cat([center_crop(skip, x.shape[2]), x], dim=1))
        return self.out(x)

    def state_in_spec_order(self) -> dict:
        """Ours holds the contracting path's levels 1..5, then the expanding path's 4..1."""
        modules = [*self.down, *(m for pair in self.up for m in pair), self.out]
        return {f"{i}.{k}": v for i, m in enumerate(modules) for k, v in m.state_dict().items()}


# Figure 1: every map's size, down the contracting path (x1 at 568, x2 at 280, x3 at 136,
# x4 at 64), then up the expanding one, each level's up-convolution, crop and concat first
FIGURE_1 = [570, 568, 284, 282, 280, 140, 138, 136, 68, 66, 64, 32, 30, 28,
            56, 56, 56, 54, 52, 104, 104, 104, 102, 100, 200, 200, 200, 198, 196,
            392, 392, 392, 390, 388, 388]


def test_unet_sizes_are_the_papers_figure_1():
    graph = cnndsl.build_graph("zoo:unet")
    sizes = [d["shape"] for _, d in sorted(graph.nodes(data=True))
             if d["kind"] not in ("INPUT", "RELU")]
    assert [s.h for s in sizes] == [s.w for s in sizes] == FIGURE_1
    assert str(graph.graph["totals"]["output"]) == "388x388x2"
    # the skips, up the expanding path: 64 -> 56, 136 -> 104, 280 -> 200, 568 -> 392, each
    # cropped to the up-conv's output
    crops = [str(d["shape"]) for _, d in graph.nodes(data=True) if d["kind"] == "CROP"]
    assert crops == ["56x56x512", "104x104x256", "200x200x128", "392x392x64"]
    concats = [str(d["shape"]) for _, d in graph.nodes(data=True) if d["kind"] == "CONCAT"]
    assert concats == ["56x56x1024", "104x104x512", "200x200x256", "392x392x128"]


@pytest.mark.parametrize("name, padded", [("unet", False), ("unet_padded", True)])
def test_unet_parameters_are_the_references(name, padded):
    reference = ReferenceUNet(3 if padded else 1, padded=padded)
    graph = cnndsl.build_graph(f"zoo:{name}")
    assert graph.graph["totals"]["params"] == count(reference)
    ours = cnndsl.compile(f"zoo:{name}", device="meta")
    theirs = [m.weight for m in reference.modules() if hasattr(m, "weight")]
    assert sorted(p.shape for p in ours.parameters() if p.dim() == 4) == sorted(
        p.shape for p in theirs if p.dim() == 4)


def check_unet(name: str, padded: bool, size: int, base: int = 64) -> None:
    torch.manual_seed(0)
    channels = 3 if padded else 1
    reference = ReferenceUNet(channels, padded=padded, base=base)
    reference = with_running_statistics(reference).eval()
    ours = cnndsl.compile(f"zoo:{name}", input=f"{size}x{size}x{channels}", seed=0,
                          base=base).eval()
    out = size if padded else size - 184  # the valid convolutions take 184 rows off
    assert_transfer_gives_their_outputs(reference, ours, reference.state_in_spec_order(), size,
                                        (2, 2, out, out), channels=channels)


@pytest.mark.slow
@pytest.mark.parametrize("name, padded, size", [("unet", False, 188), ("unet_padded", True, 64)])
def test_unet_outputs_are_the_references(name, padded, size):
    """At a quarter of the widths (`-D base=16`); 188 = 16*4 + 124 is the smallest input
    the valid U-Net takes (4x4 out)."""
    check_unet(name, padded, size, base=16)


@pytest.mark.long
@pytest.mark.parametrize("name, padded, size", [("unet", False, 572), ("unet_padded", True, 64)])
def test_unet_outputs_are_the_references_at_full_width(name, padded, size):
    check_unet(name, padded, size)
