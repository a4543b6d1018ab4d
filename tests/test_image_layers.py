"""Layers for networks that output images (issue 19): DECONV, UPSAMPLE, RESHAPE, CROP, PAD,
PIXELSHUFFLE and PIXELUNSHUFFLE compute what torch computes, say their arithmetic, and
refuse what torch would refuse with the numbers. tests/test_registry_torch.py checks their
shapes and parameter counts against torch for every argument; here, their values."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnndsl
from cnndsl.api import check_spec
from cnndsl.cli import main
from cnndsl.codegen import to_source
from cnndsl.errors import CnnArgumentError, CnnDslError, CnnNameError, CnnShapeError
from cnndsl.layers.spelling import opposite


def run(text: str, x: torch.Tensor) -> torch.Tensor:
    model = cnndsl.compile(text, seed=0).eval()
    with torch.no_grad():
        return model(x)


def only_module(model: nn.Module) -> nn.Module:
    (module,) = [m for m in model.children()]
    return module


# -- transposed convolution --------------------------------------------------------------------

@pytest.mark.parametrize("args, torch_kwargs", [
    ("6, 2, s=2", dict(kernel_size=2, stride=2)),
    ("6, 3x2, s=2x3, pad=1x0, op=1x2, groups=2, d=1x2",
     dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2,
          dilation=(1, 2))),
    ("6, 4, s=2, pad=1, bias=false", dict(kernel_size=4, stride=2, padding=1, bias=False)),
])
def test_deconv_computes_conv_transpose2d(args, torch_kwargs):
    text = f"input 5x7x4\nConvTranspose2d({args})"
    reference = nn.ConvTranspose2d(4, 6, **torch_kwargs)
    model = cnndsl.compile(text, seed=0).eval()
    layer = only_module(model)
    assert isinstance(layer, nn.ConvTranspose2d)
    layer.load_state_dict(reference.state_dict())
    x = torch.randn(2, 4, 5, 7)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    assert cnndsl.build_graph(text).graph["totals"]["params"] == sum(
        p.numel() for p in reference.parameters())


def test_unet_up_convolution_doubles_the_size_and_halves_the_channels():
    # U-Net: "a 2x2 convolution ("up-convolution") that halves the number of feature
    # channels"; in the paper's figure 28x28x1024 becomes 56x56x512.
    graph = cnndsl.build_graph("input 28x28x1024\nDECONV(512, 2, s=2)")
    reference = nn.ConvTranspose2d(1024, 512, 2, stride=2)
    out = reference(torch.zeros(1, 1024, 28, 28))
    assert graph.graph["totals"]["output"].as_list() == list(out.shape[1:]) == [512, 56, 56]
    assert graph.graph["totals"]["params"] == sum(p.numel() for p in reference.parameters())


def test_deconv_macs_are_input_values_times_kernel_times_filters():
    # each of the 7*7*8 input values is multiplied into a 3x3 window of each of 4 filters
    graph = cnndsl.build_graph("input 7x7x8\nDECONV(4, 3, s=2)")
    (node,) = [d for _, d in graph.nodes(data=True) if d["kind"] == "DECONV"]
    assert node["macs"] == 7 * 7 * 8 * 3 * 3 * 4


# -- upsampling ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, interpolate", [
    ("", dict(scale_factor=2)),
    ("3", dict(scale_factor=3, mode="nearest")),
    ("2x3, mode=bilinear", dict(scale_factor=(2, 3), mode="bilinear", align_corners=False)),
    ("8, mode=bilinear, align_corners=true",
     dict(scale_factor=8, mode="bilinear", align_corners=True)),
    ("size=11x4, mode=bilinear", dict(size=(11, 4), mode="bilinear", align_corners=False)),
    ("size=9x13", dict(size=(9, 13))),
    ("scale_factor=2, mode=bicubic, align_corners=true",
     dict(scale_factor=2, mode="bicubic", align_corners=True)),
])
def test_upsample_computes_interpolate(args, interpolate):
    x = torch.randn(2, 3, 5, 6)
    got = run(f"input 5x6x3\nUPSAMPLE({args})" if args else "input 5x6x3\nUPSAMPLE", x)
    assert torch.equal(got, F.interpolate(x, **interpolate))


def test_fcn_head_upsamples_28x28_to_224x224():
    # torchvision's fcn_resnet50 ends in F.interpolate(x, size=input_shape, mode="bilinear",
    # align_corners=False): 28x28x21 -> 224x224x21
    x = torch.randn(1, 21, 28, 28)
    for spelling in ("UPSAMPLE(8, mode=bilinear)", "RESIZE(size=224, mode=bilinear)",
                     "INTERPOLATE(size=224x224, mode=bilinear)"):
        got = run(f"input 28x28x21\n{spelling}", x)
        expected = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        assert torch.allclose(got, expected, atol=1e-6), spelling


def test_deeplab_image_pooling_is_writable_with_a_size():
    # ASPP's pooling branch: GAP -> 1x1 conv -> BN -> ReLU -> back to HxW, concatenated
    graph = cnndsl.build_graph(
        "input 28x28x2048\nconcat(CONV(256, 1, bias=false) - BN - RELU,\n"
        "  GAP - CONV(256, 1, bias=false) - BN - RELU - UPSAMPLE(size=28x28, mode=bilinear))")
    assert str(graph.graph["totals"]["output"]) == "28x28x512"


# -- reshape, crop, pad, pixel shuffle ------------------------------------------------------

def test_reshape_is_torchs_view_and_flattens_inverse():
    x = torch.randn(2, 48)
    assert torch.equal(run("input 48\nRESHAPE(4x3x4)", x), x.view(2, 4, 4, 3))
    v = torch.randn(2, 8, 2, 2)
    assert torch.equal(run("input 2x2x8\nRESHAPE(4x4x2)", v), v.reshape(2, 2, 4, 4))
    assert torch.equal(run("input 2x2x8\nFLATTEN - UNFLATTEN(2x2x8)", v), v)
    assert torch.equal(run("input 3x4x5\nRESHAPE(6x10)", torch.ones(1, 5, 3, 4)),
                       torch.ones(1, 1, 6, 10))


@pytest.mark.parametrize("size, shape", [("4x5", (9, 8)), ("6", (6, 6)), ("2x3", (7, 10)),
                                         ("3", (6, 6)), ("1x2", (5, 8))])
def test_crop_is_torchvisions_center_crop(size, shape):
    from torchvision.transforms.functional import center_crop

    h, w = shape
    x = torch.randn(2, 3, h, w)
    sizes = [int(v) for v in size.split("x")] * (2 if "x" not in size else 1)
    assert torch.equal(run(f"input {h}x{w}x3\nCROP({size})", x), center_crop(x, sizes))


def test_unet_crops_its_skips_as_the_paper_figure():
    # U-Net (valid convolutions): the 64x64 map of the first level is cropped to 56x56 before
    # being concatenated with the up-convolved 56x56 map ("cropping is necessary due to the
    # loss of border pixels in every convolution")
    graph = cnndsl.build_graph("input 64x64x64\nconcat(CROP(56x56), CROP(56) - CONV(64, 1))")
    assert str(graph.graph["totals"]["output"]) == "56x56x128"


@pytest.mark.parametrize("args, pad, mode, value", [
    ("1", (1, 1, 1, 1), "constant", 0.0),
    ("1x2, value=-1.5", (2, 2, 1, 1), "constant", -1.5),
    ("top=1, right=3", (0, 3, 1, 0), "constant", 0.0),
    ("1, top=2, mode=reflect", (1, 1, 2, 1), "reflect", None),
    ("2x0, left=1, mode=replicate", (1, 0, 2, 2), "replicate", None),
    ("0x4, bottom=5, mode=circular", (4, 4, 0, 5), "circular", None),
])
def test_pad_is_torchs_pad(args, pad, mode, value):
    x = torch.randn(2, 3, 5, 4)
    expected = F.pad(x, pad, mode=mode, value=value) if mode == "constant" else \
        F.pad(x, pad, mode=mode)
    assert torch.equal(run(f"input 5x4x3\nPAD({args})", x), expected)


def test_pixel_shuffle_and_unshuffle_are_torchs():
    x = torch.randn(2, 18, 2, 3)
    assert torch.equal(run("input 2x3x18\nPIXELSHUFFLE(3)", x), F.pixel_shuffle(x, 3))
    y = torch.randn(2, 2, 4, 6)
    assert torch.equal(run("input 4x6x2\nPIXELUNSHUFFLE", y), F.pixel_unshuffle(y, 2))
    assert torch.equal(run("input 4x6x2\nPIXELUNSHUFFLE - PIXELSHUFFLE", y), y)


def test_the_generated_source_computes_the_same():
    text = ("input 6x5x4\nDECONV(8, 3, s=2, pad=1, op=1) - UPSAMPLE(2x1, mode=bilinear) "
            "- CROP(20x9) - PAD(1, right=2, value=0.5) - PIXELUNSHUFFLE(2) - FLATTEN "
            "- RESHAPE(11x6x32) - PAD(1x0, mode=reflect) - PIXELSHUFFLE(4)")
    model = cnndsl.compile(text, seed=0).eval()
    namespace = {"__name__": "generated"}
    exec(compile(to_source(check_spec(text), class_name="Gen"), "<generated>", "exec"),
         namespace)
    generated = namespace["Gen"]().eval()
    generated.load_state_dict(model.state_dict())
    x = torch.randn(2, 4, 6, 5)
    with torch.no_grad():
        assert torch.equal(generated(x), model(x))
        assert tuple(model(x).shape) == (2, 2, 52, 24)


# -- --explain ---------------------------------------------------------------------------------

def explain(capsys, spec: str) -> str:
    assert main(["expand", "--explain", spec]) == 0
    return capsys.readouterr().out


def test_explain_writes_the_transposed_size_formula(capsys):
    # (W - 1)*S - 2P + D*(F - 1) + OP + 1, PyTorch's ConvTranspose2d: (14 - 1)*2 + 1 + 1 = 28
    out = explain(capsys, "input 14x14x64\nDECONV(32, 2, s=2)")
    assert "size (14 - 1)*2 - 2*0 + (2 - 1) + 0 + 1 = 28 " in out
    assert "parameters 32 filters x (2*2*64 + 1) = 8,224\n" in out  # 64*32*4 + 32
    out = explain(capsys, "input 7x9x4\nDECONV(2, 3, s=2x1, pad=1, op=1x0, d=1x2)")
    assert "height (7 - 1)*2 - 2*1 + (3 - 1) + 1 + 1 = 14; width (9 - 1)*1 - 2*1 + " \
           "2*(3 - 1) + 0 + 1 = 11" in out


def test_explain_says_how_the_other_kinds_size(capsys):
    out = explain(capsys, "input 28x28x21\nUPSAMPLE(8, mode=bilinear)")
    assert "size 28*8 = 224; each output a weighted average of its 2x2 nearest inputs" in out
    out = explain(capsys, "input 64x64x3\nCROP(56)")
    assert "rows 4 to 59 of 64 (64 - 56 = 8 taken off, 4 before and 4 after)" in out
    out = explain(capsys, "input 3136\nRESHAPE(7x7x64)")
    assert "7*7*64 = 3,136 values of the vector, laid out as 64 maps of 7x7" in out
    out = explain(capsys, "input 5x4x3\nPAD(1, top=2)")
    assert "height 2 + 5 + 1 = 8; width 1 + 4 + 1 = 6; filled with 0s" in out
    out = explain(capsys, "input 8x8x12\nPIXELSHUFFLE(2)")
    assert "size 8*2 x 8*2 = 16x16; channels 12/(2*2) = 3" in out


# -- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, error, message, help", [
    ("input 12x12x3\nCONV(8, 3) - CROP(12x8)", CnnShapeError,
     "CROP #1: the 12x8 window is larger than its 10x10 input", "PAD the input by 2x0"),
    ("input 100\nRESHAPE(7x7x2)", CnnShapeError,
     "RESHAPE: 7x7x2 holds 7*7*2 = 98 values, but its input has 100", "100 values make 5x10x2"),
    ("input 4x4x4\nUNFLATTEN(64x2x2)", CnnShapeError,
     "its input 4x4x4 has 64", "is UNFLATTEN(7x7x64)"),
    ("input 8x8x3\nDECONV(4, 3, s=2, op=2)", CnnArgumentError,
     "output padding 2 must be smaller than the stride 2 or the dilation 1", "0 to S - 1"),
    ("input 2x2x3\nDECONV(4, 3, pad=3)", CnnShapeError,
     "the padding takes the whole output away: (2 - 1)*1 - 2*3 + (3 - 1) + 0 + 1 = -2",
     "at most 1"),
    ("input 8x8x3\nDECONV(4, 2, pad=same)", CnnArgumentError, "not `same`", "F = 2P + S"),
    ("input 8x8x3\nDECONV(4)", CnnArgumentError, "DECONV needs `kernel`", "DECONV(filters"),
    ("input 8x8x3\nUPSAMPLE(2, size=16)", CnnArgumentError, "a factor or a size, not both",
     "UPSAMPLE(2)"),
    ("input 8x8x3\nUPSAMPLE(2, align_corners=true)", CnnArgumentError,
     "align_corners is for the interpolating modes", "mode=bilinear"),
    ("input 8x8x3\nUPSAMPLE(2, mode=bilinaer)", CnnArgumentError,
     "`mode` must be nearest, bilinear or bicubic, not `bilinaer`", "`bilinear`"),
    ("input 8x8x3\nPIXELSHUFFLE(2)", CnnShapeError,
     "3 channels do not split into groups of 2*2 = 4", "multiple of 4"),
    ("input 9x8x4\nPIXELUNSHUFFLE(2)", CnnShapeError, "9 and 8 must be multiples of 2",
     "CROP or PAD"),
    ("input 3x3x4\nPAD(3, mode=reflect)", CnnShapeError,
     "reflect padding of 3 on the top must be smaller than the input's height 3",
     "mode=replicate"),
    ("input 3x3x4\nPAD(1, mode=reflect, value=1)", CnnArgumentError,
     "`value` is for mode=constant", "mode=constant"),
    ("input 30\nUPSAMPLE", CnnShapeError, "UPSAMPLE needs a volume HxWxC", "before the first FC"),
])
def test_mistakes_are_located_explained_and_helped(text, error, message, help):
    with pytest.raises(CnnDslError) as info:
        cnndsl.build_graph(text)
    exc = info.value
    assert isinstance(exc, error), repr(exc)
    assert message in exc.message, exc.message
    shown = str(exc)
    assert "<spec>:2:" in shown and "^" in shown and help in shown, shown


def test_a_conv_transpose2d_shape_error_explains_the_argument_order():
    with pytest.raises(CnnShapeError) as info:
        cnndsl.build_graph("input 8x8x128\nConvTranspose2d(128, 64, 2, in_channels=64)")
    assert "ConvTranspose2d(64, 2, s=2)" in str(info.value)


# -- names ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("spelling, kind", [
    ("DECONV", "DECONV"), ("CONVTRANSPOSE", "DECONV"), ("ConvTranspose2d", "DECONV"),
    ("UPSAMPLE", "UPSAMPLE"), ("RESIZE", "UPSAMPLE"), ("INTERPOLATE", "UPSAMPLE"),
    ("Upsample", "UPSAMPLE"), ("RESHAPE", "RESHAPE"), ("UNFLATTEN", "RESHAPE"),
    ("CROP", "CROP"), ("PAD", "PAD"), ("ZeroPad2d", "PAD"), ("PixelShuffle", "PIXELSHUFFLE"),
])
def test_the_issues_spellings_resolve(spelling, kind):
    from cnndsl import layers

    assert layers.lookup(spelling).name == kind


@pytest.mark.parametrize("written, suggested", [
    ("UPSAMPL", "UPSAMPLE"), ("DECONVV", "DECONV"), ("SUBSAMPLES", "SUBSAMPLE"),
    ("UNSHUFFLE", "PIXELUNSHUFFLE"), ("DECONV2D", "DECONV"),
])
def test_did_you_mean_still_finds_typos(written, suggested):
    with pytest.raises(CnnNameError) as info:
        cnndsl.build_graph(f"input 8x8x4\n{written}(2)")
    assert f"did you mean `{suggested}`?" in str(info.value)


@pytest.mark.parametrize("written, opposite_kind", [
    ("UPSAMPLE", "SUBSAMPLE"), ("DECONV", "DWCONV"), ("DOWNSAMPLE", "UPSAMPLE"),
    ("UNPOOL", "POOL"), ("MAXUNPOOL", "MAXPOOL"), ("UNSHUFFLE", "PIXELSHUFFLE"),
    ("AVGUNPOOL", "AVERAGEPOOL"), ("CONVTRANSPOSE", "CONV"),
])
def test_an_opposite_is_not_a_typo(written, opposite_kind):
    assert opposite(written, opposite_kind) and opposite(opposite_kind, written)


@pytest.mark.parametrize("written, pointer", [
    ("DOWNSAMPLE", "MAXPOOL or AVGPOOL"), ("UNPOOL", "UPSAMPLE(2)"),
    ("MaxUnpool2d", "DECONV(c, 2, s=2)"), ("DEPTH_TO_SPACE", "PIXELSHUFFLE(r)"),
    ("SpaceToDepth", "PIXELUNSHUFFLE(r)"), ("UpsamplingBilinear2d", "align_corners=true"),
])
def test_other_frameworks_names_point_at_the_real_construct(written, pointer):
    with pytest.raises(CnnNameError) as info:
        cnndsl.build_graph(f"input 8x8x4\n{written}(2)")
    assert pointer in str(info.value) and "did you mean" not in str(info.value)


# -- the autoencoder in the zoo ------------------------------------------------------------------

class ReferenceAutoencoder(nn.Module):
    """specs/conv_autoencoder.cnn written by hand in plain PyTorch."""

    def __init__(self, code: int = 32):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(7 * 7 * 32, code))
        self.decoder = nn.Sequential(
            nn.Linear(code, 7 * 7 * 32), nn.ReLU(), nn.Unflatten(1, (32, 7, 7)),
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


@pytest.mark.parametrize("code", [32, 10])
def test_the_autoencoder_is_the_plain_pytorch_one(code):
    reference = ReferenceAutoencoder(code).eval()
    graph = cnndsl.build_graph("zoo:conv_autoencoder", code=code)
    assert graph.graph["totals"]["params"] == sum(p.numel() for p in reference.parameters())
    assert str(graph.graph["totals"]["output"]) == "28x28x1"
    model = cnndsl.compile("zoo:conv_autoencoder", code=code, seed=0).eval()
    theirs = list(model.parameters())
    assert [p.shape for p in reference.parameters()] == [p.shape for p in theirs]
    with torch.no_grad():
        for mine, copy in zip(reference.parameters(), theirs):
            copy.copy_(mine)
        x = torch.rand(3, 1, 28, 28)
        assert torch.allclose(model(x), reference(x), atol=1e-6)
    shapes = [str(d["shape"]) for _, d in graph.nodes(data=True)
              if d["kind"] in ("CONV", "DECONV", "RESHAPE")]
    assert shapes == ["14x14x16", "7x7x32", "7x7x32", "14x14x16", "28x28x1"]


# -- receptive fields through upsampling ---------------------------------------------------------

def measured_rf(text: str, rows: int | None = None) -> int:
    """The most input rows one output value depends on, measured with autograd on the
    compiled network (positive weights, no ReLU, so no dependency cancels out), over its
    first `rows` rows of outputs (all by default)."""
    model = cnndsl.compile(text, seed=0).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.abs() + 0.1)
    graph = cnndsl.build_graph(text)
    c, h, w = graph.graph["context"].input.as_list()
    x = torch.rand(1, c, h, w, requires_grad=True)
    y = model(x)
    widest = 0
    # every row of outputs: the rows an output reads do not depend on its column (each
    # axis has its own window), so a whole row's sum reads what each of its values reads
    for i in range(y.shape[2] if rows is None else rows):
        (grad,) = torch.autograd.grad(y[0, :, i].sum(), x, retain_graph=True)
        rows = grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
        if rows.numel():  # a dilated transposed convolution leaves some outputs a bias
            widest = max(widest, int(rows.max() - rows.min()) + 1)
    return widest


@pytest.mark.parametrize("layers", [
    "DECONV(1, 2, s=2)",  # each output is one input times one weight
    "DECONV(1, 3, s=2)", "DECONV(1, 4, s=2)", "DECONV(1, 3, s=2, d=2)", "DECONV(1, 3, s=3)",
    "DECONV(1, 3, s=2, d=3)", "DECONV(1, 2, s=2, d=3)", "DECONV(1, 3, s=3, d=2)",
    "DECONV(1, 5, s=2, d=2)", "DECONV(1, 4, s=4, d=2) - CONV(1, 3)",
    "UPSAMPLE(2) - CONV(1, 2)", "UPSAMPLE(3) - CONV(1, 3)",
    "UPSAMPLE(2, mode=bilinear) - CONV(1, 3)", "PIXELSHUFFLE(2) - CONV(1, 3)",
    "AVGPOOL(2) - DECONV(1, 2, s=2) - CONV(1, 3)", "CONV(1, 3) - PIXELUNSHUFFLE(2) - CONV(1, 3)",
    # joins of fields that are not centred alike: a crop beside an up-convolution (U-Net's
    # skip), an upsampling beside the identity, padding on one side
    "concat(CROP(8), AVGPOOL(2) - CONV(4, 3) - DECONV(4, 2, s=2))",
    "concat(CROP(10), AVGPOOL(2) - CONV(4, 2) - UPSAMPLE(2) - CONV(4, 1))",
    "add(identity, AVGPOOL(2) - UPSAMPLE(2, mode=bilinear))",
    "add(identity, AVGPOOL(3) - UPSAMPLE(3, mode=bilinear))",
    "add(identity, AVGPOOL(2) - UPSAMPLE(2, mode=bicubic))",
    "add(identity, AVGPOOL(3) - UPSAMPLE(size=12, mode=bilinear, align_corners=true))",
    "add(identity, AVGPOOL(2) - DECONV(4, 3, s=2, pad=1, op=1))",
    "add(identity, AVGPOOL(2) - AVGPOOL(3, s=1, pad=1) - UPSAMPLE(2) - CONV(4, 3, pad=1))",
    "add(PAD(top=1, bottom=1) - AVGPOOL(3x1, s=1), identity)",
    "ADAPTIVEAVGPOOL(5) - UPSAMPLE(size=12, mode=bilinear)",
])
def test_receptive_fields_through_upsampling_are_what_autograd_measures(layers):
    text = f"input 12x12x4\n{layers}"
    graph = cnndsl.build_graph(text)
    rf = graph.nodes[graph.graph["output"]]["rf"]
    assert rf[0] == measured_rf(text), rf


UNET_FOR_FIELDS = """input {n}x{n}x1
def double(c) = CONV(c, 3) - CONV(c, 3)
def level(c, margin, inner) = double(c)
  - concat(CROP(in.h - margin), AVGPOOL(2) - inner - DECONV(c, 2, s=2)) - double(c)
"""


@pytest.mark.slow
def test_a_valid_unets_receptive_field_is_what_autograd_measures():
    """Three levels of the paper's U-Net (ReLU left out and the pooling averaged, so that
    every dependency shows): its outputs' fields differ with the position modulo 8, the deep
    path's do not sit centred on the skips', and the widest spans 100 input rows where the
    joined fields' sizes alone (the rule that serves a classifier's branches) give 96."""
    text = UNET_FOR_FIELDS.format(n=124) + "level(1, 84, level(1, 36, level(1, 12, double(1))))"
    graph = cnndsl.build_graph(text)
    assert graph.nodes[graph.graph["output"]]["rf"] == (100, 100)
    assert measured_rf(text, rows=8) == 100  # a period of outputs: every position


def test_the_paper_unets_receptive_field():
    graph = cnndsl.build_graph("zoo:unet")
    assert graph.nodes[graph.graph["output"]]["rf"] == (204, 204)


@pytest.mark.long
def test_the_paper_unets_receptive_field_is_what_autograd_measures():
    """All four levels at 220x220 (36x36 out) and width 1: the widest field over a period
    of 16 outputs spans 204 rows, as the summary says of zoo:unet."""
    from cnndsl import modelzoo

    text = (modelzoo.read("unet").replace("- RELU", "").replace("MAXPOOL", "AVGPOOL")
            .replace("input 572x572x1", "input 220x220x1").replace("base = 64", "base = 1"))
    graph = cnndsl.build_graph(text)
    assert graph.nodes[graph.graph["output"]]["rf"] == (204, 204)
    assert measured_rf(text, rows=16) == 204


# Random chains of windows, transposed convolutions and upsamplings, some beside a crop of
# their input (U-Net's skip): each output's field, as the pass places it on the input, is
# the rows autograd finds it depends on, wherever it lies inside the input (at the edges
# PyTorch clamps what the pass, as the lecture's formula, counts as padding). 25 examples in
# `make test`; `--hypothesis-profile=long` has no say here.
STAGES = [
    "CONV(2, {k}, s={s}, pad={p}, d={d})", "AVGPOOL({k}, s={s})",
    "DECONV(2, {k}, s={s}, pad={p})", "UPSAMPLE({s}, mode={mode})",
    "UPSAMPLE({s}, mode=bilinear, align_corners=true)", "CONV(2, {k}, pad=same, d={d})",
]


def random_chain(draw, st, depth: int) -> str:
    stages = []
    for _ in range(draw(st.integers(1, 3))):
        template = draw(st.sampled_from(STAGES))
        k, s = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        stages.append(template.format(k=k, s=s, p=draw(st.integers(0, (k - 1) // 2)),
                                      d=draw(st.integers(1, 2)),
                                      mode=draw(st.sampled_from(["nearest", "bilinear"]))))
        if depth and draw(st.booleans()):
            stages.append(f"skip({random_chain(draw, st, depth - 1)})")
    return " - ".join(stages)


@pytest.mark.slow
def test_random_fields_are_where_autograd_finds_them():
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import strategies as st

    @st.composite
    def specs(draw):
        return draw(st.sampled_from([17, 24, 31])), random_chain(draw, st, 1)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(specs())
    def check(case):
        n, chain = case
        text = f"input {n}x{n}x2\nrounding = floor\n{chain}"
        # the crop beside a branch is as large as the branch's output: work it out first
        while "skip(" in text:
            start = text.rindex("skip(")
            depth, end = 0, start + 4
            for end in range(start + 4, len(text)):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
            branch = text[start + 5:end]
            try:
                before, after = (check_spec(text[:start] + end) for end in ("RELU", branch))
            except CnnDslError:
                assume(False)
            # beside each other, inputs that move at different rates are joined by the
            # widest (DeepLab's image pooling), not position by position
            assume(before[before.output].jump == after[after.output].jump)
            before, after = before.totals["output"], after.totals["output"]
            assume(before.h >= after.h)
            text = text[:start] + f"concat(CROP({after.h}), {branch})" + text[end + 1:]
        try:
            graph = check_spec(text)
        except CnnDslError:
            assume(False)
        out = graph.totals["output"]
        assume(out.is_volume and 1 <= out.h <= 120)
        model = cnndsl.compile(text, seed=0).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.abs() + 0.1)
        x = torch.rand(1, 2, n, n, requires_grad=True)
        y = model(x)
        rows = torch.zeros(out.h, *y.shape)
        for i in range(out.h):
            rows[i, :, :, i] = 1
        (grads,) = torch.autograd.grad(y, x, grad_outputs=rows, is_grads_batched=True)
        windows = graph[graph.output].windows[0]
        assume(windows.exact)  # not summed up past 4,096 outputs a period
        for i in range(out.h):
            # an interpolation whose source falls on an input in exact arithmetic can land
            # a rounding error past it in float, with a weight of 1e-7 on the next input
            weight = grads[i].abs().sum(dim=(0, 1, 3))
            found = (weight > 1e-5 * weight.max()).nonzero().flatten()
            span = windows.at(i)
            if span is not None and span[0] >= 0 and span[1] < n:
                assert (int(found.min()), int(found.max())) == span, (text, i)

    check()


@pytest.mark.parametrize("text, hw", [
    # one output on an axis with align_corners: F.interpolate reads input 0 (found by
    # test_differential's generators: the receptive-field pass divided by o - 1 = 0)
    ("input 3\nrounding = floor\nRESHAPE(1x3x1) - UPSAMPLE(scale_factor=1, mode=bilinear,"
     " align_corners=true)", (1, 3)),
    ("input 1x5x2\nUPSAMPLE(size=1x3, mode=bilinear, align_corners=true)", (1, 3)),
    ("input 4x4x2\nUPSAMPLE(size=1x1, mode=bicubic, align_corners=true)", (1, 1)),
])
def test_align_corners_to_one_output_is_torchs_size(text, hw):
    import torch

    graph = cnndsl.build_graph(text)
    model = cnndsl.compile(text, seed=0).eval()
    shape = model.cnndsl_info["input_shape"]
    with torch.no_grad():
        out = model(torch.randn(1, *shape))
    assert tuple(out.shape[2:]) == hw
    assert graph.graph["totals"]["output"].as_list()[1:] == list(hw)


def test_a_dilated_window_over_a_strided_deconv_reads_only_its_taps():
    """DECONV(k=1, s=2) leaves every other output to the bias alone; a 2-tap window 2 apart
    then reads either two such outputs or none (found by the random-fields property: the
    field was taken over every output between the taps)."""
    text = "input 17x17x2\nDECONV(2, 1, s=2, pad=0) - CONV(2, 2, s=1, pad=0, d=2)"
    graph = check_spec(text)
    windows = graph[graph.output].windows[0]
    model = cnndsl.compile(text, seed=0).eval()
    x = torch.rand(1, 2, 17, 17, requires_grad=True)
    y = model(x)
    for i in range(6):
        (grad,) = torch.autograd.grad(y[0, :, i].sum(), x, retain_graph=True)
        found = grad[0].abs().sum(dim=(0, 2)).nonzero().flatten().tolist()
        span = windows.at(i)
        assert (None if not found else (found[0], found[-1])) == span, i
