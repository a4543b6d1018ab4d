"""The diagnostics catalogue: one bad spec per error kind, with its exact diagnostic.

tests/fixtures/errors/NAME.cnn is the spec; NAME.expected is what `cnndsl check NAME.cnn`
prints to stderr, then `# exit N`. The numbers quoted in shape errors are the lecture's
(2.33 for 7x7/3x3/stride 3, 55.25 for AlexNet at 224 with pad 2).
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest

from cnndsl import errors
from cnndsl.api import build_graph
from cnndsl.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "errors"
CASES = sorted(p.stem for p in FIXTURES.glob("*.cnn"))
KIND_OF_PREFIX = {"syntax": errors.CnnSyntaxError, "name": errors.CnnNameError,
                  "arg": errors.CnnArgumentError, "shape": errors.CnnShapeError,
                  "limit": errors.CnnLimitError}


def run_check(name: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(FIXTURES)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["check", f"{name}.cnn"])
    finally:
        os.chdir(cwd)
    return code, out.getvalue(), err.getvalue()


def test_the_catalogue_covers_every_error_class():
    prefixes = {name.split("_")[0] for name in CASES}
    assert prefixes == set(KIND_OF_PREFIX)
    assert len(CASES) >= 35


@pytest.mark.parametrize("name", CASES)
def test_diagnostic_matches_the_catalogue(name):
    expected = (FIXTURES / f"{name}.expected").read_text()
    *lines, status = expected.rstrip("\n").split("\n")
    code, out, err = run_check(name)
    assert out == ""
    assert err.rstrip("\n") == "\n".join(lines)
    assert status == f"# exit {code}" and code == 1


@pytest.mark.parametrize("name", CASES)
def test_error_class_and_location(name):
    with pytest.raises(errors.CnnDslError) as info:
        build_graph(FIXTURES / f"{name}.cnn")
    exc = info.value
    assert isinstance(exc, KIND_OF_PREFIX[name.split("_")[0]])
    first = (FIXTURES / f"{name}.expected").read_text().split("\n")[0]
    line, col = first.split(":")[1:3]
    assert (exc.span.line, exc.span.column) == (int(line), int(col))
    assert "Traceback" not in exc.render()


# -- F20 (issue 17): echoed source lines are escaped and cut around the caret --------------

@pytest.mark.parametrize("raw, shown", [
    ("\x1b[2J", "\\x1b[2J"),  # clears the screen
    ("\u202e", "\\u202e"),  # right-to-left override: reorders what follows
    ("\x00", "\\x00"),
])
def test_control_and_bidi_characters_in_the_echoed_line_are_escaped(raw, shown):
    from cnndsl.errors import CnnDslError
    with pytest.raises(CnnDslError) as info:
        build_graph(f"input 8x8x3\nCONV(4, 1) - RELUU # {raw} comment\n")
    rendered = info.value.render()
    assert raw not in rendered
    source_line, caret_line = rendered.splitlines()[1:3]
    assert source_line == f" 2 | CONV(4, 1) - RELUU # {shown} comment"
    assert caret_line == "   |              ^^^^^"


def test_an_escaped_character_before_the_caret_keeps_it_aligned():
    from cnndsl.errors import CnnDslError, Source, Span
    source = Source("s.cnn", "x\x1by RELUU")
    error = CnnDslError("boom", Span(source, 1, 5, 1, 10))
    _, line, caret = error.render().splitlines()
    assert line == " 1 | x\\x1by RELUU"
    assert caret.index("^") == line.index("RELUU") and caret.count("^") == 5


def test_a_long_line_is_cut_around_the_caret():
    from cnndsl.errors import SHOWN_CHARS, CnnDslError
    text = ("input 8x8x3\nCONV(4, 1) - " + "RELU - " * 100_000 + "RELUU" + " - RELU" * 1000
            + "\n")
    with pytest.raises(CnnDslError) as info:
        build_graph(text)
    _, line, caret = info.value.render().splitlines()[:3]
    assert len(line) < SHOWN_CHARS + 20  # was 700,000 characters
    assert line.startswith(" 2 | ...") and line.endswith("...")
    assert caret.index("^") == line.index("RELUU") and caret.count("^") == 5
