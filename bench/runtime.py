"""Forward latency of cnndsl-compiled models against torchvision's, in one process, interleaved.

    python bench/runtime.py [--models resnet50,vgg16,mobilenet_v2] [--batches 8,1]
                            [--runs 15] [--warmup 3] [--threads 2]

Both models get the same (torchvision's random) weights; eval mode, no grad. Each round
times every variant once, in rotating order, so drifting machine load hits all alike; the
figure is the median over rounds (and the minimum, the least disturbed run, since a shared
machine's load comes in bursts). Speed ratio = torchvision's time / ours (> 1: ours faster).
On a CUDA machine the same models are also timed on the GPU: fp32, bf16 autocast, and
torch.compile of each.
"""
from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
from pathlib import Path

import torch
import torchvision

import cnndsl
from cnndsl.torch_backend import optimize_for_inference

SPECS = Path(__file__).resolve().parents[1] / "specs"


def build(name: str):
    """(torchvision's model, ours with its weights, ours optimised, ours --flat), eval mode:
    the class-per-def module must be as fast as the flat one (issue 12)."""
    options = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    theirs = getattr(torchvision.models, name)(weights=None, **options).eval()
    ours = cnndsl.compile(SPECS / f"{name}.cnn", logits=True, weights=theirs).eval()
    flat = cnndsl.compile(SPECS / f"{name}.cnn", logits=True, weights=theirs, flat=True).eval()
    return theirs, ours, optimize_for_inference(copy.deepcopy(ours)), flat


def time_rounds(variants: dict, x, runs: int, warmup: int, sync=lambda: None) -> dict:
    """Seconds per forward of each variant, one sample per round, over `runs` rounds."""
    names = list(variants)
    times = {name: [] for name in names}
    with torch.inference_mode():
        for _ in range(warmup):
            for name in names:
                variants[name](x)
        sync()
        for r in range(runs):
            for name in names[r % len(names):] + names[:r % len(names)]:
                start = time.perf_counter()
                variants[name](x)
                sync()
                times[name].append(time.perf_counter() - start)
    return times


def report(model: str, batch: int, device: str, times: dict, base: str) -> None:
    """One line: each variant's median (and minimum) and its speed ratio to `base`."""
    med = {name: statistics.median(t) for name, t in times.items()}
    low = {name: min(t) for name, t in times.items()}
    parts = [f"{name} {med[name] * 1e3:.1f} ms ({med[base] / med[name]:.2f}x; min "
             f"{low[name] * 1e3:.1f} ms, {low[base] / low[name]:.2f}x)" for name in times]
    print(f"{model} batch {batch} {device}: " + ", ".join(parts), flush=True)


def bench_cpu(name: str, batches, runs: int, warmup: int) -> None:
    theirs, ours, fast, flat = build(name)
    for batch in batches:
        x = torch.randn(batch, 3, 224, 224)
        times = time_rounds({"torchvision": theirs, "cnndsl": ours, "cnndsl --flat": flat,
                             "cnndsl --optimize": fast}, x, runs, warmup)
        report(name, batch, "cpu", times, "torchvision")


def bench_cuda(name: str, batches, runs: int, warmup: int) -> None:
    theirs, ours, fast, flat = (m.cuda() for m in build(name))
    variants = {"torchvision": theirs, "cnndsl": ours, "cnndsl --flat": flat,
                "cnndsl --optimize": fast,
                "torchvision compiled": torch.compile(theirs),
                "cnndsl compiled": torch.compile(ours)}

    def bf16(model):
        def run(x):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return model(x)
        return run

    variants.update({"torchvision bf16": bf16(theirs), "cnndsl bf16": bf16(ours)})
    for batch in batches:
        x = torch.randn(batch, 3, 224, 224, device="cuda")
        times = time_rounds(variants, x, runs, warmup + 2, torch.cuda.synchronize)
        report(name, batch, "cuda", times, "torchvision")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet50,vgg16,mobilenet_v2")
    p.add_argument("--batches", default="8,1")
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = args.models.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch {torch.__version__}, "
          f"torchvision {torchvision.__version__}, {platform.processor() or platform.machine()}"
          f", {args.threads} threads, median of {args.runs} interleaved runs", flush=True)
    for name in models:
        bench_cpu(name, batches, args.runs, args.warmup)
    if not torch.cuda.is_available():
        print("# cuda: not available, GPU figures skipped")
        return
    print(f"# cuda: {torch.cuda.get_device_name()}")
    for name in models:
        bench_cuda(name, batches, args.runs * 3, args.warmup)


if __name__ == "__main__":
    main()
