"""torchvision as the oracle: our specs build the same networks, parameter for parameter.

Each spec in specs/ that names a torchvision model is compiled at 224x224x3 with 1000 classes;
its parameter count must equal torchvision's (the figures torchvision documents), and with
torchvision's randomly initialised parameters and buffers copied in, in order, it must
compute the same outputs in eval mode.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

import cnndsl

pytestmark = pytest.mark.slow  # builds torchvision's models; `make test-fast` skips it

SPECS = Path(__file__).resolve().parents[1] / "specs"

# name -> (torchvision constructor keywords, parameter count from torchvision's model docs)
MODELS = {
    "alexnet": ({}, 61_100_840),
    "vgg11": ({}, 132_863_336),
    "vgg16": ({}, 138_357_544),
    "vgg16_bn": ({}, 138_365_992),
    "vgg19": ({}, 143_667_240),
    "resnet18": ({}, 11_689_512),
    "resnet34": ({}, 21_797_672),
    "resnet50": ({}, 25_557_032),
    "googlenet": ({"aux_logits": False, "init_weights": False}, 6_624_904),
    "mobilenet_v2": ({}, 3_504_872),
}


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module", params=list(MODELS))
def pair(request):
    """(name, torchvision's model, ours), both freshly and randomly initialised, eval mode."""
    name = request.param
    kwargs, _ = MODELS[name]
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
    ours = cnndsl.compile(SPECS / f"{name}.cnn", input="224x224x3", classes=1000,
                          logits=True, seed=0).eval()
    yield name, theirs, ours


def test_parameter_count_equals_torchvision(pair):
    name, theirs, ours = pair
    assert count(ours) == count(theirs) == MODELS[name][1]
    graph = cnndsl.build_graph(SPECS / f"{name}.cnn", input="224x224x3", classes=1000)
    assert graph.graph["totals"]["params"] == MODELS[name][1]


def test_same_outputs_with_torchvision_weights(pair):
    name, theirs, ours = pair
    source, target = theirs.state_dict(), ours.state_dict()
    assert len(source) == len(target)
    for (their_key, value), (our_key, slot) in zip(source.items(), target.items()):
        assert value.shape == slot.shape, (their_key, our_key)
    ours.load_state_dict(dict(zip(target, source.values())))
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    assert_same_outputs(theirs, ours, x, (2, 1000))


def assert_same_outputs(theirs, ours, x, shape, output=lambda y: y) -> None:
    """Both models' outputs on `x` have `shape` and agree within 1e-5 of their scale (which
    is not 0); `output` picks theirs from what their model returns."""
    with torch.no_grad():
        expected, got = output(theirs(x)), ours(x)
    assert got.shape == expected.shape == shape
    scale = expected.abs().max().item()
    assert scale > 0
    assert (got - expected).abs().max().item() <= 1e-5 * scale


def test_softmax_head_is_kept_unless_logits():
    """The specs end in SOFTMAX (the lecture's output layer); logits=True drops it."""
    probs = cnndsl.compile(SPECS / "resnet18.cnn", input="64x64x3", classes=10, seed=0).eval()
    logits = cnndsl.compile(SPECS / "resnet18.cnn", input="64x64x3", classes=10, seed=0,
                            logits=True).eval()
    assert isinstance(list(probs.children())[-1], torch.nn.Softmax)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(probs(x), torch.softmax(logits(x), dim=1))


@pytest.mark.parametrize("alpha", [0.35, 0.5, 0.75, 1.4])
def test_mobilenet_v2_width_multiplier_is_torchvisions_width_mult(alpha):
    """`-D alpha=...` rounds widths with make_divisible, as mobilenet_v2(width_mult=...) does:
    the same parameters, tensor for tensor, and the same outputs from the same weights."""
    torch.manual_seed(0)
    theirs = torchvision.models.mobilenet_v2(weights=None, width_mult=alpha).eval()
    ours = cnndsl.compile(SPECS / "mobilenet_v2.cnn", input="64x64x3", logits=True, seed=0,
                          alpha=alpha).eval()
    source, target = theirs.state_dict(), ours.state_dict()
    assert [v.shape for v in source.values()] == [v.shape for v in target.values()]
    assert count(ours) == count(theirs)
    graph = cnndsl.build_graph(SPECS / "mobilenet_v2.cnn", alpha=alpha)
    assert graph.graph["totals"]["params"] == count(theirs)
    ours.load_state_dict(dict(zip(target, source.values())))
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    assert (got - expected).abs().max().item() <= 1e-5 * expected.abs().max().item()


def with_running_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """A copy whose batch norms have non-trivial running statistics (as trained ones do)."""
    import copy

    model = copy.deepcopy(model)
    g = torch.Generator().manual_seed(2)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.num_batches_tracked.fill_(7)
    return model


def assert_transfer_gives_their_outputs(theirs, ours, state, size, shape, channels=3,
                                        output=lambda y: y):
    """cnndsl.transfer_weights copies `state` (theirs, in the order our modules hold it) onto
    ours, whose outputs (`shape`) on a random batch of two size x size inputs (or H x W, for
    a pair) then equal theirs (`output` picks them from what their model returns) within
    1e-5 of their scale."""
    h, w = (size, size) if isinstance(size, int) else size
    report = cnndsl.transfer_weights(state, ours, source_name="torchvision")
    assert report.values == sum(v.numel() for v in theirs.state_dict().values())
    x = torch.randn(2, channels, h, w, generator=torch.Generator().manual_seed(1))
    assert_same_outputs(theirs, ours, x, shape, output)


def assert_same_training_outputs(theirs, ours, x, seeds=(0, 1)) -> None:
    """Training mode, the same seed before each forward: stochastic depth and dropout draw
    the same masks in both models, so the outputs agree; other seeds give other outputs."""
    theirs.train(), ours.train()
    outputs = []
    for seed in seeds:
        torch.manual_seed(seed)
        expected = theirs(x)
        torch.manual_seed(seed)
        got = ours(x)
        assert (got - expected).abs().max().item() <= 1e-4 * expected.abs().max().item()
        outputs.append(got)
    assert not torch.allclose(outputs[0], outputs[1])


def test_transfer_weights_by_structure_gives_torchvisions_outputs(pair):
    """cnndsl.transfer_weights pairs modules by order and shape: torchvision's state_dict
    (random weights, non-trivial running statistics) goes onto the compiled spec and the
    outputs agree in eval mode."""
    import copy

    name, theirs, ours = pair
    theirs, ours = with_running_statistics(theirs), copy.deepcopy(ours)
    report = cnndsl.transfer_weights(theirs.state_dict(), ours, source_name="torchvision")
    assert report.tensors == len(theirs.state_dict()) == len(ours.state_dict())
    assert report.values == sum(v.numel() for v in theirs.state_dict().values())
    first = report.transfers[0]
    assert first.source == next(iter(theirs.state_dict())).rpartition(".")[0]
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    assert (got - expected).abs().max().item() <= 1e-5 * expected.abs().max().item()


def test_transfer_weights_names_the_first_module_that_differs():
    from cnndsl.weights import WeightsMismatch

    torch.manual_seed(0)
    theirs = torchvision.models.resnet34(weights=None)
    ours = cnndsl.compile(SPECS / "resnet18.cnn", input="64x64x3", classes=1000, seed=0)
    with pytest.raises(WeightsMismatch) as info:
        cnndsl.transfer_weights(theirs, ours, source_name="resnet34")
    # ResNet-34's stage 1 has a third block where ResNet-18's stage 2 begins with a stride-2
    # conv to 128 channels: torchvision's layer1.2.conv1 (64x64x3x3) meets our 64 -> 128 conv.
    message = str(info.value)
    assert "resnet34's `layer1.2.conv1` holds weight 64x64x3x3" in message
    assert "the model's `stage2.0.conv1` holds weight 128x64x3x3" in message
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    assert all(torch.equal(before[k], v) for k, v in ours.state_dict().items())


def test_transfer_weights_counts_modules():
    from cnndsl.weights import WeightsMismatch

    small = cnndsl.compile("input 4x4x3\nCONV(4, 3) - FC(5)", seed=0)
    big = cnndsl.compile("input 4x4x3\nCONV(4, 3) - FC(5) - FC(5)", seed=0)
    with pytest.raises(WeightsMismatch, match=r"has 2 modules with weights and the model 3: "
                                              r"the model's `fc2` \(weight 5x5, bias 5\)"):
        cnndsl.transfer_weights(small, big)


def test_compile_with_torchvisions_weights_file_in_one_command(tmp_path):
    """`cnndsl compile zoo:resnet50 --weights FILE`: torchvision's state_dict file (random
    here; a pretrained download works alike) gives .pt and .py models that compute what
    torchvision's ResNet-50 computes."""
    import importlib.util
    import subprocess
    import sys

    torch.manual_seed(0)
    theirs = with_running_statistics(torchvision.models.resnet50(weights=None)).eval()
    weights = tmp_path / "resnet50-random.pth"
    torch.save(theirs.state_dict(), weights)
    for out in ("m.pt", "m.py"):
        r = subprocess.run([sys.executable, "-m", "cnndsl", "compile", "zoo:resnet50", "--logits",
                            "--weights", str(weights), "-o", str(tmp_path / out)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    pt = cnndsl.load(tmp_path / "m.pt").eval()
    spec = importlib.util.spec_from_file_location("generated_resnet50", tmp_path / "m.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = module.Resnet50().eval()
    source.load_state_dict(torch.load(tmp_path / "m.pth", weights_only=True))
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = theirs(x)
        for model in (pt, source):
            assert (model(x) - expected).abs().max().item() <= 1e-5 * expected.abs().max().item()


def test_a_weights_file_that_does_not_fit_is_refused_and_nothing_is_written(tmp_path):
    import subprocess
    import sys

    weights = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), weights)
    r = subprocess.run([sys.executable, "-m", "cnndsl", "compile", "zoo:resnet18", "--weights",
                        str(weights), "-o", str(tmp_path / "m.py")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "layer1.2.conv1" in r.stderr and "64x64x3x3" in r.stderr
    assert not (tmp_path / "m.py").exists() and not (tmp_path / "m.pth").exists()
