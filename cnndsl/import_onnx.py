"""An ONNX file read as an imported network (with the onnx package, no torch): each node as
the torch.nn form it was exported from, for cnndsl.import_graph to find its layer kind."""
from __future__ import annotations

from pathlib import Path

from .errors import UsageError
from .import_graph import CnnImportError, Entry, Form, Network, build_network
from .shapes import Shape

# ONNX nodes that only pass their input on (eval-mode dropout is exported as Identity).
PASS_THROUGH = frozenset({"Identity"})


def load(path: Path):
    import onnx

    try:
        return onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001  (protobuf's decode errors have no common base)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"{path} is not an ONNX model onnx can read: {first}") from None


def initializers(model) -> dict:
    """name -> numpy array, for the initializers and Constant nodes."""
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]  # a shared weight, named again
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def network(path: Path, source: str, input=None) -> Network:
    model = load(path)
    graph = model.graph
    consts = initializers(model)
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise CnnImportError("a network with more than one input or output has no .cnn form",
                             source)
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    if input is not None:
        shape = Shape.volume(*input)
    elif len(dims) == 4 and all(dims[1:]):
        shape = Shape.volume(dims[2], dims[3], dims[1])
    else:
        raise UsageError(f"{source}: the input's size is not fixed; give it with --input HxWxC")
    alias: dict[str, str] = {}
    producers: dict = {}  # output name -> the node that computes it
    entries = []
    for node in graph.node:
        if node.op_type == "Constant" or node.output[0] in consts:
            continue
        data = [alias.get(name, name) for name in node.input if name and name not in consts]
        if node.op_type in PASS_THROUGH or (node.op_type == "Dropout" and len(data) == 1
                                            and _is_eval_dropout(node, consts)):
            alias[node.output[0]] = data[0]
            continue
        path_, owners = _scope(node.name)
        if node.op_type == "Mul" and len(data) == 2 and _is_silu(data, producers):
            form = Form("SiLU")  # x * sigmoid(x), as torch.onnx writes nn.SiLU
            data = [d for d in data if producers[d].op_type != "Sigmoid" or
                    producers[d].input[0] not in data][:1]
        else:
            form = _form(node, consts, f"{source}: {node.name or node.op_type}")
        producers[node.output[0]] = node
        entries.append(Entry(node.output[0], form, tuple(data), path_ or node.op_type, owners))
    output = alias.get(graph.output[0].name, graph.output[0].name)
    return build_network(entries, inputs[0].name, shape, output, source)


def _is_silu(data: list, producers: dict) -> bool:
    a, b = data
    return any(producers.get(y) is not None and producers[y].op_type == "Sigmoid" and
               producers[y].input[0] == x for x, y in ((a, b), (b, a)))


def _is_eval_dropout(node, consts) -> bool:
    return len(node.input) < 3 or not bool(consts.get(node.input[2], False))


def _scope(name: str) -> tuple[str, tuple]:
    """torch.onnx's node names carry the module path: `/layer1/layer1.0/conv1/Conv` is the
    layer `layer1.0.conv1`, inside the modules `layer1` and `layer1.0` (classes unknown)."""
    parts = [p for p in name.split("/") if p]
    if len(parts) < 2:
        return "", ()
    path = parts[-2]
    owners = tuple((p, "", False) for p in parts[:-2])
    return path, owners


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pads(a: dict, where: str) -> tuple[int, int]:
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or pads[:2] != pads[2:]:
        raise CnnImportError("asymmetric or automatic padding has no .cnn form", where)
    return tuple(pads[:2])


def _form(node, consts: dict, where: str) -> Form:
    a, op = _attrs(node), node.op_type
    if op == "Conv":
        w = consts[node.input[1]].shape
        groups = a.get("group", 1)
        return Form("Conv2d", {
            "in_channels": w[1] * groups, "out_channels": w[0], "kernel_size": tuple(w[2:]),
            "stride": tuple(a.get("strides", (1, 1))), "padding": _pads(a, where),
            "dilation": tuple(a.get("dilations", (1, 1))), "groups": groups,
            "bias": len(node.input) > 2 and bool(node.input[2])}, {"padding_mode": "zeros"})
    if op == "BatchNormalization":
        return Form("BatchNorm2d", {
            "num_features": consts[node.input[1]].shape[0], "eps": a.get("epsilon", 1e-5),
            "momentum": round(1 - a.get("momentum", 0.9), 9)},
            {"affine": True, "track_running_stats": True})
    if op in ("MaxPool", "AveragePool"):
        kwargs = {"kernel_size": tuple(a["kernel_shape"]),
                      "stride": tuple(a.get("strides", (1, 1))), "padding": _pads(a, where),
                      "ceil_mode": bool(a.get("ceil_mode", 0))}
        if op == "MaxPool":
            return Form("MaxPool2d", dict(kwargs, dilation=tuple(a.get("dilations", (1, 1)))),
                        {"return_indices": False, "dilation": 1})
        # without padding, counting the padding changes nothing: torch's default then
        include = bool(a.get("count_include_pad", 0)) or not any(kwargs["padding"])
        return Form("AvgPool2d", dict(kwargs, count_include_pad=include),
                    {"divisor_override": None})
    if op == "GlobalAveragePool":
        return Form("AdaptiveAvgPool2d", {"output_size": (1, 1)})
    if op == "Gemm" and a.get("transB", 0) == 1 and a.get("alpha", 1.0) == 1.0 and \
            a.get("beta", 1.0) == 1.0 and not a.get("transA", 0):
        w = consts[node.input[1]].shape
        return Form("Linear", {"in_features": w[1], "out_features": w[0],
                                   "bias": len(node.input) > 2 and bool(node.input[2])})
    if op == "Flatten" and a.get("axis", 1) == 1:
        return Form("Flatten", {}, {"start_dim": 1, "end_dim": -1})
    if op == "Reshape" and node.input[1] in consts and len(consts[node.input[1]]) == 2 \
            and consts[node.input[1]][-1] == -1:
        return Form("Flatten", {}, {"start_dim": 1, "end_dim": -1})
    if op == "Clip":
        low = consts.get(node.input[1]) if len(node.input) > 1 else a.get("min")
        high = consts.get(node.input[2]) if len(node.input) > 2 else a.get("max")
        if low is not None and high is not None and float(low) == 0 and float(high) == 6:
            return Form("ReLU6")
    # ONNX and torch spell some ops as cnndsl's kinds are named; compared in lower case, as
    # no module outside the registry names a kind (tests/test_architecture.py)
    if op.lower() == "lrn":
        return Form("LocalResponseNorm", {"size": a["size"], "alpha": a.get("alpha", 1e-4),
                                          "beta": a.get("beta", 0.75), "k": a.get("bias", 1.0)})
    if op == "Softmax" and a.get("axis", -1) in (1, -1):
        return Form("Softmax", {"dim": 1})
    if op == "HardSigmoid" and abs(a.get("alpha", 0.2) - 1 / 6) < 1e-6 and \
            a.get("beta", 0.5) == 0.5:
        return Form("Hardsigmoid")  # torch's: relu6(x + 3) / 6
    simple = {"Relu": "ReLU", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Add": "add",
              "Mul": "mul", "HardSwish": "Hardswish"}
    if op in simple:
        return Form(simple[op])
    if op == "Concat":
        return Form("cat", {"dim": a.get("axis")})
    if op == "LeakyRelu":
        return Form("LeakyReLU", {"negative_slope": a.get("alpha", 0.01)})
    if op == "Elu":
        return Form(op.upper(), {"alpha": a.get("alpha", 1.0)})
    raise CnnImportError(f"ONNX {op} has no .cnn form", where,
                         help="the layers a spec can write are listed in docs/language.md")


def state_dict_order(path: Path) -> list[tuple[str, object]]:
    """The ONNX file's weights as (name, array) in torch's order per layer (Conv: weight,
    bias; BatchNormalization: scale, bias, mean, variance; Gemm: weight, bias), in node
    order: what cnndsl.transfer_weights pairs by structure."""
    model = load(path)
    consts = initializers(model)
    found = []
    for k, node in enumerate(model.graph.node):
        if node.op_type in ("Conv", "Gemm", "BatchNormalization"):
            for j, name in enumerate(node.input[1:]):
                if name in consts:
                    found.append((f"n{k}.t{j}", consts[name]))
    return found
