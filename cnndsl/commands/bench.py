"""`cnndsl bench`: the compiled model's latency on each runtime, checked against eager."""
from __future__ import annotations

import json
import sys

from ..errors import UsageError
from ._common import add_spec_args, defines_from_args

FORMATS = ("table", "markdown", "json")


def register(sub) -> None:
    from ..bench import CUDA_RUNTIMES, DEFAULT_RUNTIMES, RUNTIMES

    p = sub.add_parser(
        "bench", help="time the compiled model on torchvision, eager, optimize, torch.compile, "
                      "onnxruntime, ..., each checked against eager",
        description="Compile the spec once, build it on each runtime, check every runtime's "
                    "output against eager PyTorch (max relative difference) and report the "
                    "median latency (the runtimes timed in interleaved rounds), throughput "
                    "and speed-up over torchvision's same model (or eager) per batch size. A "
                    "runtime that cannot run here is listed as skipped, with the reason.")
    add_spec_args(p)
    p.add_argument("--batch", default="1", metavar="B[,B...]",
                   help="batch sizes, e.g. 1,8,32 (default 1)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, metavar="N", help="torch and onnxruntime threads")
    p.add_argument("--runtimes", metavar="NAMES",
                   help=f"comma-separated, from {', '.join(RUNTIMES)} "
                        f"(default {','.join(DEFAULT_RUNTIMES)}; with --device cuda "
                        f"{','.join(CUDA_RUNTIMES)}; with --train eager; eager always runs)")
    p.add_argument("--train", action="store_true",
                   help="time a training step (forward, cross-entropy, backward, SGD) "
                        "instead of inference; a zoo spec of a torchvision model adds a "
                        "`torchvision` row, the reference")
    p.add_argument("--ddp", metavar="N[,N...]",
                   help="time training with DistributedDataParallel (gloo, CPU) in N "
                        "processes each, e.g. 1,2: --batch images per process (the first "
                        "size), --threads torch threads per process (default 1)")
    p.add_argument("--runs", type=int, default=15, metavar="N",
                   help="timed calls per runtime and batch (default 15; the median is shown)")
    p.add_argument("--logits", action="store_true",
                   help="drop a trailing SOFTMAX (always, with --train)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import bench
    from ..api import compile

    batches = bench.parse_batches(args.batch)
    default = (bench.DEFAULT_TRAIN_RUNTIMES if args.train else
               bench.CUDA_RUNTIMES if args.device == "cuda" else bench.DEFAULT_RUNTIMES)
    runtimes = bench.parse_runtimes(args.runtimes or ",".join(default))
    for option in ("threads", "runs", "classes"):
        value = getattr(args, option)
        if value is not None and value <= 0:
            raise UsageError(f"--{option} must be positive")
    if args.ddp:
        return _ddp(args, batches)
    model = compile(args.spec, input=args.input, classes=args.classes, seed=0,
                    logits=args.logits or args.train, max_layers=args.max_layers,
                    **defines_from_args(args)).eval()
    tty = sys.stderr.isatty()

    def progress(text: str) -> None:  # one line kept up to date on a terminal
        print(f"\rbench: {text}\033[K" if tty else f"bench: {text}", end="" if tty else "\n",
              file=sys.stderr, flush=True)

    timer = bench.run_train_bench if args.train else bench.run_bench
    if args.train:
        bench.check_trainable(model)  # a usage error before any progress line
    results = timer(model, batches=batches, runtimes=runtimes, device=args.device,
                    threads=args.threads, runs=args.runs, progress=progress)
    if tty:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    _write(results, args.format)
    return 0


def _progress(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def _ddp(args, batches) -> int:
    """--ddp 1,2: training throughput with 1 and 2 DDP processes."""
    from .. import bench
    from ..api import compile

    worlds = bench.parse_batches(args.ddp)  # positive integers, comma-separated
    if args.device != "cpu":
        raise UsageError("--ddp runs on the CPU (gloo); GPU data parallelism is torchrun's "
                         "with the nccl backend (docs/compile.md)")
    options = dict(input=args.input, classes=args.classes, **defines_from_args(args))
    bench.check_trainable(compile(args.spec, seed=0, logits=True, device="meta", **options))
    results = bench.run_ddp_bench(args.spec, worlds=worlds, batch=batches[0],
                                  runs=args.runs, threads=args.threads or 1,
                                  progress=_progress, **options)
    _write(results, args.format)
    return 0


def _write(results, form: str) -> None:
    from .. import bench

    if form == "json":
        sys.stdout.write(json.dumps(bench.to_json(results), indent=2) + "\n")
    elif form == "markdown":
        sys.stdout.write(bench.format_markdown(results))
    else:
        sys.stdout.write(bench.format_table(results))
