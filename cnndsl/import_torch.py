"""A PyTorch module read as an imported network: traced with torch.fx, each call turned into
the `Form` (torch.nn class and arguments) that cnndsl.import_graph finds a layer kind for."""
from __future__ import annotations

import inspect
import operator
import traceback
from pathlib import Path

from .import_graph import CnnImportError, Entry, Form, Network, build_network, paused_gc
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
    with paused_gc():
        return _network(model, input_shape, source)


def _network(model, input_shape: Shape, source: str) -> Network:
    import torch

    gm = trace(model, source)
    modules = dict(model.named_modules())  # the traced copy keeps the leaves only
    entries, placeholder, output = [], None, None
    state = _Rewrites(gm, source, lambda node: _owners(node, modules))
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
            output = state.key(output)
            continue
        if node.op == "get_attr" or _is_size(node) or state.numeric(node):
            state.numbers.add(node)
            continue
        owners = _owners(node, modules)
        path = node.target if node.op == "call_module" else \
            ".".join(filter(None, [owners[-1][0] if owners else "", node.name]))
        found = state.rewrite(node, modules)
        if found is None:
            form, inputs = _form(node, modules, gm, source)
            inputs = [state.key(i) for i in inputs]
        elif found[0] == "alias":
            state.alias[node] = state.key(found[1])
            if found[1] in state.last and len(found) == 2:
                state.last.add(node)  # a no-op keeps the layout
            continue
        elif found[0] == "skip":
            continue
        else:
            form, inputs = found[1], found[2]
            inputs = [state.key(i) for i in inputs]
            if len(found) > 3:
                owners = state.owners.get(inputs[-1], owners)
        if any(a in state.last for a in _tensor_args(node)):
            state.last.add(node)  # an op on channels-last values gives channels-last
        state.owners[node] = owners
        entries.append(Entry(node, form, tuple(inputs), path, owners))
    return build_network(entries, placeholder, input_shape, output, source)


class _Rewrites:
    """What a trace spells in several calls, read as the one layer it is: a channel split
    (`x.chunk(2, dim=1)` and its items), a channel shuffle (view, transpose, view), layers
    applied channels-last between two permutes (ConvNeXt's LayerNorm and Linear), a
    concatenation of every earlier output (DenseNet's), a learned scale (a parameter times
    a tensor), a mean over the map (a global average pool) and stochastic depth
    (torchvision's function, DROPPATH)."""

    def __init__(self, gm, source: str = "", owners_of=lambda node: ()):
        self.gm = gm
        self.source = source
        self.owners_of = owners_of  # node -> its modules, outermost first
        self.alias: dict = {}  # node -> the node whose value it is (a view, a no-op)
        self.last: set = set()  # nodes holding their value channels-last (N, H, W, C)
        self.numbers: set = set()  # sizes and arithmetic on them; parameters
        self.chunks: dict = {}  # chunk node -> (input, parts)
        self.shuffles: dict = {}  # partial shuffle -> (input, groups, step)
        self.cats: dict = {}  # tuple of inputs -> the concatenation of them
        self.owners: dict = {}

    def key(self, node):
        while node in self.alias:
            node = self.alias[node]
        return node

    def numeric(self, node) -> bool:
        import torch.fx

        if node.op != "call_function" or node.target not in (
                operator.getitem, operator.floordiv, operator.mul, operator.add,
                operator.sub, operator.truediv):
            return False
        nodes = [a for a in node.args if isinstance(a, torch.fx.Node)]
        return bool(nodes) and all(a in self.numbers for a in nodes)

    def param(self, node):
        target = node.target
        value = self.gm
        for part in target.split("."):
            value = getattr(value, part)
        return value

    def stochastic_depth(self, node) -> Form:
        """torchvision's `stochastic_depth(x, p, mode, training)`: DROPPATH(p) where it drops
        whole samples (mode "row"); "batch" drops the whole batch at once, which no layer
        of the language does."""
        names = ("input", "p", "mode", "training")
        given = {**dict(zip(names, node.args)), **node.kwargs}
        if given.get("mode", "row") != "row":
            owners = self.owners_of(node)
            where = owners[-1] if owners else (node.name, "stochastic_depth")
            raise CnnImportError(
                f"{where[1]} (stochastic_depth, mode={given['mode']!r}) has no .cnn form",
                f"{self.source}: {where[0]}",
                help='DROPPATH drops each sample by itself (torchvision\'s mode "row")')
        return Form("StochasticDepth", {"p": float(given["p"])})

    def rewrite(self, node, modules):  # one case per spelling
        import torch
        import torch.fx
        import torch.nn.functional as F

        target = node.target
        tensors = [a for a in _tensor_args(node) if a not in self.numbers]
        first = tensors[0] if tensors else None  # the layout is the node's, not its key's
        method = node.op == "call_method"
        if method and target == "contiguous":
            if node.args[0] in self.shuffles:
                self.shuffles[node] = self.shuffles[node.args[0]]
                return ("skip",)
            return ("alias", node.args[0])
        if (method and target == "chunk") or target is torch.chunk:
            dim = node.kwargs.get("dim", node.args[2] if len(node.args) > 2 else 0)
            if dim == 1:
                self.chunks[node] = (node.args[0], node.args[1])
                return ("skip",)
        if target is operator.getitem and node.args[0] in self.chunks:
            source, parts = self.chunks[node.args[0]]
            index = node.args[1]
            return ("entry", Form("ChannelSplit", {"parts": parts, "index": index},
                                  {"part": index + 1}), [source])
        if method and target in ("view", "reshape"):
            shape = node.args[1:]
            if len(shape) == 5 and isinstance(shape[1], int):
                self.shuffles[node] = (node.args[0], shape[1], 0)
                return ("skip",)
            if len(shape) == 4 and node.args[0] in self.shuffles and \
                    self.shuffles[node.args[0]][2] == 1:
                source, groups, _ = self.shuffles[node.args[0]]
                return ("entry", Form("ChannelShuffle", {"groups": groups}), [source])
        if ((method and target == "transpose") or target is torch.transpose) and \
                node.args[0] in self.shuffles and tuple(node.args[1:3]) == (1, 2):
            source, groups, _ = self.shuffles[node.args[0]]
            self.shuffles[node] = (source, groups, 1)
            return ("skip",)
        if (method and target == "permute") or target is torch.permute:
            dims = node.args[1:] if method else node.args[1]
            if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
                dims = dims[0]
            if list(dims) == [0, 2, 3, 1] and first not in self.last:
                self.last.add(node)
                return ("alias", node.args[0], "channels-last")
            if list(dims) == [0, 3, 1, 2] and first in self.last:
                return ("alias", node.args[0], "channels-first")
        if first is not None and first in self.last:
            if node.op == "call_module":
                module = modules.get(target)
                if isinstance(module, torch.nn.LayerNorm):
                    form = module_form(module)
                    return ("entry", Form("LayerNorm2d", form.kwargs, form.defaults),
                            [tensors[0]])
                if isinstance(module, torch.nn.Linear):
                    with torch.device("meta"):
                        conv = torch.nn.Conv2d(module.in_features, module.out_features, 1,
                                               bias=module.bias is not None)
                    return ("entry", module_form(conv), [tensors[0]])
            if target is F.layer_norm:
                shape = node.kwargs.get("normalized_shape", node.args[1])
                eps = node.kwargs.get("eps", node.args[4] if len(node.args) > 4 else 1e-5)
                return ("entry", Form("LayerNorm2d", {"normalized_shape": tuple(shape),
                                                      "eps": eps},
                                      {"elementwise_affine": True, "bias": True}),
                        [tensors[0]])
        if target in (operator.mul, torch.mul, "mul", "__mul__") and len(node.args) == 2:
            attrs = [a for a in _tensor_args(node) if a.op == "get_attr"]
            if len(attrs) == 1 and len(tensors) == 1:
                value = self.param(attrs[0])
                if value.dim() == 3 and tuple(value.shape[1:]) == (1, 1):
                    flat = value.detach().flatten()
                    init = float(f"{float(flat[0]):.7g}") if bool((flat == flat[0]).all()) \
                        else 1e-6  # its initial value, at float32's precision
                    return ("entry", Form("LayerScale", {"channels": value.shape[0],
                                                          "init": init, "volume": True}),
                            [tensors[0]])
            if len(tensors) == 2 and not attrs:
                return ("entry", Form("mul"), tensors)
        if (method and target == "mean") or target is torch.mean:
            dims = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
            if isinstance(dims, (list, tuple)) and sorted(d % 4 for d in dims) == [2, 3]:
                with torch.device("meta"):
                    pool = torch.nn.AdaptiveAvgPool2d(1)
                return ("entry", module_form(pool), [tensors[0]])
        if getattr(target, "__name__", "") == "stochastic_depth":
            return ("entry", self.stochastic_depth(node), [tensors[0]])
        if target is torch.cat or target == "cat":
            items = node.args[0] if isinstance(node.args[0], (list, tuple)) else [node.args[0]]
            items = tuple(self.key(i) for i in items)
            dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
            if len(items) == 1:
                self.cats.setdefault(items, items[0])
                return ("alias", items[0])
            self.cats.setdefault(items, node)
            if items[:-1] in self.cats:  # DenseNet: cat(earlier, new)
                return ("entry", Form("cat", {"dim": dim}),
                        [self.cats[items[:-1]], items[-1]], "owner")
        return None


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
            if "args" in kwargs:  # F.max_pool2d(*args, **kwargs): the module's order
                names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
                kwargs = {**dict(zip(names, kwargs.pop("args")[1:])),
                          **(kwargs.pop("kwargs", None) or {})}
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
