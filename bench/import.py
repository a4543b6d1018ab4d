"""Importing ResNet-152 (`cnndsl import torchvision:resnet152`) against torchvision's own
constructor, side by side; the target is the constructor plus 2 seconds (issue 14).

    python bench/import.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", default="resnet152")
    args = parser.parse_args()
    import torchvision

    from cnndsl.importer import import_spec

    import_spec("torchvision:resnet18")  # warm: torch, torchvision, the parser tables
    build = best(lambda: torchvision.models.get_model(args.model, weights=None), args.repeat)
    full = best(lambda: import_spec(f"torchvision:{args.model}"), args.repeat)
    print(f"torchvision constructor       {build:6.2f} s")
    print(f"cnndsl import (builds it too) {full:6.2f} s")
    print(f"import beyond the constructor {full - build:6.2f} s (target: at most 2 s)")
    return 0 if full <= build + 2 else 1


if __name__ == "__main__":
    sys.exit(main())
