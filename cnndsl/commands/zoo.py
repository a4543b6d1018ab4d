"""`cnndsl zoo`: list the bundled specs with their costs, or print one of them."""
from __future__ import annotations

import json
import sys

from ..errors import CnnDslError


def register(sub) -> None:
    p = sub.add_parser("zoo", help="list the bundled specs (name, parameters, MACs), or "
                                   "print one; use them anywhere as zoo:NAME")
    p.add_argument("name", nargs="?", help="print this bundled spec's text (to copy and edit)")
    p.add_argument("--json", action="store_true", help="the list as JSON")
    p.set_defaults(func=run)


def human(n: int) -> str:
    """138357544 -> '138.4M', 15470264320 -> '15.47G' (torchvision's GFLOPS precision)."""
    if n >= 10 ** 9:
        return f"{n / 1e9:.2f}G"
    if n >= 10 ** 6:
        return f"{n / 1e6:.1f}M"
    if n >= 10 ** 3:
        return f"{n / 1e3:.1f}K"
    return str(n)


def run(args) -> int:
    from .. import modelzoo
    from ..api import zoo_entry

    if args.name:
        print(modelzoo.read(args.name), end="")
        return 0
    entries, broken = [], []
    for name in modelzoo.names():
        try:
            entries.append(zoo_entry(name))
        except CnnDslError as exc:  # list the rest; report the broken spec and fail
            broken.append(exc)
    if args.json:
        print(json.dumps([vars(e) for e in entries], indent=2))
    else:
        print_table(entries)
    for exc in broken:
        print(exc.render(), file=sys.stderr)
    return 1 if broken else 0


def print_table(entries) -> None:
    rows = [("name", "input", "layers", "params", "MACs", "description")]
    rows += [(e.name, e.input, str(e.layers), f"{e.params:,}", human(e.macs), e.description)
             for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    right = (False, True, True, True, True)
    for row in rows:
        cells = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)]
        print("  ".join(cells + [row[5]]).rstrip())
    if entries:
        print(f"\n{len(entries)} specs; use one as zoo:NAME, e.g. "
              f"`cnndsl check zoo:{entries[0].name}`")
