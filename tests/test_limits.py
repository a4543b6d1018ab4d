"""Nesting limits: deep specs check alike from the library and the command line, and past a
limit they get a located CnnLimitError, never a RecursionError or a traceback."""
from __future__ import annotations

import subprocess
import sys
import threading

import pytest

import cnndsl
from cnndsl import limits
from cnndsl.errors import CnnDslError, CnnLimitError
from cnndsl.fmt import format_text

from conftest import layers_of


def param_defs(n: int) -> str:
    """n parameterised defs, each calling the one before: `def b1(c) = b0(c)`."""
    lines = ["input 8x8x3", "def b0(c) = CONV(c, 1)"]
    lines += [f"def b{i}(c) = b{i - 1}(c)" for i in range(1, n)]
    return "\n".join(lines + [f"b{n - 1}(4)"]) + "\n"


def bare_defs(n: int) -> str:
    lines = ["input 8x8x3", "def b0 = RELU"]
    lines += [f"def b{i} = b{i - 1}" for i in range(1, n)]
    return "\n".join(lines + [f"b{n - 1}"]) + "\n"


def variables(n: int) -> str:
    lines = ["input 8x8x3", "v0 = 4"]
    lines += [f"v{i} = v{i - 1}" for i in range(1, n)]
    return "\n".join(lines + [f"CONV(v{n - 1}, 1)"]) + "\n"


def bracketed_defs(n: int, nest: int) -> str:
    """Defs that each nest `nest` brackets around the call of the one before."""
    lines = ["input 8x8x3", "def b0 = RELU"]
    lines += [f"def b{i} = " + "(" * nest + f"b{i - 1}" + ")" * nest for i in range(1, n)]
    return "\n".join(lines + [f"b{n - 1}"]) + "\n"


def nested_functions(n: int, nest: int) -> str:
    """Variables that each nest `nest` calls of max() around the one before: among the
    deepest Python recursions per level that the limits allow (see test below)."""
    lines = ["input 8x8x3", "v0 = 1"]
    lines += [f"v{i} = " + "max(1, " * nest + f"v{i - 1}" + ")" * nest for i in range(1, n)]
    return "\n".join(lines + [f"CONV(v{n - 1}, 1)"]) + "\n"


def check_cli(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnndsl", "check", str(path)],
                          capture_output=True, text=True, timeout=120, check=False)


def library_and_cli(tmp_path, text):
    """(the library's located error or None, the command line's run) for one spec file."""
    spec = tmp_path / "deep.cnn"
    spec.write_text(text)
    try:
        cnndsl.build_graph(spec)
        error = None
    except CnnLimitError as exc:
        error = exc
    return error, check_cli(spec)


# -- the library and the command line agree (issue 11) -----------------------------------

@pytest.mark.parametrize("n", [399, 400])
def test_deep_parameterised_defs_check_alike_from_library_and_cli(tmp_path, n):
    error, r = library_and_cli(tmp_path, param_defs(n))
    assert error is None
    # CONV(4, 1) on 8x8x3: 3 x 4 weights + 4 biases
    assert r.returncode == 0 and r.stdout.endswith("ok: 1 layer, output 8x8x4, 16 parameters\n")


@pytest.mark.parametrize("text, line, column", [
    (param_defs(401), 3, 13),  # the 401st definition entered is b0, called in b1
    (bare_defs(401), 3, 10),
    (variables(401), 3, 6),
])
def test_past_400_definitions_library_and_cli_give_the_same_located_error(tmp_path, text, line,
                                                                           column):
    error, r = library_and_cli(tmp_path, text)
    assert error is not None and error.message == "definitions nested deeper than 400 levels"
    assert (error.span.line, error.span.column) == (line, column)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr == error.render() + "\n"


def test_the_library_restores_the_recursion_limit():
    before = sys.getrecursionlimit()
    assert len(layers_of(cnndsl.build_graph(param_defs(400)))) == 1
    with pytest.raises(CnnLimitError):
        cnndsl.build_graph(param_defs(401))
    assert sys.getrecursionlimit() == before


def test_threads_building_at_once_share_one_raised_recursion_limit():
    before = sys.getrecursionlimit()
    results = []

    def work():
        results.append(len(layers_of(cnndsl.build_graph(bare_defs(400)))))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [1] * 4 and sys.getrecursionlimit() == before


# -- the 400-level limit is 400 (it was 200 for chains of bare names) ----------------------

@pytest.mark.parametrize("n", [202, 399, 400])
def test_a_chain_of_bare_name_defs_gives_its_layer(n):
    graph = cnndsl.build_graph(bare_defs(n))
    assert [d["kind"] for d in layers_of(graph)] == ["RELU"]


@pytest.mark.parametrize("n", [247, 400])
def test_a_chain_of_variables_gives_its_value(n):
    (conv,) = layers_of(cnndsl.build_graph(variables(n)))
    assert str(conv["shape"]) == "8x8x4"
    # `v1 = v0 + 1`, ...: each level also evaluates a sum (a RecursionError from 248 on)
    counted = variables(n).replace(" = v", " = 1 + v")
    (conv,) = layers_of(cnndsl.build_graph(counted))
    assert str(conv["shape"]) == f"8x8x{4 + n - 1}"


# -- F9 (issue 17): deep expressions are refused where they are written --------------------

@pytest.mark.parametrize("text, column", [
    ("input 8x8x3\nCONV(" + "-" * 495 + "4, 1)", 207),  # the 202nd `-` in a row
    ("input 8x8x3\nCONV(" + "-" * 15_000 + "4, 1)", 207),
    ("input 8x8x3\nRELU" + "?" * 987, 205),  # the 201st `?`
    ("input 8x8x3\nRELU" + "?" * 100_000, 205),
    # brackets and `-` together: the 101st bracket from the inside (the 50th written)
    ("input 8x8x3\nCONV(" + "-(" * 150 + "4" + ")" * 150 + ", 1)", 105),
])
def test_deep_expressions_are_refused_alike_from_library_and_cli(tmp_path, text, column):
    error, r = library_and_cli(tmp_path, text)
    assert error is not None and error.message == "expression nested deeper than 200 levels"
    assert (error.span.line, error.span.column) == (2, column)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr == error.render() + "\n"


@pytest.mark.parametrize("text", [
    "input 8x8x3\nRELU" + "?" * 200,
    "input 8x8x3\nCONV(" + "-" * 198 + "4, 1)",  # 198 levels of `-`, one of CONV's brackets
    "input 8x8x3\n" + "(" * 200 + "RELU" + ")" * 200,
])
def test_expressions_at_the_nesting_limit_check(text):
    assert len(layers_of(cnndsl.build_graph(text))) == 1


def test_definitions_that_each_nest_deeply_meet_a_located_limit_not_a_recursion_error():
    # 22 defs of 198 brackets each: 400 definitions of this would recurse 80,000 levels
    text = bracketed_defs(22, 198)
    with pytest.raises(CnnLimitError) as info:
        cnndsl.build_graph(text)
    assert info.value.message == ("definitions and the expressions in them nested deeper than "
                                  "4,000 levels in all")
    assert info.value.span.line == 4  # b1, the 21st definition entered, in b2's body
    assert len(layers_of(cnndsl.build_graph(bracketed_defs(20, 198)))) == 1


@pytest.mark.parametrize("text", [bracketed_defs(22, 198), nested_functions(22, 198),
                                  nested_functions(60, 60)])
def test_half_the_recursion_headroom_suffices_at_the_limits(monkeypatch, text):
    # The deepest Python recursion the limits allow, measured by bisection, was 16,330
    # frames (these specs); RECURSION_LIMIT leaves three times that. Half of it must do,
    # in a thread as well (a thread's C stack is no larger than the main one's).
    outcomes = []

    def build():
        try:
            outcomes.append(len(layers_of(cnndsl.build_graph(text))))
        except CnnLimitError as exc:
            outcomes.append(exc.message)
        except RecursionError:
            outcomes.append("RecursionError")

    full = threading.Thread(target=build)
    full.start()
    full.join()
    monkeypatch.setattr(limits, "RECURSION_LIMIT", limits.RECURSION_LIMIT // 2)
    build()
    assert "RecursionError" not in outcomes and outcomes[0] == outcomes[1]


def test_fmt_follows_long_definition_chains_without_recursing_through_them():
    # written last-first, each def's formatting asks whether the next one gives layers
    lines = ["input 8x8x3"] + [f"def b{i} = b{i - 1} - RELU" for i in range(3000, 0, -1)]
    text = "\n".join(lines + ["def b0 = RELU", "b3000"]) + "\n"
    assert format_text(text) == text
    assert format_text(param_defs(401)) == param_defs(401)


# -- F5 (issue 17): evaluation work, not only layers, is bounded -------------------------

def tripled_number_defs(n: int) -> str:
    """`def fi(x) = f(i-1)(x) + f(i-1)(x) - f(i-1)(x)`: f_n(x) is x, reached by 3^n calls
    unless a number def's value is remembered per argument values."""
    lines = ["input 8x8x3", "def f0(x) = x"]
    lines += [f"def f{i}(x) = f{i - 1}(x) + f{i - 1}(x) - f{i - 1}(x)" for i in range(1, n + 1)]
    return "\n".join(lines + [f"CONV(f{n}(2), 1)"]) + "\n"


def test_number_defs_are_evaluated_once_per_argument_values(monkeypatch):
    from cnndsl.values import Evaluator
    calls = 0
    original = Evaluator.value

    def counting(self, *args, **kwargs):
        nonlocal calls
        calls += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Evaluator, "value", counting)
    (conv,) = layers_of(cnndsl.build_graph(tripled_number_defs(12)))
    assert str(conv["shape"]) == "8x8x2"  # f12(2) = 2 + 2 - 2 ... = 2 channels
    assert calls < 2_000  # 3^12 = 531,441 evaluations of f0 without the memo


def test_is_number_of_a_def_reading_its_argument_is_remembered_per_argument_kind(
        monkeypatch):
    from cnndsl.values import Evaluator
    calls = 0
    original = Evaluator.is_number

    def counting(self, *args, **kwargs):
        nonlocal calls
        calls += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Evaluator, "is_number", counting)
    cnndsl.build_graph(tripled_number_defs(12))
    assert calls < 2_000


def doubled_empty_defs(n: int) -> str:
    lines = ["input 8x8x3", "def b0 = RELU * 0"]
    lines += [f"def b{i} = b{i - 1} - b{i - 1}" for i in range(1, n + 1)]
    return "\n".join(lines + [f"CONV(4, 1) - b{n}"]) + "\n"


def test_exponentially_many_empty_block_calls_are_refused_where_they_are_made():
    # 2^20 calls of b0, none making a layer: no layer limit applies
    with pytest.raises(CnnLimitError, match="without making a layer") as info:
        cnndsl.build_graph(doubled_empty_defs(20))
    assert info.value.span.line == 3  # `def b1 = b0 - b0`, where the empty calls are made


def test_a_few_empty_blocks_still_check():
    (conv,) = layers_of(cnndsl.build_graph(doubled_empty_defs(10)))  # 1,024 empty calls
    assert conv["kind"] == "CONV"


def test_a_repeat_whose_first_copy_is_empty_builds_no_more_copies(monkeypatch):
    from cnndsl.expand import Expander
    calls = 0
    original = Expander.build

    def counting(self, *args, **kwargs):
        nonlocal calls
        calls += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Expander, "build", counting)
    graph = cnndsl.build_graph("input 8x8x3\nCONV(4, 1) - (((RELU * 0) * 1000) * 1000) * 100\n")
    assert [d["kind"] for d in layers_of(graph)] == ["CONV"]
    assert calls < 100  # 10^8 empty copies without the shortcut


# -- F6 (issue 17): the adaptive pool's widest window in O(1) -----------------------------

def torch_widest_adaptive_window(size: int, out: int) -> int:
    """The widest window PyTorch's adaptive average pool uses: pool one-hot rows and count,
    per output, the inputs that reach it."""
    import torch
    rows = torch.eye(size).unsqueeze(1)  # (size, 1, size): row i is input i alone
    reached = torch.nn.AdaptiveAvgPool1d(out)(rows).squeeze(1) != 0  # (input, output)
    return int(reached.sum(dim=0).max())


@pytest.mark.parametrize("size, out", [(7, 3), (8, 3), (8, 4), (9, 2), (13, 5), (13, 13),
                                       (6, 4), (2, 3), (4, 6), (5, 17), (1, 4), (12, 7)])
def test_the_adaptive_pool_window_is_pytorchs_widest(size, out):
    from cnndsl import layers
    from cnndsl.shapes import Shape
    kind = layers.get("ADAPTIVEAVGPOOL")
    (kh, kw), _, _ = kind.window({"size": (out, 1)}, [Shape.volume(size, 1, 3)])
    assert kh == torch_widest_adaptive_window(size, out)
    assert kw == 1


def test_a_huge_adaptive_pool_size_checks_without_a_loop_over_its_windows():
    # a loop over the 2*10^9 windows takes about an hour; the run is bounded so a
    # regression fails rather than hangs. (PyTorch upsamples to such a size, too.)
    proc = subprocess.run([sys.executable, "-m", "cnndsl", "check", "-"], timeout=60,
                          input="input 8x8x3\nADAPTIVEAVGPOOL(1x2000000000)\n",
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "output 1x2000000000x3" in proc.stdout


def test_an_adaptive_pool_size_past_pytorchs_32_bit_sizes_is_refused_where_written():
    with pytest.raises(CnnDslError, match=r"output size 1x1000000000000 is larger than "
                       r"PyTorch can size") as info:
        cnndsl.build_graph("input 8x8x3\nCONV(4, 1) - ADAPTIVEAVGPOOL(1x1000000000000)\n")
    assert (info.value.span.line, info.value.span.column) == (2, 14)


# -- F7 (issue 17): big specs within the byte limit are refused before lark parses them ---

def test_a_spec_past_the_token_limit_is_refused_at_the_first_token_past_it(monkeypatch):
    from cnndsl import parser
    monkeypatch.setattr(parser, "MAX_TOKENS", 100)
    # tokens: input 8x8x3 \n CONV ( then `1` `,` pairs: token 100 (from 0) is a `,`
    with pytest.raises(CnnLimitError, match="more than 100 tokens") as info:
        cnndsl.build_graph("input 8x8x3\nCONV(" + "1," * 200 + "1)\n")
    span = info.value.span
    assert (span.line, span.column) == (2, 1 + len("CONV(" + "1," * 47 + "1"))
    cnndsl.build_graph("input 8x8x3\n" + "RELU - " * 32 + "RELU\n")  # 99 tokens: fine


@pytest.mark.parametrize("text", [
    "input 8x8x3\nCONV(" + "1," * 1_500_000 + "1)\n",  # 1.5M arguments, 3 MB
    "input 8x8x3\nCONV(4,1)-" + "(RELU)*0-" * 400_000 + "RELU\n",
    "input 8x8x3\n" + "RELU? - " * 500_000 + "RELU\n",
])
def test_specs_of_millions_of_tokens_under_the_byte_limit_are_refused(text):
    with pytest.raises(CnnLimitError, match="tokens") as info:
        cnndsl.build_graph(text)
    assert info.value.span.line == 2


def test_optional_sites_are_kept_once_each_in_the_order_met():
    from cnndsl import expand, parser
    text = "input 8x8x3\nCONV(4, 1)? - (RELU?) * 3 - BN? - RELU? - BN?\n"
    expander = expand.Expander(parser.parse(text), expand.Options())
    graph = expander.run()
    assert graph.optional_sites == [(2, 1), (2, 16), (2, 29), (2, 35), (2, 43)]
    # hashed, not a list scanned per site: 50,000 `RELU?` took minutes
    assert isinstance(expander.optional_sites, dict)


def test_recursion_is_found_past_the_chain_checkpoints():
    """The recursion check skips along the chain by _Chain.above (every 32nd link): a def
    that comes back to itself 71 links up is still named with the whole cycle, and a def
    used in its own argument 70 links deep is still no recursion (issue 17, F8)."""
    text = ("input 8x8x3\ndef b0 = b70\n"
            + "".join(f"def b{i} = RELU - b{i - 1}\n" for i in range(1, 71)) + "b70\n")
    with pytest.raises(CnnLimitError) as info:
        cnndsl.build_graph(text=text)
    cycle = " -> ".join(f"b{i}" for i in range(70, -1, -1))
    assert info.value.message == f"`b70` refers to itself ({cycle} -> b70)"
    text = ("input 8x8x3\ndef n0(x) = x\n"
            + "".join(f"def n{i}(x) = n{i - 1}(x)\n" for i in range(1, 71))
            + "CONV(n70(n70(4)), 1)\n")
    assert str(layers_of(cnndsl.build_graph(text=text))[-1]["shape"]) == "8x8x4"
