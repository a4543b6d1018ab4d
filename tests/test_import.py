"""`cnndsl import`: models traced or read back into specs, checked against the models
themselves (torchvision's builders, small torch modules, ONNX files and onnxruntime)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cnndsl
from cnndsl.cli import main
from cnndsl.fmt import format_text
from cnndsl.importer import import_spec

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
sys.path.insert(0, str(ROOT / "scripts"))
import import_table
from test_torchvision_oracle import assert_same_training_outputs


@pytest.fixture(autouse=True)
def fixture_models(monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES))


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def round_trip(theirs, text, shape=(2, 3, 32, 32)) -> float:
    ours = cnndsl.compile(text=text, seed=0).eval()
    assert count(ours) == count(theirs)
    cnndsl.transfer_weights(theirs, ours)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = theirs.eval()(x), ours(x)
    return ((got - expected).abs().max() / expected.abs().max()).item()


def test_resnet50_is_a_bottleneck_def_called_per_stage_in_at_most_30_lines():
    text = import_spec("torchvision:resnet50").text
    lines = text.splitlines()
    assert len(lines) <= 30
    assert text.count("def ") == 1 and "def bottleneck(" in text
    assert "residual(" in text and "4 * c" in text
    assert lines[0].startswith("# torchvision:resnet50") and "25,557,032" in lines[0]
    assert "input 224x224x3" in lines and "classes = 1000" in lines
    assert format_text(text) == text
    graph = cnndsl.build_graph(text=text)
    assert graph.graph["totals"]["params"] == 25_557_032  # torchvision's documented count


def test_a_module_callable_round_trips_with_its_blocks_folded():
    import import_models

    torch.manual_seed(0)
    theirs = import_models.small_net(classes=5)
    text = import_spec("import_models:small_net", input=(32, 32, 3),
                       args={"classes": 5}).text
    assert "def block" in text and "block * 3" in text
    assert "concat(" in text and "residual(" in text
    assert "classes = 5" in text and "FC(classes)" in text
    assert "FLATTEN" not in text  # FC flattens by itself
    assert round_trip(theirs, text) <= 1e-5


def test_the_command_writes_the_spec_and_it_passes_fmt_check(tmp_path, capsys):
    out = tmp_path / "net.cnn"
    assert main(["import", "import_models:small_net", "--input", "32x32x3", "--arg",
                 "width=16", "-o", str(out)]) == 0
    assert main(["fmt", "--check", str(out)]) == 0
    assert main(["check", str(out)]) == 0
    assert "ok:" in capsys.readouterr().out


def test_an_op_without_a_cnn_form_names_the_module_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "net.cnn"
    assert main(["import", "import_models:WithUnsupported", "--input", "16x16x3",
                 "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "import_models:WithUnsupported: features.2: error: nn.Softplus" in err
    assert "has no .cnn form" in err and "Traceback" not in err
    assert not out.exists()


def test_stochastic_depth_of_the_whole_batch_names_the_module_and_writes_nothing(tmp_path,
                                                                                 capsys):
    out = tmp_path / "net.cnn"
    assert main(["import", "import_models:BatchDepth", "--input", "8x8x8", "-o",
                 str(out)]) == 1
    err = capsys.readouterr().err
    assert "import_models:BatchDepth: drop: error: StochasticDepth (stochastic_depth, " \
           "mode='batch') has no .cnn form" in err
    assert "Traceback" not in err and not out.exists()


def test_a_model_fx_cannot_trace_says_where():
    from cnndsl.import_graph import CnnImportError

    with pytest.raises(CnnImportError) as info:
        import_spec("import_models:DataDependent", input=(8, 8, 3))
    message = info.value.render()
    assert "torch.fx cannot trace DataDependent" in message
    assert "import_models.py:" in message and "in forward" in message


def test_other_commands_import_first(capsys):
    assert main(["summary", "torchvision:resnet18", "--format", "json"]) == 0
    assert '"total_params":11689512' in capsys.readouterr().out.replace(" ", "")
    assert main(["check", "import_models:small_net"]) == 0
    assert "ok:" in capsys.readouterr().out


def test_a_pt_file_gives_back_its_spec(tmp_path):
    path = tmp_path / "m.pt"
    assert main(["compile", "zoo:lenet5", "-o", str(path)]) == 0
    assert import_spec(str(path)).text == (ROOT / "specs" / "lenet5.cnn").read_text()


def test_unknown_sources_are_usage_errors(capsys):
    assert main(["import", "torchvision:resnet5O"]) == 2
    assert "did you mean `resnet50`" in capsys.readouterr().err
    assert main(["import", "no_such_module_here:Net"]) == 2


def test_check_without_a_model_source_does_not_import_torch():
    code = ("import sys; from cnndsl.cli import main; main(['check', 'zoo:resnet18']); "
            "assert 'torch' not in sys.modules and 'onnx' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_table_script_on_a_subset():
    """resnet18 from torchvision, and a zoo model exported by `cnndsl compile -o x.onnx`."""
    found = import_table.rows(["resnet18", "zoo:resnet18.onnx"])
    assert [r["source"] for r in found] == ["torchvision:resnet18",
                                            "`cnndsl compile zoo:resnet18` .onnx"]
    for row in found:
        assert row["params"] == row["original"]
        assert row["error"] <= 1e-5
        assert len(row["text"].splitlines()) <= 2 * row["zoo"]
    assert found[0]["params"] == 11_689_512
    assert "| torchvision:resnet18 |" in import_table.table(found)


# one builder per construct the import reads back, at 64x64 (torchvision's own numbers)
CONSTRUCTS = {
    "mobilenet_v3_small": ("gate(", "HARDSIGMOID", "HARDSWISH"),  # squeeze-and-excitation
    "shufflenet_v2_x0_5": ("SPLIT(1)", "SPLIT(2)", "SHUFFLE"),  # x.chunk, channel_shuffle
    "densenet121": ("concat(\n    identity,", "dense_layer * n"),  # torch.cat(features)
    "regnet_y_400mf": ("add(", "gate(", "residual("),  # proj(x) + f(x), SE
    "convnext_tiny": ("LAYERNORM(eps=1e-06)", "- LAYERSCALE - DROPPATH(", "CONV(c, 1) - GELU"),
}


@pytest.mark.parametrize("name", CONSTRUCTS)
def test_a_builder_with_each_construct_round_trips(name):
    import torchvision

    torch.manual_seed(0)
    from cnndsl.import_torch import network
    from cnndsl.importer import write_spec
    from cnndsl.shapes import Shape

    theirs = torchvision.models.get_model(name, weights=None).eval()
    source = f"torchvision:{name}"  # what import_spec does, on the model built here
    text = write_spec(network(theirs, Shape.volume(64, 64, 3), source), source).text
    for needle in CONSTRUCTS[name]:
        assert needle in text, needle
    assert format_text(text) == text
    assert len(text.splitlines()) <= 2 * import_table.zoo_lines(name)
    ours = cnndsl.compile(text=text, seed=0).eval()
    assert count(ours) == count(theirs)
    cnndsl.transfer_weights(import_table.state_in_our_order(theirs, ours), ours)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    assert ((got - expected).abs().max() / expected.abs().max()).item() <= 1e-5


def test_a_product_of_two_computed_maps_is_located():
    from cnndsl.import_graph import CnnImportError

    with pytest.raises(CnnImportError) as info:
        import_spec("import_models:Product", input=(8, 8, 3))
    assert "import_models:Product: mul: error: torch.mul of two computed maps" in \
        info.value.render()
    assert "gate(...)" in info.value.render()


def test_a_gated_model_exported_by_torch_onnx_round_trips(tmp_path):
    import warnings

    import import_models

    torch.manual_seed(0)
    model = import_models.Gated().eval()
    path = tmp_path / "gated.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, 32, 32),), str(path), dynamo=False)
    row = import_table.onnx_row(path, "gated", None, size=32)
    assert "gate(GAP - CONV(2, 1) - RELU - CONV(8, 1) - HARDSIGMOID)" in row["text"]
    assert "CONV(8, 3, pad=1) - SILU" in row["text"] and "HARDSWISH" in row["text"]
    assert row["params"] == row["original"] == count(model)
    assert row["error"] <= 1e-5


@pytest.mark.long
def test_the_whole_table():
    found = import_table.rows()
    assert len(found) == len(import_table.TORCHVISION) + len(import_table.ZOO_ONNX) + len(
        import_table.TORCH_ONNX)
    for row in found:
        assert row["params"] == row["original"], row["source"]
        assert row["error"] <= 1e-5, row["source"]
        if row["zoo"]:
            assert len(row["text"].splitlines()) <= 2 * row["zoo"], row["source"]


def torchvision_rates(model) -> list[float]:
    """The rates of the StochasticDepth modules torchvision's forward runs, in order: an
    EfficientNet block without a shortcut holds one but never calls it."""
    from torchvision.ops import StochasticDepth

    used = []
    handles = [m.register_forward_hook(lambda m, i, o: used.append(m.p))
               for m in model.modules() if isinstance(m, StochasticDepth)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 64, 64))
    for handle in handles:
        handle.remove()
    return used


# torchvision's stochastic depth written back: EfficientNet's p * k / n, k over every block
# (those without a shortcut too), and ConvNeXt's p * k / (n - 1)
STOCHASTIC_DEPTH = {"efficientnet_b0": 9, "convnext_tiny": 18}


@pytest.mark.parametrize("name", STOCHASTIC_DEPTH)
def test_stochastic_depth_rates_are_torchvisions_module_by_module(name):
    import torchvision

    theirs = torchvision.models.get_model(name, weights=None)
    expected = torchvision_rates(theirs)
    assert len(expected) == STOCHASTIC_DEPTH[name] and len(set(expected)) == len(expected)
    text = import_spec(f"torchvision:{name}").text
    assert "left out" not in text
    ours = cnndsl.compile(text=text, device="meta")
    got = [m.p for m in ours.modules() if type(m).__name__ == "StochasticDepth"]
    assert got == pytest.approx(expected, rel=1e-12, abs=0.0)
    if name == "convnext_tiny":
        assert "DROPPATH(0.1 * index(cnblock) / (count(cnblock) - 1))" in text


@pytest.mark.slow
@pytest.mark.parametrize("name", STOCHASTIC_DEPTH)
def test_imported_stochastic_depth_trains_as_torchvisions_with_the_same_seed(name):
    """In training mode the imported spec drops the same samples as torchvision's model:
    with the same seed before each forward the outputs agree; other seeds differ."""
    import torchvision

    from cnndsl.import_torch import network
    from cnndsl.importer import write_spec
    from cnndsl.shapes import Shape

    torch.manual_seed(0)
    theirs = torchvision.models.get_model(name, weights=None).eval()
    source = f"torchvision:{name}"
    text = write_spec(network(theirs, Shape.volume(64, 64, 3), source), source).text
    assert len(text.splitlines()) <= 2 * import_table.zoo_lines(name)
    ours = cnndsl.compile(text=text, seed=0)
    cnndsl.transfer_weights(import_table.state_in_our_order(theirs, ours), ours)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    assert_same_training_outputs(theirs, ours, x)


def test_a_rate_rule_is_written_only_where_it_gives_every_rate():
    from cnndsl.fold import rate_formula

    # as torchvision computes them: p * float(block_id) / total (EfficientNet), and
    # p * block_id / (total - 1.0) (ConvNeXt)
    efficientnet = tuple(0.2 * float(i) / 16 for i in range(16))
    convnext = tuple(0.5 * i / (36 - 1.0) for i in range(36))
    assert rate_formula(efficientnet, "mbconv") == "0.2 * index(mbconv) / count(mbconv)"
    assert rate_formula(convnext, "cnblock") == \
        "0.5 * index(cnblock) / (count(cnblock) - 1)"
    assert rate_formula(efficientnet[1:], "mbconv") is None  # block 0 left out: no rule
    assert rate_formula(efficientnet[:2], "mbconv") is None  # two calls fit any line
    assert rate_formula((0.0, 0.1, 0.2 + 1e-9), "b") is None
