"""docs/architecture.md matches the code, and layer kinds are named only in the registry."""
from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

from cnndsl import ir, layers

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def table_after(heading_text: str) -> list[str]:
    """The first column of the first table after a line containing `heading_text`."""
    lines = PAGE[PAGE.index(heading_text):].split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("| field"))
    names = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        names += re.findall(r"`(\w+)`", line.split("|")[1])
    return names


def test_the_node_fields_are_the_pages():
    assert table_after("A node's fields") == [f.name for f in dataclasses.fields(ir.Node)]


def test_the_scope_fields_are_the_pages():
    documented = set(table_after("### The scope tree"))
    scope = ir.Scope("root", "", 0)
    assert documented == {name for name in ir.Scope.__slots__ if not name.startswith("_")} | {
        "path"}
    assert all(hasattr(scope, name) for name in documented)


def test_every_module_is_on_the_page_and_every_module_named_exists():
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "cnndsl").glob("*.py")
               if p.name not in ("__init__.py", "__main__.py")}
    named = set(re.findall(r"`(cnndsl/[\w/]+\.py)`", PAGE))
    assert modules - named == set(), "modules the page does not mention"
    assert all((ROOT / path).exists() for path in named), named


def test_the_kind_on_the_page_is_the_kind_in_the_code():
    code = (ROOT / "cnndsl" / "layers" / "silu.py").read_text(encoding="utf-8")
    shown = PAGE.split("```python\n", 1)[1].split("```", 1)[0]
    assert shown.strip() in code


def kind_names() -> set[str]:
    return {name for kind in layers.REGISTRY.values() for name in (kind.name, *kind.aliases)}


def string_literals(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_no_module_outside_the_registry_names_a_layer_kind():
    """Everything about a kind lives in cnndsl/layers/: elsewhere the pipeline asks the kind
    (its flags, recipe, family), never compares against its name."""
    names = kind_names()
    found = [f"{path.relative_to(ROOT)}:{line}: {value!r}"
             for path in sorted((ROOT / "cnndsl").rglob("*.py")) if "layers" not in path.parts
             for line, value in string_literals(path)
             if value in names or any(re.fullmatch(kind.paper_token, value, re.I)
                                      for kind in layers.REGISTRY.values() if kind.paper_token)]
    assert found == []


def test_the_literal_check_would_see_a_kind_name(tmp_path):
    path = tmp_path / "leaky.py"
    path.write_text('if node.kind.name == "BN":\n    pass\nx = "conv3-64"\n')
    values = [value for _, value in string_literals(path)]
    assert "BN" in values and "BN" in kind_names()
    assert any(re.fullmatch(layers.lookup("CONV").paper_token, v, re.I) for v in values)
