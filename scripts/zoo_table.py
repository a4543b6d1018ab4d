"""Write docs/zoo.md's table of torchvision's CNN builders (issue 13) from the specs.

    python scripts/zoo_table.py          # rewrite the table between its markers
    python scripts/zoo_table.py --check  # exit 1 if the table is out of date

Each builder's row: its family spec, input, layers, parameters (equal to torchvision's
`num_params`, tests/test_zoo_torchvision.py), MACs at the weights' crop size (torchvision's
`_ops`), the family spec's lines, and how its outputs are verified.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
DOC = ROOT / "docs" / "zoo.md"
BEGIN, END = "<!-- torchvision-table: begin -->", "<!-- torchvision-table: end -->"


def rows() -> list[str]:
    import torchvision
    from test_zoo_torchvision import FAMILIES, REPRESENTATIVES

    from cnndsl import modelzoo
    from cnndsl.api import check_spec

    out = ["| spec | family spec | input | layers | parameters | MACs (at crop) | spec lines "
           "| verified against torchvision |", "|---|---|---|---|---|---|---|---|"]
    members = modelzoo.variants()
    for family, names in FAMILIES.items():
        lines = len((ROOT / "specs" / f"{family}.cnn").read_text().splitlines())
        for name in [family, *names]:
            graph = check_spec(f"zoo:{name}")
            crop = name if name in members else members and names[0]
            size = torchvision.models.get_model_weights(crop).DEFAULT.transforms().crop_size[0]
            macs = check_spec(f"zoo:{name}", input=f"{size}x{size}x3").totals["macs"]
            how = ("the family's default member" if name == family else
                   "parameters, GMACs; outputs in `make test`" if name in REPRESENTATIVES else
                   "parameters, GMACs in `make test`; outputs in `make test-long`")
            shape = "x".join(map(str, graph.context.input.as_list()[1:] +
                                 graph.context.input.as_list()[:1]))
            out.append(f"| `{name}` | `{family}` | {shape} | {graph.totals['layers']} | "
                       f"{graph.totals['params']:,} | {macs / 1e9:.3f}G at {size} | {lines} | "
                       f"{how} |")
    return out


def main() -> int:
    text = DOC.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = head + BEGIN + "\n" + "\n".join(rows()) + "\n" + END + tail
    if "--check" in sys.argv:
        return 0 if new == text else 1
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
