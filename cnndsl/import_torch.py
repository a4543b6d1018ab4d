"""A PyTorch module read as an imported network: traced with torch.fx, each call turned into
the `Form` (torch.nn class and arguments) that cnndsl.import_graph finds a layer kind for."""
from __future__ import annotations

import inspect
import operator
import traceback
from pathlib import Path

from .import_graph import CnnImportError, Entry, Form, Network, build_network
from .shapes import Shape


def trace(model, source: str):
    """torch.fx's graph of `model` in eval mode; a model it cannot trace is a CnnImportError
    that says where the tracing stopped and why."""
    import torch.fx

    model.eval()
    try:
        return torch.fx.symbolic_trace(model)
    except Exception as exc:  # noqa: BLE001  (fx raises whatever the model's code raises)
        where = _user_frame(exc)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CnnImportError(
            f"torch.fx cannot trace {type(model).__name__}: {first}",
            f"{source}: {where}" if where else source,
            help="symbolic tracing runs forward() on placeholders: Python control flow on "
                 "tensor values (`if x.sum() > 0`), data-dependent shapes and calls outside "
                 "torch cannot be traced") from None


def _user_frame(exc: BaseException) -> str:
    """file:line of the deepest frame outside torch, where the model's code stopped."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "/torch/" not in f.filename.replace("\\", "/")]
    if not frames:
        return ""
    frame = frames[-1]
    return f"{Path(frame.filename).name}:{frame.lineno} (in {frame.name})"


def network(model, input_shape: Shape, source: str) -> Network:
    """The imported network of a torch module (traced in eval mode)."""
    import torch

    gm = trace(model, source)
    modules = dict(model.named_modules())  # the traced copy keeps the leaves only
    entries, placeholder, output = [], None, None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if placeholder is not None:
                raise CnnImportError("a network with more than one input has no .cnn form",
                                     f"{source}: {node.name}")
            placeholder = node
            continue
        if node.op == "output":
            output = node.args[0]
            if not isinstance(output, torch.fx.Node):
                raise CnnImportError("a network with more than one output has no .cnn form",
                                     source, help="trace a module that returns one tensor")
            continue
        if node.op == "get_attr" or _is_size(node):
            continue
        form, inputs = _form(node, modules, gm, source)
        owners = _owners(node, modules)
        path = node.target if node.op == "call_module" else \
            ".".join(filter(None, [owners[-1][0] if owners else "", node.name]))
        entries.append(Entry(node, form, tuple(inputs), path, owners))
    return build_network(entries, placeholder, input_shape, output, source)


def _is_size(node) -> bool:
    """`x.size(0)`, `x.shape`: numbers for a view, not layers."""
    return (node.op == "call_method" and node.target in ("size", "dim")) or (
        node.op == "call_function" and node.target is getattr)


def _owners(node, modules) -> tuple[tuple[str, str, bool], ...]:
    from torch import nn

    stack = node.meta.get("nn_module_stack") or {}
    owners = []
    for path, (_, cls) in stack.items():
        path = path.split("@")[0]
        module = modules.get(path)
        cls = type(module) if module is not None else cls
        plain = cls in (nn.Sequential, nn.ModuleList, nn.ModuleDict)
        owners.append((path, cls.__name__, plain))
    if node.op == "call_module" and owners and owners[-1][0] == node.target:
        owners.pop()  # the layer itself
    return tuple(owners)


def _tensor_args(node) -> list:
    import torch.fx

    found = []
    for arg in node.args:
        if isinstance(arg, torch.fx.Node):
            found.append(arg)
        elif isinstance(arg, (list, tuple)):
            found.extend(a for a in arg if isinstance(a, torch.fx.Node))
    return found


def module_form(module) -> Form:
    """A torch.nn module's class and its constructor arguments, read back from its
    attributes (a bias parameter or None is `bias=True/False`)."""
    import torch

    cls = type(module)
    kwargs, defaults = {}, {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name in ("self", "device", "dtype") or param.kind in (param.VAR_POSITIONAL,
                                                                   param.VAR_KEYWORD):
            continue
        if param.default is not param.empty:
            defaults[name] = param.default
        if not hasattr(module, name):
            continue
        value = getattr(module, name)
        if isinstance(value, torch.Tensor) or (value is None and
                                               isinstance(param.default, bool)):
            value = value is not None
        kwargs[name] = tuple(value) if isinstance(value, (list, torch.Size)) else value
    return Form(cls.__name__, kwargs, defaults)


def _functions():
    """Tensor functions and methods as the torch.nn module that computes the same."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    return {
        torch.relu: nn.ReLU, F.relu: nn.ReLU, F.relu6: nn.ReLU6, torch.sigmoid: nn.Sigmoid,
        F.sigmoid: nn.Sigmoid, torch.tanh: nn.Tanh, F.tanh: nn.Tanh, F.gelu: nn.GELU,
        F.silu: nn.SiLU, F.elu: nn.ELU, F.leaky_relu: nn.LeakyReLU, F.softmax: nn.Softmax,
        torch.softmax: nn.Softmax, F.dropout: nn.Dropout, F.max_pool2d: nn.MaxPool2d,
        F.avg_pool2d: nn.AvgPool2d, F.adaptive_avg_pool2d: nn.AdaptiveAvgPool2d,
        torch.flatten: nn.Flatten, F.local_response_norm: nn.LocalResponseNorm,
        "relu": nn.ReLU, "relu_": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
        "flatten": nn.Flatten, "softmax": nn.Softmax,
    }


_ADD = (operator.add, operator.iadd, "add", "add_", "__add__", "__iadd__")


def _form(node, modules, gm, source: str) -> tuple[Form, list]:
    import torch

    where = f"{source}: {node.target if node.op == 'call_module' else node.name}"
    if node.op == "call_module":
        module = modules.get(node.target) or gm.get_submodule(node.target)
        if type(module).__module__.split(".")[0] != "torch":
            raise CnnImportError(f"{type(module).__name__} is a leaf of the trace and has no "
                                 ".cnn form", where)
        return module_form(module), _tensor_args(node)
    target = node.target
    tensors = _tensor_args(node)
    if target in _ADD or target is torch.add:
        if len(tensors) != 2 or len(node.args) != 2 or node.kwargs:
            raise CnnImportError(f"{_name(target)} of a tensor and a number has no .cnn form",
                                 where)
        return Form("add"), tensors
    if target is torch.cat or target == "cat":
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        return Form("cat", {"dim": dim}), tensors
    if target in ("view", "reshape") or target is torch.reshape:
        shape = node.args[1:] if target in ("view", "reshape") else node.args[1]
        if len(shape) == 2 and shape[-1] == -1:
            return module_form(torch.nn.Flatten()), tensors[:1]
    function = _functions().get(target)
    if function is not None:
        return module_form(_as_module(function, target, node)), tensors[:1]
    raise CnnImportError(f"{_name(target)} has no .cnn form", where,
                         help="the layers a spec can write are listed in docs/language.md")


def _as_module(cls, target, node):
    """The module `cls` built with the arguments the function call gave (bound by name)."""
    import torch

    kwargs = dict(node.kwargs)
    if callable(target):
        try:
            bound = inspect.signature(target).bind(*node.args, **node.kwargs)
            kwargs = dict(bound.arguments)
        except (TypeError, ValueError):
            kwargs = dict(node.kwargs)
    elif len(node.args) > 1:  # x.flatten(1), x.softmax(1)
        names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
        kwargs.update(zip(names, node.args[1:]))
    accepted = inspect.signature(cls.__init__).parameters
    if "training" in kwargs and not kwargs.pop("training"):
        kwargs.pop("p", None)  # F.dropout(x, training=False) passes x through
    kwargs = {k: v for k, v in kwargs.items() if k in accepted and k != "inplace"}
    with torch.device("meta"):
        return cls(**kwargs)


def _name(target) -> str:
    if isinstance(target, str):
        return f"Tensor.{target}"
    module = getattr(target, "__module__", None) or "torch"
    return f"{module.replace('torch.nn.functional', 'F')}.{getattr(target, '__name__', target)}"
