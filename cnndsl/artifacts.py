"""Saved models: .py source, .pt (weights + spec), .onnx and .ts files, written atomically."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from . import outputs
from .errors import UsageError
from .outputs import atomic_path

FORMAT = "cnndsl.pt"
FORMAT_VERSION = 2  # 2: `flat` (version 1 files hold flat models, one submodule per layer)
SUFFIXES = (".py", ".pt", ".onnx", ".ts")


def write_text(path: str | Path, text: str, *, inputs=()) -> None:
    outputs.write_text(path, text, inputs=inputs)


class _Sink:
    """The file object torch's writers are given: they turn a failed write into a
    RuntimeError with no reason ("unexpected pos 704 vs 598"), and TorchScript's aborts the
    process when it writes to a path; given this, the OSError is kept and raised as itself."""

    def __init__(self, file):
        self._file, self.error = file, None

    def write(self, data) -> int:
        try:
            return self._file.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name):
        return getattr(self._file, name)


@contextlib.contextmanager
def _written(path, *, inputs=()):
    """atomic_path's temporary file opened for a torch writer (a _Sink); the OSError behind
    a writer's RuntimeError is raised instead, and atomic_path makes it a UsageError."""
    with atomic_path(path, inputs=inputs) as tmp, open(tmp, "wb") as f:
        sink = _Sink(f)
        try:
            yield sink
        except RuntimeError:
            if sink.error is not None:
                raise sink.error from None
            raise
        f.flush()
        os.fsync(f.fileno())  # a full disk can surface only here, before the rename


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
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise UsageError("a structure-only (device meta) model has no weights to save: "
                         "compile it on the CPU or a GPU")
    variables = {k: (str(v) if isinstance(v, str) else v) for k, v in info["variables"].items()}
    payload = {"format": FORMAT, "version": FORMAT_VERSION, "spec": info["spec"],
               "spec_name": info["spec_name"], "variables": variables, "input": info["input"],
               "classes": info["classes"], "logits": info["logits"],
               "optimize": info["optimize"], "dtype": info["dtype"],
               "flat": bool(info.get("flat", False)),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    with _written(path) as f:
        torch.save(payload, f)


def save_state_dict(state: dict, path: str | Path, *, inputs=()) -> None:
    """A plain state_dict file (what the generated source's class loads)."""
    import torch

    with _written(path, inputs=inputs) as f:
        torch.save(state, f)


def save_torchscript(model, path: str | Path) -> None:
    import warnings

    import torch

    info = model.__dict__.pop("cnndsl_info", None)  # plain data TorchScript need not type
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
            warnings.filterwarnings("ignore", "The TorchScript type system", UserWarning)
            scripted = torch.jit.script(model.eval())
            with _written(path) as f:
                torch.jit.save(scripted, f)
    finally:
        if info is not None:
            model.cnndsl_info = info


# ONNX files are protobufs, which cannot exceed 2 GiB; past that torch's exporter writes each
# weight as a separate file beside the .onnx, under the layer's name (fc1.weight), replacing
# any file so named and shared with the next export into the folder (issue 17, F3). Such
# models are refused instead.
ONNX_MAX_BYTES = 2**31


def tensor_bytes(model) -> int:
    """The bytes of a module's parameters and buffers."""
    return sum(t.numel() * t.element_size()
               for t in (*model.parameters(), *model.buffers()))


def save_onnx(model, path: str | Path, *, opset: int = 17) -> float:
    """Export, then check onnxruntime's output against torch's; returns the max difference.

    The file is written (atomically) only once the check has passed."""
    import io
    import warnings

    import numpy as np
    import torch

    model = model.eval()
    info = _info(model)
    outputs.resolve(path)  # a directory or a FIFO is refused before the work
    if info["dtype"] == "bfloat16":
        raise UsageError("ONNX export is checked with onnxruntime, which cannot run bfloat16 "
                         "models on the CPU: export float32 (or float16) instead")
    size = tensor_bytes(model)
    if size >= ONNX_MAX_BYTES:
        raise UsageError(f"the model's weights are {size:,} bytes; an ONNX file holds at most "
                         f"{ONNX_MAX_BYTES:,} (2 GiB): save it as .pt or .ts instead")
    buffer = io.BytesIO()
    x = example_input(model, batch=2)
    try:
        with torch.no_grad():
            expected = model(x).float().cpu().numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            # The TorchScript-based exporter: the dynamo one needs onnxscript, not a dependency.
            torch.onnx.export(model, (example_input(model),), buffer, dynamo=False,
                              input_names=["input"], output_names=["output"],
                              opset_version=opset,
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    except (RuntimeError, NotImplementedError) as exc:
        # What the exporter has no ONNX for (an adaptive pool whose output size does not
        # divide its input), or what torch cannot run in this dtype on this device (LRN in
        # float16 on the CPU): the model is fine, this export is not possible.
        reason = str(exc).strip().split("\n")[0][:300]
        raise UsageError(f"cannot export this model to ONNX: {reason}; {path} was not "
                         "written") from None
    static = info.get("output_shape")  # absent from modules compiled by an older cnndsl
    if static is not None and list(expected.shape[1:]) != list(static):
        raise RuntimeError(f"bug in cnndsl: the model computes {tuple(expected.shape[1:])}, "
                           f"its shape check said {tuple(static)}")
    data = declare_output_shape(buffer.getvalue(), expected.shape)
    got = run_onnx(data, x.cpu().numpy()).astype(np.float32)
    check_onnx_shape(data, got.shape, expected.shape, path)
    diff = float(np.max(np.abs(got - expected))) if expected.size else 0.0
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    tolerance = (1e-4 if info["dtype"] in ("float32", "float64") else 3e-2) * scale
    if not diff <= tolerance:
        raise UsageError(f"ONNX check failed: onnxruntime differs from torch by {diff:.3g} "
                         f"(allowed {tolerance:.3g}); {path} was not written")
    outputs.write_bytes(path, data)
    return diff


def _declared(proto) -> list:
    """The output shape the ONNX graph declares (None for a named axis such as `batch`)."""
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else None for d in dims]


def declare_output_shape(data: bytes, shape) -> bytes:
    """The exported model with no wrong output size declared, where torch's exporter
    declared one.

    The exporter's shape inference follows ONNX's rule for ceil-rounded pools (onnx 1.23,
    opset 17), which lacks PyTorch's (a last window that starts in the padding is dropped):
    MAXPOOL(2, s=2, pad=1, round=ceil) on 7x7 computes 4x4 in torch and onnxruntime, and was
    declared 5x5 (issue 17, F26). Declaring 4x4 instead would contradict ONNX's own inference
    (onnx.checker's full check fails), so an axis declared wrongly is left unsized (a named
    dimension, as the batch axis is); onnxruntime computes it. The same rule filled the
    intermediate shapes (value_info, optional in ONNX), so those are dropped with a pool of
    that kind in the graph."""
    import onnx

    proto = onnx.load_from_string(data)
    ceil_pool = any(a.name == "ceil_mode" and a.i for n in proto.graph.node for a in n.attribute)
    declared = _declared(proto)
    if len(declared) != len(shape):  # not what the exporter writes: let the check refuse it
        return data
    wrong = [i for i in range(1, len(shape)) if declared[i] not in (None, shape[i])]
    if not wrong and not ceil_pool:
        return data
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    for i in wrong:
        dims[i].Clear()
        dims[i].dim_param = f"output_dim{i}"
    del proto.graph.value_info[:]
    return proto.SerializeToString()


def check_onnx_shape(data: bytes, got, expected, path) -> None:
    """What the ONNX file declares, what onnxruntime computes and what torch computes (the
    static shape cnndsl checked) must agree, the batch axis aside; a named axis declares no
    size."""
    import onnx

    declared = _declared(onnx.load_from_string(data))
    agree = len(declared) == len(expected) and all(
        d is None or d == e for d, e in zip(declared[1:], expected[1:]))
    if tuple(got) != tuple(expected) or not agree:
        shown = tuple("?" if d is None else d for d in declared[1:])
        raise UsageError(f"ONNX check failed: the file declares output shape {shown}, "
                         f"onnxruntime computes {tuple(got[1:])}, torch {tuple(expected[1:])}; "
                         f"{path} was not written")


def run_onnx(path, x):
    """onnxruntime's output for one input array; its errors become UsageErrors."""
    import onnxruntime
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

    failures = tuple(getattr(ort_errors, name) for name in (
        "Fail", "InvalidArgument", "NotImplemented", "InvalidGraph", "RuntimeException",
        "InvalidProtobuf", "NoSuchFile", "NoModel", "EPFail") if hasattr(ort_errors, name))
    try:
        model = path if isinstance(path, bytes) else str(path)  # serialised, or a file
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: its warnings went to the terminal raw
        session = onnxruntime.InferenceSession(model, options,
                                               providers=["CPUExecutionProvider"])
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
    import warnings

    import torch

    path = Path(path)
    _check_readable(path)
    try:
        with warnings.catch_warnings():
            # torch.jit's deprecation notice: save_torchscript keeps it from the user too
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location=device)
    except (RuntimeError, ValueError, EOFError) as exc:  # not a TorchScript archive
        raise UsageError(f"{path} is not a TorchScript file: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    """The exception's first line, named by its type, without the terminal escapes torch
    puts in some messages (a bold `do those steps only if you trust the source`)."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(exc)).strip().split("\n")[0]
    text = "".join(ch for ch in text if ch.isprintable())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_readable(path: Path) -> None:
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not a saved model")
    if not path.exists():
        raise UsageError(f"no such file: {path}")


# What each key of a .pt payload must hold (cnndsl.load reads every one): a file that is a
# valid pickle but not what save_pt wrote is refused with the key named, not a TypeError or
# KeyError from deep inside the rebuild.
def _is_input(v) -> bool:
    return v is None or isinstance(v, str) or (
        isinstance(v, (list, tuple)) and all(type(d) is int for d in v))


def _is_variables(v) -> bool:
    return isinstance(v, dict) and all(
        isinstance(k, str) and type(x) in (int, float, str, bool) for k, x in v.items())


def _is_state_dict(v) -> bool:
    import torch

    return isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in v.items())


_PAYLOAD = {
    "spec": (lambda v: isinstance(v, str), "the spec text"),
    "spec_name": (lambda v: isinstance(v, str), "the spec's name"),
    "variables": (_is_variables, "a dict of variables (numbers or words)"),
    "input": (_is_input, "None, HxWxC text or a list of whole numbers"),
    "classes": (lambda v: v is None or type(v) is int, "None or a whole number"),
    "logits": (lambda v: isinstance(v, bool), "true or false"),
    "optimize": (lambda v: isinstance(v, bool), "true or false"),
    "dtype": (lambda v: isinstance(v, str), "a dtype name"),
    "state_dict": (_is_state_dict, "a dict of tensors"),
}


def read_pt(path: str | Path) -> dict:
    """The contents of a .pt file saved by cnndsl, its header and every key checked;
    cnndsl.load (in the API) rebuilds the module from its spec and loads the weights."""
    import torch

    path = Path(path)
    _check_readable(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001  (pickle is not imported in cnndsl, by rule)
        # torch.load's refusals: an empty or truncated file (EOFError), not a torch file at
        # all (UnpicklingError, KeyError, RuntimeError), a pickle that would run code
        # (weights_only refuses it): none is a model saved by cnndsl.
        raise UsageError(f"{path} is not a model saved by cnndsl: it cannot be read safely "
                         f"({_first_line(exc)})") from None
    if not (isinstance(payload, dict) and payload.get("format") == FORMAT):
        raise UsageError(f"{path} is not a model saved by cnndsl (no {FORMAT} header)")
    version = payload.get("version")
    if type(version) is not int or version < 1:
        raise UsageError(f"{path}: the format version must be a whole number from 1, "
                         f"not {version!r:.40}")
    if version > FORMAT_VERSION:
        raise UsageError(f"{path} was saved by a newer cnndsl (format {version})")
    for key, (valid, what) in _PAYLOAD.items():
        if key not in payload:
            raise UsageError(f"{path} is damaged: it has no `{key}` entry")
        if not valid(payload[key]):
            raise UsageError(f"{path} is damaged: `{key}` must be {what}, not "
                             f"{type(payload[key]).__name__}")
    flat = payload.setdefault("flat", version == 1)
    if not isinstance(flat, bool):
        raise UsageError(f"{path} is damaged: `flat` must be true or false, not "
                         f"{type(flat).__name__}")
    meta = next((k for k, t in payload["state_dict"].items() if t.is_meta), None)
    if meta is not None:
        raise UsageError(f"{path} is damaged: the tensor {meta} holds no data (a meta tensor)")
    return payload
