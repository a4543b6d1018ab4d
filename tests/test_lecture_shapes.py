"""Shapes, parameter counts and receptive fields from the lecture notes in shared/reference."""
from __future__ import annotations

import pytest

from cnndsl.errors import CnnShapeError

from conftest import build, layers_of, shapes_of


def out_of(text, **kw):
    graph = build(text, **kw)
    return graph.nodes[graph.graph["output"]]


# "A closer look at spatial dimensions": 7x7 input, 3x3 filter.
@pytest.mark.parametrize("stride, size", [(1, 5), (2, 3)])
def test_7x7_input_3x3_filter(stride, size):
    assert str(out_of(f"input 7x7x1\nCONV(1, 3, s={stride})")["shape"]) == f"{size}x{size}x1"


def test_stride_3_does_not_fit_and_quotes_2_33():
    with pytest.raises(CnnShapeError) as info:
        build("input 7x7x1\nCONV(1, 3, s=3)")
    err = info.value
    assert "(7 - 3 + 2*0)/3 + 1 = 2.33 is not an integer" in err.message
    assert "doesn't fit" in err.message
    assert (err.span.line, err.span.column) == (2, 1)
    assert "pad=1" in err.help and "stride" in err.help and "floor" in err.help


def test_pad_1_preserves_7x7():
    assert str(out_of("input 7x7x1\nCONV(1, 3, s=1, pad=1)")["shape"]) == "7x7x1"


def test_32x32x3_ten_5x5_filters_pad_2():
    node = out_of("input 32x32x3\nCONV(10, 5, s=1, pad=2)")
    assert str(node["shape"]) == "32x32x10"
    assert node["n_params"] == 760  # "76*10 = 760"


def test_5x5x3_two_3x3_filters_stride_2_pad_1():
    # CENG 506: "Output = (5-3+2)/2 + 1 = 3", output volume 3x3x2.
    assert str(out_of("input 5x5x3\nCONV(2, 3, s=2, pad=1)")["shape"]) == "3x3x2"


def test_alexnet_conv1_and_pool1():
    graph = build("input 227x227x3\nCONV(96, 11, s=4) - MAXPOOL(3, 2)")
    conv, pool = layers_of(graph)
    assert str(conv["shape"]) == "55x55x96"
    assert conv["n_params"] == 34_944  # 96 x (1 + 11*11*3)
    assert conv["shape"].numel == 290_400
    assert str(pool["shape"]) == "27x27x96"  # 1 + (55 - 3)/2 = 27
    assert pool["n_params"] == 0


def test_alexnet_full_layer_list_shape_by_shape():
    # "Full AlexNet architecture" (CS231n / CENG 506), the lecture's bracketed volumes.
    expected = ["55x55x96", "27x27x96", "27x27x96", "27x27x256", "13x13x256", "13x13x256",
                "13x13x384", "13x13x384", "13x13x256", "6x6x256", "4096", "4096", "1000"]
    graph = build("""
        input 227x227x3
        CONV(96, 11, s=4, pad=0) - MAXPOOL(3, 2) - NORM
          - CONV(256, 5, s=1, pad=2) - MAXPOOL(3, 2) - NORM
          - CONV(384, 3, s=1, pad=1) - CONV(384, 3, s=1, pad=1) - CONV(256, 3, s=1, pad=1)
          - MAXPOOL(3, 2) - FC(4096) - FC(4096) - FC(1000)
    """)
    assert shapes_of(graph) == expected


def test_bundled_alexnet_lecture_spec_matches_the_list():
    graph = build("specs/alexnet_lecture.cnn")
    weighted = [str(d["shape"]) for d in layers_of(graph) if d["kind"] in ("CONV", "FC")]
    assert weighted == ["55x55x96", "27x27x256", "13x13x384", "13x13x384", "13x13x256",
                        "4096", "4096", "1000"]


def test_alexnet_224_pad_2_floors_silently_in_the_notes():
    # COMP9444: 1 + (224 + 2*2 - 11)/4 "= 55" is really 55.25.
    with pytest.raises(CnnShapeError) as info:
        build("input 224x224x3\nCONV(96, 11, s=4, pad=2)")
    assert "(224 - 11 + 2*2)/4 + 1 = 55.25 is not an integer" in info.value.message
    node = out_of("input 224x224x3\nrounding = floor\nCONV(96, 11, s=4, pad=2)")
    assert str(node["shape"]) == "55x55x96"
    node = out_of("input 224x224x3\nCONV(96, 11, s=4, pad=2, round=floor)")
    assert str(node["shape"]) == "55x55x96"


def test_ceil_rounding_matches_pytorch_ceil_mode():
    # 112x112 with 3x3/2 pooling: floor 55, ceil 56 (GoogLeNet's maxpool1 in torchvision).
    assert out_of("input 112x112x64\nMAXPOOL(3, 2, round=ceil)")["shape"].h == 56
    assert out_of("input 112x112x64\nMAXPOOL(3, 2, round=floor)")["shape"].h == 55


def test_pooling_on_the_4x4_example():
    # 4x4 input, 2x2 filters, stride 2 -> 2x2 (max and average pooling slides).
    for layer in ("MAXPOOL(2, 2)", "AVGPOOL(2, 2)", "POOL"):
        assert str(out_of(f"input 4x4x1\n{layer}")["shape"]) == "2x2x1"


def test_max_pooling_f3_s1_on_the_5x5_example():
    assert str(out_of("input 5x5x1\nMAXPOOL(3, 1)")["shape"]) == "3x3x1"


def test_pooling_over_volumes_keeps_channels():
    assert str(out_of("input 5x5x3\nMAXPOOL(3, 1)")["shape"]) == "3x3x3"


def test_lenet5_shapes_as_in_the_lecture_table():
    graph = build("specs/lenet5.cnn")
    kinds_shapes = [(d["kind"], str(d["shape"])) for d in layers_of(graph)
                    if d["kind"] not in ("RELU",)]
    assert kinds_shapes == [("CONV", "28x28x6"), ("AVGPOOL", "14x14x6"), ("CONV", "10x10x16"),
                            ("AVGPOOL", "5x5x16"), ("FC", "120"), ("FC", "84"), ("FC", "10"),
                            ("SOFTMAX", "10")]
    sizes = [d["shape"].numel for d in layers_of(graph) if d["kind"] != "RELU"]
    assert sizes[:5] == [4704, 1176, 1600, 400, 120]  # the table's "Activation Size"


def test_lenet_colour_conv1():
    # COMP9444: 32x32 colour input, 6 5x5 filters: 4,704 neurons, 456 parameters.
    node = out_of("input 32x32x3\nCONV(6, 5)")
    assert node["shape"].numel == 4_704
    assert node["n_params"] == 456


def test_three_stacked_3x3_convs_have_a_7x7_receptive_field():
    graph = build("input 32x32x3\nCONV(8, 3, pad=1) * 3")
    assert [d["rf"] for d in layers_of(graph)] == [(3, 3), (5, 5), (7, 7)]


def test_single_7x7_has_the_same_receptive_field_but_more_parameters():
    # VGG: three 3x3 layers 3*(3^2 C^2) vs one 7x7 layer 7^2 C^2 weights (C channels).
    c = 64
    three = build(f"input 32x32x{c}\nCONV({c}, 3, pad=1, bias=false) * 3")
    one = build(f"input 32x32x{c}\nCONV({c}, 7, pad=3, bias=false)")
    assert layers_of(three)[-1]["rf"] == layers_of(one)[-1]["rf"] == (7, 7)
    assert three.graph["totals"]["params"] == 3 * 9 * c * c
    assert one.graph["totals"]["params"] == 49 * c * c


def test_fc_stretches_a_volume():
    # "32x32x3 image -> stretch to 3072 x 1"
    assert out_of("input 32x32x3\nFLATTEN")["shape"].c == 3072
    assert out_of("input 32x32x3\nFC(10)")["n_params"] == 3072 * 10 + 10


def test_alphago_policy_first_and_hidden_layers():
    # 19x19x48 zero-padded to 23x23, k=192 5x5 filters; then padded to 21x21 with 3x3 filters.
    graph = build("input 19x19x48\nk = 192\nCONV(k, 5, pad=2) - RELU"
                  " - (CONV(k, 3, pad=1) - RELU)*11 - CONV(1, 1)")
    convs = [d for d in layers_of(graph) if d["kind"] == "CONV"]
    assert len(convs) == 13
    assert [str(d["shape"]) for d in convs[:2]] == ["19x19x192", "19x19x192"]
    assert str(convs[-1]["shape"]) == "19x19x1"


def test_zfnet_conv1_7x7_stride_2():
    node = out_of("input 224x224x3\nCONV(96, 7, s=2, pad=1, round=floor)")
    assert str(node["shape"]) == "110x110x96"  # ZF Net figure: 110x110x96


def test_a_fully_connected_layer_on_a_megapixel_image_has_a_trillion_parameters():
    # The notes' case for convolutions: "1000x1000 image, 1M hidden units -> 10^12 parameters!!!"
    # Sharing each kernel across positions instead: 100 filters of 10x10 need 100*(10*10+1).
    dense = build("input 1000x1000x1\nFC(1000000)").graph["totals"]
    assert dense["params"] == 10 ** 12 + 10 ** 6  # weights, then one bias per hidden unit
    conv = build("input 1000x1000x1\nCONV(100, 10)").graph["totals"]
    assert conv["params"] == 100 * (10 * 10 + 1)


# Issue 17, F1: each axis has its own (W - F + 2P)/S + 1, even on a square input with a square
# kernel. Expected shapes are what torch.nn computes for the same layer.
@pytest.mark.parametrize("text, shape", [
    ("input 8x8x3\nCONV(4, 3, pad=0x1)", (6, 8, 4)),
    ("input 8x8x4\nMAXPOOL(2, s=2x1)", (4, 7, 4)),
    ("input 8x8x3\nrounding = floor\nCONV(4, 3, s=1x2, pad=1)", (8, 4, 4)),
    ("input 9x9x2\nCONV(2, 3, d=1x3)", (7, 3, 2)),
])
def test_per_axis_windows_on_square_inputs(text, shape):
    import torch
    from torch import nn

    out = out_of(text)["shape"]
    h, w, c = map(int, text.split("\n")[0].split()[1].split("x"))
    layer = {"CONV(4, 3, pad=0x1)": nn.Conv2d(3, 4, 3, padding=(0, 1)),
             "MAXPOOL(2, s=2x1)": nn.MaxPool2d(2, stride=(2, 1)),
             "CONV(4, 3, s=1x2, pad=1)": nn.Conv2d(3, 4, 3, stride=(1, 2), padding=1),
             "CONV(2, 3, d=1x3)": nn.Conv2d(2, 2, 3, dilation=(1, 3))}[text.split("\n")[-1]]
    real = layer(torch.zeros(1, c, h, w)).shape
    assert (out.h, out.w, out.c) == (real[2], real[3], real[1]) == shape


def test_per_axis_stride_that_does_not_fit_names_the_axis():
    with pytest.raises(CnnShapeError) as info:
        build("input 8x8x3\nCONV(4, 3, s=1x2, pad=1) - FC(10)")
    assert "(width)" in info.value.message and "4.50" in info.value.message


def test_a_per_axis_message_names_that_axis_window():
    """A 1x9 kernel is not a `9x9 window`; a stride that fails on the height says `high`."""
    with pytest.raises(CnnShapeError) as info:
        build("input 8x8x3\nCONV(4, 1x9)")
    assert "the window, 9 along the width, is larger than its padded input (width)" in \
        info.value.message
    with pytest.raises(CnnShapeError) as info:
        build("input 8x7x3\nCONV(4, 3, s=2x1)")
    assert "a window of 3 with stride 2 and pad 0 doesn't fit the 8-high input (height)" in \
        info.value.message
