"""`cnndsl expand --explain`: each layer's size and parameter arithmetic, as the notes work it."""
from __future__ import annotations

import ast
import operator
import re

import pytest

from cnndsl import modelzoo
from cnndsl.api import check_spec, layer_rows
from cnndsl.ir import node_dict
from cnndsl.cli import main
from cnndsl.commands.expand import explanation


def explain(capsys, spec: str) -> str:
    assert main(["expand", "--explain", spec]) == 0
    return capsys.readouterr().out


def test_the_notes_7x7_input_and_3x3_filter(capsys):
    # "7x7 input, 3x3 filter: stride 1 -> 5x5 output, stride 2 -> 3x3"
    assert "size (7 - 3 + 2*0)/1 + 1 = 5\n" in explain(capsys, "input 7x7x3\nCONV(1, 3)")
    assert "size (7 - 3 + 2*0)/2 + 1 = 3\n" in explain(capsys, "input 7x7x3\nCONV(1, 3, s=2)")


def test_the_notes_ten_5x5_filters_on_32x32x3(capsys):
    # "each filter has 5*5*3 + 1 = 76 params (+1 for bias) so 76*10 = 760"
    out = explain(capsys, "input 32x32x3\nCONV(10, 5, pad=2)")
    assert "size (32 - 5 + 2*2)/1 + 1 = 32\n" in out
    assert "parameters 10 filters x (5*5*3 + 1) = 760\n" in out


def test_alexnet_conv1_and_overlapping_pool(capsys):
    # "(227-11)/4+1 = 55"; "96 x 364 = 34,944"; "1 + (55 - 3)/2 = 27"; pooling adds "None!"
    out = explain(capsys, "input 227x227x3\nCONV(96, 11, s=4) - MAXPOOL(3, 2)")
    assert "size (227 - 11 + 2*0)/4 + 1 = 55\n" in out
    assert "parameters 96 filters x (11*11*3 + 1) = 34,944\n" in out
    assert "size (55 - 3 + 2*0)/2 + 1 = 27; no parameters" in out


def test_rounding_is_spelled_out(capsys):
    # AlexNet at 224 with pad 2: the notes' 55.25; PyTorch's floor rule gives 55.
    out = explain(capsys, "input 224x224x3\nrounding = floor\nCONV(96, 11, s=4, pad=2)")
    assert "size (224 - 11 + 2*2)/4 + 1 = 55.25, rounded down to 55\n" in out
    out = explain(capsys, "input 56x56x3\nMAXPOOL(3, 2, round=ceil)")
    assert "size (56 - 3 + 2*0)/2 + 1 = 27.50, rounded up to 28;" in out


def test_lenet_fc_and_non_square_windows(capsys):
    out = explain(capsys, "zoo:lenet5")
    assert "5*5*16 = 400 inputs, parameters 120 units x (400 + 1) = 48,120\n" in out
    out = explain(capsys, "input 27x27x4\nCONV(8, 3x1, s=2x1)")
    assert "height (27 - 3 + 2*0)/2 + 1 = 13; width (27 - 1 + 2*0)/1 + 1 = 27\n" in out


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv}


def arithmetic(text: str) -> float:
    """The value of `(227 - 11 + 2*0)/4 + 1`: numbers and + - * / only."""
    def value(node):
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        raise ValueError(text)
    return value(ast.parse(text.replace(",", ""), mode="eval").body)


@pytest.mark.parametrize("name", modelzoo.names())
def test_every_explanation_in_the_zoo_adds_up(name):
    """The worked arithmetic is right: each formula gives the size the layer has, and each
    parameter product gives the count the summary has, for every layer of every spec."""
    graph = check_spec(f"zoo:{name}")
    for row in layer_rows(graph):
        d = node_dict(graph[row["id"]])
        for line in explanation(graph, row["id"]):
            for axis in re.finditer(r"(?:size|height|width) ([^=;]+) = ([\d.]+)"
                                    r"(?:, rounded (?:down|up) to (\d+))?", line):
                exact, shown, rounded = axis.groups()
                assert arithmetic(exact) == pytest.approx(float(shown), abs=0.005), line
                size = int(rounded or shown)
                assert size in (d["shape"].h, d["shape"].w), (name, row["name"], line)
            product = re.search(r"parameters (\d[\d,]*) (?:filters|units) x (.+) = ([\d,]+)$",
                                line)
            if product:
                count, per, total = product.groups()
                assert arithmetic(f"{count} * {per}") == arithmetic(total) == d["n_params"], line


def test_the_language_docs_example_is_the_commands_output(capsys):
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "language.md").read_text()
    marker = "<!-- explain-example: input 227x227x3 / CONV(96, 11, s=4) - RELU - MAXPOOL(3, 2)" \
             " - FC(10) -->\n```text\n"
    shown = doc[doc.index(marker) + len(marker):].split("```", 1)[0]
    spec = "input 227x227x3\nCONV(96, 11, s=4) - RELU - MAXPOOL(3, 2) - FC(10)"
    assert explain(capsys, spec) == shown
    # the FC line's count is the layer's, worked by hand: 27*27*96 inputs, + 1 bias, x 10 units
    assert layer_rows(check_spec(spec))[-1]["params"] == 10 * (27 * 27 * 96 + 1)


def test_every_kind_that_has_parameters_explains_them():
    """Over the registry: a layer with parameters shows a `parameters ... = N` line ending in
    its count; a layer with a window shows its size formula."""
    from cnndsl import layers
    from test_registry_torch import specs_for

    for kind in layers.REGISTRY:
        for text in specs_for(kind):
            graph = check_spec(text)
            for row in layer_rows(graph):
                d = node_dict(graph[row["id"]])
                lines = " ".join(explanation(graph, row["id"]))
                if d["n_params"]:
                    assert re.search(rf"parameters .*{d['n_params']:,}\b", lines), (text, lines)
                window = layers.get(d["kind"]).window(d["params"], d["in_shapes"]) \
                    if d["kind"] != "INPUT" else None
                if window is not None and d["kind"] not in ("FC", "GAP", "ADAPTIVEAVGPOOL"):
                    assert "size " in lines or "height " in lines, (text, lines)


def test_activations_show_what_they_compute(capsys):
    out = explain(capsys, "input 4x4x2\nRELU - LEAKYRELU(0.1) - ELU(0.5) - FC(3) - SOFTMAX"
                          " - DROPOUT(0.25)")
    assert "max(0, x), applied to each of the 32 values; no parameters" in out
    assert "max(0.1*x, x), applied to each of the 32 values" in out
    assert "x if x >= 0, else 0.5*(e^x - 1), applied" in out
    assert "e^x_i / (the sum of e^x_j over all 3 values), so they add up to 1" in out
    assert "zeroed with probability 0.25 and the rest scaled by 1/0.75" in out
