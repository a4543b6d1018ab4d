"""Issue 15's figures for `cnndsl render`: the ResNet-152 page (whole command, median of
several runs, and the file's size) and the height of the ResNet-50 drawing by --depth.

    python bench/render.py [--runs 7]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def page_command(runs: int) -> tuple[list[float], int]:
    """Wall seconds of `cnndsl render zoo:resnet152 -o net.html`, each run, and the size."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "net.html"
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "cnndsl", "render", "zoo:resnet152", "-o",
                            str(out)], check=True, capture_output=True, cwd=ROOT)
            times.append(time.perf_counter() - start)
        return times, out.stat().st_size


def page_in_process(runs: int) -> float:
    import cnndsl
    from cnndsl import explore

    graph = cnndsl.build_graph("zoo:resnet152")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        explore.explore_html(graph)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def heights() -> dict[str, tuple[float, float]]:
    """The ResNet-50 graph-style SVG's height (pt), and its first stage's box, by --depth."""
    import cnndsl
    from cnndsl import render

    graph = cnndsl.build_graph(ROOT / "specs" / "resnet50.cnn")
    found = {}
    for depth in (None, 2, 1):
        svg = render.render_bytes_of(graph, "svg", depth=depth).decode("utf-8")
        total = float(re.search(r'<svg[^>]* height="([\d.]+)pt"', svg).group(1))
        stage = re.search(r"<title>cluster_block_\d+</title>\s*<path[^>]*d=\"([^\"]*)\"", svg)
        ys = [float(y) for y in re.findall(r"[-\d.]+,([-\d.]+)", stage.group(1))] if stage \
            else []
        found[f"--depth {depth}" if depth else "no --depth"] = (
            total, max(ys) - min(ys) if ys else 0.0)
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    times, size = page_command(args.runs)
    print(f"cnndsl render zoo:resnet152 -o net.html: median {statistics.median(times):.3f} s "
          f"over {args.runs} runs (min {min(times):.3f}, max {max(times):.3f}); "
          f"{size:,} bytes; load {os.getloadavg()[0]:.1f}")
    print(f"  the page alone, in-process: median {page_in_process(args.runs) * 1000:.1f} ms")
    for name, (total, stage) in heights().items():
        print(f"resnet50 graph style, {name}: {total:.0f} pt ({total * 4 / 3:.0f} px at 96 dpi)"
              f" tall; first stage's box {stage:.0f} pt ({stage * 4 / 3:.0f} px)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
