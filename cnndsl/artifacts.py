"""Saved models: .py source, .pt (weights + spec), .onnx and .ts files, written atomically."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import UsageError

FORMAT = "cnndsl.pt"
FORMAT_VERSION = 1
SUFFIXES = (".py", ".pt", ".onnx", ".ts")


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """A temporary path beside `path`, renamed onto it only if the block succeeds.

    On any failure the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _info(model) -> dict:
    info = getattr(model, "cnndsl_info", None)
    if info is None:
        raise UsageError("this module was not built by cnndsl.compile; it has no spec to save")
    return info


def example_input(model, batch: int = 1):
    import torch

    info = _info(model)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = getattr(torch, info["dtype"])
    return torch.randn(batch, *info["input_shape"], device=device, dtype=dtype)


def save_pt(model, path: str | Path) -> None:
    """state_dict (on the CPU) + spec text + variables, readable with weights_only=True."""
    import torch

    info = _info(model)
    variables = {k: (str(v) if isinstance(v, str) else v) for k, v in info["variables"].items()}
    payload = {"format": FORMAT, "version": FORMAT_VERSION, "spec": info["spec"],
               "spec_name": info["spec_name"], "variables": variables, "input": info["input"],
               "classes": info["classes"], "logits": info["logits"],
               "optimize": info["optimize"], "dtype": info["dtype"],
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def save_torchscript(model, path: str | Path) -> None:
    import torch

    import warnings

    info = model.__dict__.pop("cnndsl_info", None)  # plain data TorchScript need not type
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
            warnings.filterwarnings("ignore", "The TorchScript type system", UserWarning)
            scripted = torch.jit.script(model.eval())
            with atomic_path(path) as tmp:
                torch.jit.save(scripted, str(tmp))
    finally:
        if info is not None:
            model.cnndsl_info = info


def save_onnx(model, path: str | Path, *, opset: int = 17) -> float:
    """Export, then check onnxruntime's output against torch's; returns the max difference."""
    import warnings

    import numpy as np
    import torch

    model = model.eval()
    if _info(model)["dtype"] == "bfloat16":
        raise UsageError("ONNX export is checked with onnxruntime, which cannot run bfloat16 "
                         "models on the CPU: export float32 (or float16) instead")
    with atomic_path(path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            # The TorchScript-based exporter: the dynamo one needs onnxscript, not a dependency.
            torch.onnx.export(model, (example_input(model),), str(tmp), dynamo=False,
                              input_names=["input"], output_names=["output"],
                              opset_version=opset,
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        x = example_input(model, batch=2)
        with torch.no_grad():
            expected = model(x).float().cpu().numpy()
        got = run_onnx(tmp, x.cpu().numpy()).astype(np.float32)
        diff = float(np.max(np.abs(got - expected))) if expected.size else 0.0
        scale = max(1.0, float(np.max(np.abs(expected))))
        tolerance = (1e-4 if _info(model)["dtype"] in ("float32", "float64") else 3e-2) * scale
        if not diff <= tolerance:
            raise UsageError(f"ONNX check failed: onnxruntime differs from torch by {diff:.3g} "
                             f"(allowed {tolerance:.3g}); {path} was not written")
    return diff


def run_onnx(path, x):
    """onnxruntime's output for one input array; its errors become UsageErrors."""
    import onnxruntime
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

    failures = tuple(getattr(ort_errors, name) for name in (
        "Fail", "InvalidArgument", "NotImplemented", "InvalidGraph", "RuntimeException",
        "InvalidProtobuf", "NoSuchFile", "NoModel", "EPFail") if hasattr(ort_errors, name))
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    except failures as exc:
        raise UsageError(f"ONNX check failed: onnxruntime cannot run the model: {exc}") from None


def save(model, path: str | Path) -> None:
    """Write `model` (from cnndsl.compile) to a .pt, .onnx or .ts file, chosen by suffix."""
    suffix = Path(path).suffix.lower()
    writers = {".pt": save_pt, ".onnx": save_onnx, ".ts": save_torchscript}
    if suffix not in writers:
        raise UsageError(f"cannot save a model as {suffix or 'a file without a suffix'}: "
                         "use .pt, .onnx or .ts (or `cnndsl compile -o model.py` for source)")
    writers[suffix](model, path)


def load_torchscript(path: str | Path, *, device=None):
    """A TorchScript .ts file as saved by save_torchscript (cnndsl.load reads them here)."""
    import torch

    return torch.jit.load(str(path), map_location=device)


def read_pt(path: str | Path) -> dict:
    """The contents of a .pt file saved by cnndsl, its header checked; cnndsl.load (in the
    API) rebuilds the module from its spec and loads the weights."""
    import torch

    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    if not (isinstance(payload, dict) and payload.get("format") == FORMAT):
        raise UsageError(f"{path} is not a model saved by cnndsl (no {FORMAT} header)")
    if payload.get("version", 0) > FORMAT_VERSION:
        raise UsageError(f"{path} was saved by a newer cnndsl (format {payload['version']})")
    return payload
