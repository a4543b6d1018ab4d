"""Issue 13: torchvision's convolutional classifiers, written in the language, exact.

Every builder the zoo holds is checked against torchvision's own numbers: the parameter count
and GFLOPS that torchvision publishes in its weights' metadata (`num_params`, `_ops`, MACs at
the weights' crop size), and the outputs of our compiled spec after torchvision's randomly
initialised weights (and non-trivial batch-norm statistics) are transferred onto it.
Outputs of a few representatives run in `make test`; every builder's in `make test-long`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torchvision

import cnndsl
from cnndsl import modelzoo
from cnndsl.api import check_spec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import import_table  # noqa: E402  (scripts/import_table.py: the state in our modules' order)

# torchvision's builders the zoo writes, by family spec (issue 13)
FAMILIES = {
    "efficientnet": [f"efficientnet_b{i}" for i in range(8)],
    "regnet": [f"regnet_{k}_{s}" for k, sizes in (
        ("y", ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf", "128gf")),
        ("x", ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf"))) for s in sizes],
    "shufflenet_v2": [f"shufflenet_v2_x{w}" for w in ("0_5", "1_0", "1_5", "2_0")],
    "mobilenet_v3": ["mobilenet_v3_large", "mobilenet_v3_small"],
    "convnext": [f"convnext_{s}" for s in ("tiny", "small", "base", "large")],
    "vgg": ["vgg11_bn", "vgg13", "vgg13_bn", "vgg19_bn"],
    "resnext": ["resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2",
                "wide_resnet101_2"],
    "squeezenet": ["squeezenet1_0", "squeezenet1_1"],
    "mnasnet": ["mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3"],
    "densenet": ["densenet121", "densenet161", "densenet169", "densenet201"],
    "efficientnet_v2": [f"efficientnet_v2_{s}" for s in ("s", "m", "l")],
}
EARLIER = ["alexnet", "vgg11", "vgg16", "vgg16_bn", "vgg19", "resnet18", "resnet34", "resnet50",
           "resnet101", "resnet152", "googlenet", "mobilenet_v2", "inception_v3"]
BUILDERS = [name for names in FAMILIES.values() for name in names] + EARLIER
# compared output for output in `make test` (small inputs); the rest in `make test-long`
REPRESENTATIVES = ["efficientnet_b0", "regnet_y_400mf", "regnet_x_400mf", "shufflenet_v2_x0_5",
                   "mobilenet_v3_small", "mobilenet_v3_large", "convnext_tiny", "resnext50_32x4d",
                   "squeezenet1_1", "mnasnet0_5", "densenet121"]
CONSTRUCTOR = {"googlenet": {"aux_logits": False, "init_weights": False},
               "inception_v3": {"aux_logits": False, "init_weights": False}}
# builders whose weights' `num_params` count the auxiliary classifier, which runs only in
# training and the spec leaves out: their count is torchvision's model built without it
WITHOUT_AUX = {"inception_v3"}


def meta(name: str) -> dict:
    return torchvision.models.get_model_weights(name).DEFAULT.meta


def torchvision_params(name: str) -> int:
    if name not in WITHOUT_AUX:
        return meta(name)["num_params"]
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None, **CONSTRUCTOR[name])
    return sum(p.numel() for p in model.parameters())


def test_the_left_out_auxiliary_heads_are_what_the_weights_count_beyond():
    for name in WITHOUT_AUX:
        with torch.device("meta"):
            model = torchvision.models.get_model(name, weights=None, aux_logits=True,
                                                 init_weights=False)
        aux = sum(p.numel() for p in model.AuxLogits.parameters())
        assert torchvision_params(name) + aux == meta(name)["num_params"]


def crop_size(name: str) -> int:
    transforms = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    return transforms.crop_size[0]


def test_every_builder_resolves_in_the_zoo():
    assert set(BUILDERS) <= set(modelzoo.names())
    tv = set(torchvision.models.list_models(module=torchvision.models))
    assert set(BUILDERS) <= tv


@pytest.mark.parametrize("name", BUILDERS)
def test_parameter_count_is_torchvisions(name):
    graph = check_spec(f"zoo:{name}")
    assert graph.totals["params"] == torchvision_params(name)
    model = cnndsl.compile(f"zoo:{name}", device="meta")
    assert sum(p.numel() for p in model.parameters()) == torchvision_params(name)


@pytest.mark.parametrize("name", BUILDERS)
def test_macs_are_torchvisions_gflops(name):
    """torchvision's `_ops` are multiply-accumulates (GMACs, 3 decimals) at the weights' crop
    size; elementwise products (the gates) and sums count none, as ours."""
    size = crop_size(name)
    graph = check_spec(f"zoo:{name}", input=f"{size}x{size}x3")
    assert round(graph.totals["macs"] / 1e9, 3) == meta(name)["_ops"]


def torchvision_state(theirs: torch.nn.Module, ours: torch.nn.Module) -> dict:
    """torchvision's state in the order our modules hold it, for transfer_weights: a module's
    own tensors after its children's (ConvNeXt's layer_scale follows its block), and a Linear
    over channels as the 1x1 convolution it is (ConvNeXt's (4C, C) -> (4C, C, 1, 1))."""
    state = import_table.state_in_our_order(theirs, ours)
    assert state is not theirs, "the two models hold different numbers of tensors"
    return state


def paired(name: str, size: int):
    """torchvision's model (non-trivial BN statistics) and ours with its weights, and an input."""
    from test_torchvision_oracle import with_running_statistics

    torch.manual_seed(0)
    theirs = torchvision.models.get_model(name, weights=None, **CONSTRUCTOR.get(name, {}))
    theirs = with_running_statistics(theirs.eval()).eval()
    ours = cnndsl.compile(f"zoo:{name}", input=f"{size}x{size}x3", logits=True, seed=0).eval()
    report = cnndsl.transfer_weights(torchvision_state(theirs, ours), ours,
                                     source_name="torchvision")
    assert report.values == sum(v.numel() for v in theirs.state_dict().values())
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    return theirs, ours, x


def check_outputs(name: str, size: int) -> None:
    theirs, ours, x = paired(name, size)
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    assert got.shape == expected.shape == (2, 1000)
    assert (got - expected).abs().max().item() <= 1e-5 * expected.abs().max().item()


# torchvision's stochastic depth: StochasticDepth(p * block / blocks, "row") in EfficientNet
# (B0-B7, V2), p * block / (blocks - 1) in ConvNeXt, blocks counted over the whole network
STOCHASTIC_DEPTH = FAMILIES["efficientnet"] + FAMILIES["efficientnet_v2"] + FAMILIES["convnext"]


@pytest.mark.parametrize("name", STOCHASTIC_DEPTH)
def test_stochastic_depth_rates_are_torchvisions_block_by_block(name):
    """Each block's rate, in module order, as torchvision's blocks set it; torchvision gives
    a block without a shortcut a StochasticDepth too, which it never runs (EfficientNet's
    use_res_connect), and the spec none."""
    with torch.device("meta"):
        theirs = torchvision.models.get_model(name, weights=None)
    expected = [m.stochastic_depth.p for m in theirs.modules()
                if hasattr(m, "stochastic_depth") and getattr(m, "use_res_connect", True)]
    ours = cnndsl.compile(f"zoo:{name}", device="meta")
    got = [m.p for m in ours.modules() if type(m).__name__ == "StochasticDepth"]
    assert got == expected
    assert len(expected) >= 9 and max(expected) > 0.09


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet_b0", "efficientnet_v2_s", "convnext_tiny"])
def test_training_outputs_equal_torchvisions_with_the_same_seed(name):
    """In training, stochastic depth drops samples at random: with the same seed before each
    forward, ours drops the same ones as torchvision's (and EfficientNet's classifier dropout
    draws the same mask after them), so the outputs agree; other seeds give other outputs."""
    from test_torchvision_oracle import assert_same_training_outputs

    theirs, ours, x = paired(name, 64)
    assert_same_training_outputs(theirs, ours, x)


@pytest.mark.slow
@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_outputs_equal_torchvisions(name):
    check_outputs(name, 64)


# inputs other than 64x64 for the output comparison: inception_v3's stem needs more, and
# specs/vgg16.cnn has no adaptive pooling before its FC layers, so it takes 224x224 only
OUTPUT_SIZE = {"inception_v3": 96, "vgg16": 224}


@pytest.mark.long
@pytest.mark.parametrize("name", [n for n in BUILDERS if n not in REPRESENTATIVES])
def test_outputs_equal_torchvisions_every_builder(name):
    check_outputs(name, OUTPUT_SIZE.get(name, 64))


def test_the_docs_table_is_the_scripts_output():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "zoo_table.py"
    r = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True,
                       check=False,
                       timeout=300)
    assert r.returncode == 0, "docs/zoo.md is out of date: run python scripts/zoo_table.py"
