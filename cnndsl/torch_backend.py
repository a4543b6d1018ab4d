"""Checked IR -> a runnable torch.nn.Module; cnndsl.compile's torch half.

The module is the generated source's own classes (cnndsl.codegen), executed in memory: the
model a user gets from `compile` and from `compile -o model.py` is one and the same code.
`flat=True` keeps the older form, a torch.fx GraphModule with a submodule per layer.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import linecache
import operator
import os
import sys
import types
from pathlib import Path

import torch
from torch import fx, nn

from . import lowering, torch_modules
from .errors import UsageError
from .pysource import check_generated

DTYPES = {"float32": torch.float32, "float": torch.float32, "bfloat16": torch.bfloat16,
          "float16": torch.float16, "half": torch.float16, "float64": torch.float64,
          "double": torch.float64}


def make_layer(step: lowering.Step) -> nn.Module:
    """The module a step's recipe names, from torch.nn or cnndsl.torch_modules."""
    home = torch_modules if step.recipe.custom else nn
    cls = getattr(home, step.module, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"{step.name}: no torch module named {step.module}")
    return cls(**step.kwargs)


def to_module(graph, *, logits: bool = False, class_name: str = "Net",
              flat: bool = False) -> nn.Module:
    """The network as an instance of its generated class (a class per def, docs/compile.md);
    flat=True: a GraphModule with a submodule per layer."""
    if flat:
        return to_flat_module(graph, logits=logits, class_name=class_name)
    from .codegen import to_source

    source = to_source(graph, logits=logits, class_name=class_name)
    cls = load_class(source)
    return cls()


def load_class(source: str) -> type:
    """The model class of a generated file (cnndsl.codegen), executed in memory: the one
    place cnndsl runs code, and only code it generated, which imports only torch and calls
    only torch and its own classes (pysource.check_generated refuses anything else). The
    source is registered with linecache under a name of its own, so tracebacks, inspect and
    torch.jit.script read it."""
    check_generated(source)  # torch and its own classes only, or a bug: no exec
    digest = hashlib.sha1(source.encode()).hexdigest()[:16]
    name = f"cnndsl_generated_{digest}"
    module = sys.modules.get(name)
    if module is None:
        # A module of its own, in sys.modules with its source in linecache: inspect (and so
        # torch.jit.script) finds a class's source through its module's __file__.
        filename = f"<cnndsl-generated-{digest}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        module = types.ModuleType(name)
        module.__file__ = filename
        exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 - generated here
        sys.modules[name] = module
    model_cls = [v for v in vars(module).values() if isinstance(v, type)
                 and issubclass(v, nn.Module) and v.__module__ == name]
    return model_cls[-1]  # the model comes last, after the block classes it uses


def to_flat_module(graph, *, logits: bool = False, class_name: str = "Net") -> fx.GraphModule:
    """The network as a GraphModule: one submodule per layer, named after its node.

    forward is straight-line code (chains, ADD as +, CONCAT as torch.cat on channels), so
    the module works with torch.compile, torch.jit.script/trace, torch.export and ONNX.
    """
    plan = lowering.plan(graph, logits=logits)  # accepts the networkx view too
    g = fx.Graph()
    values = {plan.input: g.placeholder("x")}
    modules: dict[str, nn.Module] = {}
    for step in plan.steps:
        args = [values[u] for u in step.inputs]
        if step.op == "module":
            x = args[0]
            if step.flatten:
                x = g.call_function(torch.flatten, (x, 1))
            modules[step.name] = make_layer(step)
            out = g.create_node("call_module", step.name, (x,), name=step.name)
        elif step.function == "add":
            out = args[0]
            for i, other in enumerate(args[1:], 1):
                name = step.name if i == len(args) - 1 else None
                out = g.create_node("call_method", "add_", (out, other), name=name) \
                    if step.accumulate else \
                    g.create_node("call_function", operator.add, (out, other), name=name)
        elif step.function == "mul":
            out = g.create_node("call_function", operator.mul, tuple(args), name=step.name)
        elif step.function == "cat":
            out = g.create_node("call_function", torch.cat, (args,), dict(step.kwargs),
                                name=step.name)
        elif step.op == "flatten":
            out = g.create_node("call_function", torch.flatten, (args[0], 1), name=step.name)
        else:
            raise AssertionError(step.op)
        out.meta["cnndsl_node"] = step.node
        values[step.node] = out
    if plan.outputs:
        modules["outputs"] = torch_modules.Outputs(f"{class_name}Outputs",
                                                   tuple(n for n, _ in plan.outputs))
        g.output(g.create_node("call_module", "outputs",
                               tuple(values[v] for v in plan.returned), name="outputs"))
    else:
        g.output(values[plan.output])
    g.lint()
    return fx.GraphModule(modules, g, class_name=class_name)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold each eval-mode BN into the conv or linear layer before it, in place: the layer
    becomes the fused one and the BN an nn.Identity, inside whatever block class holds them.

    The pairs are read off a torch.fx trace of the model: a BN whose input is the output of a
    conv (linear) layer that nothing else reads."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    pairs = ((nn.Conv2d, nn.BatchNorm2d, fuse_conv_bn_eval),
             (nn.Linear, nn.BatchNorm1d, fuse_linear_bn_eval))
    traced = model if isinstance(model, fx.GraphModule) else fx.symbolic_trace(model)
    modules = dict(model.named_modules())
    calls = [n.target for n in traced.graph.nodes if n.op == "call_module"]
    for node in list(traced.graph.nodes):
        if node.op != "call_module" or not node.args:
            continue
        prev = node.args[0]
        if not (isinstance(prev, fx.Node) and prev.op == "call_module" and len(prev.users) == 1
                and calls.count(prev.target) == 1 and calls.count(node.target) == 1):
            continue
        layer, norm = modules[prev.target], modules[node.target]
        for layer_cls, norm_cls, fuse in pairs:
            if type(layer) is layer_cls and type(norm) is norm_cls:
                fused = fuse(layer.eval(), norm.eval())
                if isinstance(model, fx.GraphModule):
                    setattr(model, prev.target, fused)
                    node.replace_all_uses_with(prev)
                    model.graph.erase_node(node)
                    model.delete_submodule(node.target)
                else:
                    model.set_submodule(prev.target, fused)
                    model.set_submodule(node.target, nn.Identity())
                break
    if isinstance(model, fx.GraphModule):
        model.recompile()
    return model


def windows_fit(graph) -> bool:
    """Whether every layer's window (the registry's `window`) fits inside its input on both
    axes. torch 2.14's CPU channels_last convolution reads out of bounds where one does not
    (wrong values, and a segfault in the long random-spec run): such networks stay NCHW under
    optimize."""
    for node in graph.order():
        window = node.inputs and node.kind.window(node.params, node.in_shapes)
        if not window:
            continue
        (kh, kw), _, (dh, dw) = window
        given = node.in_shapes[0]
        if given.h < dh * (kh - 1) + 1 or given.w < dw * (kw - 1) + 1:
            return False
    return True


def optimize_for_inference(model: nn.Module, example=None, *,
                           channels_last: bool = True) -> nn.Module:
    """Eval mode, BatchNorm folded into the layer before it, convolutions in channels_last.

    The input is made channels_last too, so no layer works in the slower NCHW layout. With an
    `example` input, the channels_last model is checked against the NCHW one first and kept
    only if it computes the same: torch 2.14's CPU channels_last convolutions get some small
    windows wrong (Conv2d(1, 1, 3, stride=(1, 2), padding=1) on a 2x2 input is off by 0.65,
    found by tests/test_random_specs.py), and optimize must never change an output.
    """
    model = fold_batchnorm(model.eval())
    if not channels_last or not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return model
    if example is None:
        return _channels_last(model)
    fast = _channels_last(copy.deepcopy(model))
    with torch.inference_mode():
        expected, got = model(example), fast(example)
    scale = max(1.0, float(expected.abs().max()))
    return fast if float((got - expected).abs().max()) <= 1e-4 * scale else model


def _channels_last(model: nn.Module) -> nn.Module:
    """Weights in channels_last, and the input made channels_last on the way in, so no layer
    works in the slower NCHW layout."""
    model = model.to(memory_format=torch.channels_last)
    if isinstance(model, fx.GraphModule):
        x = next(n for n in model.graph.nodes if n.op == "placeholder")
        with model.graph.inserting_after(x):
            nhwc = model.graph.call_method("contiguous", (x,),
                                           {"memory_format": torch.channels_last})
        x.replace_all_uses_with(nhwc, delete_user_cb=lambda user: user is not nhwc)
        model.recompile()
    else:
        model.register_forward_pre_hook(_nhwc_input)
    return model


def _nhwc_input(module: nn.Module, args: tuple[torch.Tensor]) -> tuple[torch.Tensor]:
    return (args[0].contiguous(memory_format=torch.channels_last),)


def resolve_memory_format(memory_format, graph) -> bool:
    """Whether compile(memory_format=...) asks for channels_last (None/contiguous: no)."""
    if memory_format in (None, torch.contiguous_format) or \
            str(memory_format).removeprefix("torch.") in ("contiguous_format", "contiguous"):
        return False
    if memory_format not in (torch.channels_last, "channels_last"):
        raise UsageError(f"unknown memory format {memory_format!r}: use channels_last or "
                         "contiguous_format")
    if not windows_fit(graph):
        raise UsageError("channels_last is refused for this network: a layer's window is "
                         "larger than its input, where torch 2.14's CPU channels_last "
                         "convolution reads out of bounds (docs/compile.md, optimize)")
    return True


def resolve_device(device) -> torch.device:
    if device is None or device == "cpu":
        return torch.device("cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("CUDA was asked for, but torch sees no CUDA device")
    return device


def resolve_dtype(dtype) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise UsageError(f"unknown dtype {dtype!r}: use one of float32, bfloat16, float16, "
                         "float64")
    return DTYPES[name]


def class_name_for(spec_name: str) -> str:
    """`specs/resnet50.cnn` or `zoo:resnet50` -> `Resnet50`; anything odd -> an identifier."""
    stem = Path(spec_name.rpartition(":")[2]).stem if not spec_name.startswith("<") else "net"
    words = [w for w in lowering.safe_identifier(stem, "net").split("_") if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Net"
    return lowering.safe_identifier(name if name[0].isalpha() else "Net" + name, "Net")


def memory_limit() -> int:
    """The most bytes a model's weights may take: the machine's physical memory."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):  # no sysconf here: no limit known
        return 2**63


def check_memory(graph, dtype) -> None:
    """Refuse, with the figure, a model whose weights could not be allocated: torch would
    fail deep inside a layer's constructor, or the kernel would kill the process. The
    layers are made in float32 and then converted, so each tensor counts at least 4 bytes."""
    count = graph.totals["params"] + graph.totals.get("buffers", 0)
    size = count * max(4, torch.empty((), dtype=dtype).element_size())
    limit = memory_limit()
    if size > limit:
        raise UsageError(f"the model's {count:,} parameters and buffers need about "
                         f"{size / 2**30:,.1f} GiB ({size:,} bytes); this machine has "
                         f"{limit / 2**30:,.1f} GiB of memory")


def build_module(graph, spec_name: str, *, device=None, dtype=None, seed=None, logits=False,
                 optimize=False, info: dict | None = None, weights=None,
                 weights_name: str = "the weights", flat: bool = False,
                 memory_format=None) -> nn.Module:
    """The checked graph as a module on `device` in `dtype` (cnndsl.api.compile_text checks
    the spec); `info` (the spec and its variables) is kept on it as `model.cnndsl_info`.
    `weights` (a module or state_dict) are transferred by structure before optimizing.
    `memory_format="channels_last"`: weights and input in channels_last (optimize picks it
    by itself)."""
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    nhwc = resolve_memory_format(memory_format, graph)
    if seed is not None and not -2**63 <= seed < 2**64:
        raise UsageError(f"the seed must be a 64-bit integer, not {str(seed)[:30]}"
                         + ("..." if len(str(seed)) > 30 else ""))
    if device.type != "meta":
        check_memory(graph, dtype)
    # On `meta` the layers are made there directly: a structure-only module with no weight
    # memory, at once (vgg16: 0.02 s instead of 1.1 s). Elsewhere they are made on the CPU
    # and moved, so a seed gives the same weights on every device.
    where = torch.device("meta") if device.type == "meta" else contextlib.nullcontext()
    with where:
        if seed is None:
            model = to_module(graph, logits=logits, class_name=class_name_for(spec_name),
                              flat=flat)
        else:
            # A private RNG stream: the weights depend on the seed alone, the caller's RNG is
            # kept.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = to_module(graph, logits=logits, class_name=class_name_for(spec_name),
                                  flat=flat)
    if weights is not None:
        from .weights import transfer_weights

        if device.type == "meta":
            raise UsageError("weights cannot be loaded into a structure-only (meta) model")
        transfer_weights(weights, model, source_name=weights_name,
                         input_shape=graph.context.input.as_list())
    if optimize:
        example = None if device.type == "meta" else torch.randn(
            2, *graph.context.input.as_list(), generator=torch.Generator().manual_seed(0))
        model = optimize_for_inference(model, example,
                                       channels_last=windows_fit(graph))
    if nhwc and not optimize:
        model = _channels_last(model)
    model = model.to(device=device, dtype=dtype)
    model.cnndsl_info = {
        **(info or {}), "logits": bool(logits), "optimize": bool(optimize), "flat": bool(flat),
        "dtype": str(dtype).removeprefix("torch."),
        "input_shape": graph.context.input.as_list(),
        "params": graph.totals["params"],
        # cnndsl's static output shape: the ONNX export checks what it declares against it.
        "output_shape": graph.totals["output"].as_list(),
    }
    if isinstance(model, fx.GraphModule):
        # GraphModule re-creates these attributes on deepcopy (DDP, optimisers, EMA copies).
        model.meta.setdefault("_user_preserved_attributes", {})["cnndsl_info"] = \
            model.cnndsl_info
    return model
