"""`cnndsl summary`: per-layer numbers from the lecture notes and torchvision, JSON/CSV,
grouping."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import cnndsl
from cnndsl import summary
from cnndsl.cli import main

SPECS = Path(__file__).resolve().parent.parent / "specs"

RESNET50 = SPECS / "resnet50.cnn"  # torchvision's resnet50 (v1.5)
RESNET18 = SPECS / "resnet18.cnn"  # torchvision's resnet18


def summarize(spec, **kw):
    batch = kw.pop("batch", 1)
    return summary.summarize(cnndsl.build_graph(spec, **kw), batch=batch)


def rows_of(s, kind):
    return [r for r in s.rows if r.kind == kind]


def test_lenet5_parameters_as_in_the_lecture_table():
    s = summarize(SPECS / "lenet5.cnn")
    convs, fcs = rows_of(s, "CONV"), rows_of(s, "FC")
    assert [r.params for r in convs] == [156, 2_416]
    assert [r.params for r in fcs] == [48_120, 10_164, 850]
    assert s.totals["params"] == 61_706
    assert [str(r.shape) for r in convs] == ["28x28x6", "10x10x16"]


def test_lenet_colour_conv1_neurons_connections_parameters():
    # Notes: 76 weights per neuron, 4,704 neurons, 357,504 connections, 456 parameters.
    conv1 = rows_of(summarize(SPECS / "lenet5.cnn", input="32x32x3"), "CONV")[0]
    assert (conv1.params, conv1.neurons, conv1.connections) == (456, 4_704, 357_504)


def test_alexnet_conv1_neurons_connections_parameters():
    # Notes: 364 weights per neuron, 290,400 neurons, 105,705,600 connections, 34,944 params.
    conv1 = rows_of(summarize(SPECS / "alexnet_lecture.cnn"), "CONV")[0]
    assert str(conv1.shape) == "55x55x96"
    assert (conv1.params, conv1.neurons, conv1.connections) == (34_944, 290_400, 105_705_600)


def test_fc_connections_are_units_times_inputs_plus_bias():
    fc = rows_of(summarize("input 5x5x16\nFC(120)"), "FC")[0]
    assert fc.connections == 120 * (400 + 1) == fc.params


def test_pooling_connections_are_one_window_per_neuron():
    pool = rows_of(summarize("input 28x28x6\nMAXPOOL(2)"), "MAXPOOL")[0]
    assert pool.connections == 14 * 14 * 6 * 4


def test_vgg16_params_and_macs_match_torchvision():
    s = summarize(SPECS / "vgg16.cnn")
    assert s.totals["params"] == 138_357_544
    assert round(s.totals["macs"] / 1e9, 2) == 15.47  # torchvision: "GFLOPS 15.47"
    assert s.totals["flops"] == 2 * s.totals["macs"]


def test_resnet50_params_and_macs_match_torchvision():
    s = summarize(RESNET50)
    assert s.totals["params"] == 25_557_032
    assert round(s.totals["macs"] / 1e9, 2) == 4.09
    # BN running mean and variance: two per channel of each of the 53 BN layers.
    assert s.totals["buffers"] == sum(r.params for r in rows_of(s, "BN"))


def test_resnet18_macs_match_torchvision():
    s = summarize(RESNET18)
    assert s.totals["params"] == 11_689_512
    assert round(s.totals["macs"] / 1e9, 2) == 1.81


def test_three_3x3_convs_see_a_7x7_region():
    s = summarize("input 32x32x3\n(CONV(8, 3, pad=1) - RELU) * 3")
    assert [r.rf for r in rows_of(s, "CONV")] == [(3, 3), (5, 5), (7, 7)]


def test_memory_estimate_scales_with_batch():
    one = summarize(SPECS / "lenet5.cnn")
    four = summarize(SPECS / "lenet5.cnn", batch=4)
    values = 32 * 32 + 28 * 28 * 6 * 2 + 14 * 14 * 6 + 10 * 10 * 16 * 2 + 5 * 5 * 16 \
        + 120 * 2 + 84 * 2 + 10 * 2
    assert one.totals["activations"] == four.totals["activations"] == values
    assert four.totals["memory_bytes"]["activations"] == 4 * 4 * values
    assert four.totals["memory_bytes"]["params"] == one.totals["memory_bytes"]["params"] \
        == 4 * 61_706


def run_cli(capsys, *argv):
    code = main(["summary", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_schema_and_exact_integers(capsys):
    code, out, _ = run_cli(capsys, SPECS / "vgg16.cnn", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["input"] == [3, 224, 224] and data["output"] == [1000]
    assert data["total_params"] == 138_357_544
    assert data["total_flops"] == 2 * data["total_macs"]
    assert data["total_macs"] == sum(layer["macs"] for layer in data["layers"])
    assert data["total_params"] == sum(layer["params"] for layer in data["layers"])
    required = {"name", "kind", "output_shape", "params", "macs", "connections",
                "receptive_field"}
    for layer in data["layers"]:
        assert required <= layer.keys()
        for key in ("params", "macs", "connections", "neurons"):
            assert type(layer[key]) is int
    conv1 = next(layer for layer in data["layers"] if layer["name"] == "conv1")
    assert conv1["output_shape"] == [64, 224, 224] and conv1["params"] == 1_792
    assert conv1["receptive_field"] == [3, 3]
    assert data["layers"][-1]["output_shape"] == [1000]


def test_csv_is_exact_and_agrees_with_json(capsys):
    _, out, _ = run_cli(capsys, SPECS / "alexnet_lecture.cnn", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    conv1 = next(r for r in rows if r["name"] == "conv1")
    assert conv1["connections"] == "105705600" and conv1["output_shape"] == "55x55x96"
    _, out, _ = run_cli(capsys, SPECS / "alexnet_lecture.cnn", "--format", "json")
    layers = json.loads(out)["layers"]
    assert [int(r["params"]) for r in rows] == [layer["params"] for layer in layers]
    assert [int(r["macs"]) for r in rows] == [layer["macs"] for layer in layers]


def test_table_uses_thousands_separators_and_states_the_flops_convention(capsys):
    code, out, _ = run_cli(capsys, SPECS / "lenet5.cnn")
    assert code == 0
    assert "48,120" in out and "61,706" in out
    assert "FLOPs = 2 x MACs" in out


def test_markdown_is_a_table(capsys):
    _, out, _ = run_cli(capsys, SPECS / "vgg16.cnn", "--format", "markdown")
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert len({line.count("|") for line in table}) == 1
    assert "138,357,544" in out


def test_grouping_never_changes_the_totals(capsys):
    _, grouped, _ = run_cli(capsys, SPECS / "vgg16.cnn")
    _, expanded, _ = run_cli(capsys, SPECS / "vgg16.cnn", "--expand")
    def totals(text):
        return text[text.rindex("\n-"):].split("\n", 2)[2]

    assert totals(grouped) == totals(expanded)
    assert "138,357,544" in totals(grouped)
    assert len(grouped.splitlines()) != len(expanded.splitlines())
    s = summarize(RESNET50)
    top = [r for r in summary.display_rows(s) if r.depth == 0]
    assert sum(sum(x.params for x in r.rows) for r in top) == 25_557_032
    assert sum(len(r.rows) for r in top) == len(s.rows)


@pytest.mark.parametrize("spec", sorted(SPECS.glob("*.cnn")), ids=lambda p: p.stem)
def test_grouped_rows_cover_every_layer_once(spec):
    s = summarize(spec)
    top = [r for r in summary.display_rows(s) if r.depth == 0]
    assert [x.name for r in top for x in r.rows] == [x.name for x in s.rows]
    assert sum(x.macs for r in top for x in r.rows) == s.totals["macs"]


def test_identical_repeats_show_one_copy():
    s = summarize(RESNET50)
    rows = summary.display_rows(s)
    repeat = next(r for r in rows if r.name == "x5")  # stage 3: 6 blocks, 5 repeated
    assert repeat.is_group and len(repeat.rows) == 5 * 10
    assert len(rows) < len(summary.display_rows(s, expand=True))
    names = [r.name for r in rows]
    assert "conv29" in names and "conv32" not in names  # the second copy stays folded


def test_inserted_layers_are_marked():
    s = summarize(RESNET50)
    labels = [r.label for r in s.rows if r.implicit]
    assert labels[:2] == ["CONV 1x1/1, 256 (inserted)", "BN (inserted)"]


def test_bad_batch_is_a_usage_error(capsys):
    code, _, err = run_cli(capsys, SPECS / "lenet5.cnn", "--batch", "0")
    assert code == 2 and "--batch" in err


def test_summary_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from cnndsl.cli import main; main(['summary', %r]); "
            "assert 'torch' not in sys.modules and 'graphviz' not in sys.modules"
            % str(SPECS / "vgg16.cnn"))
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_the_docs_example_is_the_commands_output(capsys):
    doc = (SPECS.parent / "docs" / "summary.md").read_text()
    marker = "<!-- summary-example: specs/lenet5.cnn -->\n```text\n"
    shown = doc[doc.index(marker) + len(marker):].split("```", 1)[0]
    _, out, _ = run_cli(capsys, SPECS / "lenet5.cnn")
    assert shown == out


def test_position_bias_connects_each_output_to_its_input_and_one_bias():
    # AlphaGo's last layer: 19x19 outputs, each its input plus its position's own bias.
    from cnndsl.summary import summarize

    rows = summarize(cnndsl.build_graph("input 19x19x1\nBIAS")).rows
    assert rows[-1].connections == 19 * 19 * 2


def test_json_gives_shapes_in_both_orders(capsys):
    """PyTorch's [C, H, W] for tools, and HxWxC as the notes and the table write it
    (AlexNet's CONV1: 55x55x96, from the lecture)."""
    _, out, _ = run_cli(capsys, SPECS / "alexnet_lecture.cnn", "--format", "json")
    data = json.loads(out)
    assert (data["input_hwc"], data["input"]) == ("227x227x3", [3, 227, 227])
    conv1 = next(layer for layer in data["layers"] if layer["name"] == "conv1")
    assert (conv1["shape"], conv1["output_shape"]) == ("55x55x96", [96, 55, 55])
    assert data["output_hwc"] == "1000"


def test_the_library_pauses_the_collector_as_the_command_line_does(monkeypatch):
    """summarize (and render) run with the cyclic GC paused, as `cnndsl summary` does, and
    leave it as they found it."""
    import gc

    from cnndsl import summary

    seen = []
    original = summary.layer_row
    monkeypatch.setattr(summary, "layer_row", lambda *a: seen.append(gc.isenabled()) or
                        original(*a))
    assert gc.isenabled()
    summary.summarize(cnndsl.build_graph(SPECS / "lenet5.cnn"))
    assert seen and not any(seen) and gc.isenabled()
