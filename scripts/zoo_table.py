"""Write docs/zoo.md's tables of torchvision's builders from the specs: the CNN classifiers
(issue 13) and the segmentation models (issue 19).

    python scripts/zoo_table.py          # rewrite the tables between their markers
    python scripts/zoo_table.py --check  # exit 1 if a table is out of date

Each builder's row: its family spec, input, layers, parameters (equal to torchvision's
`num_params`, tests/test_zoo_torchvision.py and tests/test_zoo_segmentation.py), MACs at the
weights' crop size (torchvision's `_ops`; the segmentation models' at their 520x520 resize
size), the family spec's lines, and how its outputs are verified.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
DOC = ROOT / "docs" / "zoo.md"
TABLES = ("torchvision-table", "segmentation-table")


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


def segmentation_rows() -> list[str]:
    from test_zoo_segmentation import AUX, FAMILIES, REPRESENTATIVES, RESIZE

    from cnndsl.api import check_spec

    out = [("| spec | family spec | input | layers | parameters | output | MACs at 520 "
            "| spec lines | verified against torchvision |"),
           "|---|---|---|---|---|---|---|---|---|"]
    for family, names in FAMILIES.items():
        lines = len((ROOT / "specs" / f"{family}.cnn").read_text().splitlines())
        for name in [family, *names]:
            graph = check_spec(f"zoo:{name}", input=f"{RESIZE}x{RESIZE}x3")
            how = ("the family's default member" if name == family else
                   "parameters, MACs; outputs in `make test`" if name in REPRESENTATIVES else
                   "parameters, MACs in `make test`; outputs in `make test-long`")
            out.append(f"| `{name}` | `{family}` | {RESIZE}x{RESIZE}x3 | "
                       f"{graph.totals['layers']} | {graph.totals['params']:,} | "
                       f"{graph.totals['output']} | {graph.totals['macs'] / 1e9:.3f}G | "
                       f"{lines} | {how} |")
    for family, names in FAMILIES.items():  # torchvision's aux_loss=True
        for name in (n for n in names if n in AUX):
            graph = check_spec(f"zoo:{name}", aux=1, input=f"{RESIZE}x{RESIZE}x3")
            where = "`make test`" if name in REPRESENTATIVES else "`make test-long`"
            out.append(f"| `{name} -D aux=1` | `{family}` | {RESIZE}x{RESIZE}x3 | "
                       f"{graph.totals['layers']} | {graph.totals['params']:,} | "
                       f"{graph.totals['output']}, aux {graph.nodes[graph.outputs[1][1]].shape} | "
                       f"{graph.totals['macs'] / 1e9:.3f}G | | `aux_loss=True`: parameters = "
                       f"`num_params`, MACs = `_ops`; both outputs in {where} |")
    return out


def main() -> int:
    text = new = DOC.read_text(encoding="utf-8")
    for marker, make in zip(TABLES, (rows, segmentation_rows)):
        begin, end = f"<!-- {marker}: begin -->", f"<!-- {marker}: end -->"
        head, _, rest = new.partition(begin)
        _, _, tail = rest.partition(end)
        new = head + begin + "\n" + "\n".join(make()) + "\n" + end + tail
    if "--check" in sys.argv:
        return 0 if new == text else 1
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
