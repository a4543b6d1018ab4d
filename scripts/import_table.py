"""The round-trip table of docs/import.md: each model imported, the spec compiled, its
parameter count and (after transfer_weights from the original) its outputs compared.

    python scripts/import_table.py            # every model, prints the markdown table
    python scripts/import_table.py --write    # ... and puts it into docs/import.md
    python scripts/import_table.py resnet18   # some models only
"""
from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# torchvision builders the language writes today, with the arguments the oracle test uses
TORCHVISION = {
    "alexnet": {}, "vgg11": {}, "vgg11_bn": {}, "vgg13": {}, "vgg16": {}, "vgg16_bn": {},
    "vgg19": {}, "vgg19_bn": {}, "resnet18": {}, "resnet34": {}, "resnet50": {},
    "resnet101": {}, "resnet152": {}, "googlenet": {"aux_logits": False, "init_weights": False},
    "mobilenet_v2": {},
}
ZOO_ONNX = ("resnet18", "googlenet", "mobilenet_v2")  # exported by `cnndsl compile -o x.onnx`
TORCH_ONNX = ("resnet34", "vgg11_bn")  # exported by torch.onnx.export
BEGIN, END = "<!-- import-table -->", "<!-- /import-table -->"


def compare(expected, got) -> float:
    """max |got - expected| as a fraction of max |expected|."""
    scale = expected.abs().max().item()
    return (got - expected).abs().max().item() / scale


def zoo_lines(name: str):
    path = ROOT / "specs" / f"{name}.cnn"
    return len(path.read_text().splitlines()) if path.exists() else None


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
    cnndsl.transfer_weights(theirs, ours, source_name=name)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        error = compare(theirs(x), ours(x))
    return {"source": f"torchvision:{name}", "text": imported.text, "seconds": seconds,
                "params": sum(p.numel() for p in ours.parameters()),
                "original": sum(p.numel() for p in theirs.parameters()), "error": error,
                "zoo": zoo_lines(name)}


def onnx_row(path: Path, label: str, zoo: str | None) -> dict:
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
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
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


def rows(names=None) -> list[dict]:
    found = [torchvision_row(n) for n in TORCHVISION if not names or n in names]
    with tempfile.TemporaryDirectory() as folder:
        for name in ZOO_ONNX:
            if not names or f"zoo:{name}.onnx" in names:
                found.append(onnx_row(export_zoo(name, Path(folder)),
                                      f"`cnndsl compile zoo:{name}` .onnx", name))
        for name in TORCH_ONNX:
            if not names or f"{name}.onnx" in names:
                found.append(onnx_row(export_torchvision(name, Path(folder)),
                                      f"torch.onnx.export {name} .onnx", name))
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


def main(argv) -> int:
    write = "--write" in argv
    names = [a for a in argv if not a.startswith("--")]
    text = table(rows(names))
    print(text)
    if write:
        page = ROOT / "docs" / "import.md"
        old = page.read_text()
        head, _, rest = old.partition(BEGIN)
        _, _, tail = rest.partition(END)
        page.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
