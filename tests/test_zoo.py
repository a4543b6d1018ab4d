"""The bundled specs (the model zoo): each checks and matches its paper's or torchvision's."""
from __future__ import annotations

import pytest

import cnndsl
from cnndsl import layers, modelzoo
from cnndsl.api import check_spec, zoo_entry
from cnndsl.cli import main
from cnndsl.shapes import Shape

from conftest import build, layers_of


def totals(name, **variables):
    graph = cnndsl.build_graph(f"zoo:{name}", **variables)
    return graph, graph.graph["totals"]


# -- references computed from the papers' layer sizes -------------------------------------------

def conv(k, c_in, c_out, out_hw, groups=1, bias=True):
    """(parameters, MACs) of a k x k convolution: k*k*(c_in/groups)*c_out weights (+ bias)."""
    weights = k * k * (c_in // groups) * c_out
    return weights + (c_out if bias else 0), out_hw * out_hw * weights


def fc(n_in, n_out):
    return n_in * n_out + n_out, n_in * n_out


def summed(*layers_):
    return sum(p for p, _ in layers_), sum(m for _, m in layers_)


def alexnet_paper_reference():
    # Krizhevsky et al. 2012, Section 3.5: "The kernels of the second, fourth, and fifth
    # convolutional layers are connected only to those kernel maps in the previous layer
    # which reside on the same GPU": conv2 sees 48 of 96 maps, conv4 192 of 384, conv5 192.
    return summed(
        conv(11, 3, 96, 55),             # conv1: 96*(11*11*3)+96 = 34,944
        conv(5, 96, 256, 27, groups=2),  # conv2: 256*(5*5*48)+256 = 307,456
        conv(3, 256, 384, 13),           # conv3: 384*(3*3*256)+384 = 885,120 (across GPUs)
        conv(3, 384, 384, 13, groups=2),  # conv4: 384*(3*3*192)+384 = 663,936
        conv(3, 384, 256, 13, groups=2),  # conv5: 256*(3*3*192)+256 = 442,624
        fc(6 * 6 * 256, 4096), fc(4096, 4096), fc(4096, 1000))


def zfnet_reference():
    # Zeiler & Fergus 2013, Figure 3 sizes, with the lecture's CONV3-5 of 512, 1024, 512.
    return summed(
        conv(7, 3, 96, 110), conv(5, 96, 256, 26),
        conv(3, 256, 512, 13), conv(3, 512, 1024, 13), conv(3, 1024, 512, 13),
        fc(6 * 6 * 512, 4096), fc(4096, 4096), fc(4096, 1000))


# Simonyan & Zisserman 2015, Table 1: (kernel, filters) per stage; 224, 112, 56, 28, 14.
VGG_TABLE = {
    "A": [[(3, 64)], [(3, 128)], [(3, 256)] * 2, [(3, 512)] * 2, [(3, 512)] * 2],
    "B": [[(3, 64)] * 2, [(3, 128)] * 2, [(3, 256)] * 2, [(3, 512)] * 2, [(3, 512)] * 2],
    "C": [[(3, 64)] * 2, [(3, 128)] * 2, [(3, 256)] * 2 + [(1, 256)],
          [(3, 512)] * 2 + [(1, 512)], [(3, 512)] * 2 + [(1, 512)]],
    "D": [[(3, 64)] * 2, [(3, 128)] * 2, [(3, 256)] * 3, [(3, 512)] * 3, [(3, 512)] * 3],
    "E": [[(3, 64)] * 2, [(3, 128)] * 2, [(3, 256)] * 4, [(3, 512)] * 4, [(3, 512)] * 4],
}


def vgg_reference(column):
    counted, c_in = [], 3
    for stage, size in zip(VGG_TABLE[column], (224, 112, 56, 28, 14)):
        for k, c_out in stage:
            counted.append(conv(k, c_in, c_out, size))
            c_in = c_out
    counted += [fc(7 * 7 * 512, 4096), fc(4096, 4096), fc(4096, 1000)]
    return summed(*counted)


# Howard et al. 2017, Table 1 at 224x224: after a 3x3/2 conv to 32, the blocks (c_in, c_out,
# output size). Every conv is bias-free and followed by BN (2 parameters per channel).
MOBILENET_V1_BODY = [(32, 64, 112), (64, 128, 56), (128, 128, 56), (128, 256, 28),
                     (256, 256, 28), (256, 512, 14)] + [(512, 512, 14)] * 5 + [
                     (512, 1024, 7), (1024, 1024, 7)]


def mobilenet_v1_reference():
    # each block depthwise separable: a 3x3 depthwise conv, then a 1x1 pointwise one
    counted = [conv(3, 3, 32, 112, bias=False), (2 * 32, 0)]
    for c_in, c_out, size in MOBILENET_V1_BODY:
        counted += [conv(3, c_in, c_in, size, groups=c_in, bias=False), (2 * c_in, 0),
                    conv(1, c_in, c_out, size, bias=False), (2 * c_out, 0)]
    counted.append(fc(1024, 1000))
    return summed(*counted)


def mobilenet_v1_conv_reference():
    # Howard et al. 2017, Table 4's "Conv MobileNet": Table 1's body with each depthwise
    # separable block one full 3x3 convolution from c_in to c_out (bias-free, then BN).
    counted = [conv(3, 3, 32, 112, bias=False), (2 * 32, 0)]
    for c_in, c_out, size in MOBILENET_V1_BODY:
        counted += [conv(3, c_in, c_out, size, bias=False), (2 * c_out, 0)]
    counted.append(fc(1024, 1000))
    return summed(*counted)


def alphago_reference(k):
    # Silver et al. 2016, Methods: CONV1 k 5x5 on 48 planes, CONV2..12 k 3x3, a 1x1 conv to
    # one plane with "a different bias for each position" (19*19 biases instead of one).
    counted = [conv(5, 48, k, 19)] + [conv(3, k, k, 19)] * 11
    counted += [conv(1, k, 1, 19, bias=False), (19 * 19, 0)]
    return summed(*counted)


PAPER_REFERENCES = {
    "alexnet_paper": alexnet_paper_reference,
    "alexnet_ablation": alexnet_paper_reference,  # every optional layer kept
    "zfnet": zfnet_reference,
    "vgg_a_lrn": lambda: vgg_reference("A"),  # LRN adds neither parameters nor MACs
    "vgg_c": lambda: vgg_reference("C"),
    "mobilenet_v1": mobilenet_v1_reference,
    "mobilenet_v1_conv": mobilenet_v1_conv_reference,
    "alphago_policy": lambda: alphago_reference(192),
}


@pytest.mark.parametrize("name", sorted(PAPER_REFERENCES))
def test_spec_matches_the_papers_arithmetic(name):
    params, macs = PAPER_REFERENCES[name]()
    _, t = totals(name)
    assert (t["params"], t["macs"]) == (params, macs)


def test_the_arithmetic_reproduces_the_published_figures():
    # The widely cited count of the two-GPU AlexNet; the notes' MobileNet row (4.2 million
    # parameters, 569 million mult-adds; 4,231,976 is Keras' trainable count); VGG Table 2.
    assert alexnet_paper_reference()[0] == 60_965_224
    params, macs = mobilenet_v1_reference()
    assert params == 4_231_976 and round(macs / 1e6) == 569
    # The notes' other row, Conv MobileNet: 29.3 million parameters, 4866 million mult-adds.
    # (The paper does not say how it counts; exact arithmetic gives 4867.3M, and 568.7M for
    # MobileNet's 569: both within 0.03% of the printed figures.)
    params, macs = mobilenet_v1_conv_reference()
    assert round(params / 1e5) == 293 and abs(macs / 1e6 - 4866) / 4866 < 3e-4
    table2 = {"A": 133, "B": 133, "C": 134, "D": 138, "E": 144}
    assert {c: round(vgg_reference(c)[0] / 1e6) for c in table2} == table2


# -- references from torchvision ------------------------------------------------------------

TORCHVISION = {  # spec -> (torchvision builder, its weights enum)
    "vgg_a": ("vgg11", "VGG11_Weights"), "vgg_b": ("vgg13", "VGG13_Weights"),
    "vgg_d": ("vgg16", "VGG16_Weights"), "vgg_e": ("vgg19", "VGG19_Weights"),
    "resnet101": ("resnet101", "ResNet101_Weights"),
    "resnet152": ("resnet152", "ResNet152_Weights"),
}


def torchvision_counts(builder):
    """(parameters, MACs) of a torchvision model, measured by torch on the meta device."""
    import torch
    import torchvision

    with torch.device("meta"):
        model = getattr(torchvision.models, builder)()
    macs = []

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            per_output = kh * kw * module.in_channels // module.groups
            macs.append(output[0].numel() * per_output)
        elif isinstance(module, torch.nn.Linear):
            macs.append(module.in_features * module.out_features)

    for module in model.modules():
        module.register_forward_hook(count)
    with torch.no_grad():
        model.eval()(torch.empty(1, 3, 224, 224, device="meta"))
    return sum(p.numel() for p in model.parameters()), sum(macs)


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_spec_matches_torchvision(name):
    import torchvision

    builder, weights = TORCHVISION[name]
    params, macs = torchvision_counts(builder)
    _, t = totals(name)
    assert (t["params"], t["macs"]) == (params, macs)
    meta = getattr(torchvision.models, weights).DEFAULT.meta  # the published figures
    assert t["params"] == meta["num_params"]
    assert round(t["macs"] / 1e9, 3) == pytest.approx(meta["_ops"], abs=1e-3)


def test_vgg_configurations_d_and_e_match_the_named_torchvision_counts():
    assert totals("vgg_d")[1]["params"] == 138_357_544  # vgg16
    assert totals("vgg_e")[1]["params"] == 143_667_240  # vgg19
    assert totals("vgg_a")[1]["params"] == 132_863_336  # vgg11


# -- shapes along the way -------------------------------------------------------------------

def shapes_of_kind(graph, kind):
    return [str(d["shape"]) for d in layers_of(graph) if d["kind"] == kind]


def test_alexnet_paper_shapes_and_groups():
    graph, t = totals("alexnet_paper")
    assert shapes_of_kind(graph, "CONV") == ["55x55x96", "27x27x256", "13x13x384",
                                              "13x13x384", "13x13x256"]
    assert [d["params"]["groups"] for d in layers_of(graph) if d["kind"] == "CONV"] == \
        [1, 2, 1, 2, 2]
    assert shapes_of_kind(graph, "MAXPOOL") == ["27x27x96", "13x13x256", "6x6x256"]
    kinds = [d["kind"] for d in layers_of(graph)][:4]
    assert kinds == ["CONV", "RELU", "LRN", "MAXPOOL"]  # the paper normalises, then pools


def test_zfnet_follows_the_papers_figure_3():
    graph, _ = totals("zfnet")
    assert shapes_of_kind(graph, "CONV") == ["110x110x96", "26x26x256", "13x13x512",
                                              "13x13x1024", "13x13x512"]
    assert shapes_of_kind(graph, "MAXPOOL") == ["55x55x96", "13x13x256", "6x6x512"]


def test_vgg_c_has_the_1x1_convolutions():
    graph, _ = totals("vgg_c")
    ones = [d for d in layers_of(graph) if d["kind"] == "CONV" and d["params"]["kernel"] ==
            (1, 1)]
    assert [str(d["shape"]) for d in ones] == ["56x56x256", "28x28x512", "14x14x512"]
    assert [d["alias"] for d in ones] == ["conv1-256", "conv1-512", "conv1-512"]


@pytest.mark.parametrize("name, weight_layers", [("vgg_a", 11), ("vgg_a_lrn", 11),
                                                 ("vgg_b", 13), ("vgg_c", 16), ("vgg_d", 16),
                                                 ("vgg_e", 19)])
def test_vgg_weight_layer_counts_match_table_1(name, weight_layers):
    graph, _ = totals(name)
    assert sum(1 for d in layers_of(graph) if d["kind"] in ("CONV", "FC")) == weight_layers


def test_mobilenet_v1_ends_at_7x7x1024_and_takes_the_width_multiplier():
    graph, t = totals("mobilenet_v1")
    assert str(next(d["shape"] for d in layers_of(graph) if d["kind"] == "GAP")) == "1x1x1024"
    assert sum(1 for d in layers_of(graph) if d["kind"] == "DWCONV") == 13
    # alpha = 0.5 halves every width: 16 channels after conv1, 512 before the classifier
    half, _ = totals("mobilenet_v1", alpha=0.5)
    assert [str(d["shape"]) for d in layers_of(half)][0] == "112x112x16"
    assert str(next(d["shape"] for d in layers_of(half) if d["kind"] == "GAP")) == "1x1x512"


def test_alexnet_ablation_drops_what_the_lecture_says():
    # The lecture, after Zeiler & Fergus 2014 (Table 3): removing layer 7 drops 16 million
    # parameters, layers 6 and 7 "~50 million", layers 3 and 4 "~1 million"; without 3, 4, 6
    # and 7 "only 4 layers" are left. The exact drops, from the paper's layer sizes: FC7 is
    # 4096*4096+4096; without FC6 and FC7, FC8 reads 9216 values instead of 4096.
    from cnndsl.parser import parse
    from cnndsl.sweep import run_sweep

    full = alexnet_paper_reference()[0]
    rows = run_sweep(parse(modelzoo.read("zoo:alexnet_ablation")), [], optional="both")
    assert len(rows) == 16 and all(r.valid for r in rows)
    by_dropped = {frozenset(label.split("?")[0] for label in r.dropped): r for r in rows}
    drop = {key: full - row.params for key, row in by_dropped.items()}
    assert drop[frozenset()] == 0
    assert drop[frozenset({"fc7"})] == fc(4096, 4096)[0] == 16_781_312
    assert drop[frozenset({"fc6", "fc7"})] == (fc(9216, 4096)[0] + fc(4096, 4096)[0]
                                               - (fc(9216, 1000)[0] - fc(4096, 1000)[0]))
    assert round(drop[frozenset({"fc6", "fc7"})] / 1e7) == 5  # "~50 million"
    # CONV3 (885,120) and CONV4 (663,936) go, and CONV5 reads 256 maps instead of 384
    conv34 = conv(3, 256, 384, 13)[0] + conv(3, 384, 384, 13, groups=2)[0] + (
        conv(3, 384, 256, 13, groups=2)[0] - conv(3, 256, 256, 13, groups=2)[0])
    assert drop[frozenset({"conv3", "conv4"})] == conv34 == 1_696_512  # the notes round to ~1M
    smallest = by_dropped[frozenset({"conv3", "conv4", "fc6", "fc7"})]
    graph = cnndsl.build_graph("zoo:alexnet_ablation", drop_optional=True)
    assert graph.graph["totals"]["params"] == smallest.params
    assert sum(1 for d in layers_of(graph) if d["kind"] in ("CONV", "FC")) == 4


# Howard et al. 2017, Table 6 (width multiplier, 224x224) and Table 7 (resolution, width 1):
# (million mult-adds, million parameters) as printed.
MOBILENET_TABLE_6 = {1: (569, 4.2), 0.75: (325, 2.6), 0.5: (149, 1.3), 0.25: (41, 0.5)}
MOBILENET_TABLE_7 = {224: 569, 192: 418, 160: 290, 128: 186}


@pytest.mark.parametrize("alpha", sorted(MOBILENET_TABLE_6))
def test_mobilenet_v1_width_multipliers_give_table_6(alpha):
    macs, params = MOBILENET_TABLE_6[alpha]
    _, t = totals("mobilenet_v1", alpha=alpha)
    assert round(t["params"] / 1e5) / 10 == params
    assert abs(t["macs"] / 1e6 - macs) <= 1  # the paper's rounding (see Conv MobileNet above)


@pytest.mark.parametrize("size", sorted(MOBILENET_TABLE_7))
def test_mobilenet_v1_resolutions_give_table_7(size):
    _, t = totals("mobilenet_v1", input=f"{size}x{size}x3")
    assert round(t["params"] / 1e5) / 10 == 4.2
    assert abs(t["macs"] / 1e6 - MOBILENET_TABLE_7[size]) <= 1


def test_mobilenet_v1_any_width_multiplier_floors_like_keras():
    # Keras' MobileNet takes int(filters * alpha): 0.6 gives 19 filters for 32, 614 for 1024.
    graph, _ = totals("mobilenet_v1", alpha=0.6)
    assert [str(d["shape"]) for d in layers_of(graph)][0] == "112x112x19"
    assert str(next(d["shape"] for d in layers_of(graph) if d["kind"] == "GAP")) == "1x1x614"


@pytest.mark.parametrize("k", [128, 192, 256, 384])
def test_alphago_policy_for_each_filter_count_in_extended_data_table_3(k):
    graph, t = totals("alphago_policy", k=k)
    assert t["params"] == alphago_reference(k)[0]
    assert str(t["output"]) == "361"
    convs = shapes_of_kind(graph, "CONV")
    assert len(convs) == 13 and convs[:12] == [f"19x19x{k}"] * 12 and convs[12] == "19x19x1"


@pytest.mark.parametrize("name, blocks", [("resnet101", (3, 4, 23, 3)),
                                          ("resnet152", (3, 8, 36, 3))])
def test_resnet_stages_follow_table_1(name, blocks):
    graph, t = totals(name)
    adds = [d for d in layers_of(graph) if d["kind"] == "ADD"]
    assert len(adds) == sum(blocks)
    sizes = [str(d["shape"]) for d in adds]
    expected = ["56x56x256"] * blocks[0] + ["28x28x512"] * blocks[1] + \
        ["14x14x1024"] * blocks[2] + ["7x7x2048"] * blocks[3]
    assert sizes == expected


# -- the position-wise bias -------------------------------------------------------------------

def test_bias_adds_one_parameter_per_position_and_channel():
    graph = build("input 5x7x3\nCONV(4, 3, pad=1, bias=false) - BIAS")
    conv_, bias = layers_of(graph)
    assert str(bias["shape"]) == "5x7x4" and bias["n_params"] == 5 * 7 * 4
    assert bias["macs"] == 0 and bias["rf"] == conv_["rf"]
    kind = layers.get("BIAS")
    recipe = kind.recipe(bias["params"], bias["in_shapes"], bias["shape"])
    assert recipe.module == "PositionBias" and recipe.kwargs == {"shape": (4, 5, 7)}
    assert kind.label(bias["params"]) == "BIAS"


def test_bias_on_a_vector_and_by_its_aliases():
    graph = build("input 10\nFC(6, bias=false) - POSITION_BIAS")
    assert layers_of(graph)[-1]["n_params"] == 6 and layers_of(graph)[-1]["kind"] == "BIAS"
    assert layers.get("BIAS").recipe({}, [Shape.vector(6)], Shape.vector(6)).kwargs == {
        "shape": (6,)}


# -- the zoo as a whole: listing, zoo:NAME, descriptions --------------------------------------

MINE = ["alexnet_paper", "zfnet", "vgg_a", "vgg_a_lrn", "vgg_b", "vgg_c", "vgg_d", "vgg_e",
        "resnet101", "resnet152", "mobilenet_v1", "mobilenet_v1_conv", "alphago_policy"]


def test_every_bundled_spec_checks_and_describes_itself():
    names = modelzoo.names()
    assert set(MINE) <= set(names)
    for name in names:
        entry = zoo_entry(name)
        assert entry.params > 0 and entry.layers > 0
        assert 10 < len(entry.description) <= 100, name
        assert entry.description.endswith((".", "…")), (name, entry.description)


def test_zoo_command_lists_names_counts_and_descriptions(capsys):
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("resnet152 "))
    assert "60,192,808" in row and "11.51G" in row and "ResNet-152" in row
    assert all(f"\n{name} " in out for name in MINE)


def test_zoo_command_prints_a_spec_and_lists_json(capsys):
    import json

    assert main(["zoo", "vgg_c"]) == 0
    assert "conv1-256" in capsys.readouterr().out
    assert main(["zoo", "--json"]) == 0
    listed = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert listed["alexnet_paper"]["params"] == 60_965_224


def test_zoo_names_resolve_from_any_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["check", "zoo:vgg_d"]) == 0
    assert "zoo:vgg_d: ok" in capsys.readouterr().out
    assert main(["check", "zoo:alphago_policy", "-D", "k=128"]) == 0


def test_unknown_zoo_name_is_a_usage_error_with_a_suggestion(capsys):
    assert main(["check", "zoo:resnet1O1"]) == 2
    err = capsys.readouterr().err
    assert "no spec `resnet1O1` in the zoo" in err and "did you mean `resnet101`" in err
    with pytest.raises(cnndsl.errors.UsageError):
        modelzoo.read("../pyproject")


# -- compiled to torch: a forward pass ----------------------------------------------------------

# The ResNets and MobileNet end in global average pooling, so a 64x64 input runs the same
# modules (same parameters) in a fraction of the time; the others' FC layers fix their input.
SMALL_INPUT = {"resnet101": "64x64x3", "resnet152": "64x64x3", "mobilenet_v1": "64x64x3",
               "mobilenet_v1_conv": "64x64x3"}


@pytest.mark.parametrize("name", MINE)
def test_compiled_spec_runs_a_forward_pass(name):
    import torch

    _, t = totals(name)
    model = cnndsl.compile(f"zoo:{name}", input=SMALL_INPUT.get(name), seed=0).eval()
    assert sum(p.numel() for p in model.parameters()) == t["params"]
    with torch.no_grad():
        out = model(torch.randn(2, *model.cnndsl_info["input_shape"]))
    classes = 361 if name == "alphago_policy" else 1000
    assert tuple(out.shape) == (2, classes)
    # every one of these specs ends in a softmax: two probability distributions
    assert torch.allclose(out.sum(dim=1), torch.ones(2), atol=1e-4)


def test_alphago_compiles_a_learned_bias_per_board_point():
    model = cnndsl.compile("zoo:alphago_policy", k=16, seed=0)
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert (1, 19, 19) in shapes and shapes.count((16,)) == 12  # the 1x1 conv has no bias


def test_description_is_the_first_comment_sentence_on_one_line():
    assert modelzoo.description("# One line.\n# More.\ninput 8x8x3\nRELU") == "One line."
    # a sentence that introduces a list (`...:`) is shown as the sentence it is, not cut
    assert modelzoo.description("\n# Runs over\n#   two lines:\n# rest") == "Runs over two lines."
    long = "# " + "word " * 40 + "end.\nRELU"
    cut = modelzoo.description(long, width=30)
    assert cut.endswith("…") and len(cut) <= 30 and cut.startswith("word word")
    assert modelzoo.description("input 8x8x3\n# not a header\nRELU") == ""


def test_docs_zoo_table_matches_the_specs():
    from pathlib import Path

    doc = Path(__file__).resolve().parent.parent / "docs" / "zoo.md"
    rows = [line.split("|")[1:-1] for line in doc.read_text(encoding="utf-8").splitlines()
            if line.startswith("| `")]
    listed = {cells[0].strip().strip("`"): [c.strip() for c in cells] for cells in rows}
    assert set(modelzoo.names()) <= {n.strip("` ") for name in listed for n in name.split(",")}
    for name, cells in listed.items():
        if "," in name:  # a group of torchvision-built specs; `cnndsl zoo` has their numbers
            continue
        if " -D " in name:  # a spec with a define (`fcn_resnet50 -D aux=1`)
            spec, _, define = name.partition(" -D ")
            key, _, value = define.partition("=")
            totals = check_spec(f"zoo:{spec}", input=cells[2], **{key: int(value)}).totals
            assert (cells[3], cells[4]) == (str(totals["layers"]), f"{totals['params']:,}")
            continue
        entry = zoo_entry(name)
        assert (cells[2], cells[3], cells[4]) == (entry.input, str(entry.layers),
                                                  f"{entry.params:,}"), name


def test_zoo_command_lists_the_rest_and_fails_on_a_broken_spec(monkeypatch, capsys):
    real_read = modelzoo.read
    monkeypatch.setattr(modelzoo, "read", lambda name: "input 8x8x3\nCONV(4, 9)" if
                        name.removeprefix("zoo:") == "lenet5" else real_read(name))
    assert main(["zoo"]) == 1
    captured = capsys.readouterr()
    assert "\nresnet152 " in captured.out and "\nlenet5 " not in captured.out
    assert captured.err.startswith("zoo:lenet5:2:1: error: ")
    assert "window is larger than its padded input" in captured.err
