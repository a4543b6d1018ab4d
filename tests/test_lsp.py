"""The language server's answers as functions (cnndsl/lsp.py, cnndsl/lsp_names.py), without a
client: diagnostics against the whole error catalogue, hovers, inlay hints, names, completion,
and the fuzzers' texts at every position. Numbers: LeNet-5's analysis table in the lecture
notes (CONV1 28x28x6 with 156 parameters, AVG POOL1 14x14x6 with none), the ResNet paper's stage
sizes (56, 28, 14, 7 at 224), the lecture's (7 - 3)/3 + 1 = 2.33."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_lsp_server import expected_diagnostic
from test_robustness import any_text, mutated_spec

from cnndsl import layers, lsp
from cnndsl.lsp_hover import hover
from cnndsl.lsp_names import complete

ROOT = Path(__file__).resolve().parent.parent
ERRORS = ROOT / "tests" / "fixtures" / "errors"
CASES = sorted(p.stem for p in ERRORS.glob("*.cnn"))
LENET = (ROOT / "specs" / "lenet5.cnn").read_text(encoding="utf-8")
RESNET50 = (ROOT / "specs" / "resnet50.cnn").read_text(encoding="utf-8")


def at(text: str, needle: str, offset: int = 0) -> tuple[int, int]:
    """(line, character) of the first `needle` in text, plus offset characters."""
    index = text.index(needle) + offset
    return text.count("\n", 0, index), index - text.rfind("\n", 0, index) - 1


@pytest.mark.parametrize("name", CASES)
def test_every_catalogue_error_is_a_diagnostic_where_check_puts_its_caret(name):
    text = (ERRORS / f"{name}.cnn").read_text(encoding="utf-8")
    message, (line, start, _, end), related = expected_diagnostic(name)
    errors = [d for d in lsp.analyze(text, f"{name}.cnn").diagnostics if d.severity == "error"]
    assert [d.message for d in errors] == [message]
    d = errors[0]
    assert d.related == related
    assert (d.range[0], d.range[1]) == (line, start)
    # the caret stops at the end of its line (or one past it, at the end of the spec); the
    # range may go on to the span's last line
    assert d.range[2] > line or d.range[3] == min(end, len(text.split("\n")[line]))


def test_a_directive_names_the_variables_and_warns_of_unused_ones():
    text = "# cnndsl: -D N=2 -D Q=3 --input 32x32x3 --classes 10\n(CONV-RELU)*N-FC-SOFTMAX\n"
    a = lsp.analyze(text)
    [warning] = a.diagnostics
    assert warning.severity == "warning" and "`Q`" in warning.message
    assert warning.range == (0, 20, 0, 23)  # Q=3
    assert lsp.inlay_hints(a) == [(1, 24, "10")]


@pytest.mark.parametrize("comment, says", [
    ("# cnndsl: -D N", "-D expects NAME=VALUE"),
    ("# cnndsl: --input 0x3", "sizes must be positive"),
    ("# cnndsl: -D N=1e300", "numbers are limited"),
    ("# cnndsl: --frobnicate", "takes -D NAME=VALUE"),
    ("# cnndsl: -D 'N=2", "quotation"),
])
def test_a_bad_directive_is_a_diagnostic_on_the_comment(comment, says):
    a = lsp.analyze(f"{comment}\ninput 8x8x1\nRELU\n")
    assert any(says in d.message and d.range[0] == 0 for d in a.diagnostics), a.diagnostics


def test_project_settings_give_variables_a_comment_overrides():
    text = "# cnndsl: -D N=3\ninput 8x8x1\nCONV(4, 3, pad=1) * N - FC(c)\n"
    a = lsp.analyze(text, settings={"defines": {"N": 1, "c": 5}, "input": "16x16x1"})
    assert a.diagnostics == []
    assert hover(a, *at(text, "* N", 2))[0].startswith("**variable** `N` = 3")
    assert lsp.inlay_hints(a) == [(2, len(text.split("\n")[2]), "5")]
    bad = lsp.analyze(text, settings={"defines": {"N": [1]}, "input": "big"})
    assert {d.severity for d in bad.diagnostics} >= {"warning"}


def test_hover_on_lenet5_gives_the_lectures_table_row_and_arithmetic():
    a = lsp.analyze(LENET)
    text, where = hover(a, *at(LENET, "CONV(6, 5)", 1))
    assert "**28x28x6**" in text and "| 156 |" in text
    assert "size (32 - 5 + 2*0)/1 + 1 = 28" in text
    assert "parameters 6 filters x (5*5*1 + 1) = 156" in text
    assert where == (*at(LENET, "CONV(6, 5)"), *at(LENET, "CONV(6, 5)", 10))
    text, _ = hover(a, *at(LENET, "AVGPOOL(2)", 1))
    assert "**14x14x6**" in text and "| 0 |" in text


def test_hover_on_a_layer_built_many_times_lists_its_instances():
    a = lsp.analyze(RESNET50)
    text, _ = hover(a, *at(RESNET50, "CONV(c, 3", 1))
    assert "built 16 times" in text  # 3 + 4 + 6 + 3 bottlenecks
    assert re.search(r"\| 56x56x64 \| 56x56x64 \|", text)
    assert "… 4 more" in text


def test_hover_on_a_rate_per_block_lists_each_blocks_rate():
    text = ("input 8x8x4\ndef cn = residual(CONV(4, 1) - DROPPATH(0.3 * index(cn)"
            " / (count(cn) - 1)))\ncn * 3\n")
    shown, _ = hover(lsp.analyze(text), *at(text, "DROPPATH", 1))
    assert "built 3 times" in shown
    assert "`DROPPATH 0`" in shown and "`DROPPATH 0.15`" in shown and "`DROPPATH 0.3`" in shown


def test_hover_on_a_variable_that_counts_blocks_gives_the_count():
    text = "input 8x8x4\ndef b = CONV(4, 1)\nn = count(b) * 2\nb * 3 - CONV(n, 1)\n"
    shown, _ = hover(lsp.analyze(text), *at(text, "CONV(n", 5))
    assert shown == "**variable** `n` = 6"


def test_hover_on_a_def_call_gives_its_shapes_and_totals():
    a = lsp.analyze(RESNET50)
    text, _ = hover(a, *at(RESNET50, "stage(128", 1))
    # the paper's conv3_x: 56x56 in, 28x28 out, 4 x 128 = 512 channels
    assert "56x56x256 → **28x28x512**" in text
    text, _ = hover(a, *at(RESNET50, "bottleneck(c, s)", 1))
    assert "called 4 times here" in text


def test_hover_on_variables_and_parameters_gives_their_values():
    a = lsp.analyze(RESNET50)
    text, _ = hover(a, *at(RESNET50, "FC(classes)", 4))
    assert text == "**variable** `classes` = 1,000"
    text, _ = hover(a, *at(RESNET50, "CONV(c, 3", 5))
    assert text.startswith("**parameter** `c` of `bottleneck` = 64, 128, 256, 512")


def test_inlay_hints_are_the_shape_at_each_lines_end_up_to_a_shape_error():
    text = "input 32x32x3\nCONV(8, 3, pad=1) - POOL(2)  # halves\n  - CONV(8, 3, s=2) - FC(10)\n"
    a = lsp.analyze(text)
    assert [d.message.split(":")[0] for d in a.diagnostics] == ["CONV #2"]  # (16 - 3)/2 + 1
    assert lsp.inlay_hints(a) == [(1, len("CONV(8, 3, pad=1) - POOL(2)"), "16x16x8")]


def test_definitions_and_references_of_a_parameter_stay_in_its_def():
    a = lsp.analyze(RESNET50)
    use = at(RESNET50, "CONV(c, 3", 5)
    [definition] = lsp.definition(a, *use)
    line = RESNET50.split("\n")[definition[0]]
    assert line.startswith("def bottleneck(c") and definition[1] == line.index("(c") + 1
    refs = lsp.references(a, *use)
    assert all(definition[0] <= r[0] <= definition[0] + 4 for r in refs) and len(refs) == 4
    assert len(lsp.references(a, *use, declaration=False)) == 3


def test_completion_inside_a_layer_call_offers_its_keywords_from_the_registry():
    text = "input 32x32x3\nCONV(64, 3, s"
    labels = {c.label for c in complete(text, 1, 13)}
    conv = layers.lookup("CONV")
    assert {p.name for p in conv.params} <= labels and "s" in labels
    assert not labels & set(layers.callable_names())
    after_equals = {c.label for c in complete("w = 2\nCONV(64, 3, s=", 1, 15)}
    assert "w" in after_equals and "stride" not in after_equals


def test_completion_outside_calls_offers_layers_defs_and_variables_in_scope():
    text = "input 8x8x1\nk = 3\ndef blk(c, s=1) = CONV(c, k) - \nRELU - "
    inside = {c.label: c.kind for c in complete(text, 2, len(text.split("\n")[2]))}
    assert inside["c"] == inside["k"] == "variable" and inside["blk"] == "block"
    assert {"CONV", "RELU", "residual", "concat", "round"} <= set(inside)
    outside = {c.label for c in complete(text, 3, 7)}
    assert "c" not in outside and "k" in outside
    assert {c.label for c in complete("blk(", 0, 4)} >= {"RELU"}


def test_zoo_completion_offers_the_bundled_specs():
    from cnndsl import modelzoo

    in_comment = complete("# like zoo:res", 0, 14)
    assert {c.label for c in in_comment} == set(modelzoo.names())
    [lenet] = [c for c in complete("zoo:le", 0, 6) if c.label == "zoo:lenet5"]
    assert lenet.insert == LENET and lenet.replace == (0, 0, 0, 6)


def test_formatting_is_cnndsl_fmt_and_nothing_for_formatted_or_broken_text():
    from cnndsl.fmt import format_text

    assert lsp.formatting(LENET) is None
    ugly = "input 8x8x1\nconv(4,3)-relu"
    assert lsp.formatting(ugly) == ((0, 0, 1, 14), format_text(ugly))
    assert lsp.formatting("CONV(") is None


def test_positions_count_what_the_editor_shows():
    # a BOM is not a column (the grammar skips it, the editor hides it); CRLF is one break
    text = "\ufeffinput 7x7x3\r\nCONV(10, 3, s=3)\r\n"
    [d] = lsp.analyze(text).diagnostics
    assert d.range == (1, 0, 1, 16)
    [d] = lsp.analyze("\ufeffinput 7x7x3 CONV").diagnostics
    assert d.range[:2] == (0, 13)


def every_answer(text: str) -> None:
    """Every feature at every few positions: none may raise."""
    a = lsp.analyze(text, "<fuzz>")
    json.dumps([vars(d) for d in a.diagnostics])
    lsp.inlay_hints(a)
    lsp.formatting(text)
    lines = a.text.split("\n")
    step = max(1, len(text) // 40)
    for line, s in enumerate(lines):
        for character in range(0, len(s) + 1, step):
            hover(a, line, character)
            lsp.definition(a, line, character)
            lsp.references(a, line, character)
            complete(a.text, line, character)


@pytest.mark.filterwarnings("ignore::cnndsl.UnusedVariableWarning")
@given(any_text, st.sampled_from(["", "# cnndsl: -D N=2 -D M=1 --input 32x32x3 --classes 10\n"]))
def test_no_text_makes_an_answer_fail(text, directive):
    every_answer(directive + text)


@given(mutated_spec())
def test_no_mutated_zoo_spec_makes_an_answer_fail(text):
    every_answer(text)


def test_check_imports_neither_pygls_nor_torch_and_the_server_no_torch():
    import subprocess
    import sys

    code = ("import sys\nfrom cnndsl.cli import main\nmain(['check', 'zoo:lenet5'])\n"
            "assert not {'pygls', 'lsprotocol', 'torch'} & set(sys.modules), 'imported'\n"
            "from cnndsl import lsp_server\nlsp_server.make_server()\n"
            "assert 'pygls' in sys.modules and 'torch' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "lenet5: ok" in done.stdout


def test_the_subcommand_is_listed():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "cnndsl", "lsp", "--help"],
                          check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--stdio" in done.stdout
