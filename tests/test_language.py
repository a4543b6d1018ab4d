"""The language: the lecture patterns, aliases, variables, blocks, repeats and branches."""
from __future__ import annotations

import networkx as nx
import pytest

import cnndsl
from cnndsl.errors import (CnnArgumentError, CnnDslError, CnnLimitError, CnnNameError,
                           CnnShapeError)

from conftest import build, layers_of, shapes_of

PATTERNS = [
    "[(CONV-RELU)*N-POOL]*M-(FC-RELU)*K-SOFTMAX",
    "{ (CONV+RELU) * N + POOL } * M + {FC+RELU} * K + SOFTMAX",
    "[(CONV-RELU)*N-POOL]*M-(FC-RELU)*K,SOFTMAX",
    "INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC",
    "[CONV-POOL-CONV-POOL-CONV-FC]",
]


def signature(graph):
    """What makes two graphs the same network: kinds, resolved params, shapes, data flow."""
    order = list(nx.lexicographical_topological_sort(graph))
    index = {v: i for i, v in enumerate(order)}
    nodes = [(graph.nodes[v]["kind"], graph.nodes[v]["params"], str(graph.nodes[v]["shape"]))
             for v in order]
    edges = sorted((index[u], index[v], d["index"]) for u, v, d in graph.edges(data=True))
    return nodes, edges


# Every pattern gets N, M and K, as one command line would; those without K warn that K is unused.
@pytest.mark.filterwarnings("ignore::cnndsl.UnusedVariableWarning")
@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("n, m, k", [(1, 1, 0), (2, 3, 1), (3, 2, 2)])
def test_lecture_patterns_check_with_cli_style_options(pattern, n, m, k):
    graph = build(pattern, input="32x32x3", classes=10, N=n, M=m, K=k)
    out = graph.nodes[graph.graph["output"]]
    assert str(out["shape"]) == "10"
    kinds = [d["kind"] for d in layers_of(graph)]
    if "*N" in pattern:
        assert kinds.count("MAXPOOL") == m
        assert kinds.count("CONV") == n * m
    # K hidden FC layers, then the classifier (inserted before SOFTMAX, or the final bare FC)
    if "K" in pattern:
        assert kinds.count("FC") == k + 1


@pytest.mark.parametrize("pattern", PATTERNS)
def test_lecture_patterns_with_statements(pattern):
    text = f"input 32x32x3\nclasses = 10\nN = 2\nM = 2\nK = 1\n{pattern}\n"
    assert str(build(text).graph["totals"]["output"]) == "10"


def test_first_two_patterns_are_the_same_network():
    a = build(PATTERNS[0], input="32x32x3", classes=10, N=2, M=3, K=2)
    b = build(PATTERNS[1], input="32x32x3", classes=10, N=2, M=3, K=2)
    c = build(PATTERNS[2], input="32x32x3", classes=10, N=2, M=3, K=2)
    assert signature(a) == signature(b) == signature(c)


def test_lecture_defaults():
    graph = build(PATTERNS[0], input="32x32x3", classes=10, N=1, M=2, K=1)
    rows = [(d["kind"], str(d["shape"])) for d in layers_of(graph)]
    assert rows == [
        ("CONV", "32x32x64"), ("RELU", "32x32x64"), ("MAXPOOL", "16x16x64"),   # F=3 S=1 P=1
        ("CONV", "16x16x128"), ("RELU", "16x16x128"), ("MAXPOOL", "8x8x128"),  # doubled
        ("FC", "4096"), ("RELU", "4096"),             # hidden FC: fc_width
        ("FC", "10"), ("SOFTMAX", "10"),              # the output layer: FC(classes) + softmax
    ]
    classifier = layers_of(graph)[-2]
    assert classifier.get("implicit") is True


def test_softmax_row_is_the_lenet_output_layer():
    # LeNet-5 table: "Softmax (10,1) 10 840" — the softmax row carries 84*10 weights.
    graph = build("input 32x32x1\nclasses = 10\nCONV(6,5)-AVGPOOL(2)-CONV(16,5)-AVGPOOL(2)"
                  "-FC(120)-FC(84)-SOFTMAX")
    fc = layers_of(graph)[-2]
    assert fc["kind"] == "FC" and fc["n_params"] == 850  # 840 weights + 10 biases


def test_filter_doubling_caps_at_max_width():
    graph = build("(CONV - POOL) * 6", input="256x256x3")
    assert [d["shape"].c for d in layers_of(graph) if d["kind"] == "CONV"] == \
        [64, 128, 256, 512, 512, 512]
    graph = build("width = 16\nmax_width = 64\n(CONV - POOL) * 4", input="64x64x3")
    assert [d["shape"].c for d in layers_of(graph) if d["kind"] == "CONV"] == [16, 32, 64, 64]


def test_optional_layers_are_kept_by_default_and_can_be_dropped():
    text = "input 32x32x3\n(CONV - POOL?) * 2 - FC(10)"
    assert [d["kind"] for d in layers_of(build(text))].count("MAXPOOL") == 2
    assert [d["kind"] for d in layers_of(build(text, drop_optional=True))].count("MAXPOOL") == 0
    graph = build(text)
    assert graph.graph["optional_sites"] == [(2, 9)]  # line 2, column of `POOL?`


VGG16_COLUMN = """
input 224x224x3
# Table 1, column D, as printed (the paper omits ReLU "for brevity"; it is written here)
conv3-64 - RELU - conv3-64 - RELU - maxpool
  - conv3-128 - RELU - conv3-128 - RELU - maxpool
  - conv3-256 - RELU - conv3-256 - RELU - conv3-256 - RELU - maxpool
  - conv3-512 - RELU - conv3-512 - RELU - conv3-512 - RELU - maxpool
  - conv3-512 - RELU - conv3-512 - RELU - conv3-512 - RELU - maxpool
  - FC-4096 - RELU - FC-4096 - RELU - FC-1000 - soft-max
"""

VGG16_DEF = """
input 224x224x3
def stage(c, n) = (CONV(c, 3, pad=1) - RELU)*n - MAXPOOL(2)
stage(64,2) - stage(128,2) - stage(256,3) - stage(512,3) - stage(512,3)
  - (FC(4096) - RELU)*2 - FC(1000) - SOFTMAX
"""


def test_vgg16_column_notation_and_def_give_the_same_graph():
    column, defined = build(VGG16_COLUMN), build(VGG16_DEF)
    assert signature(column) == signature(defined)
    assert column.graph["totals"]["params"] == 138_357_544  # torchvision's vgg16


def test_vgg_conv1_token_has_no_padding():
    graph = build("input 28x28x256\nconv1-256 - conv3-256")
    assert [str(d["shape"]) for d in layers_of(graph)] == ["28x28x256", "28x28x256"]
    assert layers_of(graph)[0]["params"]["pad"] == (0, 0)


def test_names_are_case_insensitive_and_aliases_work():
    a = build("input 32x32x3\nconv(8, 3) - relu - maxpool(2) - fc(10) - softmax")
    b = build("input 32x32x3\nCONV(8, 3) - ReLU - POOL(2) - Linear(10) - SOFTMAX")
    assert signature(a) == signature(b)


def test_separators_all_mean_then():
    forms = ["CONV(8,3) - RELU - FC(10)", "CONV(8,3) -> RELU -> FC(10)",
             "CONV(8,3) + RELU + FC(10)", "CONV(8,3), RELU, FC(10)", "CONV(8,3) → RELU → FC(10)"]
    sigs = [signature(build(f, input="8x8x3")) for f in forms]
    assert all(s == sigs[0] for s in sigs)


def test_variables_arithmetic_and_overrides():
    text = "input 32x32x3\nc = 16\nn = 2\nCONV(c*2, 3, pad=(3-1)/2) * (n+1) - FC(c/2 + 2)"
    graph = build(text)
    convs = [d for d in layers_of(graph) if d["kind"] == "CONV"]
    assert len(convs) == 3 and convs[0]["shape"].c == 32
    assert graph.graph["totals"]["output"].c == 10
    graph = build(text, c=8, n=0)  # -D overrides the spec's values
    assert graph.graph["totals"]["output"].c == 6
    assert [d["shape"].c for d in layers_of(graph) if d["kind"] == "CONV"] == [16]


def test_undefined_variable_has_did_you_mean():
    with pytest.raises(CnnNameError) as info:
        build("input 8x8x3\nwidth_c = 4\nCONV(widht_c, 3)")
    assert "undefined variable `widht_c`" in info.value.message
    assert "did you mean `width_c`?" in info.value.help


def test_unknown_layer_has_did_you_mean():
    with pytest.raises(CnnNameError) as info:
        build("input 8x8x3\nCONV - RELUU")
    assert "unknown layer or block `RELUU`" in info.value.message
    assert "did you mean `RELU`?" in info.value.help


def test_defs_nest_take_defaults_and_keywords():
    text = """
    input 56x56x64
    def conv_bn(c, k=3, s=1) = CONV(c, k, s=s, pad=same, bias=false) - BN - RELU
    def pair(c) = conv_bn(c) - conv_bn(c, k=1)
    def down(c) = conv_bn(c, s=2, k=3)
    pair(64) - down(128) - pair(c=128)
    """
    graph = build(text, rounding="floor")
    convs = [d for d in layers_of(graph) if d["kind"] == "CONV"]
    assert [str(d["shape"]) for d in convs] == ["56x56x64", "56x56x64", "28x28x128",
                                                "28x28x128", "28x28x128"]
    assert [d["params"]["kernel"] for d in convs] == [(3, 3), (1, 1), (3, 3), (3, 3), (1, 1)]
    blocks = [[f.name for f in d["path"] if f.kind == "block"] for d in convs]
    assert blocks[0] == ["pair", "conv_bn"] and blocks[2] == ["down", "conv_bn"]


def test_block_parameters_can_be_layers():
    graph = build("input 8x8x4\ndef twice(body) = body - body\ntwice(CONV(4, 3, pad=1) - RELU)")
    assert [d["kind"] for d in layers_of(graph)] == ["CONV", "RELU", "CONV", "RELU"]


def test_repeats_record_their_iteration_in_the_path():
    graph = build("input 8x8x4\n(CONV(4, 3, pad=1) - RELU) * 3")
    frames = [d["path"][-1] for d in layers_of(graph)]
    assert [(f.kind, f.index, f.count) for f in frames] == [
        ("repeat", 0, 3), ("repeat", 0, 3), ("repeat", 1, 3), ("repeat", 1, 3),
        ("repeat", 2, 3), ("repeat", 2, 3)]
    assert len({f.id for f in frames}) == 1


def test_nodes_keep_their_source_span():
    graph = build("input 8x8x3\nCONV(4, 3)\n  - RELU")
    conv, relu = layers_of(graph)
    assert (conv["span"].line, conv["span"].column) == (2, 1)
    assert (relu["span"].line, relu["span"].column) == (3, 5)


RESNET_STAGE = """
input 56x56x64
def basic(c, s=1) = residual(CONV(c, 3, s=s, pad=1, bias=false) - BN - RELU
                              - CONV(c, 3, pad=1, bias=false) - BN) - RELU
basic(64) - basic(64) - basic(128, 2) - basic(128)
"""


def test_resnet_stage_with_identity_and_projection_shortcuts():
    graph = build(RESNET_STAGE, rounding="floor")
    adds = [v for v in graph if graph.nodes[v]["kind"] == "ADD"]
    assert len(adds) == 4
    assert str(graph.graph["totals"]["output"]) == "28x28x128"
    # the downsampling block gets torchvision's projection: 1x1 conv, stride 2, no bias, BN
    implicit = [graph.nodes[v] for v in graph if graph.nodes[v].get("implicit")]
    assert [(d["kind"], str(d["shape"])) for d in implicit] == [("CONV", "28x28x128"),
                                                                ("BN", "28x28x128")]
    assert implicit[0]["params"]["stride"] == (2, 2) and not implicit[0]["params"]["bias"]
    assert implicit[0]["n_params"] == 64 * 128
    # each ADD joins two real branches
    assert all(graph.in_degree(v) == 2 for v in adds)


def test_resnet18_parameter_count_equals_torchvision():
    text = RESNET_STAGE.replace("input 56x56x64", "input 224x224x3").replace(
        "basic(64) - basic(64) - basic(128, 2) - basic(128)",
        "CONV(64, 7, s=2, pad=3, bias=false) - BN - RELU - MAXPOOL(3, 2, pad=1)"
        " - basic(64)*2 - basic(128, 2) - basic(128) - basic(256, 2) - basic(256)"
        " - basic(512, 2) - basic(512) - GAP - FC(1000)")
    assert build(text, rounding="floor").graph["totals"]["params"] == 11_689_512


INCEPTION_3A = """
input 28x28x192
def inception(c1, c3r, c3, c5r, c5, pp) = concat(
    CONV(c1, 1) - RELU,
    CONV(c3r, 1) - RELU - CONV(c3, 3, pad=1) - RELU,
    CONV(c5r, 1) - RELU - CONV(c5, 5, pad=2) - RELU,
    MAXPOOL(3, 1, pad=1) - CONV(pp, 1) - RELU)
inception(64, 96, 128, 16, 32, 32)
"""


def test_inception_module_concatenates_depthwise():
    # GoogLeNet table: inception (3a) output 28x28x256 (64 + 128 + 32 + 32).
    graph = build(INCEPTION_3A)
    assert str(graph.graph["totals"]["output"]) == "28x28x256"
    concat = graph.graph["output"]
    assert graph.nodes[concat]["kind"] == "CONCAT" and graph.in_degree(concat) == 4


def test_mismatched_concat_is_a_located_error():
    with pytest.raises(CnnShapeError) as info:
        build("input 28x28x16\nconcat(CONV(8, 1), CONV(8, 3, s=2, pad=1, round=floor))")
    assert "CONCAT needs equal height and width" in info.value.message
    assert (info.value.span.line, info.value.span.column) == (2, 1)


def test_mismatched_add_is_a_located_error():
    with pytest.raises(CnnShapeError) as info:
        build("input 28x28x16\n  add(CONV(8, 1), CONV(16, 1))")
    assert "ADD needs equal shapes" in info.value.message
    assert (info.value.span.line, info.value.span.column) == (2, 3)


def test_explicit_shortcut_and_add_branches():
    graph = build("input 8x8x4\nresidual(CONV(8, 3, pad=1), CONV(8, 1))")
    assert not any(d.get("implicit") for _, d in graph.nodes(data=True))
    graph = build("input 8x8x4\nadd(CONV(4, 3, pad=1), identity) - RELU")
    assert [d["kind"] for d in layers_of(graph)] == ["CONV", "ADD", "RELU"]


def test_the_ir_is_a_dag_and_a_chain_has_one_path():
    graph = build("input 8x8x3\nCONV(4,3) - RELU - FC(2)")
    assert nx.is_directed_acyclic_graph(graph)
    assert [graph.in_degree(v) for v in graph] == [0, 1, 1, 1]
    graph = build(INCEPTION_3A)
    assert nx.is_directed_acyclic_graph(graph)


def test_separable_conv_expands_to_depthwise_and_pointwise():
    graph = build("input 112x112x32\nSEPCONV(64)")
    dw, pw = layers_of(graph)
    assert (dw["kind"], pw["kind"]) == ("DWCONV", "CONV")
    assert dw["n_params"] == 32 * 9 + 32 and pw["n_params"] == 32 * 64 + 64
    assert str(pw["shape"]) == "112x112x64"


def test_depthwise_groups_equal_channels():
    node = layers_of(build("input 56x56x128\nDWCONV(3, s=2, pad=1, bias=false)",
                           rounding="floor"))[0]
    assert str(node["shape"]) == "28x28x128" and node["n_params"] == 128 * 9


def test_grouped_conv_parameters():
    # AlexNet's conv2 on two GPUs: 256 filters of 5x5x48 (groups=2) + biases.
    node = layers_of(build("input 27x27x96\nCONV(256, 5, pad=2, groups=2)"))[0]
    assert node["n_params"] == 256 * 5 * 5 * 48 + 256


def test_dilation_and_nonsquare_kernels():
    node = layers_of(build("input 32x32x3\nCONV(8, 3, d=2)"))[0]
    assert str(node["shape"]) == "28x28x8" and node["rf"] == (5, 5)
    node = layers_of(build("input 17x17x8\nCONV(8, 1x7, pad=0x3)"))[0]
    assert str(node["shape"]) == "17x17x8"


def test_global_average_pooling_and_batchnorm_on_vectors():
    graph = build("input 7x7x512\nGAP - FC(100) - BN - RELU - DROPOUT(0.2) - FC(10)")
    assert shapes_of(graph) == ["1x1x512", "100", "100", "100", "100", "10"]
    bn = layers_of(graph)[2]
    assert (bn["n_params"], bn["n_buffers"]) == (200, 200)


def test_cli_options_and_statements_agree():
    a = build("input 32x32x3\nclasses = 10\nCONV - FC")
    b = build("CONV - FC", input="32x32x3", classes=10)
    assert signature(a) == signature(b)


def test_input_statement_forms():
    for form in ("input 32x32x3", "input = 32x32x3", "input: 32 x 32 x 3", "INPUT 32x32x3"):
        assert str(build(f"{form}\nCONV(4, 3)").graph["totals"]["output"]) == "30x30x4"
    assert str(build("input 784\nFC(10)").graph["totals"]["output"]) == "10"
    assert str(build("input 28x28\nCONV(4, 5)").graph["totals"]["output"]) == "24x24x4"


def test_semicolons_and_line_continuations():
    a = build("input 8x8x3; N = 2; (CONV(4, 3, pad=1) - RELU) * N")
    b = build("input 8x8x3\nN = 2\n(CONV(4, 3, pad=1)\n  - RELU)\n  * N")
    c = build("input 8x8x3\nN = 2\n(CONV(4, 3, pad=1) -\n RELU) *\n N")
    assert signature(a) == signature(b) == signature(c)


def test_api_errors_are_cnndsl_errors():
    with pytest.raises(CnnDslError):
        cnndsl.build_graph("input 8x8x3\nCONV(")


def test_defines_cannot_replace_blocks_or_layers():
    with pytest.raises(CnnNameError) as info:
        build(VGG16_DEF, stage=2)
    assert "`stage` is a block or layer, not a variable" in info.value.message
    with pytest.raises(CnnNameError):
        build(VGG16_DEF, conv=2)


VGG16_PAPER_COLUMN = """
input 224x224x3
activation = relu   # "All hidden layers are equipped with the rectification (ReLU)"
conv3-64 - conv3-64 - maxpool
  - conv3-128 - conv3-128 - maxpool
  - conv3-256 - conv3-256 - conv3-256 - maxpool
  - conv3-512 - conv3-512 - conv3-512 - maxpool
  - conv3-512 - conv3-512 - conv3-512 - maxpool
  - FC-4096 - FC-4096 - FC-1000 - soft-max
"""


def test_vgg16_exactly_as_the_paper_column_with_implicit_relu():
    assert signature(build(VGG16_PAPER_COLUMN)) == signature(build(VGG16_DEF))


def test_activation_setting_respects_bn_existing_activations_and_the_output():
    graph = build("input 8x8x3\nactivation = LEAKYRELU(0.2)\n"
                  "CONV(4, 3, pad=1) - BN - CONV(4, 3, pad=1) - TANH - FC(6) - FC(2)")
    assert [d["kind"] for d in layers_of(graph)] == [
        "CONV", "BN", "LEAKYRELU", "CONV", "TANH", "FC", "LEAKYRELU", "FC"]
    assert layers_of(graph)[2]["params"]["slope"] == 0.2
    graph = build("input 19x19x8\nactivation = relu\nCONV(8, 3, pad=1) - CONV(1, 1)")
    assert [d["kind"] for d in layers_of(graph)] == ["CONV", "RELU", "CONV"]
    with pytest.raises(CnnDslError):
        build("input 8x8x3\nactivation = softmax\nCONV(4, 3)")


def test_projection_handles_odd_sizes_as_pytorch_does():
    # 9x9 with a stride-2 body: (9 + 2 - 3)//2 + 1 = 5;
    # the 1x1 stride-2 shortcut: (9 - 1)//2 + 1 = 5
    import torch

    text = "input 9x9x4\nresidual(CONV(8, 3, s=2, pad=1, round=floor) - BN)"
    graph = build(text)
    proj = [d for d in layers_of(graph) if d.get("implicit") and d["kind"] == "CONV"][0]
    assert proj["params"]["stride"] == (2, 2) and str(proj["shape"]) == "5x5x8"
    model = cnndsl.compile(text, seed=0).eval()
    assert tuple(model(torch.randn(1, 4, 9, 9)).shape) == (1, 8, 5, 5)


@pytest.mark.parametrize("spec", ["googlenet", "resnet50", "mobilenet_v2", "vgg_a_lrn"])
def test_data_flow_order_is_networkx_lexicographical_order(spec):
    graph = build(f"zoo:{spec}")
    order = [node.id for node in graph.graph["ir"].order()]
    assert order == list(nx.lexicographical_topological_sort(graph))


def test_a_repeat_of_one_is_not_a_repetition():
    graph = build("input 8x8x4\n(CONV(4, 3, pad=1) - RELU) * 1 - (RELU * 2)")
    frames = [[f.kind for f in d["path"]] for d in layers_of(graph)]
    assert frames == [[], [], ["repeat"], ["repeat"]]


# -- PyTorch's spellings: input sizes are checked, never misread ---------------------------------

def test_batchnorm2d_64_is_64_channels_not_eps_64():
    # PyTorch's BatchNorm2d(num_features): once this silently meant eps=64.
    graph = build("input 8x8x3\nCONV(64, 3) - BatchNorm2d(64)")
    bn = layers_of(graph)[-1]
    assert bn["kind"] == "BN" and bn["params"]["eps"] == 1e-5 and bn["params"]["channels"] == 64
    assert bn["n_params"] == 2 * 64
    with pytest.raises(CnnShapeError, match="channels=32, but its input has 64 channels"):
        build("input 8x8x3\nCONV(64, 3) - BN(32)")


def test_linear_with_two_numbers_is_pytorchs_in_and_out_features():
    # LeNet's FC layers as PyTorch writes them: Linear(16*5*5, 120), Linear(120, 84), ...
    torch_style = build("input 32x32x1\nCONV(6, 5) - AVGPOOL(2) - CONV(16, 5) - AVGPOOL(2)"
                        " - Linear(16*5*5, 120) - Linear(120, 84) - Linear(84, 10)")
    ours = build("input 32x32x1\nCONV(6, 5) - AVGPOOL(2) - CONV(16, 5) - AVGPOOL(2)"
                 " - FC(120) - FC(84) - FC(10)")
    assert [d["n_params"] for d in layers_of(torch_style)][-3:] == [48_120, 10_164, 850]
    assert torch_style.graph["totals"]["params"] == ours.graph["totals"]["params"]
    assert [d["params"]["bias"] for d in layers_of(build("input 10\nFC(4, false)"))] == [False]
    with pytest.raises(CnnShapeError, match="in_features=100, but its input has 400 values"):
        build("input 5x5x16\nLinear(100, 10)")


def test_pytorch_keywords_and_checked_in_channels():
    graph = build("input 10x10x3\nConv2d(in_channels=3, out_channels=8, kernel_size=3)"
                  " - MaxPool2d(kernel_size=3, stride=2, ceil_mode=true)")
    conv, pool = layers_of(graph)
    assert conv["params"]["filters"] == 8 and conv["params"]["kernel"] == (3, 3)
    # 10 - 3 + 1 = 8; (8 - 3)/2 + 1 = 3.5, rounded up
    assert pool["params"]["round"] == "ceil" and str(pool["shape"]) == "4x4x8"
    with pytest.raises(CnnShapeError, match="in_channels=4, but its input has 3 channels"):
        build("input 9x9x3\nCONV(8, 3, in_channels=4)")
    # extras are keywords only: a fifth positional pooling argument is still an error
    with pytest.raises(CnnArgumentError, match="at most 4 positional"):
        build("input 9x9x3\nMAXPOOL(2, 2, 0, floor, 7)")


def test_batchnorm2d_compiles_with_torchs_default_eps():
    import torch

    import cnndsl

    model = cnndsl.compile("input 8x8x3\nCONV(4, 3) - BatchNorm2d(4)", seed=0)
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert bn.num_features == 4 and bn.eps == 1e-5


def test_a_pytorch_style_conv2d_that_does_not_fit_says_why():
    with pytest.raises(CnnShapeError) as info:
        build("input 32x32x3\nConv2d(3, 64, 3)")
    assert any("PyTorch's Conv2d(3, 64, 3) is Conv2d(64, 3) here" in n for n in info.value.notes)
    with pytest.raises(CnnShapeError) as info:
        build("input 32x32x3\nCONV(3, 64, 3)")  # written CONV: no PyTorch habit to point at
    assert not any("PyTorch" in n for n in info.value.notes)


# -- F8 (issue 17): a nested call of the same def is not recursion ------------------------

def test_a_block_def_called_in_its_own_argument_is_not_recursion():
    graph = cnndsl.build_graph("input 8x8x3\ndef twice(body) = body - body\n"
                               "twice(twice(RELU))\n")
    assert [d["kind"] for d in layers_of(graph)] == ["RELU"] * 4


def test_a_number_def_called_in_its_own_argument_is_not_recursion():
    graph = cnndsl.build_graph("input 8x8x3\ndef half(c) = c / 2\nCONV(half(half(16)), 1)\n")
    assert [str(d["shape"]) for d in layers_of(graph)] == ["8x8x4"]


@pytest.mark.parametrize("text, line, chain", [
    ("def f(x) = f(x)\nCONV(f(1), 1)", 2, "f -> f"),
    ("def a = b\ndef b = a\nCONV(a, 1)", 3, "a -> b -> a"),
    ("def block(n) = CONV - block(n)\nblock(3)", 2, "block -> block"),
    # the argument is evaluated in the caller's chain, and that chain is inside f
    ("def g(x) = x + 1\ndef f(y) = g(f(y))\nCONV(f(1), 1)", 3, "f -> x -> f"),
])
def test_real_recursion_is_still_refused_where_it_recurses(text, line, chain):
    with pytest.raises(CnnLimitError, match="refers to itself") as info:
        cnndsl.build_graph("input 8x8x3\n" + text + "\n")
    assert info.value.span.line == line
    assert f"({chain})" in str(info.value)


# -- F22 (issue 17): `activation =` follows CONV, DWCONV and FC only -----------------------

def test_the_activation_setting_follows_conv_dwconv_and_fc_but_not_bias():
    graph = cnndsl.build_graph("input 8x8x3\nactivation = relu\n"
                               "CONV(4, 1) - BIAS - DWCONV(3, pad=1) - BIAS - FC(10) - FC(2)\n")
    assert [d["kind"] for d in layers_of(graph)] == [
        "CONV", "RELU", "BIAS", "DWCONV", "RELU", "BIAS", "FC", "RELU", "FC"]
