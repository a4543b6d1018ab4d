"""Write syntaxes/cnndsl.tmLanguage.json, the TextMate grammar VS Code highlights .cnn with.

The layer names and paper tokens come from cnndsl's registry, the builtins and number
functions from the language, so the grammar names what the compiler knows;
tests/test_editors.py fails when the committed file differs from what this writes.

    python editors/vscode/make_grammar.py
"""
from __future__ import annotations

import json
from pathlib import Path

from cnndsl import functions, layers
from cnndsl.values import BUILTINS

OUT = Path(__file__).resolve().parent / "syntaxes" / "cnndsl.tmLanguage.json"
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# Bare words a layer argument or setting may take (`pad=same`, `rounding = floor`).
WORDS = ("same", "valid", "strict", "floor", "ceil", "true", "false", "relu")


def words(names) -> str:
    """An alternation of whole words, longest first (TextMate takes the first that matches)."""
    return "|".join(sorted(set(names), key=lambda n: (-len(n), n)))


def grammar() -> dict:
    kinds = layers.callable_names()
    funcs = list(functions.FUNCTIONS)
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "cnndsl",
        "scopeName": "source.cnn",
        "fileTypes": ["cnn"],
        "patterns": [{"include": f"#{rule}"} for rule in RULES],
        "repository": {
            "directive": {"match": r"(#)\s*(cnndsl:)(.*)$", "captures": {
                "1": {"name": "comment.line.number-sign.cnn"},
                "2": {"name": "keyword.other.directive.cnn"},
                "3": {"name": "string.unquoted.directive.cnn"}}},
            "comment": {"match": r"#.*$", "name": "comment.line.number-sign.cnn"},
            "def": {"match": rf"(?i)\b(def)\s+({NAME})", "captures": {
                "1": {"name": "keyword.control.def.cnn"},
                "2": {"name": "entity.name.function.cnn"}}},
            "input": {"match": r"(?i)\binput\b", "name": "keyword.other.input.cnn"},
            "paper-token": {"match": rf"(?i)\b(?:{layers.paper_token_pattern()})(?![A-Za-z0-9_])",
                            "name": "entity.name.type.layer.cnn"},
            "layer": {"match": rf"(?i)\b(?:{words(kinds)})\b",
                      "name": "entity.name.type.layer.cnn"},
            "builtin": {"match": rf"(?i)\b(?:{words(BUILTINS)})\b",
                        "name": "support.function.builtin.cnn"},
            "function": {"match": rf"(?i)\b(?:{words(funcs)})(?=\s*\()",
                         "name": "support.function.math.cnn"},
            "keyword-argument": {"match": rf"\b({NAME})\s*(?==)", "captures": {
                "1": {"name": "variable.parameter.cnn"}}},
            "word": {"match": rf"(?i)\b(?:{words(WORDS)})\b", "name": "constant.language.cnn"},
            "shape": {"match": r"\b\d+\s*[x×]\s*\d+(?:\s*[x×]\s*\d+)*(?![A-Za-z0-9_])",
                      "name": "constant.numeric.shape.cnn"},
            "number": {"match": r"(?:\b\d+\.\d*|\.\d+|\b\d+)(?:[eE][-+]?\d+)?\b",
                       "name": "constant.numeric.cnn"},
            "in-shape": {"match": r"\bin\.[A-Za-z_][A-Za-z0-9_]*",
                         "name": "variable.language.in.cnn"},
            "logic": {"match": r"\b(?:and|or)\b", "name": "keyword.operator.logical.cnn"},
            # `X as skip` names a tensor, `@skip` reads it again (docs/language.md)
            "tensor-name": {"match": rf"\b(as)\s+({NAME})", "captures": {
                "1": {"name": "keyword.other.as.cnn"},
                "2": {"name": "variable.other.tensor.cnn"}}},
            "tensor-ref": {"match": rf"@{NAME}", "name": "variable.other.tensor.cnn"},
            "operator": {"match": r"->|→|==|!=|<=|>=|[-+*/?=,;:<>]",
                         "name": "keyword.operator.cnn"},
            "bracket": {"match": r"[()\[\]{}]", "name": "punctuation.section.brackets.cnn"},
            "name": {"match": NAME, "name": "variable.other.cnn"},
            "invalid": {"match": r"\S", "name": "invalid.illegal.cnn"},
        },
    }


# The order TextMate tries them in at each position (the earliest match wins, then the first).
# A keyword argument before the layers: `bias=false` names CONV's argument, not BIAS.
RULES = ("directive", "comment", "def", "in-shape", "input", "paper-token", "function",
         "keyword-argument", "layer", "builtin", "logic", "tensor-name", "tensor-ref", "word",
         "shape", "number", "operator",
         "bracket", "name", "invalid")


def text() -> str:
    return json.dumps(grammar(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.write_text(text(), encoding="utf-8")
    print(f"wrote {OUT}")
