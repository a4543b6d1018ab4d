"""A compiled spec run by onnxruntime: `cnndsl.compile(..., runtime="onnxruntime")`.

On a CPU, onnxruntime runs cnndsl's verified ONNX export faster than eager PyTorch (it fuses
BatchNorm, activations and additions into the convolutions and plans its memory once): 1.2x to
2.4x here (bench/RESULTS.md). This hands that path over with the module's interface: a tensor
in, a tensor out.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from .errors import UsageError


class OnnxRuntimeModel:
    """An inference-only model backed by an onnxruntime session, called like the module it
    was exported from (`model(x)` with an N x C x H x W float tensor)."""

    def __init__(self, session, info: dict):
        self.session = session
        self.cnndsl_info = info
        self.training = False

    def __call__(self, x):
        import torch

        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        out = self.session.run(None, {"input": array})[0]
        return torch.from_numpy(out)

    forward = __call__

    def eval(self) -> OnnxRuntimeModel:
        return self

    def train(self, mode: bool = True) -> OnnxRuntimeModel:
        if mode:
            raise UsageError("an onnxruntime model is for inference; compile with the default "
                             "runtime (torch) to train")
        return self

    def __repr__(self) -> str:
        providers = ", ".join(self.session.get_providers())
        return (f"OnnxRuntimeModel({self.cnndsl_info.get('spec_name', '')!r}, "
                f"providers=[{providers}])")


def session_options(threads: int | None = None):
    """The options cnndsl runs its exports with: every graph optimisation, one thread pool of
    `threads` (default: torch's), sequential execution (the network is a chain of layers)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.enable_cpu_mem_arena = True
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    options.intra_op_num_threads = threads
    return options


def to_onnxruntime(model, *, threads: int | None = None, device: str = "cpu",
                   tuned: bool = True) -> OnnxRuntimeModel:
    """`model` (from cnndsl.compile, float32) exported, checked against torch, and loaded
    into an onnxruntime session (`tuned=False`: onnxruntime's default options)."""
    try:
        import onnxruntime
    except ImportError:
        raise UsageError("the onnxruntime runtime needs the onnxruntime package "
                         "(pip install onnxruntime)") from None
    from . import artifacts

    providers = ["CPUExecutionProvider"]
    if device != "cpu":
        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise UsageError("onnxruntime has no CUDA provider here (pip install "
                             "onnxruntime-gpu)")
        providers.insert(0, "CUDAExecutionProvider")
    if tuned:
        options = session_options(threads)
    else:  # onnxruntime's defaults, but for the thread count if one is given
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or 0
    with tempfile.TemporaryDirectory(prefix="cnndsl-onnx-") as folder:
        path = Path(folder) / "model.onnx"
        artifacts.save_onnx(model.cpu().eval(), path)  # exported and checked against torch
        # the session reads the file (and any external weights beside it) as it is made
        session = onnxruntime.InferenceSession(str(path), options, providers=providers)
    return OnnxRuntimeModel(session, dict(getattr(model, "cnndsl_info", {}),
                                          runtime="onnxruntime"))
