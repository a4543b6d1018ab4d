"""Scale: parse, expand, check and summarise generated specs of 1,000 to 100,000 layers.

Two shapes of spec: repetition, `(CONV(8, 3, pad=1) - RELU) * N`, and the same layers as one
long literal chain, one CONV-RELU pair per line. Times are CPU seconds of this process
(time.process_time: a machine shared with other work disturbs it less than wall time), medians
of interleaved in-process runs; the parser is built once beforehand. Parse, expand and check
run with the garbage collector paused, as cnndsl.api does, and so does the summary with its
table, as the command line pauses it for every command.
Targets: 10,000 layers in under 1 s in total; growth per 10x no worse than linear (<= 12).

    python bench/scale.py [--sizes 1000 10000 100000] [--runs 3] [--record]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from results import median, record

sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cnndsl import passes  # noqa: E402
from cnndsl.limits import gc_paused  # noqa: E402
from cnndsl.expand import Options, expand  # noqa: E402
from cnndsl.parser import parse  # noqa: E402

TARGET_SECONDS, TARGET_AT, TARGET_GROWTH = 1.0, 10_000, 12.0
PAIR = "CONV(8, 3, pad=1) - RELU"


def generate(style: str, layers: int) -> str:
    if style == "repeat":
        return f"input 32x32x8\n({PAIR}) * {layers // 2}\n"
    return "input 32x32x8\n" + "\n  - ".join([PAIR] * (layers // 2)) + "\n"


def summarise_stage():
    """The summary stage, with the GC paused for the table's formatting too, as the command
    line pauses it for the whole command (summarize pauses it by itself)."""
    from cnndsl import summary

    def run(graph):
        with gc_paused():
            summary.format_table(summary.summarize(graph))
    return run


def time_stages(text: str, summarise) -> dict[str, float]:
    options = Options(max_layers=250_000)
    clock = time.process_time
    wall = time.perf_counter()
    stamps = [clock()]
    with gc_paused():
        program = parse(text, "<generated>")
        stamps.append(clock())
        graph = expand(program, options)
        stamps.append(clock())
        passes.check(graph)
        stamps.append(clock())
    if summarise is not None:
        summarise(graph)
        stamps.append(clock())
    names = ("parse", "expand", "check", "summary")
    times = {name: b - a for name, a, b in zip(names, stamps, stamps[1:])}
    times["wall"] = time.perf_counter() - wall
    return times


def measure(sizes, runs, summarise) -> dict[tuple[str, int], dict[str, float]]:
    styles = ("repeat", "literal")
    result = {}
    for n in sizes:
        texts = {style: generate(style, n) for style in styles}
        samples: dict[str, list[dict]] = {style: [] for style in styles}
        for _ in range(runs if n < 100_000 else max(1, runs // 3)):
            for style in styles:  # the two styles alternate within each round
                samples[style].append(time_stages(texts[style], summarise))
        for style, runs_ in samples.items():
            t = {s: median([r[s] for r in runs_]) for s in runs_[0]}
            t["total"] = median([sum(v for s, v in r.items() if s != "wall") for r in runs_])
            result[(style, n)] = t
    return result


def report(result, sizes) -> list[str]:
    lines = []
    for style in ("repeat", "literal"):
        for n in sizes:
            t = result[(style, n)]
            stages = "  ".join(f"{s} {v:6.3f}" for s, v in t.items()
                               if s not in ("total", "wall"))
            verdict = ""
            if n == TARGET_AT:
                ok = t["total"] < TARGET_SECONDS
                verdict = f"  (target < {TARGET_SECONDS:g} s: {'ok' if ok else 'MISSED'})"
            lines.append(f"scale  {style:<7} {n:>7,} layers  {stages}  total {t['total']:6.3f} s"
                         f" CPU ({t['wall']:.3f} s wall){verdict}")
        growth = [result[(style, b)]["total"] / result[(style, a)]["total"]
                  for a, b in zip(sizes, sizes[1:])]
        if growth:
            ok = all(g <= TARGET_GROWTH for g in growth)
            steps = ", ".join(f"{a:,}->{b:,} {g:.1f}x" for a, b, g in zip(sizes, sizes[1:],
                                                                       growth))
            lines.append(f"scale  {style:<7} growth per 10x: {steps}  (target <= "
                         f"{TARGET_GROWTH:g}: {'ok' if ok else 'MISSED'})")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    ap.add_argument("--runs", type=int, default=3,
                    help="rounds per size (default 3; a third of that, at least 1, at 100,000)")
    ap.add_argument("--record", action="store_true", help="append the result to RESULTS.md")
    args = ap.parse_args()
    summarise = summarise_stage()
    parse("input 8x8x3\nRELU", "<warm-up>")  # build the parser outside the timings
    lines = report(measure(args.sizes, args.runs, summarise), args.sizes)
    print("\n".join(lines))
    if args.record:
        record("Front end", "bench/scale.py: generated specs, in-process medians", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
