"""Bad input never crashes, hangs or corrupts: fuzzing, limits, safety, determinism."""
from __future__ import annotations

import ast as pyast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

import cnndsl
from cnndsl.errors import CnnDslError, CnnLimitError
from cnndsl.parse_tables import _lark
from conftest import layers_of

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.cnn"))
TOKENS = ["CONV", "conv3-64", "FC", "FC-10", "soft-max", "POOL", "RELU", "BN", "SOFTMAX",
          "input", "def", "residual", "concat", "add", "identity", "N", "M", "x", "(", ")",
          "[", "]", "{", "}", "-", "->", "+", ",", "*", "/", "?", "=", ";", "\n", " ", "1",
          "0", "3", "32x32x3", "2.5", "s=2", "pad=same", "same", "floor", "round=ceil", "#c",
          "\t", "GAP", "DWCONV", "SEPCONV", "LRN", "DROPOUT", "k", "c", "FLATTEN", "INPUT",
          "-1", "99999999999999", "1x7", "\r\n", "\ufeff", "→", "é",
          # number functions, PyTorch's spellings, a number-valued def
          "round", "floor", "ceil", "min", "max", "make_divisible", "min(", "max(1)",
          "Linear", "BatchNorm2d", "in_channels=3", "kernel_size=3", "ceil_mode=true",
          "def h(c) = c / 2", "h(", "0.5"]

any_text = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(TOKENS), max_size=30).map("".join),
    st.lists(st.sampled_from(TOKENS), max_size=30).map(" ".join),
)


def only_cnndsl_errors(text: str, **kw) -> None:
    """Spec text (never a path: build_graph would read `specs` or `-` as one) is checked."""
    from cnndsl.api import check_text, make_options

    variables = {k: v for k, v in kw.items() if k not in ("input", "classes")}
    options = make_options(variables, input=kw.get("input"), classes=kw.get("classes"))
    try:
        check_text(text, "<fuzz>", options)
    except CnnDslError as exc:
        exc.render()  # rendering a diagnostic must not fail either


# Arbitrary text seldom uses N and M: the warning that says so is expected, not checked here.
@pytest.mark.filterwarnings("ignore::cnndsl.UnusedVariableWarning")
@given(any_text)
def test_arbitrary_text_raises_nothing_but_cnndsl_errors(text):
    only_cnndsl_errors(text, input="32x32x3", classes=10, N=2, M=1)


@pytest.mark.parametrize("text", ["", " ", "\n", "# only a comment"])
def test_empty_spec_text_is_a_spec_error_not_a_path(text):
    with pytest.raises(CnnDslError):
        cnndsl.build_graph(text)


def _token_spans(text):
    parser = _lark()
    return [(t.start_pos, t.end_pos) for t in parser.lex(text, dont_ignore=False)]


SPEC_TEXTS = [p.read_text() for p in SPECS]
SPEC_TOKENS = [_token_spans(t) for t in SPEC_TEXTS]


@st.composite
def mutated_spec(draw):
    """A zoo spec with 1-3 tokens deleted, duplicated, swapped or replaced by a number."""
    i = draw(st.integers(0, len(SPEC_TEXTS) - 1))
    text, spans = SPEC_TEXTS[i], SPEC_TOKENS[i]
    for _ in range(draw(st.integers(1, 3))):
        j = draw(st.integers(0, len(spans) - 1))
        a, b = spans[j]
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "number"]))
        if op == "delete":
            text = text[:a] + text[b:]
        elif op == "duplicate":
            text = text[:b] + " " + text[a:b] + text[b:]
        elif op == "swap":
            c, d = spans[draw(st.integers(0, len(spans) - 1))]
            if b <= c:
                text = text[:a] + text[c:d] + text[b:c] + text[a:b] + text[d:]
        else:
            text = text[:a] + str(draw(st.sampled_from([0, 1, 2, 7, 10 ** 13]))) + text[b:]
        try:
            spans = _token_spans(text)
        except Exception:
            break
    return text


@given(mutated_spec())
def test_mutated_zoo_specs_never_crash(text):
    only_cnndsl_errors(text)


# -- limits: fast, clear refusals that name the limit and how to raise it -------------------

@pytest.mark.parametrize("text, words", [
    ("input 8x8x3\nCONV * 1000000000", "--max-layers"),
    ("input 8x8x3\n((CONV * 1000) * 1000) * 1000", "--max-layers"),
    ("input 8x8x3\ndef a = CONV - b\ndef b = RELU - a\na", "cannot use itself"),
    ("input 8x8x3\nCONV(" + "9" * 5000 + ")", "10^12"),
    ("input 8x8x3\n" + "(" * 100_000 + "CONV" + ")" * 100_000, "def"),
    ("input 8x8x3\nN = M\nM = N\nCONV * N", "cannot use itself"),
])
def test_limits_are_refused_with_a_way_out(text, words):
    with pytest.raises(CnnLimitError) as info:
        cnndsl.build_graph(text)
    assert words in info.value.render()


def test_layer_limit_can_be_raised():
    text = "input 8x8x3\nRELU * 300000"
    with pytest.raises(CnnLimitError):
        cnndsl.build_graph(text)
    assert cnndsl.build_graph("input 8x8x3\nRELU * 1000", max_layers=1000)


def test_a_50_mb_spec_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.cnn"
    with big.open("w") as f:
        f.write("input 8x8x3\n")
        f.write("RELU - " * 7_000_000 + "RELU\n")
    assert big.stat().st_size > 48_000_000
    r = subprocess.run([sys.executable, "-m", "cnndsl", "check", str(big)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1
    size = big.stat().st_size
    assert r.stderr.startswith(f"{big}:1:1: error: the spec is {size:,} bytes or more")
    assert "--max-bytes" in r.stderr


# -- safety ----------------------------------------------------------------------------------

def test_no_eval_exec_or_pickle_in_the_package():
    """One exec: the in-memory model runs the source cnndsl generated (torch_backend's
    load_class), after pysource.check_generated has refused anything but torch calls."""
    banned_calls = {"eval", "exec", "__import__"}
    execs = []
    for path in (ROOT / "cnndsl").rglob("*.py"):
        tree = pyast.parse(path.read_text(), str(path))
        functions = [f for f in pyast.walk(tree) if isinstance(f, pyast.FunctionDef)]
        for node in pyast.walk(tree):
            if isinstance(node, pyast.Call) and isinstance(node.func, pyast.Name) and \
                    node.func.id in banned_calls:
                inside = [f for f in functions if f.lineno <= node.lineno <= f.end_lineno]
                fn = inside[-1] if inside else None
                execs.append((path.name, fn.name if fn else None, node.func.id,
                              [pyast.unparse(s) for s in fn.body] if fn else []))
            if isinstance(node, (pyast.Import, pyast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] in ("pickle", "marshal", "shelve", "dill")
                               for n in names), f"{path}:{node.lineno}"
    assert [e[:3] for e in execs] == [("torch_backend.py", "load_class", "exec")]
    body = execs[0][3]
    checked = next(k for k, line in enumerate(body) if line == "check_generated(source)")
    assert checked < next(k for k, line in enumerate(body) if "exec(" in line)


def test_generated_code_is_checked_before_it_runs():
    from cnndsl.pysource import UnsafeSource, check_generated

    for bad in ["import os", "open('x')", "x = torch.load('f')", "x.__class__",
                "getattr(x, 'y')()", "for i in range(3):\n    pass"]:
        with pytest.raises(UnsafeSource):
            check_generated(bad)


def test_same_spec_gives_the_same_graph_in_fresh_processes():
    outputs = set()
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        r = subprocess.run([sys.executable, "-m", "cnndsl", "expand", str(ROOT / "specs" /
                            "vgg16.cnn")], capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        outputs.add(r.stdout)
    assert len(outputs) == 1


# -- F13 (issue 17): arguments PyTorch refuses at the first forward are refused at check ---

def torch_forward_error(make, shape=(1, 3, 8, 8)) -> str:
    """What PyTorch says when the module `make(torch.nn)` runs (the oracle below)."""
    import torch
    module = make(torch.nn)
    try:
        module.eval()(torch.zeros(shape))
    except (RuntimeError, ValueError) as exc:
        return str(exc)
    return ""


@pytest.mark.parametrize("layer, torch_module, message, torch_says", [
    ("BN(eps=-1)", lambda nn: nn.BatchNorm2d(3, eps=-1.0), "`eps` must be at least 0",
     "eps must be non-negative"),
    ("CONV(3, 1, pad=1000000000000)", lambda nn: nn.Conv2d(3, 3, 1, padding=10**12),
     "padding 1,000,000,000,000 makes the padded height 2,000,000,000,008",
     "Output size is too small"),
])
def test_arguments_pytorch_refuses_at_forward_are_refused_where_written(
        layer, torch_module, message, torch_says):
    assert torch_says in torch_forward_error(torch_module)
    with pytest.raises(CnnDslError, match=message) as info:
        cnndsl.build_graph(f"input 8x8x3\nRELU - {layer}\n")
    assert (info.value.span.line, info.value.span.column) == (2, 8)


def test_an_lrn_window_past_pytorchs_32_bit_sizes_is_refused_where_written():
    with pytest.raises(CnnDslError, match="LRN: the window of 1,000,000,000,000 channels") as info:
        cnndsl.build_graph("input 8x8x3\nRELU - LRN(1000000000000)\n")
    assert (info.value.span.line, info.value.span.column) == (2, 8)


def test_padding_and_eps_pytorch_accepts_still_check():
    assert torch_forward_error(lambda nn: nn.BatchNorm2d(3, eps=0.0)) == ""
    assert torch_forward_error(lambda nn: nn.Conv2d(3, 3, 1, padding=20)) == ""
    graph = cnndsl.build_graph("input 8x8x3\nBN(eps=0) - CONV(3, 1, pad=20) - LRN(9)\n")
    assert graph.graph["totals"]["output"].h == 8 + 2 * 20


# -- F14 (issue 17): variables from outside the spec are held to its number limit ---------

@pytest.mark.parametrize("value", [10 ** 30, 1e300, float("inf"), float("nan"), -10 ** 13])
def test_api_variables_past_the_number_limit_are_refused(value):
    from cnndsl.errors import UsageError
    with pytest.raises(UsageError, match="N="):
        cnndsl.build_graph("input 8x8x3\nCONV(N, 1)\n", N=value)


def test_cli_defines_past_the_number_limit_are_refused(tmp_path):
    spec = tmp_path / "n.cnn"
    spec.write_text("input 8x8x3\nCONV(N, 1)\n")
    r = subprocess.run([sys.executable, "-m", "cnndsl", "check", "-D", "N=1e300", str(spec)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "N=1e+300: numbers are limited to 1e+12" in r.stderr
    assert cnndsl.build_graph(spec, N=10 ** 12 // 10 ** 9).graph["totals"]["output"].c == 1000


# -- F23 (issue 17): the API's input= is read as the HxWxC text form is --------------------

def test_api_input_of_two_numbers_is_height_and_width_with_one_channel():
    graph = cnndsl.build_graph("CONV(4, 3, pad=1)\n", input=(8, 8))
    assert str(graph.graph["totals"]["output"]) == "8x8x4"
    text_form = cnndsl.build_graph("CONV(4, 3, pad=1)\n", input="8x8")
    assert graph.graph["totals"]["params"] == text_form.graph["totals"]["params"] == 4 * 9 + 4


@pytest.mark.parametrize("dims", [(1.5, 2, 3), (8, 8, 3, 1), (0, 8, 3), (-8, 8, 3), (True, 8, 3),
                                  (), "8x8x3x1", 8])
def test_api_input_that_is_not_positive_whole_sizes_is_refused(dims):
    from cnndsl.errors import UsageError
    with pytest.raises(UsageError):
        cnndsl.build_graph("CONV(4, 3, pad=1)\n", input=dims)


# -- F10 (issue 17): the API's explicit text= and path= forms -------------------------------

def test_text_is_never_opened_as_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("TOKEN=hunter2\n")
    with pytest.raises(CnnDslError) as info:  # the guessing form reads it and echoes it
        cnndsl.build_graph(str(secret))
    assert "hunter2" in info.value.render()
    with pytest.raises(CnnDslError) as info:
        cnndsl.build_graph(text=str(secret))
    assert "hunter2" not in info.value.render()
    assert info.value.span.source.text == str(secret)


def test_path_is_always_a_file_and_the_forms_are_exclusive(tmp_path):
    spec = tmp_path / "net.cnn"
    spec.write_text("input 8x8x3\nCONV(4, 1)\n")
    assert len(layers_of(cnndsl.build_graph(path=spec))) == 1
    assert len(layers_of(cnndsl.build_graph(path=str(spec)))) == 1
    from cnndsl import api
    graph = api.check_spec(text=spec.read_text())
    assert str(graph.totals["output"]) == "8x8x4"
    from cnndsl.errors import UsageError
    with pytest.raises(UsageError, match="cannot read"):
        cnndsl.build_graph(path="input 8x8x3\nCONV(4, 1)")  # text is not a path
    with pytest.raises(TypeError, match="give the spec once"):
        cnndsl.build_graph(str(spec), text="input 8x8x3\nRELU")
    with pytest.raises(TypeError, match="give the spec once"):
        cnndsl.build_graph()


def test_compile_takes_text_and_path_too(tmp_path):
    import torch
    spec = tmp_path / "net.cnn"
    spec.write_text("input 8x8x3\nCONV(4, 1)\n")
    for model in (cnndsl.compile(text=spec.read_text(), seed=0),
                  cnndsl.compile(path=spec, seed=0)):
        assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 4, 8, 8)
