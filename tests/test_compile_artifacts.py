"""Saved models: .pt round trips, ONNX checked with onnxruntime, TorchScript, atomic writes, CLI."""
from __future__ import annotations

import ast
import copy
import errno
import os
from pathlib import Path

import pytest
import torch

import cnndsl
from cnndsl import artifacts
from cnndsl.cli import main
from cnndsl.errors import UsageError

SPECS = Path(__file__).resolve().parents[1] / "specs"
TINY = """input 12x12x3
classes = 4
def unit(c) = CONV(c, 3, pad=p, bias=false) - BN - RELU
unit(8) - residual(unit(8) - unit(8)) - MAXPOOL(2) - GAP - FC(classes) - SOFTMAX
"""


def tiny(**kw):
    return cnndsl.compile(TINY, seed=kw.pop("seed", 1), p="same", **kw)


def test_pt_round_trip_with_spec_and_variables(tmp_path):
    model = tiny(logits=True).eval()
    with torch.no_grad():
        model.unit1.bn1.running_mean.uniform_()  # state beyond the initialisation must survive
    path = tmp_path / "model.pt"
    artifacts.save(model, path)
    payload = torch.load(path, weights_only=True)
    assert payload["spec"] == TINY and payload["variables"] == {"p": "same"}
    assert payload["logits"] is True
    loaded = cnndsl.load(path).eval()
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert loaded(x).shape == (2, 4)  # logits: no softmax


def test_a_deep_copy_can_still_be_saved(tmp_path):
    model = copy.deepcopy(tiny())
    artifacts.save(model, tmp_path / "copy.pt")
    assert list(cnndsl.load(tmp_path / "copy.pt").state_dict()) == list(model.state_dict())


def test_pt_round_trip_of_an_optimized_model(tmp_path):
    model = tiny(optimize=True)
    artifacts.save(model, tmp_path / "fast.pt")
    loaded = cnndsl.load(tmp_path / "fast.pt")
    x = torch.randn(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_onnx_export_agrees_with_onnxruntime(tmp_path):
    model = tiny().eval()
    path = tmp_path / "model.onnx"
    diff = artifacts.save_onnx(model, path)
    assert diff <= 1e-4
    x = torch.randn(3, 3, 12, 12)  # another batch size: the batch axis is dynamic
    with torch.no_grad():
        expected = model(x).numpy()
    got = artifacts.run_onnx(path, x.numpy())
    assert abs(got - expected).max() <= 1e-4


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_file(tmp_path):
    model = tiny().eval()
    artifacts.save(model, tmp_path / "model.ts")
    loaded = cnndsl.load(tmp_path / "model.ts")
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_an_optimized_resnet_exports_to_onnx_and_torchscript(tmp_path):
    # BN folded into the convolutions, channels_last weights and input: both formats keep them.
    model = cnndsl.compile(SPECS / "resnet18.cnn", input="32x32x3", classes=10, seed=0,
                           optimize=True, logits=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    assert artifacts.save_onnx(model, tmp_path / "fast.onnx") <= 1e-4
    got = artifacts.run_onnx(tmp_path / "fast.onnx", x.numpy())
    assert abs(got - expected.numpy()).max() <= 1e-4 * expected.abs().max().item()
    artifacts.save(model, tmp_path / "fast.ts")
    with torch.no_grad():
        torch.testing.assert_close(cnndsl.load(tmp_path / "fast.ts")(x), expected)


def test_a_failed_write_leaves_the_existing_file_untouched(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    path.write_bytes(b"precious")

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(UsageError, match=r"cannot write .*model.pt: No space left on device"):
        artifacts.save(tiny(), path)
    assert path.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_a_failed_onnx_check_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(artifacts, "run_onnx", lambda path, x: x.sum() * 0 + 1e9)
    with pytest.raises(UsageError, match="ONNX check failed"):
        artifacts.save_onnx(tiny(), tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_written_files_get_the_usual_permissions(tmp_path):
    artifacts.write_text(tmp_path / "a.py", "pass\n")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.py").stat().st_mode & 0o777 == 0o666 & ~mask


def test_load_refuses_other_files(tmp_path):
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(UsageError, match="not a model saved by cnndsl"):
        cnndsl.load(tmp_path / "other.pt")
    with pytest.raises(UsageError):
        artifacts.save(tiny(), tmp_path / "model.h5")


# -- the command line -------------------------------------------------------------------------

def test_cli_writes_source_that_matches_the_saved_weights(tmp_path, capsys):
    spec = str(SPECS / "resnet18.cnn")
    common = ["--input", "32x32x3", "--classes", "10", "--seed", "3", "--device", "cpu"]
    assert main(["compile", spec, "-o", str(tmp_path / "net.py"), *common]) == 0
    assert main(["compile", spec, "-o", str(tmp_path / "net.pt"), *common]) == 0
    assert "11,181,642 parameters" in capsys.readouterr().out  # resnet18 with 10 classes
    namespace: dict = {}
    source = (tmp_path / "net.py").read_text()
    exec(compile(source, "net.py", "exec"), namespace)  # our own generated file
    generated = namespace["Resnet18"]().eval()
    loaded = cnndsl.load(tmp_path / "net.pt").eval()
    generated.load_state_dict(loaded.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(generated(x), loaded(x))
    # the same seed gives the same bytes of source and the same weights
    assert main(["compile", spec, "-o", str(tmp_path / "again.pt"), *common]) == 0
    again = cnndsl.load(tmp_path / "again.pt")
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(),
                                                 loaded.state_dict().values()))


def test_cli_source_to_stdout_with_defines_and_logits(capsys):
    spec = "[(CONV-RELU)*N-POOL]*M-FC-SOFTMAX"
    assert main(["compile", spec, "--input", "32x32x3", "--classes", "10", "-D", "N=2",
                 "-D", "M=2", "--logits", "--class-name", "Small"]) == 0
    source = capsys.readouterr().out
    ast.parse(source)
    assert "class Small(nn.Module):" in source
    assert source.count("nn.Conv2d(") == 4 and "Softmax" not in source


@pytest.mark.parametrize("suffix", [".onnx", ".ts"])
def test_cli_exports(tmp_path, suffix, capsys):
    out = tmp_path / f"lenet{suffix}"
    assert main(["compile", str(SPECS / "lenet5.cnn"), "-o", str(out), "--seed", "0"]) == 0
    assert out.is_file() and "61,706 parameters" in capsys.readouterr().out


def test_cli_usage_errors(tmp_path, capsys):
    spec = str(SPECS / "lenet5.cnn")
    assert main(["compile", spec, "-o", str(tmp_path / "x.h5")]) == 2
    assert main(["compile", spec, "-o", str(tmp_path / "missing" / "x.pt")]) == 2
    assert main(["compile", spec, "-o", str(tmp_path / "x.py"), "--optimize"]) == 2
    assert main(["compile", "input 7x7x3\nCONV(1, 3, s=3)", "-o", str(tmp_path / "x.pt")]) == 1
    assert list(tmp_path.iterdir()) == []
    err = capsys.readouterr().err
    assert "doesn't fit" in err


# -- a .pt that is a valid pickle but not what save_pt wrote (issue 17, F21) -----------------

def _saved(tmp_path) -> dict:
    artifacts.save_pt(tiny(), tmp_path / "good.pt")
    return torch.load(tmp_path / "good.pt", weights_only=True)


@pytest.mark.parametrize("change, message", [
    (lambda p: p.update(version="2"), "the format version must be a whole number"),
    (lambda p: p.update(version=None), "the format version must be a whole number"),
    (lambda p: p.update(version=99), "saved by a newer cnndsl"),
    (lambda p: p.update(spec=None), "`spec` must be the spec text, not NoneType"),
    (lambda p: p.pop("spec"), "it has no `spec` entry"),
    (lambda p: p.pop("state_dict"), "it has no `state_dict` entry"),
    (lambda p: p.pop("variables"), "it has no `variables` entry"),
    (lambda p: p.update(variables=[1]), "`variables` must be a dict of variables"),
    (lambda p: p.update(state_dict=None), "`state_dict` must be a dict of tensors"),
    (lambda p: p.update(input=[1.5, 2, 3]), "`input` must be None, HxWxC text"),
    (lambda p: p.update(logits="yes"), "`logits` must be true or false"),
    (lambda p: p.update(state_dict={k: v.to("meta") for k, v in p["state_dict"].items()}),
     r"holds no data \(a meta tensor\)"),
    (lambda p: p.update(state_dict={"x": torch.zeros(1)}), "its weights do not fit its spec"),
])
def test_a_malformed_pt_is_a_usage_error(tmp_path, change, message):
    payload = _saved(tmp_path)
    change(payload)
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(UsageError, match=message):
        cnndsl.load(tmp_path / "bad.pt")


@pytest.mark.parametrize("content, message", [
    (b"", "not a model saved by cnndsl: it cannot be read safely \\(EOFError"),
    (b"hello", "not a model saved by cnndsl: it cannot be read safely"),
])
def test_an_empty_or_garbage_pt_is_a_usage_error(tmp_path, content, message):
    (tmp_path / "bad.pt").write_bytes(content)
    with pytest.raises(UsageError, match=message):
        cnndsl.load(tmp_path / "bad.pt")


def test_a_pickle_that_would_run_code_does_not_run(tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return print, ("EVIL RAN",)

    torch.save({**_saved(tmp_path), "spec": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(UsageError, match="cannot be read safely") as info:
        cnndsl.load(tmp_path / "evil.pt")
    assert "EVIL RAN" not in capsys.readouterr().out
    assert "\x1b" not in str(info.value)  # torch's bold escape is not passed on


@pytest.mark.parametrize("name", ["d.pt", "d.ts"])
def test_a_directory_or_a_missing_file_is_a_usage_error(tmp_path, name):
    (tmp_path / name).mkdir()
    with pytest.raises(UsageError, match="is a directory"):
        cnndsl.load(tmp_path / name)
    with pytest.raises(UsageError, match="no such file"):
        cnndsl.load(tmp_path / ("missing" + name))


def test_a_ts_that_is_not_torchscript_is_a_usage_error(tmp_path):
    (tmp_path / "bad.ts").write_bytes(b"xx")
    with pytest.raises(UsageError, match="is not a TorchScript file"):
        cnndsl.load(tmp_path / "bad.ts")


def test_a_meta_model_is_not_saved(tmp_path):
    model = cnndsl.compile(TINY, p="same", device="meta")
    with pytest.raises(UsageError, match="structure-only"):
        artifacts.save_pt(model, tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


def test_load_onto_meta_still_works(tmp_path):
    artifacts.save_pt(tiny(), tmp_path / "m.pt")
    assert next(cnndsl.load(tmp_path / "m.pt", device="meta").parameters()).is_meta


# -- ONNX: one self-contained file or none (F3); what it declares is what it computes (F26) --

def test_a_model_past_the_onnx_limit_is_refused_and_nothing_beside_it_changes(
        tmp_path, monkeypatch, capsys):
    # Past 2 GiB torch's exporter writes each weight beside the .onnx as fc1.weight etc.,
    # replacing what is there; FC(300000000) would need 1.2 GB here, so the limit is lowered.
    monkeypatch.setattr(artifacts, "ONNX_MAX_BYTES", 1000)
    spec = tmp_path / "big.cnn"
    spec.write_text("input 1x1x1\nFC(300)\n")
    (tmp_path / "fc1.weight").write_bytes(b"precious")
    assert main(["compile", str(spec), "--device", "cpu", "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "the model's weights are 2,400 bytes; an ONNX file holds at most 1,000" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.cnn", "fc1.weight"]
    assert (tmp_path / "fc1.weight").read_bytes() == b"precious"


def test_an_onnx_export_is_one_file(tmp_path):
    artifacts.save_onnx(tiny(), tmp_path / "m.onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


CEIL_POOL = "input 7x7x3\nMAXPOOL(2, s=2, pad=1, round=ceil)\n"


def test_a_ceil_pool_exports_no_wrong_output_size(tmp_path):
    import numpy as np
    import onnx

    assert cnndsl.api.check_spec(CEIL_POOL).totals["output"].as_list() == [3, 4, 4]
    model = cnndsl.compile(CEIL_POOL, device="cpu")
    artifacts.save_onnx(model, tmp_path / "m.onnx")
    proto = onnx.load(tmp_path / "m.onnx")
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    # torch's exporter declared 5x5 (ONNX's rule); torch and onnxruntime compute 4x4
    assert [d.dim_value for d in dims[1:]] == [3, 0, 0]
    assert all(d.dim_param for d in dims[2:])
    onnx.checker.check_model(proto, full_check=True)  # no contradiction with ONNX's inference
    got = artifacts.run_onnx(tmp_path / "m.onnx", np.zeros((2, 3, 7, 7), np.float32))
    assert got.shape == (2, 3, 4, 4)


def test_a_wrong_declared_shape_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(artifacts, "declare_output_shape", lambda data, shape: data)
    spec = tmp_path / "pool.cnn"
    spec.write_text(CEIL_POOL)
    assert main(["compile", str(spec), "--device", "cpu", "-o", str(tmp_path / "m.onnx")]) == 2
    assert "the file declares output shape (3, 5, 5), onnxruntime computes (3, 4, 4), torch " \
           "(3, 4, 4)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool.cnn"]
