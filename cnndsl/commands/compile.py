"""`cnndsl compile`: a spec as PyTorch source (.py), weights (.pt), ONNX or TorchScript."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UsageError
from ._common import add_spec_args, defines_from_args


def register(sub) -> None:
    p = sub.add_parser(
        "compile", help="compile a spec to PyTorch: .py source, .pt, .onnx or .ts",
        description="Compile a spec to a standalone PyTorch source file (.py, also printed "
                    "when -o is left out), a state_dict with its spec (.pt, for cnndsl.load), "
                    "an ONNX model checked with onnxruntime (.onnx) or TorchScript (.ts).")
    add_spec_args(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="model.py | model.pt | model.onnx | model.ts (default: source to stdout)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where to build the model (auto: cuda when available)")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16", "float64"),
                   default="float32")
    p.add_argument("--seed", type=int, metavar="N", help="seed the weights (reproducible)")
    p.add_argument("--logits", action="store_true",
                   help="drop a trailing SOFTMAX: the model returns logits (CrossEntropyLoss)")
    p.add_argument("--optimize", action="store_true",
                   help="for inference: fold BatchNorm into convolutions, channels_last, eval")
    p.add_argument("--class-name", metavar="NAME", help="the generated class's name")
    p.add_argument("--flat", action="store_true",
                   help="one flat class with a submodule per layer, instead of a class per def")
    p.add_argument("--weights", metavar="FILE",
                   help="a state_dict file (torchvision's pretrained .pth, say) copied onto "
                        "the model by structure; with -o model.py it is written beside it as "
                        "model.pth")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import read_spec

    for option in ("classes", "max_layers", "max_bytes"):
        value = getattr(args, option, None)
        if value is not None and value <= 0:
            raise UsageError(f"--{option.replace('_', '-')} must be positive")
    out, suffix = output_path(args.output, inputs=(args.spec, args.weights))
    text, name = read_spec(args.spec, getattr(args, "max_bytes", None))
    if suffix == ".py":
        return write_source(args, text, name, out)
    return write_model(args, text, name, out, suffix)


def output_path(output: str | None, inputs=()) -> tuple[Path | None, str]:
    """-o FILE as (path, suffix), refused before any work if it cannot be written (a missing
    folder, a directory, a FIFO, or one of `inputs`: the spec or weights being read)."""
    out = Path(output) if output else None
    suffix = out.suffix.lower() if out else ".py"
    if suffix not in (".py", ".pt", ".onnx", ".ts"):
        raise UsageError(f"-o {output}: the suffix must be .py, .pt, .onnx or .ts")
    if out is not None and not out.parent.is_dir():
        raise UsageError(f"-o {output}: no such directory: {out.parent}")
    if out is not None:
        from ..outputs import resolve

        resolve(out, inputs)
    return out, suffix


def write_source(args, text: str, name: str, out: Path | None) -> int:
    from ..api import check_text, make_options
    from ..codegen import to_source
    from ..torch_backend import class_name_for

    if args.optimize:
        raise UsageError("--optimize folds weights; it applies to .pt, .onnx and .ts outputs")
    if args.weights and out is None:
        raise UsageError("--weights with source output needs -o model.py (the weights go "
                         "beside it, in model.pth)")
    graph = check_text(text, name, make_options(defines_from_args(args), input=args.input,
                                                classes=args.classes,
                                                max_layers=args.max_layers))
    source = to_source(graph, logits=args.logits,
                       class_name=args.class_name or class_name_for(name), flat=args.flat)
    if out is None:
        sys.stdout.write(source)
        return 0
    from ..artifacts import write_text

    if args.weights:  # the transferred state_dict first: a refused file writes nothing
        write_state_dict(args, text, name, out.with_suffix(".pth"))
    write_text(out, source, inputs=(args.spec, args.weights))
    print(f"{out}: {graph.totals['params']:,} parameters, PyTorch source")
    return 0


def write_state_dict(args, text: str, name: str, path: Path) -> None:
    """--weights for source output: the state_dict the generated class loads, transferred by
    structure (the generated class and the in-memory module name their layers alike)."""
    from ..api import compile_text
    from ..artifacts import save_state_dict
    from ..outputs import resolve

    resolve(path, (args.spec, args.weights))  # before the work: the weights file itself?
    model = compile_text(text, name, input=args.input, classes=args.classes, device="cpu",
                         logits=args.logits, max_layers=args.max_layers, weights=args.weights,
                         flat=args.flat, **defines_from_args(args))
    save_state_dict(model.state_dict(), path, inputs=(args.spec, args.weights))
    print(f"{path}: the weights of {args.weights}, by structure "
          "(model.load_state_dict(torch.load(...)))")


def write_model(args, text: str, name: str, out: Path, suffix: str) -> int:
    return save_model(out, text, name, input=args.input, classes=args.classes,
                      device=args.device, dtype=args.dtype, seed=args.seed,
                      logits=args.logits, optimize=args.optimize, max_layers=args.max_layers,
                      weights=args.weights, flat=args.flat, **defines_from_args(args))


def save_model(out: Path, text: str, name: str, **options) -> int:
    """Compile spec text (cnndsl.api.compile_text's options) and save it as .pt, .onnx or .ts
    (sweep --pick saves its row here too)."""
    from .. import artifacts
    from ..api import compile_text

    model = compile_text(text, name, **options)
    suffix = out.suffix.lower()
    result = artifacts.save_onnx(model, out) if suffix == ".onnx" else \
        artifacts.save(model, out)
    extra = f", onnxruntime agrees to {result:.1g}" if suffix == ".onnx" else ""
    print(f"{out}: {model.cnndsl_info['params']:,} parameters, {suffix[1:]}{extra}")
    return 0
