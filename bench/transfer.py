"""transfer_weights from torchvision's module onto the zoo spec: the pairing alone (trace both
with torch.fx, colour and match the data flows, load; verify=False), the whole call (plus the
outputs compared on one random input), and a state_dict paired in creation order, each the
best of --repeat runs.

    python bench/transfer.py [--repeat 3] [--models resnet152,efficientnet_b7,densenet201]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def best(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", default="resnet152,efficientnet_b7,densenet201")
    args = parser.parse_args()
    import torchvision

    import cnndsl

    print(f"load average {os.getloadavg()[0]:.1f}")
    print("| model | modules | pairing (trace, match, load) | with the outputs compared | "
          "state_dict, creation order | pairing used |")
    print("|---|---|---|---|---|---|")
    for name in args.models.split(","):
        theirs = torchvision.models.get_model(name, weights=None)
        ours = cnndsl.compile(f"zoo:{name}", logits=True, seed=0)
        pair, report = best(lambda a=theirs, b=ours: cnndsl.transfer_weights(a, b, verify=False),
                            args.repeat)
        full, report = best(lambda a=theirs, b=ours: cnndsl.transfer_weights(a, b),
                            args.repeat)
        state = theirs.state_dict()
        order, _ = best(lambda a=state, b=ours: cnndsl.transfer_weights(a, b), args.repeat)
        print(f"| {name} | {len(report.transfers)} | {pair:.2f} s | {full:.2f} s | "
              f"{order:.2f} s | {report.pairing}; {report.check} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
