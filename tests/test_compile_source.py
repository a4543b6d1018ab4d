"""Generated PyTorch source: standalone, readable, safe, and the same network as compile()."""
from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_registry_torch import CASES

import cnndsl
from cnndsl.cli import main
from cnndsl.codegen import docstring_text, to_source
from cnndsl.torch_backend import to_module

SPECS = Path(__file__).resolve().parents[1] / "specs"
ZOO = [pytest.param(f"{name}.cnn", size, id=name) for name, size in
       [("resnet18", 64), ("googlenet", 96), ("mobilenet_v2", 64), ("lenet5", None),
        ("alphago_policy", None)]]

# Drives a generated file where cnndsl cannot be imported: isolated mode (-I: no
# PYTHONPATH, no script or working directory on sys.path) and an import hook that refuses
# cnndsl, which is installed in this environment.
DRIVER = """
import runpy, sys
class NoCnndsl:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "cnndsl":
            raise ImportError("cnndsl is not available here")
sys.meta_path.insert(0, NoCnndsl())
runpy.run_path(sys.argv[1], run_name="__main__")
"""

HOSTILE = '''# """ + __import__("os").system("touch PWNED") + """
# \\""" \\\\ \\N{BULLET} \\x00 ''' + '"' + ''' a quote at the end"
# odd characters: \u202e\u2066 bidi, \u2028 line separator, \x0c
input 8x8x3
classes = 4
def import(c) = CONV(c, 3, pad=1) - RELU
def self(c) = residual(import(c) - BN)
def torch(n) = self(n) - self(n)
def __import__(n) = torch(n)
__import__(3) - GAP - FC(classes) - SOFTMAX
'''


def load_class(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(f"generated_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def check_same_network(graph, tmp_path, *, logits=False):
    """The generated class and to_module's module: same submodules, weights, outputs; the
    class-per-def form and --flat alike."""
    for flat in (True, False):
        path = tmp_path / "model.py"
        path.write_text(to_source(graph, logits=logits, class_name="Generated", flat=flat),
                        encoding="utf-8")
        generated = load_class(path, "Generated")().eval()
        torch.manual_seed(0)
        built = to_module(graph, logits=logits, flat=flat).eval()
        assert [(n, repr(m)) for n, m in generated.named_children()] == \
            [(n, repr(m)) for n, m in built.named_children()]
        generated.load_state_dict(built.state_dict())  # strict: the same keys and shapes
        start = next(v for v, d in graph.nodes(data=True) if d["kind"] == "INPUT")
        x = torch.randn(2, *graph.nodes[start]["shape"].as_list())
        with torch.no_grad():
            assert torch.equal(generated(x.clone()), built(x.clone()))
            built.load_state_dict({k: v * 0.9 if v.is_floating_point() else v
                                   for k, v in generated.state_dict().items()})
            generated.load_state_dict(built.state_dict())
            assert torch.equal(generated(x.clone()), built(x.clone()))
    return path


@pytest.mark.parametrize("kind, text", CASES)
def test_generated_source_equals_the_module_for_every_kind(kind, text, tmp_path):
    check_same_network(cnndsl.build_graph(text), tmp_path)


@pytest.mark.parametrize("spec, size", ZOO)
def test_generated_source_equals_the_module_for_zoo_specs(spec, size, tmp_path):
    options = {"input": f"{size}x{size}x3", "classes": 10} if size else {}
    graph = cnndsl.build_graph(SPECS / spec, **options)
    check_same_network(graph, tmp_path, logits=spec.startswith("resnet"))


def imported_modules(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in (
                "__import__", "eval", "exec", "compile", "open", "getattr"):
            names.add(f"call:{node.func.id}")
    return names


def test_generated_file_imports_only_torch_and_runs_without_cnndsl(tmp_path):
    graph = cnndsl.build_graph(SPECS / "resnet18.cnn", input="32x32x3", classes=10)
    source = to_source(graph, class_name="ResNet18")
    assert imported_modules(ast.parse(source)) == {"torch"}
    path = tmp_path / "resnet18.py"
    path.write_text(source, encoding="utf-8")
    result = subprocess.run([sys.executable, "-I", "-c", DRIVER, str(path)], cwd=tmp_path,
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "ResNet18: (1, 10)"
    (tmp_path / "empty.py").write_text("", encoding="utf-8")  # the hook itself, checked
    failing = subprocess.run([sys.executable, "-I", "-c", DRIVER + "\nimport cnndsl",
                              str(tmp_path / "empty.py")], cwd=tmp_path, capture_output=True,
                             text=True)
    assert "cnndsl is not available here" in failing.stderr


def test_generated_source_reads_like_pytorch():
    """torchvision's resnet.py shape: a class per def (BasicBlock's constructor arguments),
    stages as nn.Sequential, a residual forward that reads `identity = ...; out += identity`,
    shape comments in the model's forward."""
    graph = cnndsl.build_graph(SPECS / "resnet18.cnn")
    source = to_source(graph, class_name="ResNet18")
    tree = ast.parse(source)
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert classes == ["Basic", "Stage", "ResNet18"]  # helpers, blocks, then the model
    assert "class Basic(nn.Module):\n    def __init__(self, in_channels: int, c: int, " \
           "s: int = 1) -> None:" in source
    assert "class Stage(nn.Sequential):" in source
    assert "        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, " \
           "bias=False)" in source
    # the projection only where the shape changes: the lecture's (and torchvision's) rule
    assert "        if s != 1 or in_channels != c:\n            self.shortcut = nn.Sequential(" \
        in source
    assert "        identity = x\n        out = self.conv1(x)\n" in source  # torchvision's
    assert "        if self.shortcut is not None:\n" \
           "            identity = self.shortcut(x)\n        out += identity\n" in source
    assert "        x = self.conv1(x)  # 64x112x112\n" in source
    assert "        x = self.stage4(x)  # 512x7x7\n" in source
    assert "        self.stage2 = Stage(64, 128)\n" in source  # s=2: its default
    assert source.count("import") == 2
    assert max(map(len, source.splitlines())) <= 100
    flat = to_source(graph, class_name="ResNet18", flat=True)
    forward = flat[flat.index("def forward"):flat.index("if __name__")]
    body = [line for line in forward.splitlines()[1:] if line.strip()]
    nodes = graph.number_of_nodes() - 1  # --flat: every node but INPUT is one line
    assert len(body) == nodes + 1  # and the return
    assert "        x = x1.add_(x)  # add1: -> 64x56x56\n" in flat


def test_hostile_spec_text_and_names_stay_inert(tmp_path):
    spec = tmp_path / 'evil"""; import os.cnn'
    spec.write_text(HOSTILE, encoding="utf-8")
    graph = cnndsl.build_graph(spec)
    source = to_source(graph, class_name='Evil"); import os #', flat=True)  # the whole spec
    tree = ast.parse(source)
    kinds = [type(n).__name__ for n in tree.body]
    assert kinds[:3] == ["Expr", "Import", "ImportFrom"] and kinds[-1] == "If"
    assert set(kinds[3:-1]) == {"ClassDef"}
    assert imported_modules(tree) == {"torch"}
    assert tree.body[-2].name.isidentifier() and tree.body[-2].name.startswith("Evil")
    doc = ast.get_docstring(tree, clean=False)
    assert "\n".join(f"    {line}" if line else "" for line in HOSTILE.split("\n")) in doc
    assert f"Spec {spec}:" in doc
    for ch in "\u202e\u2066\u2028\x0c":
        assert ch not in source  # escaped, so the file shows what it means
    structured = to_source(graph, class_name='Evil"); import os #')  # blocks as classes
    tree = ast.parse(structured)
    assert imported_modules(tree) == {"torch"}
    assert [n.name for n in tree.body if isinstance(n, ast.ClassDef)][-1].startswith("Evil")
    first = HOSTILE.split("\n")[0]
    assert f"    {first}\n" in ast.get_docstring(tree, clean=False)  # its description line
    for ch in "\u202e\u2066\u2028\x0c":
        assert ch not in structured
    path = check_same_network(graph, tmp_path)
    subprocess.run([sys.executable, "-I", "-c", DRIVER, str(path)], cwd=tmp_path, check=True,
                   capture_output=True)
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()


@pytest.mark.parametrize("text", ['"""', '"', '""', 'a"b', '\\', '\\"""', '"\\"', "\x00\u2028"])
def test_docstring_escaping_is_exact(text):
    value = ast.literal_eval(f'"""{docstring_text(text)}"""')
    assert value == text


def test_same_seed_same_source_byte_for_byte():
    graph = lambda: cnndsl.build_graph(SPECS / "googlenet.cnn")  # noqa: E731
    assert to_source(graph()) == to_source(graph())


RUN_ALL = """
import runpy, sys
for path in sys.argv[1:]:
    runpy.run_path(path, run_name="__main__")
"""


def test_a_class_name_never_shadows_what_the_generated_file_uses(tmp_path):
    # issue 17, F11: named after the file (PositionBias.cnn has a BIAS layer, whose module
    # class PositionBias is copied into the file) or by --class-name
    spec = tmp_path / "PositionBias.cnn"
    spec.write_text("input 4x4x3\nCONV(4, 3, pad=1) - BIAS - FC(2)\n", encoding="utf-8")
    outputs = [tmp_path / "from_file.py"]
    assert main(["compile", str(spec), "-o", str(outputs[0])]) == 0
    names = ["torch", "nn", "super", "print", "tuple", "model", "y", "PositionBias"]
    for name in names:
        outputs.append(tmp_path / f"named_{name}.py")
        assert main(["compile", str(spec), "--class-name", name, "-o", str(outputs[-1])]) == 0
    result = subprocess.run([sys.executable, "-I", "-c", RUN_ALL, *map(str, outputs)],
                            cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{name}_: (1, 2)" for name in
                                          ["PositionBias", *names]]
