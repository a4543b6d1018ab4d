"""`cnndsl import`: a PyTorch model or an ONNX file written as a folded .cnn spec."""
from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser(
        "import", help="write an existing model (torchvision:NAME, module:callable, .onnx, "
                       ".pt) as a .cnn spec with its repeated blocks folded",
        description="Trace a PyTorch model with torch.fx (or read an ONNX graph) and write it "
                    "as a spec: residual and concat structure, one def per family of blocks "
                    "that differ only in numbers, runs of equal blocks as `* N`. The spec is "
                    "checked to build the model's parameters before it is written.")
    p.add_argument("source", help="torchvision:NAME, package.module:callable, FILE.onnx, or "
                                  "a FILE.pt written by `cnndsl compile`")
    p.add_argument("-o", "--output", metavar="FILE", help="write the spec here (default: stdout)")
    p.add_argument("--input", metavar="HxWxC",
                   help="the input size to trace at (default 224x224x3; 299 for inception_v3)")
    p.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                   help="a keyword argument of the builder or callable (repeatable)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import parse_dims
    from ..importer import import_spec, parse_arg

    dims = parse_dims(args.input) if args.input else None
    if dims is not None and len(dims) != 3:
        from ..errors import UsageError

        raise UsageError("--input must be HxWxC for an imported model")
    imported = import_spec(args.source, input=dims,
                           args=dict(parse_arg(a) for a in args.arg))
    if args.output:
        from ..outputs import write_text

        write_text(args.output, imported.text, inputs=(args.source,))
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(imported.text)
    return 0
