"""Every example in docs/language.md runs and says what the page says it does."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from cnndsl import layers
from cnndsl.errors import CnnDslError

from conftest import build

DOC = Path(__file__).resolve().parent.parent / "docs" / "language.md"
BLOCK = re.compile(r"```(cnn|cnn-error)\n(.*?)```", re.S)


def examples():
    text = DOC.read_text()
    return [(kind, body) for kind, body in BLOCK.findall(text)]


def expectation(body: str, key: str) -> str:
    found = [line.split(f"# {key}:", 1)[1].strip() for line in body.split("\n")
             if line.startswith(f"# {key}:")]
    assert len(found) == 1, f"example needs exactly one `# {key}:` line:\n{body}"
    return found[0]


def check_line(graph) -> str:
    t = graph.graph["totals"]
    noun = "layer" if t["layers"] == 1 else "layers"
    outputs = graph.graph.get("outputs")  # several: each by name, as `cnndsl check` says
    output = "outputs " + ", ".join(f"{name} {graph.nodes[node]['shape']}" for name, node in
                                    outputs) if outputs else f"output {t['output']}"
    return f"{t['layers']} {noun}, {output}, {t['params']:,} parameters"


def test_the_page_has_examples_of_both_kinds():
    kinds = [k for k, _ in examples()]
    assert kinds.count("cnn") >= 15 and kinds.count("cnn-error") >= 5


@pytest.mark.parametrize("index", range(len(examples())))
def test_example(index):
    kind, body = examples()[index]
    if kind == "cnn":
        assert check_line(build(body)) == expectation(body, "check")
    else:
        with pytest.raises(CnnDslError) as info:
            build(body)
        assert expectation(body, "error") in info.value.message


def test_every_layer_kind_is_documented():
    text = DOC.read_text()
    for kind in layers.REGISTRY.values():
        if kind.callable:
            assert f"`{kind.name}`" in text, kind.name


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def test_modern_block_examples_are_in_fmt_style():
    """The "Modern blocks" examples are the ones readers copy into files: `cnndsl fmt --check`
    passes on each as printed (the lecture-notation examples elsewhere keep the notes'
    spelling on purpose)."""
    from cnndsl.fmt import format_text

    bodies = [body for kind, body in BLOCK.findall(section("Modern blocks")) if kind == "cnn"]
    assert len(bodies) >= 3
    for body in bodies:
        assert format_text(body) == body, body
