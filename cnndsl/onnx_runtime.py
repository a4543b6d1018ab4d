"""A compiled spec run by onnxruntime: `cnndsl.compile(..., runtime="onnxruntime")`.

On a CPU, onnxruntime runs cnndsl's verified ONNX export faster than eager PyTorch (it fuses
BatchNorm, activations and additions into the convolutions, keeps activations in its blocked
layout and plans its memory once): 1.2x to 4.7x torchvision's eager models here
(bench/RESULTS.md). This hands that path over with the module's interface: a tensor in, a
tensor out, bound in place (IOBinding). Against a session a user builds by hand with
onnxruntime's defaults it ties at one thread (the same export, the same graph optimisations)
and is ahead at two on a shared machine (its threads are not pinned to cores).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from .errors import UsageError


class OnnxRuntimeModel:
    """An inference-only model backed by an onnxruntime session, called like the module it
    was exported from (`model(x)` with an N x C x H x W float tensor)."""

    def __init__(self, session, info: dict, *, io_binding: bool = True):
        self.session = session
        self.io_binding = io_binding
        self.cnndsl_info = info
        self.training = False
        self.on_cuda = "CUDAExecutionProvider" in session.get_providers()
        output = session.get_outputs()[0]
        self._output_shape = list(info.get("output_shape") or output.shape[1:])
        self._sized = all(isinstance(d, int) for d in self._output_shape)

    def __call__(self, x):
        """`x` in, the output as a fresh tensor: the input is bound in place (no copy for a
        contiguous float32 tensor on the session's device) and onnxruntime writes straight
        into the output tensor (IOBinding), so no array passes through numpy."""
        import numpy as np
        import torch

        if not self.io_binding:  # what a user writes by hand: arrays through numpy
            array = x.detach().to("cpu", torch.float32).contiguous().numpy()
            return torch.from_numpy(self.session.run(None, {"input": array})[0])
        device = torch.device("cuda", torch.cuda.current_device()) if (
            self.on_cuda and x.is_cuda) else torch.device("cpu")
        x = x.detach().to(device, torch.float32).contiguous()
        binding = self.session.io_binding()
        binding.bind_input("input", device.type, device.index or 0, np.float32,
                           list(x.shape), x.data_ptr())
        if not self._sized:  # an axis the export leaves unsized: onnxruntime allocates
            binding.bind_output("output", "cpu")
            self.session.run_with_iobinding(binding)
            return torch.from_numpy(binding.copy_outputs_to_cpu()[0])
        out = torch.empty([x.shape[0], *self._output_shape], dtype=torch.float32,
                          device=device)
        binding.bind_output("output", device.type, device.index or 0, np.float32,
                            list(out.shape), out.data_ptr())
        self.session.run_with_iobinding(binding)
        return out

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
    `threads` (default: torch's), sequential execution (the network is a chain of layers).
    An explicit thread count also leaves the threads unpinned: with 0, onnxruntime pins one
    per physical core, which costs when another process holds that core."""
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
                                          runtime="onnxruntime"), io_binding=tuned)
