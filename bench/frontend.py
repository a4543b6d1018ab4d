"""Front-end latency: a fresh `cnndsl summary zoo:resnet152` against torchvision + torchinfo.

The usual route to the same table builds torchvision's resnet152 (importing torch, allocating
and initialising 60M weights) and runs torchinfo.summary on a 1x3x224x224 input. Both run as
fresh processes, interleaved, and the medians are compared. Target: cnndsl >= 15x faster.

    python bench/frontend.py [--runs 7] [--record]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

from results import interleaved, median, record

TARGET = 15.0
USUAL = ("import torch, torchvision, torchinfo\n"
         "model = torchvision.models.resnet152()\n"
         "print(torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0))\n")


def cnndsl_command() -> tuple[list[str], str]:
    """The installed `cnndsl` entry point, and `summary` if it exists yet, else `check`."""
    exe = shutil.which("cnndsl")
    base = [exe] if exe else [sys.executable, "-m", "cnndsl"]
    probe = subprocess.run(base + ["summary", "--help"], capture_output=True)
    sub = "summary" if probe.returncode == 0 else "check"
    return base + [sub, "zoo:resnet152"], sub


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="interleaved rounds (default 7)")
    ap.add_argument("--record", action="store_true", help="append the result to RESULTS.md")
    args = ap.parse_args()
    ours, sub = cnndsl_command()
    commands = {f"cnndsl {sub} zoo:resnet152": ours,
                "torchvision resnet152 + torchinfo.summary": [sys.executable, "-c", USUAL]}
    interleaved(commands, 1)  # warm the file cache; not counted
    times = interleaved(commands, args.runs)
    (name_a, t_a), (name_b, t_b) = [(n, median(t)) for n, t in times.items()]
    ratio = t_b / t_a
    verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
    lines = [f"frontend  {name_a:<45} median {t_a:7.3f} s  (n={args.runs})",
             f"frontend  {name_b:<45} median {t_b:7.3f} s  (n={args.runs})",
             f"frontend  ratio {ratio:.1f}x  (target >= {TARGET:g}x: {verdict})"]
    if sub != "summary":
        lines.append("frontend  note: `cnndsl summary` did not exist; timed `cnndsl check`")
    print("\n".join(lines))
    if args.record:
        record("Front end", "bench/frontend.py: cnndsl summary vs torchvision + torchinfo",
               lines + ["(fresh processes, interleaved rounds, medians)"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
