"""`cnndsl bench`: every runtime computes what eager PyTorch computes, and a runtime that cannot
run here is a skip line, never a traceback."""
from __future__ import annotations

import builtins
import json
import subprocess
import sys

import pytest

import cnndsl
from cnndsl import bench

MODELS = [("zoo:lenet5", None), ("zoo:resnet18", "32x32x3"), ("zoo:mobilenet_v2", "32x32x3")]


@pytest.mark.parametrize("spec, size", MODELS, ids=[m[0] for m in MODELS])
def test_each_runtime_equals_eager(spec, size):
    model = cnndsl.compile(spec, input=size, seed=0, logits=True)
    names = ("torchvision", "optimize", "onnxruntime", "onnxruntime-default")
    results = bench.run_bench(model, batches=(1, 3), runtimes=names, runs=1, warmup=0)
    assert [(r.runtime, r.batch) for r in results] == [
        (name, b) for name in ("torchvision", "eager", *names[1:]) for b in (1, 3)]
    twin = spec != "zoo:lenet5"  # resnet18 and mobilenet_v2 are torchvision's too
    for r in results:
        if r.runtime == "torchvision" and not twin:
            assert r.status == "skipped" and "no torchvision model" in r.reason
            continue
        assert r.status == "ok", r
        assert r.max_rel_diff <= 1e-4, r
        assert r.median_ms > 0 and r.throughput == pytest.approx(1000 * r.batch / r.median_ms)
        assert 0 < r.min_ms <= r.median_ms
    reference = "torchvision" if twin else "eager"
    base = {r.batch: r.median_ms for r in results if r.runtime == reference}
    for r in results:
        if r.status == "ok":
            assert r.speedup == pytest.approx(base[r.batch] / r.median_ms)


def test_runtimes_are_timed_in_interleaved_rounds(monkeypatch):
    """Every round calls each runtime once, the order rotated by one a round, so a burst of
    load on a shared machine hits all runtimes alike."""
    order = []
    medians = bench.time_interleaved({n: (lambda n=n: order.append(n)) for n in "abc"},
                                     runs=3, warmup=1)
    assert order == list("abc" "abc" "bca" "cab") and set(medians) == set("abc")
    seen = []  # run_bench and run_train_bench time all their rows of a batch in one call
    real = bench.time_rounds

    def spy(calls, *args):
        seen.append(list(calls))
        return real(calls, *args)

    monkeypatch.setattr(bench, "time_rounds", spy)
    model = cnndsl.compile("zoo:resnet18", input="32x32x3", classes=10, seed=0, logits=True)
    bench.run_bench(model, batches=(1, 2), runtimes=("torchvision", "optimize"), runs=1,
                    warmup=0)
    bench.run_train_bench(model, batches=(2,), runs=1, warmup=0)
    assert seen == [["torchvision", "eager", "optimize"]] * 2 + [["torchvision", "eager"]]


def test_bf16_and_cuda_graphs_on_the_cpu():
    """bf16 (channels_last, bfloat16 autocast) runs on the CPU too, to bfloat16's precision;
    cudagraphs is a skip line without a CUDA device."""
    model = cnndsl.compile("zoo:lenet5", seed=0, logits=True)
    results = bench.run_bench(model, runtimes=("bf16", "cudagraphs"), runs=1, warmup=0)
    _, bf16, graphs = results
    assert bf16.status == "ok" and 0 < bf16.max_rel_diff <= 5e-2, bf16
    assert graphs.status == "skipped" and "need a CUDA device" in graphs.reason


@pytest.mark.slow
def test_torch_compile_runtime_equals_eager():
    model = cnndsl.compile("zoo:lenet5", seed=0)
    results = bench.run_bench(model, runtimes=("compile",), runs=1, warmup=1)
    compiled = [r for r in results if r.runtime == "compile"]
    assert compiled and all(r.status == "ok" and r.max_rel_diff <= 1e-4 for r in compiled)


def test_a_runtime_that_is_not_installed_is_a_skip_line(monkeypatch):
    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name.split(".")[0] == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    model = cnndsl.compile("zoo:lenet5", seed=0)
    results = bench.run_bench(model, runtimes=("onnxruntime",), runs=1, warmup=0)
    skipped = [r for r in results if r.runtime == "onnxruntime"]
    assert [r.status for r in skipped] == ["skipped"]
    assert "onnxruntime is not installed" in skipped[0].reason
    table = bench.format_table(results)
    assert "skipped: onnxruntime is not installed" in table
    assert [r.status for r in results if r.runtime == "eager"] == ["ok"]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "cnndsl", "bench", *args], capture_output=True,
                          check=False, text=True, timeout=300)


def test_cli_json_and_the_progress_lines():
    r = cli("zoo:lenet5", "--batch", "1,2", "--runs", "1", "--runtimes", "optimize",
            "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(row["runtime"], row["batch"], row["status"]) for row in rows] == [
        ("eager", 1, "ok"), ("eager", 2, "ok"), ("optimize", 1, "ok"), ("optimize", 2, "ok")]
    assert "bench: optimize: checking batch 2" in r.stderr  # the progress lines
    assert "bench: batch 2: timing eager, optimize interleaved, 1 rounds" in r.stderr


def test_cli_cuda_without_a_device_is_a_skip_line_per_runtime():
    """--device cuda lists the GPU runtimes (eager fp32, bf16, torch.compile, CUDA graphs,
    onnxruntime's CUDA provider); without a device each is a skip line, never a traceback."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device: bench/RESULTS.md's GPU table is measured")
    r = cli("zoo:resnet18", "--input", "32x32x3", "--device", "cuda", "--runs", "1",
            "--batch", "1,8", "--format", "markdown")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    for name in ("torchvision", "eager", "bf16", "compile", "cudagraphs", "onnxruntime"):
        for b in (1, 8):
            row = f"| {name} | {b} | - | - | - | - | - | skipped: no CUDA device here |"
            assert row in r.stdout
    r = cli("zoo:lenet5", "--device", "cuda", "--train", "--runs", "1", "--format", "json")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert [(row["runtime"], row["status"]) for row in json.loads(r.stdout)] == [
        ("eager", "skipped")]


@pytest.mark.parametrize("args, message", [
    (["--batch", "0"], "--batch sizes must be positive"),
    (["--batch", "one"], "--batch takes sizes separated by commas"),
    (["--runtimes", "tensorrt"], "unknown runtime tensorrt"),
    (["--ddp", "1,2", "--device", "cuda"], "--ddp runs on the CPU (gloo)"),
])
def test_cli_usage_errors(args, message):
    r = cli("zoo:lenet5", *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_compile_hands_over_an_onnxruntime_model():
    """compile(..., runtime="onnxruntime"): the module's interface (tensor in, tensor out),
    the torch module's outputs, inference only."""
    import torch

    from cnndsl.errors import UsageError

    ours = cnndsl.compile("zoo:resnet18", input="32x32x3", seed=0, logits=True,
                          runtime="onnxruntime")
    torch_model = cnndsl.compile("zoo:resnet18", input="32x32x3", seed=0, logits=True).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = torch_model(x)
    got = ours(x)
    assert isinstance(got, torch.Tensor) and got.shape == expected.shape == (3, 1000)
    assert (got - expected).abs().max() <= 1e-4 * expected.abs().max()
    assert ours.eval() is ours and ours.cnndsl_info["runtime"] == "onnxruntime"
    with pytest.raises(UsageError, match="for inference"):
        ours.train()
    with pytest.raises(UsageError, match="unknown runtime"):
        cnndsl.compile("zoo:lenet5", runtime="tensorrt")


# -- --train: one training step per call ----------------------------------------------------

def hand_written_step(model, x, y, lr=bench.LEARNING_RATE):
    """One step written with torch alone: the loss and the parameters after it."""
    import torch

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return float(loss.detach()), [p.detach().clone() for p in model.parameters()]


def test_our_training_step_is_torchvisions():
    """From torchvision's weights, one SGD step on the same batch and labels: the same loss and
    the same updated parameters, computed with torch alone (the oracle for the train rows)."""
    import torch
    import torchvision

    theirs = torchvision.models.resnet18(weights=None, num_classes=10)
    ours = cnndsl.compile("zoo:resnet18", input="32x32x3", classes=10, seed=0, logits=True)
    cnndsl.transfer_weights(theirs, ours)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 3, 9, 3])
    before = [p.detach().clone() for p in theirs.parameters()]
    their_loss, their_params = hand_written_step(theirs, x, y)
    our_loss, our_params = hand_written_step(ours, x, y)
    assert our_loss == pytest.approx(their_loss, rel=1e-5)
    for old, a, b in zip(before, our_params, their_params):
        assert not torch.equal(b, old) or not b.requires_grad  # the step moved them
        assert (a - b).abs().max() <= 1e-5 * b.abs().max()


def test_train_rows_against_torchvision(monkeypatch):
    model = cnndsl.compile("zoo:resnet18", input="32x32x3", classes=10, seed=0, logits=True)
    results = bench.run_train_bench(model, batches=(2,), runtimes=("eager", "onnxruntime"),
                                    runs=1, warmup=0)
    assert [(r.runtime, r.status, r.mode) for r in results] == [
        ("torchvision", "ok", "train"), ("eager", "ok", "train"),
        ("onnxruntime", "skipped", "train")]
    tv, eager, ort = results
    assert ort.reason == "inference only"
    assert tv.max_rel_diff == 0 and tv.speedup == 1
    assert eager.max_rel_diff <= 1e-4
    assert eager.speedup == pytest.approx(tv.median_ms / eager.median_ms)
    # the check sees a step that is not torchvision's: their logits scaled by 1.01
    build = bench._torchvision_model

    def scaled(name, classes):
        module = build(name, classes)
        forward = module.forward
        module.forward = lambda x: 1.01 * forward(x)
        return module

    monkeypatch.setattr(bench, "_torchvision_model", scaled)
    results = bench.run_train_bench(model, batches=(2,), runs=1, warmup=0)
    assert results[1].runtime == "eager" and results[1].max_rel_diff > 1e-3


def test_train_without_a_torchvision_twin_and_refusals():
    import torch

    model = cnndsl.compile("zoo:lenet5", seed=0, logits=True).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    results = bench.run_train_bench(model, batches=(1, 2), runs=1, warmup=0)
    assert [(r.runtime, r.batch, r.status) for r in results] == [
        ("eager", 1, "ok"), ("eager", 2, "ok")]
    assert all(r.max_rel_diff == 0 and r.mode == "train" for r in results)
    # the steps train copies: the caller's model is as it was
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(cnndsl.errors.UsageError, match="compile it with logits=True"):
        bench.run_train_bench(cnndsl.compile("zoo:lenet5", seed=0), runs=1, warmup=0)
    with pytest.raises(cnndsl.errors.UsageError, match="not one score per class"):
        bench.run_train_bench(cnndsl.compile("zoo:conv_autoencoder", seed=0), runs=1, warmup=0)


def test_a_changed_zoo_spec_has_a_torchvision_skip_row():
    model = cnndsl.compile("zoo:resnet18", input="32x32x3", classes=10, seed=0, logits=True)
    model.cnndsl_info = dict(model.cnndsl_info, spec_name="zoo:resnet34")  # not resnet34's shape
    results = bench.run_train_bench(model, batches=(2,), runs=1, warmup=0)
    assert results[0].runtime == "torchvision" and results[0].status == "skipped"
    assert "torchvision's resnet34 does not match this model" in results[0].reason
    assert results[1].status == "ok" and results[1].speedup == 1


@pytest.mark.slow
def test_train_resnet18_64_and_torch_compile():
    model = cnndsl.compile("zoo:resnet18", input="64x64x3", seed=0, logits=True)
    results = bench.run_train_bench(model, batches=(8,), runtimes=("compile",), runs=2, warmup=1)
    assert [(r.runtime, r.status) for r in results] == [
        ("torchvision", "ok"), ("eager", "ok"), ("compile", "ok")]
    _, eager, compiled = results
    assert eager.max_rel_diff <= 1e-4, eager
    # inductor's fused kernels sum in another order: each tensor's update agrees to ~1e-3 of
    # that update (measured 9.6e-4 on the smallest gradients), the loss far closer
    assert compiled.max_rel_diff <= 5e-3, compiled


def test_cli_train():
    r = cli("zoo:lenet5", "--train", "--batch", "2", "--runs", "1", "--runtimes",
            "eager,onnxruntime", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(row["runtime"], row["status"], row["mode"], row["reason"]) for row in rows] == [
        ("eager", "ok", "train", ""), ("onnxruntime", "skipped", "train", "inference only")]
    assert "bench: eager: training step, batch 2" in r.stderr
    r = cli("zoo:conv_autoencoder", "--train", "--runs", "1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "not one score per class" in r.stderr
