"""Shared by the benchmarks: timing helpers, the machine's description, appending to RESULTS.md."""
from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    """One line: CPU model, cores, Python, torch (when importable without cost to the caller)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", load %.1f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    return (f"{cpu}, {os.cpu_count()} cores{load}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def run_process(argv: list[str]) -> float:
    """Wall time of one fresh process; its output is discarded, a failure is fatal."""
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"benchmark command failed ({done.returncode}): {' '.join(argv)}\n"
                 f"{done.stderr[-2000:]}")
    return elapsed


def interleaved(commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """Run each command once per round, alternating, so load drifts hit all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(run_process(argv))
    return times


def median(values) -> float:
    return statistics.median(values)


INTRO = {"Front end": (
    "Written by bench/frontend.py, bench/scale.py and bench/compile_time.py with `--record`. "
    "Each figure is a median of interleaved runs (routes alternate within every round, so "
    "a change in the machine's load hits both); frontend times fresh processes by wall "
    "clock, scale counts this process's CPU seconds (less disturbed by other work on a "
    "shared machine), compile_time times in-process builds. The machine line gives the "
    "1-minute load average at the time: figures taken under load are noisy."
)}


def record(section: str, title: str, lines: list[str]) -> None:
    """Append a dated block under `## {section}` of RESULTS.md, creating either if missing.

    Other sections (e.g. `## Runtime`) are left as they are; the block goes at the end of ours.
    """
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = [f"### {title}, {stamp}", "", f"Machine: {machine()}", "", "```", *lines, "```", ""]
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    heading = f"## {section}"
    out = text.rstrip("\n").split("\n")
    if heading not in out:
        out += ["", heading, ""]
        if section in INTRO:
            out += [INTRO[section], ""]
        out += block
    else:
        start = out.index(heading) + 1
        end = next((i for i in range(start, len(out)) if out[i].startswith("## ")), len(out))
        while end > start and not out[end - 1].strip():
            end -= 1
        out[end:end] = ["", *block]
    RESULTS.write_text("\n".join(out).rstrip("\n") + "\n", encoding="utf-8")
