"""How fast, and in how little memory, cnndsl refuses hostile specs (issue: limits).

Each case runs `python -m cnndsl check` (or the command it names) in a fresh process; we
report the median wall time of
several runs, the median CPU time of the child (user + system, from os.wait4: on a shared,
loaded machine it moves far less than the wall time) and its peak resident memory
(ru_maxrss), next to a trivial valid spec as the baseline (interpreter start-up and imports
dominate both).
Targets: every refusal under 1 s and under 200 MB (issue 17's cases: 1 s and 100 MB).
With --baseline DIR, each case also runs with the cnndsl of another source tree (say, an
earlier commit: `git archive main | tar -x -C DIR`), interleaved with this one's, and the
table shows the two side by side.

    python bench/limits.py [--runs 5] [--baseline DIR]
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
    "baseline (valid LeNet-5)": "input 32x32x1\nCONV(6,5)-RELU-AVGPOOL(2)-CONV(16,5)-RELU"
                                "-AVGPOOL(2)-FC(120)-RELU-FC(84)-RELU-FC(10)-SOFTMAX\n",
    "CONV*1000000000": "input 8x8x3\nCONV * 1000000000\n",
    "((CONV*1000)*1000)*1000": "input 8x8x3\n((CONV * 1000) * 1000) * 1000\n",
    "100,000-deep nesting": "input 8x8x3\n" + "(" * 100_000 + "CONV" + ")" * 100_000 + "\n",
    "5000-digit integer": "input 8x8x3\nCONV(" + "9" * 5000 + ")\n",
    "recursive def": "input 8x8x3\ndef block(n) = CONV - block(n)\nblock(3)\n",
    # nesting (issue 17, F9): each is a located limit error, not a RecursionError
    "4,000,000 unary -": lambda: "input 8x8x3\nCONV(" + "-" * 4_000_000 + "4, 1)\n",
    "4,000,000 ?": lambda: "input 8x8x3\nRELU" + "?" * 4_000_000 + "\n",
    "401 nested defs": "input 8x8x3\ndef b0(c) = CONV(c, 1)\n" + "".join(
        f"def b{i}(c) = b{i - 1}(c)\n" for i in range(1, 401)) + "b400(4)\n",
    # past 4,000 levels in all at the 21st (lark parses about 100,000 brackets a second, so
    # 400 such defs would time the parser, not the limit)
    "25 defs x 198 brackets": "input 8x8x3\ndef b0 = RELU\n" + "".join(
        f"def b{i} = " + "(" * 198 + f"b{i - 1}" + ")" * 198 + "\n" for i in range(1, 25))
        + "b24\n",
    "50 MB spec file": None,  # written to disk below
    # evaluation work (issue 17, F5): 3^12 number-def calls, 2^40 empty block calls
    "F5 tripled number defs": "input 8x8x3\ndef f0(x) = x\n" + "".join(
        f"def f{i}(x) = f{i - 1}(x) + f{i - 1}(x) - f{i - 1}(x)\n" for i in range(1, 13))
        + "CONV(f12(2), 1)\n",
    "F5 doubled empty defs": "input 8x8x3\ndef b0 = RELU * 0\n" + "".join(
        f"def b{i} = b{i - 1} - b{i - 1}\n" for i in range(1, 41)) + "CONV(4, 1) - b40\n",
    "F6 ADAPTIVEAVGPOOL(1x2*10^9)": "input 8x8x3\nADAPTIVEAVGPOOL(1x2000000000)\n",
    # under the 4 MiB byte limit (F7): refused by the token count before lark parses them
    "F7 2M arguments": lambda: "input 8x8x3\nCONV(" + "1," * 2_000_000 + "1)\n",
    "F7 1M statements": lambda: "input 8x8x3\n" + "v=1\n" * 1_000_000 + "RELU\n",
    "F7 466k (RELU)*0-": lambda: "input 8x8x3\nCONV(4,1)-" + "(RELU)*0-" * 466_000 + "RELU\n",
    "F7 520k RELU? (4 MiB)": lambda: "input 8x8x3\n" + "RELU? - " * 520_000 + "RELU\n",
    # valid: 50,001 layers, checked (the optional sites were a list scanned per site)
    "F7 50,000 RELU? (valid)": lambda: "input 8x8x3\n" + "RELU? - " * 50_000 + "RELU\n",
    # other commands: (arguments before the spec's path, after it, text)
    "F19 sweep, 40 optional sites": (["sweep"], ["--optional", "both"],
                                     "input 8x8x3\n" + " - ".join(["RELU?"] * 40) + "\n"),
    "F24 fmt, 100 x 199 unary -": (["fmt", "--check"], [], "input 8x8x3\n" + "".join(
        f"v{i} = " + "-" * 199 + "4\n" for i in range(100)) + "CONV(v1, 1)\n"),
    "F25 render RELU*100000 --expand": (["render"], ["--expand", "-o", "{tmp}/out.svg"],
                                        "input 8x8x3\nRELU * 100000\n"),
}


HERE = Path(__file__).resolve().parent.parent


def run_once(path: Path, before=("check",), after=(), tree: Path = HERE
             ) -> tuple[float, int, int, float]:
    """One run of the case in a fresh process, importing the cnndsl of source tree `tree`
    (`python -m` puts the working directory first on the path)."""
    after = [a.replace("{tmp}", str(path.parent)) for a in after]
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "cnndsl", *before, str(path), *after],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tree)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    return (elapsed, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status),
            usage.ru_utime + usage.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="another source tree to run each case with, side by side")
    args = parser.parse_args()
    trees = {"": HERE} if args.baseline is None else {"before": args.baseline.resolve(),
                                                      "after": HERE}
    with tempfile.TemporaryDirectory() as tmp:
        paths, commands = {}, {}
        for name, text in CASES.items():
            path = Path(tmp) / f"case{len(paths)}.cnn"
            if isinstance(text, tuple):
                before, after, text = text
                commands[name] = (before, after)
            if callable(text):
                # Built here and dropped: the child's ru_maxrss counts this process's pages
                # at fork time, and these texts are megabytes each.
                path.write_text(text())
            elif text is None:
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
        results = {(tree, name): [] for tree in trees for name in paths}
        for _ in range(args.runs):  # interleaved, so a busy moment hits every case alike
            for name, path in paths.items():
                for tree, folder in trees.items():
                    results[tree, name].append(run_once(
                        path, *commands.get(name, (("check",), ())), tree=folder))
    report(results, trees, paths)


def report(results: dict, trees: dict, names) -> None:
    """Per case: exit status, median wall and CPU seconds and peak MB of each tree; the
    verdict (wall time and memory) is the last tree's (this one's)."""
    labels = [t or "" for t in trees]
    head = "  ".join(f"{'exit ' + t:>10} {'median s ' + t:>15} {'cpu s ' + t:>12} "
                     f"{'peak MB ' + t:>14}" for t in labels)
    print(f"{'case':<34} {head}  verdict")
    for name in names:
        cells, ok = [], False
        for tree in trees:
            runs = results[tree, name]
            seconds = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[3] for r in runs)
            peak = max(r[1] for r in runs) / 1e6
            cells.append(f"{runs[0][2]:>10} {seconds:>15.3f} {cpu:>12.3f} {peak:>14.1f}")
            ok = seconds < 1 and peak < (100 if name.startswith("F") else 200)
        print(f"{name:<34} {'  '.join(cells)}  {'ok' if ok else 'MISS'}")
    if hasattr(os, "getloadavg"):
        print(f"load average (1, 5, 15 min) at the end: "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
