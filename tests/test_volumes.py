"""`cnndsl render --style volumes`: the lecture's volume figure, its scales, files and errors.

Shapes and counts come from the lecture notes (LeNet-5's analysis table, AlexNet's layer
list), the VGG paper (configuration D: 2, 2, 3, 3, 3 convolutions per stage) and the ResNet
and GoogLeNet papers (Table 1 of each)."""
from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import cnndsl
from cnndsl import render, svg, volumes
from cnndsl.cli import main
from cnndsl.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
NS = {"s": "http://www.w3.org/2000/svg"}


def figure(spec, **kw):
    found, folds = volumes.stations(cnndsl.build_graph(spec), **kw)
    return found, folds


def texts(svg_text: str) -> list[str]:
    return [t.text for t in ET.fromstring(svg_text).iter("{http://www.w3.org/2000/svg}text")]


def test_lenet5_is_the_lectures_sequence_of_volumes():
    found, folds = figure(SPECS / "lenet5.cnn")
    # the notes' LeNet-5 analysis: (32,32,1) (28,28,6) (14,14,6) (10,10,16) (5,5,16) 120 84 10
    assert [str(s.shape) for s in found] == ["32x32x1", "28x28x6", "14x14x6", "10x10x16",
                                             "5x5x16", "120", "84", "10"]
    assert [s.title for s in found[1:5]] == ["CONV 5x5/1", "AVGPOOL 2x2/2", "CONV 5x5/1",
                                             "AVGPOOL 2x2/2"]
    assert [s.window for s in found[1:5]] == [(5, 5), (2, 2), (5, 5), (2, 2)]
    assert [s.is_bar for s in found] == [False] * 5 + [True] * 3  # FC layers are thin bars
    assert folds == []


def test_alexnet_lecture_labels_its_volumes_as_the_notes_do():
    text = volumes.volume_svg(cnndsl.build_graph(SPECS / "alexnet_lecture.cnn"))
    words = texts(text)
    # "[55x55x96] CONV1: 96 11x11 filters at stride 4", "[27x27x96] MAX POOL1: 3x3 at stride 2"
    for shape in ("227x227x3", "55x55x96", "27x27x96", "27x27x256", "13x13x256", "13x13x384",
                  "6x6x256", "4096", "1000"):
        assert shape in words, shape
    assert "CONV 11x11/4" in words and "CONV 5x5/1" in words and "MAXPOOL 3x3/2" in words
    # the FC-RELU-DROPOUT pair written `* 2` is drawn once, with `x 2` under it
    assert words.count("x 2") == 1


def test_vgg16_repeats_are_drawn_once_with_their_count():
    found, folds = figure(SPECS / "vgg16.cnn")
    counts = [f.count for f in folds]
    assert counts == [2, 2, 3, 3, 3, 2]  # configuration D, then FC-RELU-DROPOUT twice
    assert [found[f.first].title for f in folds[:5]] == ["CONV 3x3/1"] * 5
    assert [str(found[f.first].shape) for f in folds[:5]] == [
        "224x224x64", "112x112x128", "56x56x256", "28x28x512", "14x14x512"]
    assert len(found) == 1 + 5 * 2 + 2  # input, a conv and a pool per stage, FC 4096, FC 1000
    assert len(figure(SPECS / "vgg16.cnn", expand=True)[0]) == 1 + 13 + 5 + 3


def test_resnet50_draws_each_bottleneck_as_one_box_and_folds_the_repeats():
    found, folds = figure(SPECS / "resnet50.cnn")
    blocks = [s for s in found if s.block]
    # Table 1: stages of 3, 4, 6, 3 bottlenecks: the first of each, then the rest folded
    assert [f.count for f in folds] == [2, 3, 5, 2]
    assert len(blocks) == 8
    assert [str(b.shape) for b in blocks[::2]] == ["56x56x256", "28x28x512", "14x14x1024",
                                                   "7x7x2048"]
    assert blocks[2].title == "bottleneck(128, 2)"
    assert [s.title for s in found if not s.block] == ["input", "CONV 7x7/2", "MAXPOOL 3x3/2",
                                                       "GAP", "FC 1000"]


def test_googlenet_inception_modules_are_one_labelled_box_each():
    found, _ = figure(SPECS / "googlenet.cnn")
    modules = [s for s in found if s.block]
    assert len(modules) == 9 and all(s.title.startswith("inception(") for s in modules)
    # Table 1: 3a 28x28x256, 3b 28x28x480, 4a..4e 14x14x512..832, 5a 7x7x832, 5b 7x7x1024
    assert [str(s.shape) for s in modules] == [
        "28x28x256", "28x28x480", "14x14x512", "14x14x512", "14x14x512", "14x14x528",
        "14x14x832", "7x7x832", "7x7x1024"]


def test_a_merge_written_inline_is_one_box_named_by_its_builtin():
    found, _ = figure("input 8x8x4\nconcat(CONV(2, 1), CONV(3, 3, pad=1)) - FC(2)")
    assert [(s.title, str(s.shape), s.block) for s in found] == [
        ("input", "8x8x4", False), ("concat", "8x8x5", True), ("FC 2", "2", False)]


def test_scales_are_monotone_and_keep_small_maps_visible():
    found, _ = figure(SPECS / "resnet50.cnn")
    scales = volumes.Scales(found)
    sides = [scales.side(n) for n in (224, 112, 56, 28, 14, 7, 1)]
    assert sides == sorted(sides, reverse=True) and sides[0] == volumes.MAP_SIDE
    assert sides[0] / sides[5] == pytest.approx((224 / 7) ** 0.5)  # square root of H
    assert sides[-1] >= volumes.MIN_SIDE
    thick = [scales.thickness(c) for c in (3, 64, 128, 256, 2048)]
    assert thick == sorted(thick)
    assert thick[2] - thick[1] == pytest.approx(thick[3] - thick[2])  # log2 of C
    bars = [scales.bar(n) for n in (2048, 1000, 10)]
    assert bars == sorted(bars, reverse=True)


def test_box_heights_in_the_svg_follow_the_scale():
    text = volumes.volume_svg(cnndsl.build_graph(SPECS / "lenet5.cnn"))
    fronts = [p for p in ET.fromstring(text).iter("{http://www.w3.org/2000/svg}polygon")]
    heights = []
    for p in fronts:
        ys = [float(pt.split(",")[1]) for pt in p.get("points").split()]
        xs = [float(pt.split(",")[0]) for pt in p.get("points").split()]
        if len(set(ys)) == 2 and len(set(xs)) == 2:  # an upright rectangle: a front face
            heights.append(round(max(ys) - min(ys), 1))
    # 32, 28, 14, 10, 5 high maps: heights as the square root, the tallest 150 px
    want = [round(150 * (n / 32) ** 0.5, 1) for n in (32, 28, 14, 10, 5)]
    assert heights[:5] == pytest.approx(want, abs=0.2)  # cuboids come first, in order


@pytest.mark.parametrize("ext, magic", [(".svg", b"<svg"), (".png", b"\x89PNG"),
                                        (".pdf", b"%PDF")])
def test_the_command_writes_each_format(tmp_path, capsys, ext, magic):
    out = tmp_path / f"fig{ext}"
    assert main(["render", str(SPECS / "lenet5.cnn"), "--style", "volumes", "-o",
                 str(out)]) == 0
    assert out.read_bytes().startswith(magic)
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    if ext == ".svg":
        assert "61,706 parameters" in out.read_text()  # the title carries the totals


def test_volumes_as_dot_is_a_usage_error_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "fig.dot"
    assert main(["render", str(SPECS / "lenet5.cnn"), "--style", "volumes", "-o",
                 str(out)]) == 2
    assert "drawn without graphviz" in capsys.readouterr().err
    assert not out.exists()


def test_without_cairosvg_png_is_a_usage_error_and_svg_still_works(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "cairosvg", None)  # import fails as if not installed
    graph = cnndsl.build_graph(SPECS / "lenet5.cnn")
    with pytest.raises(UsageError, match="pip install cairosvg"):
        render.render_file(graph, tmp_path / "fig.png", style="volumes")
    assert not (tmp_path / "fig.png").exists()
    render.render_file(graph, tmp_path / "fig.svg", style="volumes")
    assert (tmp_path / "fig.svg").exists()


def test_svg_writer_escapes_text_and_sizes_the_picture():
    s = svg.Svg()
    s.polygon([(0, 0), (10, 0), (10, 20)], "#ffffff", title="a < b & c")
    s.text(5, 40, "x <3 & y", size=10)
    doc = ET.fromstring(s.document(margin=0))
    assert doc.find("s:polygon/s:title", NS).text == "a < b & c"
    assert doc.find("s:text", NS).text == "x <3 & y"
    x0, y0, w, h = map(float, doc.get("viewBox").split())
    assert y0 == 0 and h == pytest.approx(43)  # down to the text's descent
    assert x0 <= 0 and x0 + w >= 10


def test_the_render_page_examples_run(tmp_path, monkeypatch):
    """Every ```python block of docs/render.md runs (in a scratch folder)."""
    page = (ROOT / "docs" / "render.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "docs/render.md", "exec"), {})  # noqa: S102 (our own docs)
    assert (tmp_path / "resnet50_volumes.svg").exists()


def test_a_figure_of_too_many_boxes_is_refused_quickly(tmp_path, capsys):
    out = tmp_path / "fig.svg"
    spec = "input 8x8x1\n" + " - ".join(["CONV(1, 1)"] * 2_001)
    assert main(["render", spec, "--style", "volumes", "-o", str(out)]) == 2
    assert "2,002 boxes; the limit is 2,000" in capsys.readouterr().err
    assert not out.exists()
    folded = "input 8x8x1\nCONV(1, 1) * 5000"  # drawn once: one box and `x 5000`
    assert main(["render", folded, "--style", "volumes", "-o", str(out)]) == 0
    assert "x 5000" in texts(out.read_text())


def test_a_block_of_repeated_residuals_opens_into_one_box_per_residual():
    spec = ("input 8x8x4\ndef stage(c) = (residual(CONV(c, 3, pad=1) - RELU) - RELU) * 3\n"
            "stage(4) - GAP - FC(2)")
    found, folds = figure(spec)
    assert [s.title for s in found] == ["input", "residual", "GAP", "FC 2"]
    assert [f.count for f in folds] == [3]
    # CONV 3x3 on 4 channels: 4 x (3*3*4 + 1) = 148 parameters, and 8*8 outputs x 4 filters
    # x 3*3*4 = 9,216 multiply-adds (RELU and the ADD have none), the sums in the note
    assert found[1].note == "residual(): 3 layers, 148 parameters, 9,216 MACs, out 8x8x4"
