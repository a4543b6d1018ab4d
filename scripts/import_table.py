"""The round-trip table of docs/import.md: each model imported, the spec compiled, its
parameter count and (after transfer_weights from the original) its outputs compared.

    python scripts/import_table.py            # every model, prints the markdown table
    python scripts/import_table.py --write    # ... and puts each row into docs/import.md
    python scripts/import_table.py resnet18 zoo:resnet18.onnx vgg11_bn.onnx --write
                                              # some rows only (the others stay)
"""
from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# every torchvision CNN classification builder (issue 13's 68), with the arguments the zoo's
# oracle test uses: the auxiliary heads run only in training and no spec writes them
_NAMES = (
    ["alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
     "vgg19_bn", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
     "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2",
     "wide_resnet101_2", "googlenet", "inception_v3", "squeezenet1_0", "squeezenet1_1",
     "densenet121", "densenet161", "densenet169", "densenet201", "mobilenet_v2",
     "mobilenet_v3_large", "mobilenet_v3_small", "mnasnet0_5", "mnasnet0_75", "mnasnet1_0",
     "mnasnet1_3"]
    + [f"shufflenet_v2_x{w}" for w in ("0_5", "1_0", "1_5", "2_0")]
    + [f"efficientnet_b{i}" for i in range(8)]
    + [f"efficientnet_v2_{s}" for s in ("s", "m", "l")]
    + [f"regnet_{k}_{s}" for k, sizes in (
        ("y", ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf", "128gf")),
        ("x", ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf"))) for s in sizes]
    + [f"convnext_{s}" for s in ("tiny", "small", "base", "large")])
NO_AUX = {"aux_logits": False, "init_weights": False}
TORCHVISION = {name: NO_AUX if name in ("googlenet", "inception_v3") else {}
               for name in _NAMES}
# exported by `cnndsl compile -o x.onnx`, and by torch.onnx.export
ZOO_ONNX = ("resnet18", "googlenet", "mobilenet_v2", "efficientnet_b0")
TORCH_ONNX = ("resnet34", "vgg11_bn", "mobilenet_v3_small", "efficientnet_b0")
BEGIN, END = "<!-- import-table -->", "<!-- /import-table -->"


def compare(expected, got) -> float:
    """max |got - expected| as a fraction of max |expected|."""
    scale = expected.abs().max().item()
    return (got - expected).abs().max().item() / scale


def zoo_lines(name: str):
    """Lines of the hand-written zoo spec (a family's spec for its members)."""
    from cnndsl import modelzoo

    return len(modelzoo.read(name).splitlines()) if name in modelzoo.names() else None


def input_size(name: str) -> int:
    return 299 if name == "inception_v3" else 224


def state_in_our_order(theirs, ours) -> dict:
    """torchvision's tensors in the order our modules hold them, for transfer_weights: a
    module's own tensors after its children's (ConvNeXt's layer_scale follows its block), and
    a Linear over channels as the 1x1 convolution it imports as ((4C, C) -> (4C, C, 1, 1))."""
    groups: dict[str, list] = {}
    for key, value in theirs.state_dict().items():
        groups.setdefault(key.rpartition(".")[0], []).append((key, value))
    paths = list(groups)

    def last_descendant(path):
        return max(i for i, other in enumerate(paths)
                   if other == path or other.startswith(path + "."))

    ordered = sorted(paths, key=lambda p: (last_descendant(p),
                                           last_descendant(p) != paths.index(p)))
    items = [item for path in ordered for item in groups[path]]
    slots = list(ours.state_dict().values())
    if len(items) != len(slots):
        return theirs
    return {key: value.reshape(slot.shape) if value.numel() == slot.numel() else value
            for (key, value), slot in zip(items, slots)}


def torchvision_row(name: str) -> dict:
    import torch
    import torchvision

    import cnndsl
    from cnndsl.importer import import_spec

    kwargs = TORCHVISION[name]
    torch.manual_seed(0)
    theirs = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    start = time.perf_counter()
    imported = import_spec(f"torchvision:{name}", args=kwargs)
    seconds = time.perf_counter() - start
    ours = cnndsl.compile(text=imported.text, seed=0).eval()
    cnndsl.transfer_weights(state_in_our_order(theirs, ours), ours, source_name=name)
    size = input_size(name)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        error = compare(theirs(x), ours(x))
    row = {"source": f"torchvision:{name}", "text": imported.text, "seconds": seconds,
           "params": sum(p.numel() for p in ours.parameters()),
           "original": sum(p.numel() for p in theirs.parameters()), "error": error,
           "zoo": zoo_lines(name)}
    del theirs, ours
    return row


def onnx_row(path: Path, label: str, zoo: str | None, size: int = 224) -> dict:
    import numpy as np
    import torch

    import cnndsl
    from cnndsl.artifacts import run_onnx
    from cnndsl.import_onnx import state_dict_order
    from cnndsl.importer import import_spec

    start = time.perf_counter()
    imported = import_spec(str(path))
    seconds = time.perf_counter() - start
    ours = cnndsl.compile(text=imported.text, seed=0).eval()
    weights = {}
    for name, array in state_dict_order(path):
        weights[name] = torch.from_numpy(np.array(array))
    cnndsl.transfer_weights(weights, ours, source_name=label)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    expected = torch.from_numpy(np.asarray(run_onnx(path, x.numpy())))
    with torch.no_grad():
        error = compare(expected, ours(x))
    return {"source": label, "text": imported.text, "seconds": seconds,
                "params": sum(p.numel() for p in ours.parameters()),
                "original": sum(int(np.prod(a.shape)) for _, a in state_dict_order(path)),
                "error": error, "zoo": zoo_lines(zoo) if zoo else None}


def export_zoo(name: str, folder: Path) -> Path:
    from cnndsl.cli import main

    path = folder / f"{name}.onnx"
    assert main(["compile", f"zoo:{name}", "-o", str(path)]) == 0
    return path


def export_torchvision(name: str, folder: Path) -> Path:
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None, **TORCHVISION[name]).eval()
    path = folder / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), str(path), dynamo=False)
    return path


def rows(names=None, done=None) -> list[dict]:
    """The rows of the named sources (all without names); `done(row)` is called on each."""
    found = []
    for name in TORCHVISION:
        if not names or name in names:
            found.append(torchvision_row(name))
            if done:
                done(found[-1])
    with tempfile.TemporaryDirectory() as folder:
        for name in ZOO_ONNX:
            if not names or f"zoo:{name}.onnx" in names:
                found.append(onnx_row(export_zoo(name, Path(folder)),
                                      f"`cnndsl compile zoo:{name}` .onnx", name))
                if done:
                    done(found[-1])
        for name in TORCH_ONNX:
            if not names or f"{name}.onnx" in names:
                found.append(onnx_row(export_torchvision(name, Path(folder)),
                                      f"torch.onnx.export {name} .onnx", name))
                if done:
                    done(found[-1])
    return found


def table(found: list[dict]) -> str:
    lines = [("| source | spec lines | zoo spec lines | ratio | parameters | same as source | "
             "max output error / scale | import time |"),
             "|---|---|---|---|---|---|---|---|"]
    for r in found:
        n = len(r["text"].splitlines())
        ratio = f"{n / r['zoo']:.2f}" if r["zoo"] else "-"
        lines.append(f"| {r['source']} | {n} | {r['zoo'] or '-'} | {ratio} | {r['params']:,} | "
                     f"{'yes' if r['params'] == r['original'] else 'NO'} | "
                     f"{r['error']:.1e} | {r['seconds']:.2f} s |")
    return "\n".join(lines)


def write(lines: list[str]) -> None:
    """Put table rows into docs/import.md: a row replaces the one of the same source, the
    others stay, in the order of the sources here (torchvision, then the ONNX files)."""
    page = ROOT / "docs" / "import.md"
    old = page.read_text()
    head, _, rest = old.partition(BEGIN)
    current, _, tail = rest.partition(END)
    header = table([]).splitlines()
    rows_by_source = {line.split(" | ")[0]: line for line in current.strip().splitlines()[2:]}
    rows_by_source.update({line.split(" | ")[0]: line for line in lines})
    order = [f"| torchvision:{n}" for n in TORCHVISION] + \
        [f"| `cnndsl compile zoo:{n}` .onnx" for n in ZOO_ONNX] + \
        [f"| torch.onnx.export {n} .onnx" for n in TORCH_ONNX]
    body = [rows_by_source.pop(key) for key in order if key in rows_by_source]
    body += list(rows_by_source.values())
    page.write_text(f"{head}{BEGIN}\n" + "\n".join(header + body) + f"\n{END}{tail}")


def main(argv) -> int:
    """--write puts each row into docs/import.md as soon as it is measured."""
    names = [a for a in argv if not a.startswith("--")]
    lines = []

    def done(row):
        lines.append(table([row]).splitlines()[-1])
        print(lines[-1], flush=True)
        if "--write" in argv:
            write(lines[-1:])

    rows(names, done=done)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
