"""cnndsl.compile: the in-memory module and how it behaves with torch's tools."""
from __future__ import annotations

import copy
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import cnndsl
from cnndsl.errors import UsageError
from cnndsl.torch_backend import optimize_for_inference

SPECS = Path(__file__).resolve().parents[1] / "specs"
# A small DAG: a residual block with a projection, an inception-like concat, a softmax head.
TINY = """input 16x16x3
classes = 5
rounding = floor
CONV(8, 3, pad=1, bias=false) - BN - RELU
  - residual(CONV(16, 3, s=2, pad=1, bias=false) - BN - RELU - CONV(16, 3, pad=1) - BN) - RELU
  - concat(CONV(4, 1), MAXPOOL(3, 1, pad=1) - CONV(4, 1)) - GAP - FC(classes) - SOFTMAX
"""


def tiny(**kw):
    return cnndsl.compile(TINY, seed=kw.pop("seed", 0), **kw)


def batch(n=2, size=16):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(5))


def test_importing_cnndsl_does_not_import_torch():
    code = "import sys, cnndsl; assert 'torch' not in sys.modules; cnndsl.build_graph"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_submodules_are_named_after_the_nodes_and_stable():
    first, second = tiny(), tiny()
    names = [name for name, _ in first.named_children()]
    assert names == [name for name, _ in second.named_children()]
    assert names[:4] == ["conv1", "bn1", "relu1", "conv2"]
    assert list(first.state_dict()) == list(second.state_dict())
    assert isinstance(first.softmax1, nn.Softmax) and first.softmax1.dim == 1
    assert type(cnndsl.compile(SPECS / "resnet18.cnn")).__name__ == "Resnet18"
    assert type(cnndsl.compile("zoo:mobilenet_v2")).__name__ == "MobilenetV2"


def test_seed_makes_weights_bit_for_bit_reproducible_and_keeps_the_global_rng():
    state = torch.random.get_rng_state()
    a, b, c = tiny(seed=7), tiny(seed=7), tiny(seed=8)
    assert torch.equal(torch.random.get_rng_state(), state)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_default_initialisation_is_pytorchs():
    torch.manual_seed(11)
    ours = cnndsl.compile("input 8x8x3\nCONV(4, 3) - FC(6)")
    torch.manual_seed(11)
    conv, fc = nn.Conv2d(3, 4, 3), nn.Linear(4 * 6 * 6, 6)
    for mine, theirs in ((ours.conv1, conv), (ours.fc1, fc)):
        assert torch.equal(mine.weight, theirs.weight) and torch.equal(mine.bias, theirs.bias)


def test_logits_drops_only_the_trailing_softmax():
    probs, logits = tiny().eval(), tiny(logits=True).eval()
    assert not any(isinstance(m, nn.Softmax) for m in logits.modules())
    x = batch()
    with torch.no_grad():
        torch.testing.assert_close(probs(x), torch.softmax(logits(x), dim=1))
    # A softmax over a volume flattens it; its logits keep the flat shape.
    volume = cnndsl.compile("input 4x4x3\nCONV(2, 1) - SOFTMAX", logits=True)
    assert volume(torch.randn(2, 3, 4, 4)).shape == (2, 32)


def test_in_place_activations_never_overwrite_a_shared_tensor():
    model = cnndsl.compile("input 4x4x3\nadd(RELU, SIGMOID)").eval()
    x = torch.randn(2, 3, 4, 4)
    kept = x.clone()
    assert torch.equal(model(x), torch.relu(kept) + torch.sigmoid(kept))
    assert torch.equal(x, kept)
    # Eval-mode dropout returns its input itself: the ReLU after it must not run in place.
    model = cnndsl.compile("input 4x4x3\nCONV(3, 1) - add(DROPOUT - RELU, SIGMOID)").eval()
    with torch.no_grad():
        c = model.conv1(x)
        assert torch.equal(model(x), torch.relu(c) + torch.sigmoid(c))


def test_residual_sums_accumulate_in_place_only_into_private_tensors():
    from cnndsl import lowering

    shared = "input 4x4x3\nCONV(3, 1) - concat(add(identity, CONV(3, 1)), identity)"
    model = cnndsl.compile(shared).eval()
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        c = model.conv1(x)  # the add is the concat's first branch, a class of its own
        assert torch.equal(model(x), torch.cat([c + model.branch1.branch2(c), c], dim=1))
    adds = [s for s in lowering.plan(cnndsl.build_graph(shared)).steps if s.function == "add"]
    assert [s.accumulate for s in adds] == [False]
    resnet = lowering.plan(cnndsl.build_graph(SPECS / "resnet18.cnn"))
    assert all(s.accumulate for s in resnet.steps if s.function == "add")
    # a body ending in a layer whose backward needs its output is summed out of place
    model = cnndsl.compile("input 4x4x3\nresidual(CONV(3, 1) - SIGMOID)")
    model(x).sum().backward()
    assert model.conv1.weight.grad is not None


def test_trains_with_cross_entropy():
    model = tiny(logits=True).train()
    loss = nn.CrossEntropyLoss()(model(batch(4)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_torch_compile_captures_the_whole_graph():
    model = tiny().eval()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    x = batch()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
def test_torchscript_script_and_trace():
    model, x = tiny().eval(), batch()
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(torch.jit.script(model)(x), expected)
        torch.testing.assert_close(torch.jit.trace(model, (x,))(x), expected)


def test_torch_export():
    model, x = tiny().eval(), batch()
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


def test_channels_last_and_bf16_autocast():
    model, x = tiny(logits=True).eval(), batch()
    with torch.no_grad():
        expected = model(x)
        fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
        got = fast(x.to(memory_format=torch.channels_last))
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert low.dtype == torch.bfloat16
    assert (low.float() - expected).abs().max() <= 0.05 * expected.abs().max()


def test_dtype_and_device_options():
    model = tiny(dtype="float64", device="cpu")
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert model(batch().double()).dtype == torch.float64
    assert tiny(dtype=torch.bfloat16).conv1.weight.dtype == torch.bfloat16
    assert tiny(device="auto").conv1.weight.device.type == (
        "cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UsageError):
        tiny(dtype="int8")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError):
            tiny(device="cuda")


def test_spec_variables_and_options_reach_the_spec():
    model = cnndsl.compile("[(CONV-RELU)*N-POOL]*M-FC-SOFTMAX", input="32x32x3", classes=10,
                           N=2, M=3, logits=True)
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 6
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    same = cnndsl.compile("input 7x7x3\nCONV(4, 3, pad=p)", p="same")
    assert same(torch.randn(1, 3, 7, 7)).shape == (1, 4, 7, 7)


def test_a_conv_that_rounds_up_is_refused():
    with pytest.raises(cnndsl.CnnShapeError, match="round down"):
        cnndsl.compile("input 9x9x3\nCONV(5, 4, s=2, pad=1, round=ceil)")


def _randomise_batchnorm(model):
    gen = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model


@pytest.mark.parametrize("name, size", [("resnet18", 64), ("mobilenet_v2", 64),
                                        ("googlenet", 96)])
def test_optimize_folds_batchnorm_and_matches_the_plain_model(name, size):
    plain = _randomise_batchnorm(cnndsl.compile(SPECS / f"{name}.cnn", input=f"{size}x{size}x3",
                                                classes=10, logits=True, seed=0)).eval()
    fast = optimize_for_inference(copy.deepcopy(plain))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert not fast.training
    first = next(m for m in fast.modules() if isinstance(m, nn.Conv2d))
    assert first.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected, got = plain(x), fast(x)
    assert (got - expected).abs().max() <= 1e-4 * expected.abs().max()
    built = cnndsl.compile(SPECS / f"{name}.cnn", input=f"{size}x{size}x3", classes=10,
                           seed=0, optimize=True)
    assert list(built.state_dict()) == list(fast.state_dict())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_data_parallel_gloo_training_step():
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0,
                            world_size=1)
    try:
        model = tiny(logits=True)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        ddp = DistributedDataParallel(model)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
        loss = nn.CrossEntropyLoss()(ddp(batch(4)), torch.tensor([0, 1, 2, 3]))
        loss.backward()
        optimizer.step()
        assert not torch.equal(before["conv1.weight"], model.conv1.weight)
        assert not torch.equal(before["bn1.running_mean"], model.bn1.running_mean)
    finally:
        dist.destroy_process_group()


def test_meta_device_builds_structure_only_modules():
    # torchvision's vgg16 has 138,357,544 parameters; on `meta` none of them takes memory.
    model = cnndsl.compile("zoo:vgg16", device="meta")
    params = list(model.parameters())
    assert all(p.device.type == "meta" for p in params)
    assert sum(p.numel() for p in params) == 138_357_544
    assert tuple(model(torch.empty(2, 3, 224, 224, device="meta")).shape) == (2, 1000)


def test_the_documented_training_quickstart_trains():
    """docs/compile.md's quickstart: CrossEntropyLoss on logits, the loss falls, and the
    probabilities at the end are a softmax (rows sum to 1)."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "compile.md").read_text()
    section = page.split("### Training quickstart", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/compile.md", "exec"), namespace)
    losses = namespace["losses"]
    assert losses[-1] < 0.5 * losses[0]
    probabilities = namespace["probabilities"]
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(64))
    assert not any(isinstance(m, nn.Softmax) for m in namespace["model"].modules())


def test_optimize_keeps_nchw_where_torchs_channels_last_is_wrong():
    """torch 2.14's CPU channels_last convolution computes Conv2d(1, 1, 3, stride=(1, 2),
    padding=1) on a 2x2 input wrongly (found by the random-spec property); optimize checks
    its channels_last model against the NCHW one and keeps NCHW here."""
    conv = nn.Conv2d(1, 1, 3, stride=(1, 2), padding=1).eval()
    x = torch.randn(2, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        nchw = conv(x)
        nhwc = conv.to(memory_format=torch.channels_last)(
            x.contiguous(memory_format=torch.channels_last))
    torch_is_wrong = not torch.allclose(nchw, nhwc, atol=1e-5)  # True on torch 2.14.1
    text = "input 2x2x1\nCONV(1, 3, s=1x2, pad=1, round=floor)"
    plain, fast = cnndsl.compile(text, seed=0).eval(), cnndsl.compile(text, seed=0,
                                                                        optimize=True)
    # channels_last only where torch computes it right
    assert nhwc_input(fast) == (not torch_is_wrong)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), plain(x))
    fine = cnndsl.compile("input 8x8x3\nCONV(4, 3, s=1x2, pad=1, round=floor)", optimize=True)
    assert nhwc_input(fine)


def nhwc_input(model) -> bool:
    """Whether optimize made the model take its input in channels_last (a pre-hook)."""
    return any(hook.__name__ == "_nhwc_input" for hook in model._forward_pre_hooks.values())
