"""`cnndsl render`: DOT nodes, edges, labels and clusters; SVG output; missing Graphviz."""
from __future__ import annotations

import itertools
import math
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import cnndsl
from cnndsl import layers, render
from cnndsl.layers.base import DRAW_STYLES
from cnndsl.cli import main
from cnndsl.errors import UsageError

SPECS = Path(__file__).resolve().parent.parent / "specs"
NODE = re.compile(r"^\t+(n\d+|output) \[label=(.*)\]$", re.M)
EDGE = re.compile(r"^\t+(n\d+) -> (n\d+|output) \[(.*)\]$", re.M)
CLUSTER = re.compile(r"subgraph (cluster_\w+) \{\n\t+(.*)$", re.M)

SMALL_RESNET = """
input 32x32x16
rounding = floor
def block(c, s=1) = residual(CONV(c, 3, s=s, pad=1, bias=false) - BN - RELU
                             - CONV(c, 3, pad=1, bias=false) - BN) - RELU
block(16) * 3 - block(32, 2) - GAP - FC(10)
"""


def dot_of(spec, **kw):
    return render.render_dot(cnndsl.build_graph(spec), **kw)


def nodes_of(dot):
    return dict(NODE.findall(dot))


def edges_of(dot):
    return EDGE.findall(dot)


def by_name(dot, name):
    """The DOT id of the node drawn for the layer called `name`."""
    return next(n for n, label in nodes_of(dot).items() if f">{name}" in label)


def test_lenet5_nodes_edges_and_labels():
    dot = dot_of(SPECS / "lenet5.cnn")
    nodes = nodes_of(dot)
    assert len(nodes) == 13 + 1  # input + 12 layers, + the output marker
    labels = " ".join(nodes.values())
    for text in ("CONV 5x5/1, 6", "CONV 5x5/1, 16", "AVGPOOL 2x2/2", "FC 120", "FC 84",
                 "FC 10", "SOFTMAX", "conv1 · 156 params", "fc1 · 48,120 params"):
        assert text in labels
    edges = edges_of(dot)
    assert len(edges) == 13  # a chain: 12 layers fed, plus the edge to the output marker
    flows = [re.search(r'label=" ([^ ]+) "', attrs).group(1) for _, _, attrs in edges]
    assert flows[:5] == ["32x32x1", "28x28x6", "28x28x6", "14x14x6", "10x10x16"]
    assert flows[-1] == "10"
    assert "cluster" not in dot  # no blocks or repeats


def test_input_and_output_shapes_are_marked():
    dot = dot_of(SPECS / "vgg16.cnn")
    nodes = nodes_of(dot)
    assert "<b>input</b><br/>224x224x3" in nodes["n0"]
    assert "<b>output</b><br/>1000" in nodes["output"]


def test_each_family_has_its_colour():
    dot = dot_of(SPECS / "lenet5.cnn")
    conv = re.search(r"n1 \[.*fillcolor=\"([^\"]+)\"", dot).group(1)
    pool = re.search(r"n3 \[.*fillcolor=\"([^\"]+)\"", dot).group(1)
    assert conv == DRAW_STYLES["conv"]["fillcolor"] == layers.get("CONV").style()[
        "fillcolor"]
    assert pool == DRAW_STYLES["pool"]["fillcolor"] != conv
    families = ("input", "conv", "pool", "dense", "activation", "norm", "merge")
    assert len({DRAW_STYLES[f]["fillcolor"] for f in families}) == len(families)
    assert {kind.family for kind in layers.REGISTRY.values()} <= set(DRAW_STYLES)


def test_vgg16_repeats_fold_into_one_copy_in_x_n_clusters():
    dot = dot_of(SPECS / "vgg16.cnn")
    clusters = CLUSTER.findall(dot)
    repeats = [attrs for name, attrs in clusters if name.startswith("cluster_repeat")]
    blocks = [attrs for name, attrs in clusters if name.startswith("cluster_block")]
    # the five stages of configuration D, named with their arguments (filters, convolutions)
    assert [re.search(r'label="([^"]*)"', b).group(1) for b in blocks] == [
        "stage(c=64, n=2)", "stage(c=128, n=2)", "stage(c=256, n=3)", "stage(c=512, n=3)",
        "stage(c=512, n=3)"]
    assert [re.search(r"<b>(x \d)</b>", r).group(1) for r in repeats] == \
        ["x 2", "x 2", "x 3", "x 3", "x 3", "x 2"]
    labels = " ".join(nodes_of(dot).values())
    assert ">conv1 " in labels and ">conv2 " not in labels  # the second copy is folded
    assert labels.count("CONV 3x3/1") == 5
    # One edge into and one out of the folded stage-1 repeat, carrying the real volumes.
    conv1, relu1, pool1 = (by_name(dot, n) for n in ("conv1", "relu1", "maxpool1"))
    assert (relu1, pool1, 'label=" 224x224x64 "') in edges_of(dot)
    assert [e for e in edges_of(dot) if e[1] == conv1] == [("n0", conv1, 'label=" 224x224x3 "')]


def test_expand_draws_every_layer_with_repeats_still_boxed():
    dot = dot_of(SPECS / "vgg16.cnn", expand=True)
    labels = " ".join(nodes_of(dot).values())
    assert labels.count("CONV 3x3/1") == 13 and ">conv2 " in labels
    assert len(nodes_of(dot)) == 39 + 2
    names = [name for name, _ in CLUSTER.findall(dot)]
    assert sum(n.startswith("cluster_repeat") for n in names) == 6
    assert sum(n.startswith("cluster_iteration") for n in names) == 2 + 2 + 3 + 3 + 3 + 2


def test_residual_shortcuts_are_drawn_as_dashed_branches():
    dot = dot_of(SMALL_RESNET, expand=True)
    edges = edges_of(dot)
    adds = [n for n, label in nodes_of(dot).items() if label.startswith('"+"')]
    assert len(adds) == 4
    for add in adds:
        into = [attrs for _, dst, attrs in edges if dst == add]
        assert len(into) == 2 and sum("dashed" in attrs for attrs in into) == 1
    # The stride-2 block's projection (1x1 conv and BN, inserted) sits on the dashed branch.
    proj = by_name(dot, "conv9")
    assert "CONV 1x1/2, 32" in nodes_of(dot)[proj]
    assert re.search(rf"\t{proj} \[.*style=\"filled,rounded,dashed\"", dot)
    assert all("dashed" in attrs for _, dst, attrs in edges if dst == proj)


def test_inception_branches_meet_at_a_concat():
    dot = dot_of(SPECS / "googlenet.cnn")
    nodes = nodes_of(dot)
    concats = [n for n, label in nodes.items() if "CONCAT" in label]
    assert len(concats) == 9
    edges = edges_of(dot)
    for c in concats:
        assert len([e for e in edges if e[1] == c]) == 4
    first = concats[0]
    flows = [re.search(r'" (\S+) "', attrs).group(1) for _, dst, attrs in edges if dst == first]
    assert flows == ["28x28x64", "28x28x128", "28x28x32", "28x28x32"]  # Table 1, 3a


def test_resnet50_collapsed_has_far_fewer_nodes_than_expanded():
    graph = cnndsl.build_graph(SPECS / "resnet50.cnn")
    collapsed = nodes_of(render.render_dot(graph))
    expanded = nodes_of(render.render_dot(graph, expand=True))
    assert len(expanded) == graph.graph["totals"]["layers"] + 2
    assert len(collapsed) < 0.6 * len(expanded)
    # Each stage: its first block, then one copy of the rest in an `x N` box (N = 2, 3, 5, 2).
    dot = render.render_dot(graph)
    repeats = [a for name, a in CLUSTER.findall(dot) if name.startswith("cluster_repeat")]
    assert [re.search(r"<b>x (\d+)</b>", a).group(1) for a in repeats] == ["2", "3", "5", "2"]


@pytest.mark.parametrize("rankdir, degrees", [("TB", None), ("LR", "90"), ("BT", "180"),
                                              ("RL", "270")])
def test_rankdir_turns_the_input_and_output_shapes_with_the_flow(rankdir, degrees):
    dot = dot_of(SPECS / "lenet5.cnn", rankdir=rankdir)
    assert f"rankdir={rankdir}" in dot
    ends = [line for line in dot.splitlines() if "shape=invhouse" in line or "shape=house" in line]
    assert len(ends) == 2  # the input and the output
    turned = [re.search(r"orientation=(\d+)", line) for line in ends]
    assert [t and t.group(1) for t in turned] == [degrees, degrees]
    assert dot.count("orientation=") == (2 if degrees else 0)  # no other node turns


def run_cli(capsys, *argv):
    code = main(["render", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_svg_is_valid_xml_with_the_labels(tmp_path, capsys):
    out = tmp_path / "vgg.svg"
    code, _, _ = run_cli(capsys, SPECS / "vgg16.cnn", "-o", out)
    assert code == 0
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    texts = {t.text.strip() for t in root.iter() if t.tag.endswith("text") and t.text}
    assert {"CONV 3x3/1, 64", "MAXPOOL 2x2/2", "FC 4096", "224x224x64", "x 2", "stage(c=64, n=2)",
            "input", "output"} <= texts


def test_png_and_format_override(tmp_path, capsys):
    png = tmp_path / "lenet.png"
    assert run_cli(capsys, SPECS / "lenet5.cnn", "-o", png)[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    raw = tmp_path / "lenet.out"
    assert run_cli(capsys, SPECS / "lenet5.cnn", "-o", raw, "--format", "dot")[0] == 0
    assert raw.read_text().startswith("digraph")


def without_dot(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_missing_dot_program_names_the_package_and_leaves_no_file(tmp_path, monkeypatch,
                                                                   capsys):
    without_dot(monkeypatch, tmp_path)
    out = tmp_path / "net.png"
    code, _, err = run_cli(capsys, SPECS / "lenet5.cnn", "-o", out)
    assert code == 2
    assert "graphviz" in err and "dot" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty-bin"]


def test_dot_needs_no_graphviz_program(tmp_path, monkeypatch, capsys):
    without_dot(monkeypatch, tmp_path)
    out = tmp_path / "net.dot"
    assert run_cli(capsys, SPECS / "lenet5.cnn", "-o", out)[0] == 0
    assert "CONV 5x5/1, 6" in out.read_text()


def test_unknown_extension_is_a_usage_error(tmp_path, capsys):
    code, _, err = run_cli(capsys, SPECS / "lenet5.cnn", "-o", tmp_path / "net.jpeg")
    assert code == 2 and ".svg" in err
    assert not list(tmp_path.iterdir())


def test_an_existing_file_is_replaced_whole(tmp_path, capsys):
    out = tmp_path / "net.dot"
    out.write_text("old " * 10_000)
    assert run_cli(capsys, SPECS / "lenet5.cnn", "-o", out)[0] == 0
    assert out.read_text().startswith("digraph") and "old" not in out.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["net.dot"]


def test_render_to_dot_imports_neither_torch_nor_graphviz_at_load(tmp_path):
    code = ("import sys; from cnndsl.cli import make_parser; make_parser(); "
            "assert 'graphviz' not in sys.modules and 'torch' not in sys.modules; "
            "from cnndsl.cli import main; main(['render', %r, '-o', %r]); "
            "assert 'torch' not in sys.modules" % (str(SPECS / "lenet5.cnn"),
                                                  str(tmp_path / "x.dot")))
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


ENDS_IN_A_REPEAT = [
    "input 32x32x3\n(CONV(8, 3, pad=1) - RELU) * 3",
    "input 8x8x4\nresidual(CONV(4, 3, pad=1) - RELU) * 3",
    "input 32x32x3\nCONV(8, 3, pad=1) - ((CONV(8, 3, pad=1) - RELU) * 2) * 3",
]


@pytest.mark.parametrize("spec", sorted(SPECS.glob("*.cnn")) + ENDS_IN_A_REPEAT,
                         ids=lambda s: getattr(s, "stem", s))
@pytest.mark.parametrize("expand", [False, True])
def test_every_drawn_edge_joins_drawn_nodes(spec, expand):
    dot = dot_of(spec, expand=expand)
    drawn = set(nodes_of(dot))
    edges = edges_of(dot)
    assert all(src in drawn and dst in drawn for src, dst, _ in edges)
    assert {dst for _, dst, _ in edges} == drawn - {"n0"}  # all connected, output included


# -- issue 18: a left-to-right drawing wraps into rows instead of one long strip ----------

def test_lr_wraps_a_long_chain_into_rows_at_single_edges():
    dot = dot_of(SPECS / "lenet5.cnn", rankdir="LR")
    assert "rank=same" in dot  # the row starts, one under the other
    assert "input" in nodes_of(dot)["n0"]
    wraps = [(u, v) for u, v, attrs in EDGE.findall(dot) if "constraint=false" in attrs]
    assert len(wraps) == 2  # 13 layers and the output in three rows
    # every row start follows a single edge: nothing else crosses the break
    starts = re.findall(r"(n\d+) -> (n\d+) \[style=invis\]", dot)
    assert starts == [("n0", wraps[0][1]), (wraps[0][1], wraps[1][1])]
    assert "rank=same" not in dot_of(SPECS / "lenet5.cnn")  # top to bottom: one column


def test_lr_breaks_only_where_one_layer_joins_the_rows():
    """No shortcut or branch spans a row break, and no box is cut: the rows of a ResNet start
    at its blocks (each block's input also feeds its shortcut: still one layer)."""
    spec = SMALL_RESNET.replace("block(16) * 3", "block(16) - block(16) - block(16)")
    dot = dot_of(spec, rankdir="LR")
    graph = cnndsl.build_graph(spec).graph["ir"]
    pos = {f"n{n.id}": i for i, n in enumerate(graph.order())}
    pos["output"] = len(pos)
    edges = [(u, v) for u, v, attrs in EDGE.findall(dot) if "invis" not in attrs]
    breaks = [(u, v) for u, v, attrs in EDGE.findall(dot) if "constraint=false" in attrs]
    assert breaks
    for u, v in breaks:
        assert {a for a, b in edges if pos[a] <= pos[u] < pos[b]} == {u}
        # u ends one block (or stands outside every block) and v is outside it
        assert graph[int(u[1:])].path[:1] != graph[int(v[1:])].path[:1]


def test_lr_leaves_no_stub_of_a_last_row():
    """The last row is not a stub the row above could take: MobileNet v2 wrapped its SOFTMAX
    and the output alone onto a sixth row; each row now holds at least a third as many drawn
    items as the rows are meant to (about sqrt(2n) of n)."""
    dot = dot_of("zoo:mobilenet_v2", rankdir="LR")
    shown = [name for name in nodes_of(dot) if name.startswith("n")] + ["output"]
    wraps = [v for _, v, attrs in EDGE.findall(dot) if "constraint=false" in attrs]
    starts = [0, *(shown.index(v) for v in wraps), len(shown)]
    lengths = [b - a for a, b in itertools.pairwise(starts)]
    assert len(lengths) > 2
    per_row = math.ceil(len(shown) / math.ceil(len(shown) / math.ceil(math.sqrt(2 * len(shown)))))
    assert lengths[-1] >= per_row // 3, lengths


def test_lenet_left_to_right_is_no_longer_a_strip(tmp_path):
    out = tmp_path / "lenet.svg"
    render.render_file(cnndsl.build_graph(SPECS / "lenet5.cnn"), out, rankdir="LR")
    root = ET.parse(out).getroot()
    width, height = (float(root.get(k).removesuffix("pt")) for k in ("width", "height"))
    assert width / height < 4, (width, height)  # one row was 2510x102 pixels, about 25:1


SVG = "{http://www.w3.org/2000/svg}"


def svg_shapes(svg: bytes, kind: str = "node") -> dict[str, tuple]:
    """The bounding box (x0, y0, x1, y1; y down) of each node (or cluster) of a Graphviz SVG,
    by its name, from the outline it draws (polygon, rounded path, ellipse)."""
    found = {}
    for g in ET.fromstring(svg).iter(SVG + "g"):
        if g.get("class") != kind:
            continue
        xs, ys = [], []
        for shape in g:
            if shape.tag == SVG + "ellipse":
                cx, cy, rx, ry = (float(shape.get(k)) for k in ("cx", "cy", "rx", "ry"))
                xs += [cx - rx, cx + rx]
                ys += [cy - ry, cy + ry]
            elif shape.tag in (SVG + "polygon", SVG + "path"):
                nums = [float(c) for c in re.findall(r"-?\d+(?:\.\d+)?",
                                                     shape.get("points") or shape.get("d"))]
                xs += nums[0::2]
                ys += nums[1::2]
        found[g.find(SVG + "title").text] = (min(xs), min(ys), max(xs), max(ys))
    return found


def svg_width(svg: bytes) -> float:
    return float(ET.fromstring(svg).get("width").removesuffix("pt"))


def one_pass_svg(dot) -> bytes:
    """The drawing as one `dot` run over the DOT source lays it out (rows sharing columns)."""
    return subprocess.run(["dot", "-Tsvg"], input=dot.source.encode(), capture_output=True,
                          check=True).stdout


@pytest.fixture(scope="module")
def resnet50():
    return cnndsl.build_graph("zoo:resnet50")


def test_lr_rows_are_each_as_compact_as_a_drawing_of_their_own(resnet50, monkeypatch):
    """ResNet-50 --depth 2 in LR: one `dot` run gave the i-th layer of every row one column, so
    the first row's small layers (input to MAXPOOL) were spaced out to the widths of the second
    row's boxes. Each row's layers now sit as they do in the one-row drawing (no wrapping)."""
    wrapped = svg_shapes(render.render_bytes_of(resnet50, "svg", rankdir="LR", depth=2))
    row_of = render.build_diagram(resnet50, rankdir="LR", depth=2).rows.row_of()
    monkeypatch.setattr(render, "row_breaks", lambda *args: [])
    one_row = svg_shapes(render.render_bytes_of(resnet50, "svg", rankdir="LR", depth=2))
    assert set(wrapped) == set(one_row) == set(row_of)
    rows = [[n for n, k in row_of.items() if k == row] for row in range(max(row_of.values()) + 1)]
    assert len(rows) == 3 and "n0" in rows[0] and "output" in rows[-1]
    for names in rows:
        first = min(names, key=lambda n: one_row[n][0])
        assert first == min(names, key=lambda n: wrapped[n][0])  # left to right, as in one row
        for n in names:
            assert wrapped[n][0] - wrapped[first][0] == pytest.approx(
                one_row[n][0] - one_row[first][0], abs=1), n
    # the rows stacked top to bottom, each starting at the left: before the first row's second
    # layer (the edge coming into a row, and its label, come first)
    for above, below in itertools.pairwise(rows):
        assert max(wrapped[n][3] for n in above) < min(wrapped[n][1] for n in below)
    assert all(min(wrapped[n][0] for n in names) < wrapped["n1"][0] for names in rows)


@pytest.mark.parametrize("spec, depth", [("zoo:resnet50", 2), (SPECS / "lenet5.cnn", None)])
def test_lr_rows_make_a_narrower_drawing_than_one_dot_run(spec, depth):
    graph = cnndsl.build_graph(spec)
    svg = render.render_bytes_of(graph, "svg", rankdir="LR", depth=depth)
    shared = one_pass_svg(render.build_diagram(graph, rankdir="LR", depth=depth))
    assert svg_width(svg) < 0.95 * svg_width(shared)
    # every edge drawn, the wrap edges too, and every box around all its layers
    dot = render.render_dot(graph, rankdir="LR", depth=depth)
    edges = {f"{u}->{v}" for u, v, _ in EDGE.findall(dot) if "invis" not in _}
    assert edges == {g.find(SVG + "title").text for g in ET.fromstring(svg).iter(SVG + "g")
                     if g.get("class") == "edge"}
    clusters, nodes = svg_shapes(svg, "cluster"), svg_shapes(svg)
    assert set(clusters) == set(re.findall(r"subgraph (cluster_\w+)", dot))
    for name, body in re.findall(r"subgraph (cluster_\w+) \{(.*?)\n\t*\}", dot, re.S):
        x0, y0, x1, y1 = clusters[name]
        for n in re.findall(r"^\t+(n\d+) \[", body, re.M):
            a0, b0, a1, b1 = nodes[n]
            assert x0 <= a0 and a1 <= x1 and y0 <= b0 and b1 <= y1, (name, n)


def svg_edges(svg: bytes) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """The points of each edge's path (its curve's ends and control points), by (tail, head)."""
    found = {}
    for g in ET.fromstring(svg).iter(SVG + "g"):
        if g.get("class") == "edge":
            tail, _, head = g.find(SVG + "title").text.partition("->")
            nums = [float(c) for c in re.findall(r"-?\d+(?:\.\d+)?",
                                                 g.find(SVG + "path").get("d"))]
            found[tail, head] = list(zip(nums[0::2], nums[1::2]))
    return found


def test_lr_aux_heads_wrap_beside_their_sources_and_wrap_edges_miss_them():
    """GoogLeNet with its aux heads, left to right at depth 1: made after the network, the
    heads sorted last and their edges spanned every break, so it was one 6694x317-pixel row
    after the first. Each head now follows the block it leaves, and the edge from a row's end
    down to the next row passes clear of a head drawn under that end."""
    graph = cnndsl.build_graph("zoo:googlenet", aux=1)
    svg = render.render_bytes_of(graph, "svg", rankdir="LR", depth=1)
    root = ET.fromstring(svg)
    width, height = (float(root.get(k).removesuffix("pt")) for k in ("width", "height"))
    assert width / height < 8, (width, height)
    row_of = render.build_diagram(graph, rankdir="LR", depth=1).rows.row_of()
    assert max(row_of.values()) >= 3  # four rows or more
    nodes = svg_shapes(svg)
    wraps = [(t, h) for t, h in svg_edges(svg) if row_of[t] != row_of[h]]
    assert wraps
    for (tail, head), points in svg_edges(svg).items():
        if (tail, head) not in wraps:
            continue
        for name, (x0, y0, x1, y1) in nodes.items():
            if name in (tail, head):
                continue
            inside = [(x, y) for x, y in points if x0 + 1 < x < x1 - 1 and y0 + 1 < y < y1 - 1]
            assert not inside, (tail, head, name)


def test_rl_rows_mirror_the_lr_rows(resnet50):
    lr, rl = (svg_shapes(render.render_bytes_of(resnet50, "svg", rankdir=d, depth=2))
              for d in ("LR", "RL"))
    lo = min(b[0] for b in lr.values())
    hi = max(b[2] for b in rl.values())
    for name in lr:
        assert lr[name][0] - lo == pytest.approx(hi - rl[name][2], abs=1), name
        assert lr[name][1] == pytest.approx(rl[name][1], abs=1), name


# -- F25 (issue 17): the drawing's size is capped and `dot` is timed out -------------------

def test_a_drawing_past_the_layer_cap_is_refused_naming_the_limit():
    graph = cnndsl.build_graph("input 8x8x3\nRELU * 2001\n")
    with pytest.raises(UsageError, match=r"2,001 layers; the limit is 2,000 \(without --expand"):
        render.render_dot(graph, expand=True)
    assert "RELU" in render.render_dot(graph)  # folded: one copy in an `x2001` box
    render.render_dot(cnndsl.build_graph("input 8x8x3\nRELU * 2000\n"), expand=True)


def test_render_expand_stops_building_past_the_cap(tmp_path, monkeypatch, capsys):
    """A 100,000-layer chain is refused once the build passes 2,000 layers, not after building
    and checking all of it (2 s and 160 MB before)."""
    from cnndsl import ir

    built = []
    add = ir.Graph.add
    monkeypatch.setattr(ir.Graph, "add",
                        lambda self, *a, **k: built.append(1) or add(self, *a, **k))
    out = tmp_path / "net.dot"
    assert main(["render", "input 8x8x3\nRELU * 100000", "--expand", "-o", str(out)]) == 2
    assert capsys.readouterr().err == (
        "cnndsl: error: the diagram would draw more than 2,000 layers; the limit is 2,000 "
        "(without --expand, repeats are drawn once)\n")
    assert len(built) <= 2_001 and not out.exists()
    # a tighter --max-layers keeps its own error; 2,000 layers are drawn
    assert main(["render", "input 8x8x3\nRELU * 500", "--expand", "--max-layers", "100",
                 "-o", str(out)]) == 1
    assert "exceeds the layer limit of 100" in capsys.readouterr().err
    assert main(["render", "input 8x8x3\nRELU * 1999 - RELU", "--expand", "-o", str(out)]) == 0
    assert out.read_text().count("RELU") >= 2_000


def fake_dot(monkeypatch, tmp_path, script: str) -> None:
    folder = tmp_path / "fake-bin"
    folder.mkdir()
    dot = folder / "dot"
    dot.write_text("#!/bin/sh\n" + script + "\n")
    dot.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_a_dot_that_runs_too_long_is_stopped_with_a_usage_error(tmp_path, monkeypatch):
    fake_dot(monkeypatch, tmp_path, "exec sleep 30")
    monkeypatch.setattr(render, "DOT_SECONDS", 1)
    with pytest.raises(UsageError, match=r"took more than 1 s to render SVG"):
        render.render_file(cnndsl.build_graph(SPECS / "lenet5.cnn"), tmp_path / "net.svg")
    assert not (tmp_path / "net.svg").exists()


def test_a_dot_that_crashes_is_a_usage_error_naming_the_signal(tmp_path, monkeypatch):
    fake_dot(monkeypatch, tmp_path, "kill -SEGV $$")
    with pytest.raises(UsageError, match=r"failed to render SVG: killed by signal 11"):
        render.render_file(cnndsl.build_graph(SPECS / "lenet5.cnn"), tmp_path / "net.svg")
