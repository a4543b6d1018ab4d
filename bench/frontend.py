"""Front-end latency: a fresh `cnndsl summary zoo:resnet152` against torchvision + torchinfo.

The usual route to the same table builds torchvision's resnet152 (importing torch, allocating
and initialising 60M weights) and runs torchinfo.summary on a 1x3x224x224 input. Both run as
fresh processes, interleaved, and the medians are compared. Target: cnndsl >= 30x faster.
A bare interpreter start (`python -c pass`) is timed alongside, as the floor of both.

    python bench/frontend.py [--runs 7] [--record]
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from results import interleaved, median, record

TARGET = 30.0
USUAL = ("import torch, torchvision, torchinfo\n"
         "model = torchvision.models.resnet152()\n"
         "print(torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0))\n")


def cnndsl_command() -> list[str]:
    """The console script of the interpreter running this benchmark (not a pyenv shim)."""
    beside = Path(sys.executable).with_name("cnndsl")
    exe = str(beside) if beside.exists() else shutil.which("cnndsl")
    return ([exe] if exe else [sys.executable, "-m", "cnndsl"]) + ["summary", "zoo:resnet152"]


def compile_bytecode() -> str:
    """Make sure cnndsl's modules have bytecode, as torch's do (pip compiles at install).

    An editable install leaves that to the first import, which writes nothing where
    PYTHONDONTWRITEBYTECODE is set: each run would compile 30 modules from source.
    """
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("cnndsl")
    folder = Path(spec.origin).parent
    ok = compileall.compile_dir(str(folder), quiet=1)
    return f"bytecode of {folder} {'up to date' if ok else 'NOT compiled'}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="interleaved rounds (default 7)")
    ap.add_argument("--record", action="store_true", help="append the result to RESULTS.md")
    args = ap.parse_args()
    bytecode = compile_bytecode()
    ours = "cnndsl summary zoo:resnet152"
    usual = "torchvision resnet152 + torchinfo.summary"
    start = "python -c pass (interpreter start)"
    commands = {ours: cnndsl_command(), usual: [sys.executable, "-c", USUAL],
                start: [sys.executable, "-c", "pass"]}
    interleaved(commands, 1)  # warm the file cache; not counted
    times = {name: median(t) for name, t in interleaved(commands, args.runs).items()}
    ratio = times[usual] / times[ours]
    verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
    lines = [f"frontend  {name:<45} median {t:7.3f} s  (n={args.runs})"
             for name, t in times.items()]
    lines.append(f"frontend  ratio {ratio:.1f}x  (target >= {TARGET:g}x: {verdict})")
    print("\n".join(lines))
    if args.record:
        record("Front end", "bench/frontend.py: cnndsl summary vs torchvision + torchinfo",
               lines + [f"(fresh processes, interleaved rounds, medians; {bytecode})"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
