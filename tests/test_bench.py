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
    names = ("optimize", "onnxruntime", "onnxruntime-default")
    results = bench.run_bench(model, batches=(1, 3), runtimes=names, runs=1, warmup=0)
    assert [(r.runtime, r.batch) for r in results] == [
        (name, b) for name in ("eager", *names) for b in (1, 3)]
    for r in results:
        assert r.status == "ok", r
        assert r.max_rel_diff <= 1e-4, r
        assert r.median_ms > 0 and r.throughput == pytest.approx(1000 * r.batch / r.median_ms)
    eager = {r.batch: r.median_ms for r in results if r.runtime == "eager"}
    for r in results:
        assert r.speedup == pytest.approx(eager[r.batch] / r.median_ms)


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
                          text=True, timeout=300)


def test_cli_json_and_a_missing_cuda_device():
    r = cli("zoo:lenet5", "--batch", "1,2", "--runs", "1", "--runtimes", "optimize",
            "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(row["runtime"], row["batch"], row["status"]) for row in rows] == [
        ("eager", 1, "ok"), ("eager", 2, "ok"), ("optimize", 1, "ok"), ("optimize", 2, "ok")]
    assert "bench: optimize: batch 2" in r.stderr  # the progress line
    import torch

    if not torch.cuda.is_available():
        r = cli("zoo:lenet5", "--device", "cuda", "--runs", "1", "--format", "markdown")
        assert r.returncode == 0 and "Traceback" not in r.stderr
        assert "| eager | 1 | - | - | - | - | skipped: no CUDA device here |" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--batch", "0"], "--batch sizes must be positive"),
    (["--batch", "one"], "--batch takes sizes separated by commas"),
    (["--runtimes", "tensorrt"], "unknown runtime tensorrt"),
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
