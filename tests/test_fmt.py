"""The formatter: canonical style, comments kept, idempotent, and the same IR before and after."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnndsl
from cnndsl.errors import CnnDslError
from cnndsl.fmt import WIDTH, format_text
from cnndsl.parser import parse

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.cnn"))


def ir_of(graph: nx.DiGraph):
    """What a checked graph computes, without source positions: nodes in data-flow order with
    kinds, resolved params, shapes and costs, the block/repeat structure, and the edges."""
    order = list(nx.lexicographical_topological_sort(graph))
    index = {v: i for i, v in enumerate(order)}
    nodes = []
    for v in order:
        d = graph.nodes[v]
        frames = tuple((f.kind, f.name, f.index, f.count) for f in d["path"])
        nodes.append((d["kind"], d["params"], str(d["shape"]), d["n_params"], d["n_buffers"],
                      d["macs"], d["rf"], d["name"], d.get("implicit", False),
                      d.get("alias"), d.get("written"), frames))
    edges = sorted((index[u], index[v], e["index"]) for u, v, e in graph.edges(data=True))
    return nodes, edges, graph.graph["totals"], len(graph.graph["optional_sites"])


def comments_of(text: str) -> list[str]:
    # Trailing comments of one line may be joined into one: compare the pieces.
    return sorted(piece.strip() for c in re.findall(r"#[^\n]*", text)
                  for piece in c.split("#")[1:])


def assert_same_meaning(text: str, formatted: str) -> None:
    try:
        before = cnndsl.build_graph(text)
    except CnnDslError as exc:
        with pytest.raises(type(exc)) as after:
            cnndsl.build_graph(formatted)
        assert after.value.message == exc.message
        return
    assert ir_of(cnndsl.build_graph(formatted)) == ir_of(before)


def assert_round_trip(text: str) -> str:
    formatted = format_text(text)
    assert format_text(formatted) == formatted, formatted
    parse(formatted)
    assert_same_meaning(text, formatted)
    assert comments_of(formatted) == comments_of(text)
    return formatted


# -- the canonical style ---------------------------------------------------------------------

def test_spacing_case_separators_and_keywords():
    text = "input: 32 x 32 x 3\nconv(6,5,s = 1) ->relu, maxpool( 2 )+ fc(10) → softmax\n"
    assert format_text(text) == ("input 32x32x3\n"
                                 "CONV(6, 5, s=1) - RELU - MAXPOOL(2) - FC(10) - SOFTMAX\n")


def test_the_lecture_pattern_as_the_notes_write_it():
    # CS231n: "[(CONV-RELU)*N-POOL]*M-(FC-RELU)*K,SOFTMAX" (a comma before SOFTMAX).
    text = "input 32x32x3\nclasses = 10\n[(CONV-RELU)*N-POOL]*M-(FC-RELU)*K,SOFTMAX\n"
    assert format_text(text).splitlines()[2] == (
        "[(CONV - RELU) * N - POOL] * M - (FC - RELU) * K - SOFTMAX")
    for n, m, k in ((1, 1, 0), (3, 2, 1), (5, 5, 2)):
        assert ir_of(cnndsl.build_graph(format_text(text), N=n, M=m, K=k)) == ir_of(
            cnndsl.build_graph(text, N=n, M=m, K=k))


def test_aliases_and_paper_tokens_stay_as_written_but_upper_case():
    text = "input 224x224x3\nconv3-64 - relu - pool - norm - FC-4096 - soft-max\n"
    assert format_text(text).splitlines()[1] == "conv3-64 - RELU - POOL - NORM - FC-4096 - soft-max"


def test_arithmetic_keeps_its_operators():
    text = "c=8\nN=c+1\ndef blk(a, b) = CONV(a+b, 3, pad=1) - RELU\ninput 8x8x3\nblk(c, N-2)*2\n"
    assert format_text(text) == ("c = 8\nN = c + 1\n"
                                 "def blk(a, b) = CONV(a + b, 3, pad=1) - RELU\n"
                                 "input 8x8x3\nblk(c, N - 2) * 2\n")


def test_plus_between_parameters_is_kept_because_they_may_be_numbers():
    # `a + b` joins layers when blk gets layers, adds when it gets numbers: keep it.
    text = "def blk(a, b) = a + b\ninput 8x8x3\nblk(CONV(4, 3, pad=1), RELU)\n"
    assert "def blk(a, b) = a + b\n" in format_text(text)
    assert_round_trip(text)


def test_groups_brackets_repeats_and_optional_are_kept():
    text = "input 32x32x3\n[ ( CONV(8,3,pad=1) -RELU ) *2 - POOL ] * 2 - {FC(10)}? - SOFTMAX\n"
    assert format_text(text).splitlines()[1] == (
        "[(CONV(8, 3, pad=1) - RELU) * 2 - POOL] * 2 - {FC(10)}? - SOFTMAX")


def test_statements_semicolons_and_blank_lines():
    text = "\n\nN = 2; M = 3\n\n\n\ninput 8x8x3\nCONV(4, 3, pad=1) * N\n\n"
    assert format_text(text) == "N = 2\nM = 3\n\ninput 8x8x3\nCONV(4, 3, pad=1) * N\n"


def test_long_chains_wrap_with_continuation_lines():
    text = "input 32x32x3\n" + " - ".join(["CONV(64, 3, pad=1) - RELU"] * 8) + "\n"
    lines = format_text(text).splitlines()
    assert len(lines) > 2 and all(len(ln) <= WIDTH for ln in lines)
    assert all(ln.startswith("  - ") for ln in lines[2:])
    assert_round_trip(text)


def test_written_line_breaks_of_a_chain_are_kept():
    text = "input 32x32x3\nCONV(8, 3, pad=1) - RELU\n- POOL\n    - FC(10) - SOFTMAX\n"
    assert format_text(text) == ("input 32x32x3\nCONV(8, 3, pad=1) - RELU\n  - POOL\n"
                                 "  - FC(10) - SOFTMAX\n")


def test_a_call_too_long_for_a_line_is_exploded_with_a_trailing_comma():
    body = " - ".join(["CONV(64, 3, pad=1, bias=false) - BN"] * 3)
    text = f"input 32x32x64\nresidual({body}) - RELU\n"
    out = format_text(text)
    assert out.splitlines()[1] == "residual("
    assert out.splitlines()[-1] == ") - RELU"
    assert all(len(ln) <= WIDTH for ln in out.splitlines())
    assert_round_trip(text)


def test_comments_are_kept_in_place():
    text = ("# header\n\n# about the input\ninput 32x32x3   # CIFAR\n"
            "CONV(8, 3, pad=1) - RELU  # stage 1\n  # then pool\n  - POOL\n# the end\n")
    assert format_text(text) == ("# header\n\n# about the input\ninput 32x32x3  # CIFAR\n"
                                 "CONV(8, 3, pad=1) - RELU  # stage 1\n  # then pool\n"
                                 "  - POOL\n# the end\n")


def test_comments_inside_a_joined_line_move_to_its_end():
    text = "input 8x8x3\nresidual(CONV(3, 3, pad=1)  # body\n  - BN)\n"
    assert format_text(text) == "input 8x8x3\nresidual(CONV(3, 3, pad=1) - BN)  # body\n"


def test_defs_named_as_layers_keep_their_case():
    text = "input 8x8x3\ndef pool = MAXPOOL(3, 2, round=floor)\nCONV(4, 3, pad=1) - pool - pool\n"
    assert "- pool - POOL" in assert_round_trip(text.replace("- pool\n", "- POOL\n"))


def test_conditions_and_input_shapes_round_trip():
    text = ("input 8x8x4\ndef f(s)=if(s==1 and in.c==4 or s>5,RELU,CONV(in.c*2,1))\n"
            "f(1)-f(2) - gate(GAP-CONV(in.c,1)-SIGMOID)\n")
    assert "if(s == 1 and in.c == 4 or s > 5, RELU, CONV(in.c * 2, 1))" in \
        assert_round_trip(text)


def test_parameter_names_are_never_recased():
    text = "def f(pool) = CONV(4, 3, pad=1) - pool\ninput 8x8x3\nf(RELU)\n"
    assert "- pool\n" in format_text(text)
    assert_round_trip(text)


# -- specs/ ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_spec_round_trips(path):
    assert_round_trip(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_spec_is_formatted(path):
    text = path.read_text(encoding="utf-8")
    assert format_text(text) == text, f"run: cnndsl fmt {path.relative_to(ROOT)}"


# -- random specs ----------------------------------------------------------------------------

def layer_text(draw) -> str:
    kind = draw(st.sampled_from(["conv", "relu", "bn", "pool", "vgg", "drop", "dw", "leaky",
                                 "modern"]))
    name = lambda n: draw(st.sampled_from([n, n.lower(), n.capitalize()]))  # noqa: E731
    if kind == "conv":
        k = draw(st.sampled_from([1, 3, 5]))
        kernel = draw(st.sampled_from([str(k), f"{k}x{k}", f"({k} - 1 + 1)", f"{k} x {k}"]))
        pad = draw(st.sampled_from(["", ", pad=same", f", pad={k // 2}", ", pad=0"]))
        stride = draw(st.sampled_from(["", "", ", s=2", ",s = 1", ", s=4/2"]))
        filters = draw(st.sampled_from(["8", "C", "2*C", "C+4", "C - -2", "16 / 2",
                                        "round(C) + MAX(1, C)", "make_divisible(C * 0.6)",
                                        "floor(C/3) - -ceil(1.5)", "ch(C) + ch(2)"]))
        comma = draw(st.sampled_from(["", "", ",", " ,\n  "]))
        return (f"{name('CONV')}({filters},{draw(st.sampled_from(['', ' ']))}{kernel}{stride}"
                f"{pad}{comma})")
    return {"relu": lambda: name("RELU"), "bn": lambda: name("BN") + draw(st.sampled_from(
        ["", "()"])), "pool": lambda: draw(st.sampled_from(["POOL", "maxpool(2)", "AVGPOOL(2)"])),
        "vgg": lambda: draw(st.sampled_from(["conv3-8", "conv1-16", "FC-10", "soft-max"])),
        "drop": lambda: draw(st.sampled_from(["DROPOUT(0.5)", "dropout(.5)", "DROP(5e-1)"])),
        "dw": lambda: "DWCONV(3, pad=1)",
        "leaky": lambda: "LeakyReLU(0.1)",
        "modern": lambda: draw(st.sampled_from([
            "hswish", "MISH", "Hardsigmoid", "PRELU(per_channel=true)", "LAYERNORM(eps=1e-6)",
            "LAYERSCALE", "DROPPATH(0.1)", "SHUFFLE(1)", "CONV(in.c, 1)", "CONV(in.c*2,1)",
            "gate(GAP - CONV(in.c,1) - SIGMOID)", "if(in.c >= 8 and N==2, RELU)",
            "if(in.c<C or N != 2, TANH, identity)", "CONV(if(N > 1, C, 4), 1)"]))}[kind]()


SEPARATORS = [" - ", "-", " -> ", "->", " + ", "  -  ", " -\n  ", "\n  - ", " ->  # c\n  ",
              "  # note\n  - "]


def expr_text(draw, depth: int, top: bool, defs: list[str]) -> str:
    n = draw(st.integers(1, 4))
    items = []
    for _ in range(n):
        choice = draw(st.integers(0, 9 if depth < 2 else 3))
        if choice <= 3:
            item = layer_text(draw)
        elif choice == 4:
            o, c = draw(st.sampled_from(["()", "[]", "{}"]))
            item = f"{o}{expr_text(draw, depth + 1, False, defs)}{c}" + draw(st.sampled_from(
                ["*2", " * N", "*1", "* (N - 1)", ""]))
        elif choice == 5:
            item = f"residual({expr_text(draw, depth + 1, False, defs)})"
        elif choice == 6:
            a, b = (expr_text(draw, depth + 1, False, defs) for _ in range(2))
            item = f"concat({a},\n   {b})"
        elif choice == 7:
            item = layer_text(draw) + "?"
        elif choice == 8 and defs:
            item = draw(st.sampled_from(defs))
        else:
            item = f"identity - {layer_text(draw)}"
        items.append(item)
    seps = SEPARATORS + ([", "] if top else [])
    out = items[0]
    for item in items[1:]:
        out += draw(st.sampled_from(seps)) + item
    return out


@st.composite
def spec_texts(draw) -> str:
    lines = [draw(st.sampled_from(["input 16x16x3", "input: 16 x 16 x 3", "INPUT = 16x16x3"]))]
    lines.append(draw(st.sampled_from(["N = 2", "N=1+1", "N = 4 / 2"])) +
                 draw(st.sampled_from(["", "  # two", ";C = 8"])))
    if "C =" not in lines[-1]:
        lines.append("C=8")
    lines.append("def ch(c) = c / 2 + 1")  # a number function of the spec's own
    defs = []
    if draw(st.booleans()):
        lines.append(f"def blk(c, n=1) = (CONV(c, 3, pad=1) -> relu)*n - {layer_text(draw)}")
        defs = ["blk(8)", "blk(C, n=N)", "blk(4 + 4)"]
    if draw(st.booleans()):
        lines.append(f"def small = {expr_text(draw, 1, False, [])}")
        defs.append("small")
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(
            ["# a comment", "", "  # indented comment", "\n"])))
    lines.append(draw(st.sampled_from(["", "INPUT -> "])) + expr_text(draw, 0, True, defs))
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n# end\n", "\n\n"]))


# ~100 examples keep the default run to seconds; the long profile (make test-long) runs its own.
FUZZ_EXAMPLES = 100 if settings.default.max_examples <= 200 else settings.default.max_examples


@settings(max_examples=FUZZ_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(spec_texts())
def test_random_specs_round_trip(text):
    assert_round_trip(text)


# -- the command -----------------------------------------------------------------------------

def run_cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "cnndsl", "fmt", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_cli_rewrites_files_and_check_reports_a_diff(tmp_path):
    messy, clean = tmp_path / "messy.cnn", tmp_path / "clean.cnn"
    messy.write_text("input 32x32x1\nconv(6,5)->relu\n")
    clean.write_text("input 32x32x1\nCONV(6, 5) - RELU\n")
    r = run_cli("--check", str(messy), str(clean))
    assert r.returncode == 1
    assert "-conv(6,5)->relu\n+CONV(6, 5) - RELU\n" in r.stdout
    assert messy.read_text() == "input 32x32x1\nconv(6,5)->relu\n"  # --check changes nothing
    r = run_cli(str(messy), str(clean))
    assert r.returncode == 0, r.stderr
    assert messy.read_text() == clean.read_text()
    assert not list(tmp_path.glob(".*.tmp"))
    assert run_cli("--check", str(messy)).returncode == 0


def test_cli_stdin_to_stdout():
    r = run_cli("-", stdin="input 8x8x3\nrelu,gap\n")
    assert r.returncode == 0 and r.stdout == "input 8x8x3\nRELU - GAP\n"


def test_cli_syntax_error_leaves_the_file_untouched(tmp_path):
    bad = tmp_path / "bad.cnn"
    bad.write_text("input 8x8x3\nCONV(8, 3\n")
    r = run_cli(str(bad))
    assert r.returncode == 1
    assert "bad.cnn:2:5: error: unclosed `(`" in r.stderr
    assert bad.read_text() == "input 8x8x3\nCONV(8, 3\n"


def test_a_def_whose_body_is_a_number_keeps_the_arithmetic_around_its_calls():
    # Found by the round-trip property: `ch(C) + ch(2)` is 5 + 2 filters, not "ch(C), then ch(2)".
    text = "input 16x16x3\nC = 8\ndef ch(c) = c / 2 + 1\ndef unit = CONV(4, 1) + RELU\n" \
           "CONV(ch(C) + ch(2), 1) + unit\n"
    formatted = format_text(text)
    assert "CONV(ch(C) + ch(2), 1) - unit\n" in formatted
    assert "def unit = CONV(4, 1) - RELU\n" in formatted
    assert_same_meaning(text, formatted)


# -- F24 (issue 17): fmt is linear in nesting and in the number of statements --------------

def test_nested_unary_operators_are_flattened_once_each(monkeypatch):
    from cnndsl import fmt
    calls = 0
    original = fmt.Formatter.flat

    def counting(self, e):
        nonlocal calls
        calls += 1
        return original(self, e)

    monkeypatch.setattr(fmt.Formatter, "flat", counting)
    text = "input 8x8x3\nv = " + "-" * 199 + "4\nRELU" + "?" * 199 + " - CONV(v, 1)\n"
    assert_same_meaning(text, format_text(text))
    assert calls < 2_000  # ~40,000 (200^2) when each level flattened its operand again


class _CountingText(str):
    """The source text, counting the characters its slices copy."""

    copied = 0

    def __getitem__(self, key):
        part = str.__getitem__(self, key)
        _CountingText.copied += len(part)
        return part


def test_blank_lines_are_found_without_copying_the_text_before_each_statement():
    from cnndsl import fmt
    lines = ["input 8x8x3", "", "def b0 = RELU"] + [f"def b{i} = b{i - 1}" for i in range(1, 2000)]
    text = "\n".join(lines + ["", "b1999"]) + "\n"
    formatter = fmt.Formatter(parse(text))
    formatter.text = _CountingText(formatter.text)
    _CountingText.copied = 0
    assert formatter.run() == text
    assert _CountingText.copied < 10 * len(text)  # ~1,000 times the text copying prefixes


def test_named_tensors_and_outputs_round_trip():
    """Issue 19: `X as name`, `@name` and outputs(...) keep their meaning and their spelling."""
    text = ("input 8x8x3\ndef head = GAP - FC(5)\n"
            "CONV(4, 3, pad=1) as a - RELU - (CONV(4, 1) * 2 as b) - CONV(8, 2, s=2) - head\n"
            "  - outputs(main=identity, aux=@a - head, aux2=@b - CROP(@a) - CONV(2, 1) - head)\n")
    assert format_text(text) == text
    assert_round_trip(text)
