"""`cnndsl sweep`: rows agree with single checks; ranges, the size guard, optional sites."""
from __future__ import annotations

import itertools

import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cnndsl
from cnndsl.cli import main
from cnndsl.errors import CnnDslError, UsageError
from cnndsl.layers import Symbol
from cnndsl.parser import parse
from cnndsl.sweep import (combinations, format_csv, format_table, optional_sites, parse_axis,
                          parse_count, run_sweep, select, to_records)

ROOT = Path(__file__).resolve().parent.parent
# The lecture's pattern: "N is usually up to ~5, M is large, 0 <= K <= 2".
LECTURE = "input 32x32x3\nclasses = 10\n[(CONV - RELU)*N - POOL]*M - (FC - RELU)*K - SOFTMAX\n"
OPTIONAL = ("input 32x32x3\nclasses = 10\n"
            "[(CONV - BN? - RELU)*N - POOL]*M - DROPOUT(0.5)? - SOFTMAX\n")


def lecture_rows(**kw):
    axes = [parse_axis("N=1..5"), parse_axis("M=1..6"), parse_axis("K=0..2")]
    return run_sweep(parse(LECTURE), axes, **kw)


def test_every_row_matches_a_single_check():
    rows = lecture_rows()
    assert len(rows) == 5 * 6 * 3
    for row in rows:
        try:
            g = cnndsl.build_graph(LECTURE, **row.variables)
        except CnnDslError as exc:
            assert not row.valid and row.location == exc.location
            assert row.error.split(" ")[:2] == exc.message.split(":")[0].split(" ")
            continue
        t = g.graph["totals"]
        assert row.valid, row.error
        assert (row.layers, row.params, row.macs, row.output) == (
            t["layers"], t["params"], t["macs"], t["output"])


def test_validity_follows_the_halving_arithmetic():
    # Each 2x2/2 pool halves 32x32: 16, 8, 4, 2, 1; a sixth pool has nothing left to pool.
    for row in lecture_rows():
        assert row.valid == (row.variables["M"] <= 5), row
    bad = next(r for r in lecture_rows() if not r.valid)
    assert bad.error.startswith("POOL #6 on 1x1x")


def test_the_lecture_sweep_is_fast():
    program = parse(LECTURE)
    axes = [parse_axis("N=1..5"), parse_axis("M=1..6"), parse_axis("K=0..2")]
    run_sweep(program, axes)  # warm caches
    started = time.perf_counter()
    rows = run_sweep(program, axes)
    assert len(rows) == 90 and time.perf_counter() - started < 1.0


@pytest.mark.parametrize("text, values", [
    ("N=1..5", [1, 2, 3, 4, 5]), ("N=1..9..2", [1, 3, 5, 7, 9]), ("N=1..10..4", [1, 5, 9]),
    ("N=1,2,4", [1, 2, 4]), ("N=3", [3]), ("N=1..3,8", [1, 2, 3, 8]), ("p=0.1,0.5", [0.1, 0.5]),
    ("N=-1..1", [-1, 0, 1]), (" N = 2..3 ", [2, 3])])
def test_ranges(text, values):
    axis = parse_axis(text)
    assert axis.values() == values and len(axis) == len(values)


def test_words_are_values_too():
    axis = parse_axis("rounding=floor,ceil")
    assert axis.name == "rounding" and axis.values() == ["floor", "ceil"]
    assert all(isinstance(v, Symbol) for v in axis.values())


@pytest.mark.parametrize("text", ["N", "N=", "N=5..1", "N=1..5..0", "N=1..x", "1N=3", "N=a b"])
def test_bad_ranges_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_axis(text)


@pytest.mark.parametrize("text, count", [("5M", 5_000_000), ("250k", 250_000),
                                         ("1.5G", 1_500_000_000), ("1200", 1200),
                                         ("61,706", 61706)])
def test_counts(text, count):
    assert parse_count(text) == count


def test_bad_count():
    with pytest.raises(UsageError):
        parse_count("5 million")


def test_the_guard_refuses_absurd_sweeps_before_checking_anything():
    axes = [parse_axis("N=1..1000"), parse_axis("M=1..1000")]
    with pytest.raises(UsageError, match=r"1,000,000 combinations; the limit is 10,000"):
        run_sweep(parse(LECTURE), axes)
    assert len(list(combinations([parse_axis("N=1..200")], [], "keep", limit=200))) == 200
    with pytest.raises(UsageError, match="--limit 200"):
        list(combinations([parse_axis("N=1..200")], [], "keep", limit=199))


def test_optional_both_over_40_sites_is_refused_before_its_masks_are_built(monkeypatch):
    program = parse("input 8x8x3\n" + " - ".join(["RELU?"] * 40) + "\n")
    built = 0
    real_product = itertools.product

    def counting_product(*args, **kwargs):
        nonlocal built
        for item in real_product(*args, **kwargs):
            built += 1
            if built > 1_000:
                raise AssertionError("the masks are being built before the limit check")
            yield item

    monkeypatch.setattr(itertools, "product", counting_product)
    # 2^40 = 1,099,511,627,776 combinations
    with pytest.raises(UsageError, match=r"1,099,511,627,776 combinations; the limit is 10,000"):
        run_sweep(program, [], optional="both")
    assert built == 0  # the masks were each built (and counted) before the check


def test_optional_both_tries_each_site_kept_and_dropped():
    program = parse(OPTIONAL)
    sites = optional_sites(program)
    assert [(s.text, s.line) for s in sites] == [("BN?", 3), ("DROPOUT(0.5)?", 3)]
    axes = [parse_axis("N=1..2"), parse_axis("M=1..2")]
    kept = run_sweep(program, axes)
    both = run_sweep(program, axes, optional="both")
    assert len(both) == 4 * len(kept)
    for row in both:
        drop = frozenset((s.line, s.column) for s in sites if s.label in row.dropped)
        g = cnndsl.build_graph(OPTIONAL, drop_optional=drop, **row.variables)
        t = g.graph["totals"]
        assert (row.params, row.layers) == (t["params"], t["layers"])
    one_site = "input 8x8x3\nCONV(4, 3, pad=1) - BN? - RELU\n"
    assert len(run_sweep(parse(one_site), [], optional="both")) == 2  # doubles the rows
    dropped = run_sweep(parse(one_site), [], optional="drop")
    assert len(dropped) == 1 and dropped[0].layers == 2


def test_a_site_that_is_never_reached_is_not_tried_twice():
    rows = run_sweep(parse(OPTIONAL), [parse_axis("N=0"), parse_axis("M=1")], optional="both")
    assert [r.dropped for r in rows] == [(), ("DROPOUT(0.5)?@3:36",)]


def test_filters_and_sorting():
    rows = lecture_rows()
    small = select(rows, max_params=parse_count("500k"), sort="params")
    valid = [r for r in small if r.valid]
    assert valid and all(r.params <= 500_000 for r in valid)
    assert [r.params for r in valid] == sorted(r.params for r in valid)
    assert not small[-1].valid  # networks with errors come last
    assert all(r.valid for r in select(rows, valid_only=True))
    by_macs = select(rows, valid_only=True, sort="macs", top=3)
    assert len(by_macs) == 3 and by_macs[0].macs == min(r.macs for r in rows if r.valid)


def test_formats():
    rows = lecture_rows()
    records = json.loads(json.dumps(to_records(rows)))
    assert records[0] == {"variables": {"N": 1, "M": 1, "K": 0}, "dropped": [], "valid": True,
                          "error": None, "location": None, "layers": rows[0].layers,
                          "params": rows[0].params, "macs": rows[0].macs, "output": [10],
                          "outputs": []}
    table = list(csv.DictReader(io.StringIO(format_csv(rows, ["N", "M", "K"]))))
    assert len(table) == 90 and table[0]["params"] == str(rows[0].params)
    assert sum(r["valid"] == "no" for r in table) == 15
    text = format_table(rows, ["N", "M", "K"], show_dropped=False)
    assert text.splitlines()[0].split() == ["#", "N", "M", "K", "layers", "params", "MACs",
                                            "output", "result"]
    assert text.splitlines()[-1] == "90 networks: 75 valid, 15 with errors"


# Two outputs whose second depends on N: 33x33 halved by a 3x3 stride-2 pad-1 window is
# (33 - 3 + 2)/2 + 1 = 17 wide, N channels after CONV(N, 1)
TWO_OUTPUTS = ("input 33x33x3\nCONV(8, 3, pad=1) - RELU - CONV(16, 3, s=2, pad=1) as a\n"
               "  - outputs(logits=GAP - FC(10), aux=@a - CONV(N, 1))\n")


def test_rows_show_every_output_by_name():
    rows = run_sweep(parse(TWO_OUTPUTS), [parse_axis("N=1..3")])
    assert [[(name, shape.as_list()) for name, shape in r.outputs] for r in rows] == [
        [("logits", [10]), ("aux", [n, 17, 17])] for n in (1, 2, 3)]
    assert [r.output.as_list() for r in rows] == [[10]] * 3  # the main output, as before
    assert to_records(rows)[1]["outputs"] == [{"name": "logits", "output": [10]},
                                              {"name": "aux", "output": [2, 17, 17]}]
    table = format_table(rows, ["N"], show_dropped=False).splitlines()
    assert table[3].split("  ")[-2:] == ["logits 10, aux 17x17x3", "ok"]
    csv_rows = list(csv.DictReader(io.StringIO(format_csv(rows, ["N"]))))
    assert csv_rows[0]["output"] == "logits 10, aux 17x17x1"


def cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "cnndsl", "sweep", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_cli_sweep(tmp_path):
    spec = tmp_path / "family.cnn"
    spec.write_text(LECTURE)
    r = cli(str(spec), "-D", "N=1..5", "-D", "M=1..6", "-D", "K=0..2", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 90 and "checked 90 networks" in r.stderr
    r = cli("-", "-D", "N=1..1000", "-D", "M=1..100", stdin=LECTURE)
    assert r.returncode == 2 and "the limit is 10,000" in r.stderr
    r = cli(str(spec), "-D", "N=1..5", "-D", "M=5..6", "--max-params", "5M", "--valid-only")
    assert r.returncode == 0 and "M" in r.stdout.splitlines()[0]


def test_cli_pick_compiles_the_chosen_row(tmp_path):
    out = tmp_path / "model.py"
    r = cli("-", "-D", "N=1..2", "-D", "M=1..2", "-D", "K=0", "--sort", "params", "--pick", "1",
            "-o", str(out), stdin=LECTURE)
    assert r.returncode == 0, r.stderr
    smallest = min((cnndsl.build_graph(LECTURE, N=n, M=m, K=0).graph["totals"]["params"], n, m)
                   for n in (1, 2) for m in (1, 2))
    assert f"{smallest[0]:,} parameters" in out.read_text()
    assert cli("-", "-D", "M=6", "-D", "N=1", "-D", "K=0", "--pick", "1",
               stdin=LECTURE).returncode == 2  # that row does not check


def test_cli_pick_compiles_a_row_without_its_optional_layers(tmp_path):
    out = tmp_path / "model.py"
    r = cli("-", "-D", "N=1", "-D", "M=2", "--optional", "both", "--sort", "params", "--pick",
            "1", "-o", str(out), stdin=OPTIONAL)
    assert r.returncode == 0, r.stderr
    without_bn = cnndsl.build_graph(OPTIONAL, N=1, M=2, drop_optional=True)
    with_bn = cnndsl.build_graph(OPTIONAL, N=1, M=2)
    assert with_bn.graph["totals"]["params"] > without_bn.graph["totals"]["params"]
    source = out.read_text()
    assert f"{without_bn.graph['totals']['params']:,} parameters" in source
    assert "BatchNorm2d" not in source


def test_cli_pick_saves_the_chosen_row_as_a_model(tmp_path):
    # Weights go through the library's compile (no second command line run inside this one).
    out = tmp_path / "model.pt"
    r = cli("-", "-D", "N=1..2", "-D", "M=1", "-D", "K=0", "--sort", "params", "--pick", "2",
            "-o", str(out), "--input", "16x16x3", stdin=LECTURE)
    assert r.returncode == 0, r.stderr
    expected = cnndsl.build_graph(LECTURE, N=2, M=1, K=0, input="16x16x3")
    model = cnndsl.load(out)
    assert model.cnndsl_info["variables"] == {"N": 2, "M": 1, "K": 0}
    assert sum(p.numel() for p in model.parameters()) == expected.graph["totals"]["params"]
    assert f"{out}: {expected.graph['totals']['params']:,} parameters, pt" in r.stdout
    r = cli("-", "-D", "N=1", "--pick", "1", "-o", str(tmp_path / "model.h5"), stdin=LECTURE)
    assert r.returncode == 2 and "the suffix must be .py, .pt, .onnx or .ts" in r.stderr


def test_run_sweep_warns_about_a_variable_the_spec_never_uses():
    with pytest.warns(cnndsl.UnusedVariableWarning, match="never uses `Q`"):
        run_sweep(parse(LECTURE), [parse_axis("N=1"), parse_axis("M=1"), parse_axis("K=0"),
                                   parse_axis("Q=1..2")])


def test_cli_warns_about_a_variable_the_spec_never_uses():
    r = cli("-", "-D", "N=1", "-D", "M=1", "-D", "K=0", "-D", "Q=1..2", stdin=LECTURE)
    assert r.returncode == 0
    assert "the spec never uses `Q`" in r.stderr
    assert "never uses `N`" not in r.stderr


def test_the_docs_ablation_rows_are_the_commands_output(capsys):
    doc = (Path(__file__).resolve().parent.parent / "docs" / "sweep.md").read_text()
    section = doc[doc.index("### Optional layers: the lecture's AlexNet ablation"):]
    shown = section.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    assert main(["sweep", "zoo:alexnet_ablation", "--optional", "both"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in shown if line != "..."]
    assert len(rows) == 7 and all(line in out for line in rows)  # the header and 6 rows


def test_long_optional_sites_are_shortened_in_the_table_only(capsys):
    spec = ("input 16x16x3\nCONV(8, 3, pad=1) - (CONV(16, 3, pad=1) - RELU - BN)? - GAP"
            " - FC(10)")
    assert main(["sweep", spec, "--optional", "both"]) == 0
    table = capsys.readouterr().out
    assert "(CONV(16, 3, pad=1) -…?@2:21" in table and "BN)?@" not in table
    assert main(["sweep", spec, "--optional", "both", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert ["(CONV(16, 3, pad=1) - RELU - BN)?@2:21"] in [r["dropped"] for r in records]


# -- issue 18: the closing line counts what was checked; a softmax with no classifier warns ----

def test_the_closing_line_counts_the_shown_rows_and_every_checked_one():
    rows = lecture_rows()
    shown = select(rows, sort="params", top=3)
    last = format_table(shown, ["N", "M", "K"], show_dropped=False, checked=rows)
    assert last.splitlines()[-1] == ("3 of 90 networks shown: 3 valid, 0 with errors "
                                     "(all 90: 75 valid, 15 with errors)")
    single = format_table(rows[:1], ["N", "M", "K"], show_dropped=False, checked=rows[:1])
    assert single.splitlines()[-1] == "1 network: 1 valid, 0 with errors"
    r = cli("-", "-D", "N=1..5", "-D", "M=1..6", "-D", "K=0..2", "--top", "3", stdin=LECTURE)
    assert r.returncode == 0
    assert r.stdout.splitlines()[-1] == ("3 of 90 networks shown: 3 valid, 0 with errors "
                                         "(all 90: 75 valid, 15 with errors)")


PATTERN = "input 32x32x3\n[(CONV-RELU)*N-POOL]*M-(FC-RELU)*K-SOFTMAX\n"


def test_a_sweep_without_classes_warns_once_that_its_softmax_has_no_classifier():
    axes = [parse_axis("N=1"), parse_axis("M=1..2"), parse_axis("K=0..1")]
    with pytest.warns(cnndsl.NoClassifierWarning) as record:
        rows = run_sweep(parse(PATTERN), axes)
    assert len(record) == 1
    assert str(record[0].message) == (
        "4 of the networks end in SOFTMAX with no classifier in front of it (`classes` is not "
        "set), so the softmax spreads over whatever reaches it: 16,384 values where N=1 M=1 "
        "K=0; pass --classes N (or write `classes = N` in the spec) to end them in FC(N) - "
        "SOFTMAX")
    assert rows[0].output.numel == 16 * 16 * 64  # the lecture: 32x32 halved once, 64 filters
    # a softmax over a whole volume has no classifier either, weights before it or not
    with pytest.warns(cnndsl.NoClassifierWarning, match="4,096 values"):
        run_sweep(parse("input 32x32x3\nCONV(16, 3, pad=1) - POOL - SOFTMAX\n"), [])
    r = cli("-", "-D", "N=1", "-D", "M=1..2", "-D", "K=0..1", stdin=PATTERN)
    assert r.returncode == 0 and r.stderr.count("cnndsl: warning: ") == 1
    assert "pass --classes N" in r.stderr


@pytest.mark.parametrize("spec, options", [
    (PATTERN, {"classes": 10}),  # FC(10) goes in front of the softmax
    ("input 32x32x3\nclasses = 10\n" + PATTERN.split("\n", 1)[1], {}),
    ("input 8x8x3\nCONV(4, 3) - FC(5) - DROPOUT - SOFTMAX\n", {}),  # a classifier written out
    ("input 8x8x3\nCONV(4, 3) - RELU\n", {}),  # no softmax at all
    ("input 8x8x3\nCONV(10, 1) - GAP - SOFTMAX\n", {}),  # SqueezeNet's classifier
])
def test_no_warning_where_a_classifier_feeds_the_softmax(spec, options):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", cnndsl.NoClassifierWarning)
        rows = run_sweep(parse(spec), [parse_axis("N=1"), parse_axis("M=1"), parse_axis("K=0")]
                         if "*N" in spec else [], **options)
    assert all(r.valid for r in rows)
