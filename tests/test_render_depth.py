"""`cnndsl render --depth N`, and --expand and --rankdir, in both styles and the page.

The counts and shapes come from the ResNet paper (He et al. 2016), Table 1, 50-layer column:
a stem (7x7/2 convolution with BN and ReLU, 3x3/2 max pooling), four stages conv2_x..conv5_x
of [3, 4, 6, 3] bottlenecks [1x1 c, 3x3 c, 1x1 4c] putting out 56x56x256, 28x28x512,
14x14x1024 and 7x7x2048, then average pooling, the 1000-way FC and softmax."""
from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import cnndsl
from cnndsl import explore, render, volumes
from cnndsl.cli import main
from cnndsl.errors import UsageError

SPECS = Path(__file__).resolve().parent.parent / "specs"
NODE = re.compile(r"^\t+(n\d+|output) \[label=(.*)\]$", re.MULTILINE)
EDGE = re.compile(r"^\t+(n\d+) -> (n\d+|output) \[(.*)\]$", re.MULTILINE)
REPEAT = re.compile(r"label=<<b>x (\d+)</b>")

BLOCKS = (3, 4, 6, 3)  # Table 1: bottlenecks per stage
WIDTHS = (64, 128, 256, 512)  # c of each stage's bottlenecks [1x1 c, 3x3 c, 1x1 4c]
STAGE_OUT = ("56x56x256", "28x28x512", "14x14x1024", "7x7x2048")  # Table 1's output sizes


def bottleneck_params(cin: int, c: int) -> int:
    """Convolutions without bias, each followed by BN (2 parameters a channel); a 1x1
    projection with BN on the shortcut where the input is not 4c wide (torchvision's v1.5)."""
    body = cin * c + 9 * c * c + c * 4 * c + 2 * (c + c + 4 * c)
    return body + (cin * 4 * c + 2 * 4 * c if cin != 4 * c else 0)


def stage_params(k: int) -> int:
    c, cin = WIDTHS[k], (64 if k == 0 else 4 * WIDTHS[k - 1])
    return bottleneck_params(cin, c) + (BLOCKS[k] - 1) * bottleneck_params(4 * c, c)


@pytest.fixture(scope="module")
def resnet50():
    return cnndsl.build_graph(SPECS / "resnet50.cnn")


def labels(dot: str) -> list[str]:
    return [label for _, label in NODE.findall(dot)]


def folded(dot: str, name: str) -> list[str]:
    """The labels of the nodes drawn for folded blocks called `name`."""
    return [label for label in labels(dot) if label.startswith(f"<<b>{name}(")]


def test_the_stage_counts_add_up_to_torchvisions_resnet50():
    stem, fc = 7 * 7 * 3 * 64 + 2 * 64, 2048 * 1000 + 1000
    assert stem + sum(stage_params(k) for k in range(4)) + fc == 25_557_032


def test_depth_1_draws_the_stem_four_stage_boxes_and_the_head(resnet50):
    dot = render.render_dot(resnet50, depth=1)
    drawn = labels(dot)
    # input, CONV-BN-RELU-MAXPOOL, 4 stages, GAP-FC-SOFTMAX, the output marker
    assert len(drawn) == 1 + 4 + 4 + 3 + 1
    assert [re.match(r"<<b>([A-Z]+|input|output)", lb).group(1) for lb in drawn
            if not lb.startswith("<<b>stage")] == ["input", "CONV", "BN", "RELU", "MAXPOOL",
                                                   "GAP", "FC", "SOFTMAX", "output"]
    stages = folded(dot, "stage")
    assert len(stages) == 4
    for k, label in enumerate(stages):
        out = STAGE_OUT[k]
        n = BLOCKS[k]
        assert f"stage(c={WIDTHS[k]}, n={n}, s={1 if k == 0 else 2})" in label
        assert f">{out} · {stage_params(k):,} params<br/>" in label
        # each bottleneck is 10 layers (3 CONV-BN pairs, 2 RELU inside, ADD, RELU after), the
        # first one 2 more (the projection and its BN)
        assert f"MACs · {10 * n + 2} layers</font>>" in label
    # no cluster is drawn, and the boxes form one chain: the edges are the flowing volumes
    assert "subgraph" not in dot
    flows = [re.search(r'label=" ([^ ]+) "', attrs).group(1) for _, _, attrs in EDGE.findall(dot)]
    assert flows == ["224x224x3", "112x112x64", "112x112x64", "112x112x64", "56x56x64",
                     *STAGE_OUT, "1x1x2048", "1000", "1000"]


def test_stage_macs_on_the_boxes(resnet50):
    # conv2_x's MACs at 56x56: per position, the first bottleneck multiplies 64*64 + 9*64*64 +
    # 64*256 + the projection 64*256, the other two 256*64 + 9*64*64 + 64*256
    per_position = (64 * 64 + 9 * 64 * 64 + 64 * 256 + 64 * 256
                    + 2 * (256 * 64 + 9 * 64 * 64 + 64 * 256))
    macs = 56 * 56 * per_position  # 667,942,912: BN, RELU and ADD count none
    assert "667.94 MMACs" in folded(render.render_dot(resnet50, depth=1), "stage")[0]
    assert macs == 667_942_912


def test_depth_2_opens_the_stages_into_bottleneck_boxes(resnet50):
    dot = render.render_dot(resnet50, depth=2)
    bottlenecks = folded(dot, "bottleneck")
    # the distinct first bottleneck of each stage and one copy of the repeated rest
    assert len(bottlenecks) == 8
    assert len(labels(dot)) == 1 + 4 + 8 + 3 + 1
    assert [int(n) for n in REPEAT.findall(dot)] == [n - 1 for n in BLOCKS]
    for k in range(4):
        c = WIDTHS[k]
        assert f"bottleneck(c={c}, s={1 if k == 0 else 2})" in bottlenecks[2 * k]
        assert f"bottleneck(c={c}, s=1)" in bottlenecks[2 * k + 1]
        for label in bottlenecks[2 * k: 2 * k + 2]:
            assert f">{STAGE_OUT[k]} · " in label
    cin = (64, 256, 512, 1024)
    assert f"{bottleneck_params(cin[1], 128):,} params" in bottlenecks[2]
    assert f"{bottleneck_params(512, 128):,} params" in bottlenecks[3]


def test_depth_with_expand_draws_every_bottleneck(resnet50):
    dot = render.render_dot(resnet50, depth=2, expand=True)
    assert len(folded(dot, "bottleneck")) == sum(BLOCKS)


def test_a_depth_below_every_block_changes_nothing(resnet50):
    assert render.render_dot(resnet50, depth=3) == render.render_dot(resnet50)
    assert render.render_dot(resnet50, depth=9, rankdir="LR") == render.render_dot(
        resnet50, rankdir="LR")


def test_every_edge_of_a_folded_drawing_joins_drawn_nodes():
    for name in ("resnet50", "googlenet", "mobilenet_v2", "vgg16"):
        graph = cnndsl.build_graph(SPECS / f"{name}.cnn")
        for depth in (1, 2):
            for expand in (False, True):
                dot = render.render_dot(graph, depth=depth, expand=expand)
                nodes = {n for n, _ in NODE.findall(dot)}
                edges = EDGE.findall(dot)
                assert all(u in nodes and v in nodes for u, v, _ in edges), (name, depth)
                assert len({(u, v) for u, v, _ in edges}) == len(edges)
                # every node but the input is reached
                assert {v for _, v, _ in edges} == nodes - {"n0"}, (name, depth)


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")
def test_depth_fixes_the_tall_resnet50_drawing(resnet50):
    def heights(**kw) -> tuple[float, float]:
        """The drawing's height and its first stage box's, in points."""
        svg = render.render_bytes_of(resnet50, "svg", **kw).decode("utf-8")
        total = float(re.search(r'<svg[^>]* height="([\d.]+)pt"', svg).group(1))
        stage = re.search(r'<title>cluster_block_\d+</title>\s*<path[^>]*d="([^"]*)"', svg)
        ys = [float(y) for y in re.findall(r"[-\d.]+,([-\d.]+)", stage.group(1))] if stage \
            else [0.0]
        return total, max(ys) - min(ys)

    (full, stage), (one, none), (two, stage2) = heights(), heights(depth=1), heights(depth=2)
    assert full > 5000 and stage > 1000  # pt: the first stage alone was 1,216 pt (1,621 px)
    assert none == 0  # --depth 1 draws no cluster: each stage is one node
    assert stage2 < stage / 4  # its two bottleneck boxes (164 pt when measured)
    assert one < full / 5 and two < full / 3


# -- the volume figure ----------------------------------------------------------------------

def test_volumes_depth_1_draws_the_stages_as_boxes(resnet50):
    found, folds = volumes.stations(resnet50, depth=1)
    assert [s.title for s in found] == ["input", "CONV 7x7/2", "MAXPOOL 3x3/2",
                                        "stage(64, 3, 1)", "stage(128, 4, 2)",
                                        "stage(256, 6, 2)", "stage(512, 3, 2)", "GAP", "FC 1000"]
    assert [str(s.shape) for s in found[3:7]] == list(STAGE_OUT)
    assert folds == []
    assert found[3].totals == ("216k params", "668M MACs")  # 215,808 and 667,942,912
    svg_text = volumes.volume_svg(resnet50, depth=1)
    words = [t.text for t in ET.fromstring(svg_text).iter("{http://www.w3.org/2000/svg}text")]
    assert "216k params" in words and "1.03G MACs" in words


def test_volumes_depth_2_and_expand(resnet50):
    found, folds = volumes.stations(resnet50, depth=2)
    assert sum(s.title.startswith("bottleneck") for s in found) == 8
    assert [f.count for f in folds] == [n - 1 for n in BLOCKS]
    found, folds = volumes.stations(resnet50, depth=2, expand=True)
    assert sum(s.title.startswith("bottleneck") for s in found) == sum(BLOCKS)
    assert folds == []
    # without --depth the bottlenecks are boxes too (they branch) but carry no totals lines
    found, _ = volumes.stations(resnet50)
    assert all(not s.totals for s in found)


def test_volumes_depth_folds_a_straight_block():
    # VGG-16's stages (configuration D: convolutions and a max pooling) fold into one box each,
    # of the paper's sizes after each pooling; the FC repeat stays `x 2`
    vgg = cnndsl.build_graph(SPECS / "vgg16.cnn")
    found, folds = volumes.stations(vgg, depth=1)
    assert [s.title for s in found] == ["input", "stage(64, 2)", "stage(128, 2)",
                                        "stage(256, 3)", "stage(512, 3)", "stage(512, 3)",
                                        "FC 4096", "FC 1000"]
    assert [str(s.shape) for s in found[1:6]] == ["112x112x64", "56x56x128", "28x28x256",
                                                  "14x14x512", "7x7x512"]
    assert [f.count for f in folds] == [2]
    spec = ("input 32x32x3\ndef unit(c) = CONV(c, 3, pad=1) - RELU - MAXPOOL(2)\n"
            "unit(8) - unit(16) - FC(10)")
    assert [s.title for s in volumes.stations(cnndsl.build_graph(spec), depth=1)[0]] == [
        "input", "unit(8)", "unit(16)", "FC 10"]
    assert [s.title for s in volumes.stations(cnndsl.build_graph(spec))[0]] == [
        "input", "CONV 3x3/1", "MAXPOOL 2x2/2", "CONV 3x3/1", "MAXPOOL 2x2/2", "FC 10"]


def text_x(svg_text: str, word: str) -> float:
    node = next(t for t in ET.fromstring(svg_text).iter("{http://www.w3.org/2000/svg}text")
                if t.text == word)
    return float(node.get("x"))


def test_volumes_rankdir_rl_mirrors_the_figure():
    lenet = cnndsl.build_graph(SPECS / "lenet5.cnn")
    lr = volumes.volume_svg(lenet)
    rl = volumes.volume_svg(lenet, rankdir="RL")
    assert text_x(lr, "input") < text_x(lr, "FC 10")
    assert text_x(rl, "input") > text_x(rl, "FC 10")
    assert text_x(rl, "input") == -text_x(lr, "input")
    assert render.render_bytes_of(lenet, "svg", style="volumes", rankdir="LR").decode() == (
        volumes.volume_svg(lenet, title=render.diagram_title(lenet)))


# -- the page -------------------------------------------------------------------------------

def boxes(items, found=None):
    found = [] if found is None else found
    for item in items:
        if isinstance(item, dict):
            if item["k"] in ("block", "repeat"):
                found.append(item)
            for inner in ([item["items"]] if item["k"] == "block" else
                          item["iters"] if item["k"] == "repeat" else item["cols"]):
                boxes(inner, found)
    return found


def test_the_page_opens_down_to_depth_or_everything(resnet50):
    def opened(**kw):
        tree = explore.explore_data(resnet50, **kw)["tree"]
        return {(b["k"], b.get("name", "x")): b["open"] for b in boxes(tree)}

    assert not any(opened().values())  # by default the page starts folded
    assert all(opened(expand=True).values())
    one = opened(depth=1)
    assert one[("block", "stage")] is False and not any(one.values())
    two = opened(depth=2)
    assert two[("block", "stage")] is True and two[("repeat", "x")] is True
    assert two[("block", "bottleneck")] is False
    tree = explore.explore_data(resnet50, depth=2)["tree"]
    assert [b["open"] for b in boxes(tree) if b["k"] == "block" and b["name"] == "stage"] == [
        True] * 4
    page = render.render_bytes_of(resnet50, "html", depth=1).decode("utf-8")
    assert '"open":false' in page and '"open":true' not in page


# -- options that do not apply --------------------------------------------------------------

@pytest.mark.parametrize("name, args, words", [
    ("f.svg", ["--style", "volumes", "--rankdir", "TB"],
     "--rankdir TB does not apply to --style volumes"),
    ("f.png", ["--style", "volumes", "--rankdir", "BT"],
     "--rankdir BT does not apply to --style volumes"),
    ("f.html", ["--rankdir", "LR"], "--rankdir LR does not apply to an .html page"),
    ("f.html", ["--style", "volumes"], "--style volumes does not apply to an .html page"),
    ("f.svg", ["--depth", "0"], "--depth must be at least 1, not 0"),
    ("f.svg", ["--depth", "-2", "--style", "volumes"], "--depth must be at least 1, not -2"),
    ("f.html", ["--depth", "0"], "--depth must be at least 1, not 0"),
    ("f.dot", ["--style", "volumes"], "--style volumes does not apply to a .dot file"),
])
def test_options_that_do_not_apply_are_refused_with_a_help_line(tmp_path, capsys, name, args,
                                                                 words):
    out = tmp_path / name
    assert main(["render", "zoo:lenet5", "-o", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cnndsl: error: {words}")
    assert "\n  help: " in err and "Traceback" not in err
    assert not out.exists()


def test_the_api_refuses_as_the_command_does(resnet50):
    with pytest.raises(UsageError, match="does not apply to --style volumes"):
        render.render_bytes_of(resnet50, "svg", style="volumes", rankdir="TB")
    with pytest.raises(UsageError, match="at least 1"):
        render.render_dot(resnet50, depth=0)
    with pytest.raises(UsageError, match="at least 1"):
        volumes.volume_svg(resnet50, depth=0)


def test_the_command_draws_with_depth(tmp_path, capsys):
    out = tmp_path / "net.dot"
    assert main(["render", "zoo:resnet50", "--depth", "1", "-o", str(out)]) == 0
    assert len(folded(out.read_text(), "stage")) == 4
    out = tmp_path / "net.svg"
    assert main(["render", "zoo:resnet50", "--style", "volumes", "--depth", "1",
                 "--rankdir", "RL", "-o", str(out)]) == 0
    assert "stage(64, 3, 1)" in out.read_text()
    out = tmp_path / "net.html"
    assert main(["render", "zoo:resnet50", "--depth", "2", "-o", str(out)]) == 0
    assert '"open":true' in out.read_text()


def test_a_block_of_one_layer_is_drawn_as_that_layer():
    # GoogLeNet (Szegedy et al. 2015, Table 1): the nine inception modules 3a-3b, 4a-4e, 5a-5b
    # become boxes at --depth 1; its max poolings, written as a one-layer `down` block, stay
    # MAXPOOL 3x3/2 (x3) and 2x2/2 (torchvision's maxpool4) rather than boxes named `down`
    graph = cnndsl.build_graph(SPECS / "googlenet.cnn")
    dot = render.render_dot(graph, depth=1)
    assert len(folded(dot, "inception")) == 9 and not folded(dot, "down")
    assert sum("<<b>MAXPOOL 3x3/2</b>" in label for label in labels(dot)) == 3
    found, _ = volumes.stations(graph, depth=1)
    assert [s.title for s in found].count("MAXPOOL 3x3/2") == 3
    assert not any(s.title.startswith("down") for s in found)
    assert "0 MACs" not in dot and "0MACs" not in dot


def inside(point, polygon) -> bool:
    """Whether a point lies strictly inside a convex polygon."""
    x, y = point
    signs = set()
    for (ax, ay), (bx, by) in zip(polygon, polygon[1:] + polygon[:1]):
        cross = (bx - ax) * (y - ay) - (by - ay) * (x - ax)
        if abs(cross) > 1e-9:
            signs.add(cross > 0)
    return len(signs) == 1


@pytest.mark.parametrize("spec, depth", [("lenet5", None), ("alexnet_lecture", None),
                                         ("vgg16", None), ("resnet50", None), ("resnet50", 1),
                                         ("resnet50", 2), ("mobilenet_v2", 1),
                                         ("googlenet", 1)])
def test_no_label_of_the_volume_figure_lies_on_a_box(spec, depth):
    from cnndsl.svg import text_width

    root = ET.fromstring(volumes.volume_svg(cnndsl.build_graph(SPECS / f"{spec}.cnn"),
                                            depth=depth, title="t"))
    ns = "{http://www.w3.org/2000/svg}"
    faces = [[tuple(map(float, p.split(","))) for p in poly.get("points").split()]
             for poly in root.iter(f"{ns}polygon") if poly.find(f"{ns}title") is not None]
    for text in root.iter(f"{ns}text"):
        size, x, y = float(text.get("font-size")), float(text.get("x")), float(text.get("y"))
        w = text_width(text.text, size, text.get("font-weight") == "bold")
        left = x - w / 2 if text.get("text-anchor") == "middle" else x
        corners = [(left + w * i / 6, y - size * j / 3) for i in range(7) for j in range(4)]
        assert not any(inside(c, f) for c in corners for f in faces), (spec, text.text)


def test_block_boxes_are_named_with_their_call_when_it_is_short(resnet50):
    dot = render.render_dot(resnet50, depth=2)
    stages = re.findall(r'label="(stage\([^"]*\))"', dot)
    assert stages == ["stage(c=64, n=3, s=1)", "stage(c=128, n=4, s=2)",
                      "stage(c=256, n=6, s=2)", "stage(c=512, n=3, s=2)"]
    # GoogLeNet's inception calls (six arguments, Table 1's #1x1 ... pool proj) would lie
    # across the edges into the branches: the box says `inception`, its tooltip the call
    dot = render.render_dot(cnndsl.build_graph(SPECS / "googlenet.cnn"))
    calls = re.findall(r'label=inception labeljust=l style="rounded,dashed" tooltip="([^"]*)"',
                       dot)
    assert len(calls) == 9
    assert calls[0] == "inception(c1=64, c3r=96, c3=128, c5r=16, c5=32, pp=32)"
