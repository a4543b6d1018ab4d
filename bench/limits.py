"""How fast, and in how little memory, cnndsl refuses hostile specs (issue: limits).

Each case runs `python -m cnndsl check` in a fresh process; we report the median wall time of
several runs and the peak resident memory of the child (os.wait4's ru_maxrss), next to a
trivial valid spec as the baseline (interpreter start-up and imports dominate both).
Targets: every refusal under 1 s and under 200 MB.

    python bench/limits.py [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "baseline (valid LeNet-5)": "input 32x32x1\nCONV(6,5)-RELU-AVGPOOL(2)-CONV(16,5)-RELU-AVGPOOL(2)"
                                "-FC(120)-RELU-FC(84)-RELU-FC(10)-SOFTMAX\n",
    "CONV*1000000000": "input 8x8x3\nCONV * 1000000000\n",
    "((CONV*1000)*1000)*1000": "input 8x8x3\n((CONV * 1000) * 1000) * 1000\n",
    "100,000-deep nesting": "input 8x8x3\n" + "(" * 100_000 + "CONV" + ")" * 100_000 + "\n",
    "5000-digit integer": "input 8x8x3\nCONV(" + "9" * 5000 + ")\n",
    "recursive def": "input 8x8x3\ndef block(n) = CONV - block(n)\nblock(3)\n",
    # nesting (issue 17, F9): each is a located limit error, not a RecursionError
    "4,000,000 unary -": "input 8x8x3\nCONV(" + "-" * 4_000_000 + "4, 1)\n",
    "4,000,000 ?": "input 8x8x3\nRELU" + "?" * 4_000_000 + "\n",
    "401 nested defs": "input 8x8x3\ndef b0(c) = CONV(c, 1)\n" + "".join(
        f"def b{i}(c) = b{i - 1}(c)\n" for i in range(1, 401)) + "b400(4)\n",
    # past 4,000 levels in all at the 21st (lark parses about 100,000 brackets a second, so
    # 400 such defs would time the parser, not the limit)
    "25 defs x 198 brackets": "input 8x8x3\ndef b0 = RELU\n" + "".join(
        f"def b{i} = " + "(" * 198 + f"b{i - 1}" + ")" * 198 + "\n" for i in range(1, 25))
        + "b24\n",
    "50 MB spec file": None,  # written to disk below
}


def run_once(path: Path) -> tuple[float, int, int]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "cnndsl", "check", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    return elapsed, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, text in CASES.items():
            path = Path(tmp) / f"case{len(paths)}.cnn"
            if text is None:
                # In chunks: the child's ru_maxrss counts this process's pages at fork time,
                # so this process must stay small for the figure to be the child's own.
                with path.open("w") as f:
                    f.write("input 8x8x3\n")
                    for _ in range(70):
                        f.write("RELU - " * 100_000)
                    f.write("RELU\n")
            else:
                path.write_text(text)
            paths[name] = path
        results = {name: [] for name in paths}
        for _ in range(args.runs):  # interleaved, so a busy moment hits every case alike
            for name, path in paths.items():
                results[name].append(run_once(path))
    print(f"{'case':<28} {'exit':>4} {'median s':>9} {'peak MB':>8}  verdict")
    for name, runs in results.items():
        seconds = statistics.median(r[0] for r in runs)
        peak = max(r[1] for r in runs) / 1e6
        code = runs[0][2]
        ok = seconds < 1 and peak < 200
        print(f"{name:<28} {code:>4} {seconds:>9.3f} {peak:>8.1f}  {'ok' if ok else 'MISS'}")


if __name__ == "__main__":
    main()
