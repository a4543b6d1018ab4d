"""Compile time: spec -> torch module for vgg16 and resnet152 against torchvision's constructors.

Both routes run in this process (torch already imported), interleaved, alternating which goes
first, and the medians are compared. Target: cnndsl / torchvision <= 1.1 (initialising the
weights should dominate, not our compiler). Building on the `meta` device (no weights, structure
only) is timed as well: `with torch.device("meta"): cnndsl.compile(spec, device="meta")`.

    python bench/compile_time.py [--runs 5] [--record]
"""
from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

from results import median, record

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET = 1.1
MODELS = ("vgg16", "resnet152")  # bundled spec name == torchvision builder name


def build_cnndsl(name: str, device: str | None):
    import cnndsl

    return cnndsl.compile(f"zoo:{name}", device=device)


def build_torchvision(name: str, device: str | None):
    import torchvision

    return getattr(torchvision.models, name)()


def timed(build, name: str, meta: bool) -> float:
    import contextlib

    import torch

    where = torch.device("meta") if meta else contextlib.nullcontext()
    gc.collect()
    start = time.perf_counter()
    with where:
        model = build(name, "meta" if meta else None)
    elapsed = time.perf_counter() - start
    assert next(model.parameters()).is_meta == meta
    del model
    return elapsed


def compare(name: str, meta: bool, runs: int) -> tuple[float, float]:
    routes = {"cnndsl": build_cnndsl, "torchvision": build_torchvision}
    times: dict[str, list[float]] = {route: [] for route in routes}
    order = list(routes)
    timed(build_cnndsl, name, meta), timed(build_torchvision, name, meta)  # warm-up
    for _ in range(runs):
        for route in order:
            times[route].append(timed(routes[route], name, meta))
        order.reverse()  # alternate which goes first
    return median(times["cnndsl"]), median(times["torchvision"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--record", action="store_true", help="append the result to RESULTS.md")
    args = ap.parse_args()
    import cnndsl

    lines = []
    for name in MODELS:
        ours, theirs = compare(name, meta=False, runs=args.runs)
        verdict = "ok" if ours / theirs <= TARGET else "ABOVE TARGET"
        lines.append(f"compile  {name:<10} weights  cnndsl {ours:7.3f} s  torchvision "
                     f"{theirs:7.3f} s  ratio {ours / theirs:5.2f}  (target <= {TARGET:g}: "
                     f"{verdict})")
    for name in MODELS:
        ours, theirs = compare(name, meta=True, runs=args.runs)
        lines.append(f"compile  {name:<10} meta     cnndsl {ours:7.3f} s  torchvision "
                     f"{theirs:7.3f} s  ratio {ours / theirs:5.2f}  (structure only, no target)")
    for name in MODELS:
        start = time.perf_counter()
        cnndsl.build_graph(f"zoo:{name}")
        lines.append(f"compile  {name:<10} of which parse + check {time.perf_counter() - start:.3f}"
                     " s (one run)")
    print("\n".join(lines))
    if args.record:
        record("Front end", "bench/compile_time.py: spec -> module vs torchvision (in-process "
               "medians)", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
