"""`cnndsl import` timed (issue 14, Speed):

1. ResNet-152 (`cnndsl import torchvision:resnet152`, which builds the model) against
   torchvision's own constructor, side by side, run after run; the target is the
   constructor plus 2 seconds.
2. Deep traced models: a plain stack of conv-BN-ReLU blocks and a residual stack, at a few
   depths up to 5,000 layers (built here, not timed; the import is timed from the module:
   trace, kinds, folding, the check); the target is under 10 s at 5,000 layers, and the
   time per layer should not grow faster than the layer count (folding at worst quadratic).

    python bench/import.py [--repeat 3] [--depths 500,1000,2000,5000]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def plain_stack(blocks: int, width: int = 8):
    """blocks x (Conv2d 3x3 - BatchNorm2d - ReLU): 3 layers a block."""
    from torch import nn

    layers = [nn.Conv2d(3, width, 3, padding=1)]
    for _ in range(blocks):
        layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                   nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


def residual_stack(blocks: int, width: int = 8):
    """blocks x residual(conv - BN - ReLU - conv - BN) - ReLU: 7 layers a block with the add."""
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(width), nn.ReLU(),
                                      nn.Conv2d(width, width, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(width))
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.body(x) + x)

    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), *[Block() for _ in range(blocks)],
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


def import_module(model) -> tuple[int, int]:
    """(layers imported, lines written) for a module, as `cnndsl import` does it."""
    from cnndsl.import_torch import network
    from cnndsl.importer import write_spec
    from cnndsl.shapes import Shape

    net = network(model, Shape.volume(16, 16, 3), "bench")
    text = write_spec(net, "bench").text
    return len(net.ops) - 1, len(text.splitlines())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", default="resnet152")
    parser.add_argument("--depths", default="500,1000,2000,5000",
                        help="layer counts of the deep stacks (about)")
    args = parser.parse_args()
    import torchvision

    from cnndsl.importer import import_spec

    import_spec("torchvision:resnet18")  # warm: torch, torchvision, the parser tables
    build, full = [], []
    for _ in range(args.repeat):  # side by side: one constructor, one import, ...
        build.append(timed(lambda: torchvision.models.get_model(args.model, weights=None)))
        full.append(timed(lambda: import_spec(f"torchvision:{args.model}")))
    b, f = statistics.median(build), statistics.median(full)
    print(f"{args.model}, medians of {args.repeat} runs side by side")
    print(f"  torchvision constructor       {b:6.2f} s  ({', '.join(f'{t:.2f}' for t in build)})")
    print(f"  cnndsl import (builds it too) {f:6.2f} s  ({', '.join(f'{t:.2f}' for t in full)})")
    print(f"  import beyond the constructor {f - b:6.2f} s (target: at most 2 s)")
    ok = f <= b + 2
    print("deep traced models (import from the module: trace, kinds, folding, check)")
    print(f"  {'model':<16} {'layers':>7} {'lines':>6} {'seconds':>8} {'ms/layer':>9}")
    for name, build_fn, per_block in (("conv-BN-ReLU", plain_stack, 3),
                                      ("residual", residual_stack, 7)):
        for depth in (int(d) for d in args.depths.split(",")):
            model = build_fn(max(1, depth // per_block))
            times, found = [], None
            for _ in range(args.repeat if depth <= 2000 else 1):
                start = time.perf_counter()
                found = import_module(model)
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            layers, lines = found
            print(f"  {name:<16} {layers:>7} {lines:>6} {seconds:>8.2f} "
                  f"{1000 * seconds / layers:>9.2f}")
            if layers >= 5000 and seconds >= 10:
                ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
