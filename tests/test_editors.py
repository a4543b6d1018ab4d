"""editors/: the VS Code extension's TextMate grammar highlights every token of every zoo spec
(none gets `invalid`), names what the registry knows, and the editors' set-up files are
well formed."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from cnndsl import layers

ROOT = Path(__file__).resolve().parent.parent
VSCODE = ROOT / "editors" / "vscode"
GRAMMAR = json.loads((VSCODE / "syntaxes" / "cnndsl.tmLanguage.json").read_text("utf-8"))
SPECS = sorted((ROOT / "specs").glob("*.cnn"))


def rules() -> list[tuple[re.Pattern, dict]]:
    """The grammar's top-level patterns, in order: (regex, {group: scope})."""
    out = []
    for item in GRAMMAR["patterns"]:
        rule = GRAMMAR["repository"][item["include"].lstrip("#")]
        scopes = {int(k): v["name"] for k, v in rule.get("captures", {}).items()}
        if "name" in rule:
            scopes[0] = rule["name"]
        out.append((re.compile(rule["match"]), scopes))
    return out


def tokenize(line: str) -> list[tuple[str, str]]:
    """(text, scope) for each piece of a line, as TextMate scans one: at each position the
    earliest match wins, the first rule among equals; a capture's scope covers its group."""
    compiled, out, pos = rules(), [], 0
    while pos < len(line):
        found = [(m.start(), i, m) for i, (rx, _) in enumerate(compiled)
                 if (m := rx.search(line, pos))]
        if not found:
            out.append((line[pos:], ""))
            break
        start, i, m = min(found, key=lambda f: (f[0], f[1]))
        out.append((line[pos:start], ""))
        scopes = compiled[i][1]
        groups = sorted((g for g in scopes if g > 0 and m.group(g)), key=m.start)
        at = m.start()
        for g in groups:
            out += [(line[at:m.start(g)], scopes.get(0, "")), (m.group(g), scopes[g])]
            at = m.end(g)
        out.append((line[at:m.end()], scopes.get(0, "")))
        pos = max(m.end(), pos + 1)
    return [(text, scope) for text, scope in out if text]


def scopes_of(text: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for line in text.split("\n"):
        for piece, scope in tokenize(line):
            found.setdefault(piece.strip(), set()).add(scope)
    return found


def test_the_grammar_is_the_one_the_registry_makes():
    sys.path.insert(0, str(VSCODE))
    try:
        import make_grammar
    finally:
        sys.path.remove(str(VSCODE))
    assert (VSCODE / "syntaxes" / "cnndsl.tmLanguage.json").read_text("utf-8") == \
        make_grammar.text(), "run python editors/vscode/make_grammar.py"


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_token_of_every_zoo_spec_gets_a_scope_that_is_not_invalid(spec):
    for number, line in enumerate(spec.read_text("utf-8").split("\n"), 1):
        for piece, scope in tokenize(line):
            if piece.strip():
                assert scope and not scope.startswith("invalid"), (spec.name, number, piece)


def test_the_grammar_highlights_the_languages_words():
    text = ("# cnndsl: -D N=2\ninput 32x32x3\nclasses = 10\n"
            "def stage(c, n) = (CONV(c, 3, pad=same, bias=false) - RELU) * n - MAXPOOL(2)\n"
            "conv3-64 - stage(64, N) - residual(BN) - FC(make_divisible(0.5 * 64)) -> soft-max")
    found = scopes_of(text)
    assert found["def"] == {"keyword.control.def.cnn"}
    assert found["stage"] >= {"entity.name.function.cnn"}
    assert found["input"] == {"keyword.other.input.cnn"}
    assert found["CONV"] == found["RELU"] == found["conv3-64"] == found["soft-max"] == {
        "entity.name.type.layer.cnn"}
    assert found["bias"] == found["pad"] == {"variable.parameter.cnn"}  # BIAS is a kind too
    assert found["residual"] == {"support.function.builtin.cnn"}
    assert found["make_divisible"] == {"support.function.math.cnn"}
    assert found["32x32x3"] == {"constant.numeric.shape.cnn"}
    assert found["0.5"] == found["64"] == {"constant.numeric.cnn"}
    assert found["same"] == {"constant.language.cnn"}
    assert found["#"] == {"comment.line.number-sign.cnn"}
    assert found["cnndsl:"] == {"keyword.other.directive.cnn"}
    assert found["->"] == {"keyword.operator.cnn"}
    assert ("@", "invalid.illegal.cnn") in tokenize("CONV @ 3")  # what the parser refuses


def test_every_layer_name_is_highlighted_as_one():
    for name in layers.callable_names():
        assert tokenize(f"{name}(3)")[0] == (name, "entity.name.type.layer.cnn"), name
        assert tokenize(name.lower())[0][1] == "entity.name.type.layer.cnn", name


def test_the_extension_is_well_formed():
    package = json.loads((VSCODE / "package.json").read_text("utf-8"))
    [language] = package["contributes"]["languages"]
    [grammar] = package["contributes"]["grammars"]
    assert language["extensions"] == [".cnn"] and grammar["language"] == language["id"]
    assert grammar["scopeName"] == GRAMMAR["scopeName"]
    for path in (package["main"], grammar["path"], language["configuration"]):
        assert (VSCODE / path).is_file(), path
    json.loads((VSCODE / language["configuration"]).read_text("utf-8"))
    client = (VSCODE / package["main"]).read_text("utf-8")
    assert '"cnndsl", "lsp"' in client and "vscode-languageclient" in package["dependencies"]


def test_neovim_and_helix_start_cnndsl_lsp():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    helix = tomllib.loads((ROOT / "editors" / "helix" / "languages.toml").read_text("utf-8"))
    assert helix["language-server"]["cnndsl"] == {"command": "cnndsl", "args": ["lsp"],
                                                  "config": {"defines": {}}}
    assert helix["language"][0]["file-types"] == ["cnn"]
    lua = (ROOT / "editors" / "nvim" / "cnndsl.lua").read_text("utf-8")
    assert 'cmd = { "cnndsl", "lsp" }' in lua and "cnn = \"cnndsl\"" in lua
