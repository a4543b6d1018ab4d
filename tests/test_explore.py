"""`cnndsl render -o net.html`: the page to explore, checked without a browser (its data and
its self-containment) and in Debian's headless Chromium (folding, hover, search, table).

Numbers come from torchvision's ResNet-50/152 and the ResNet paper's Table 1."""
from __future__ import annotations

import json
import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

import cnndsl
from cnndsl import explore, render
from cnndsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class Tags(HTMLParser):
    """Every start tag with its attributes, and the JSON payload's text."""

    def __init__(self):
        super().__init__()
        self.tags, self.payload, self._in_data = [], "", False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_data = dict(attrs).get("id") == "cnn-data"

    def handle_data(self, data):
        if self._in_data:
            self.payload += data

    def handle_endtag(self, tag):
        self._in_data = False


def parse(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    return tags


def walk(items):
    for item in items:
        yield item
        if isinstance(item, dict):
            if item["k"] == "block":
                yield from walk(item["items"])
            elif item["k"] == "repeat":
                for it in item["iters"]:
                    yield from walk(it)
            else:
                for col in item["cols"]:
                    yield from walk(col)
                yield from walk(i for i in item["shortcut"] if i != "identity")


@pytest.fixture(scope="module")
def resnet50_page():
    return explore.explore_html(cnndsl.build_graph("zoo:resnet50"))


def test_the_page_is_self_contained(resnet50_page):
    tags = parse(resnet50_page)
    # nothing to fetch: no external script, style sheet, image or frame
    for tag, attrs in tags.tags:
        assert "src" not in attrs and not (tag == "link" and "href" in attrs), (tag, attrs)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", resnet50_page)
    assert "@import" not in resnet50_page and "fetch(" not in resnet50_page
    assert [a.get("type") for t, a in tags.tags if t == "script"] == ["application/json", None]


def test_the_data_is_resnet50(resnet50_page):
    data = json.loads(parse(resnet50_page).payload.replace("<\\/", "</"))
    nodes = data["nodes"]
    # torchvision's resnet50: 25,557,032 parameters, 53 convolutions (49 + 4 projections)
    assert sum(n["params"] for n in nodes.values()) == 25_557_032
    assert sum(n["label"].startswith("CONV") for n in nodes.values()) == 53
    assert sorted(int(k) for k in nodes) == sorted(data["order"])
    tree = data["tree"]
    stages = [i for i in tree if isinstance(i, dict) and i["k"] == "block"]
    assert [s["args"] for s in stages] == ["c=64, n=3, s=1", "c=128, n=4, s=2",
                                           "c=256, n=6, s=2", "c=512, n=3, s=2"]
    assert [s["out"] for s in stages] == ["56x56x256", "28x28x512", "14x14x1024", "7x7x2048"]
    repeats = [i for i in walk(tree) if isinstance(i, dict) and i["k"] == "repeat"]
    assert [r["count"] for r in repeats] == [2, 3, 5, 2]  # Table 1: 3, 4, 6, 3 bottlenecks
    assert all(len(r["iters"]) == r["count"] for r in repeats)
    merges = [i for i in walk(tree) if isinstance(i, dict) and i["k"] == "merge"]
    assert len(merges) == 16
    # the first block of each stage projects its shortcut (1x1 conv and BN), the rest add x
    assert sum(m["shortcut"] == ["identity"] for m in merges) == 12
    first = nodes[str(merges[0]["shortcut"][0])]
    assert first["label"] == "CONV 1x1/1, 256" and first["params"] == 16_384
    # every layer is drawn exactly once
    drawn = [i for i in walk(tree) if isinstance(i, int)]
    assert sorted(drawn) == sorted(data["order"])
    conv2 = next(n for n in nodes.values() if n["name"] == "conv2")
    assert conv2["explain"] == ["size (56 - 1 + 2*0)/1 + 1 = 56",
                                "parameters 64 filters x (1*1*64) = 4,096"]


def test_the_title_is_escaped_and_markers_are_filled_once(tmp_path):
    spec = tmp_path / "a<b>&{{DATA}}.cnn"
    spec.write_text("input 4x4x1\nFC(2)\n")
    page = explore.explore_html(cnndsl.build_graph(spec))
    assert "<title>a&lt;b&gt;&amp;{{DATA}}.cnn · cnndsl</title>" in page
    assert page.count("</script>") == 2 and "<b>" not in page.split("<body>")[0]
    data = json.loads(parse(page).payload)
    assert data["title"] == "a<b>&{{DATA}}.cnn"


def test_resnet152_page_is_small_and_quick(tmp_path, capsys):
    graph = cnndsl.build_graph("zoo:resnet152")
    out = tmp_path / "net.html"
    start = time.perf_counter()
    render.render_file(graph, out)
    took = time.perf_counter() - start
    assert out.stat().st_size < 2_000_000 and took < 1.0, (out.stat().st_size, took)
    assert main(["render", "zoo:resnet152", "-o", str(out)]) == 0
    data = json.loads(parse(out.read_text()).payload.replace("<\\/", "</"))
    # torchvision's resnet152: 60,192,808 parameters, 155 convolutions (151 + 4 projections)
    assert sum(n["params"] for n in data["nodes"].values()) == 60_192_808
    assert sum(n["label"].startswith("CONV") for n in data["nodes"].values()) == 155


@pytest.mark.slow
def test_in_chromium_folding_hover_search_and_table(tmp_path):
    """Debian's chromium through its chromedriver (scripts/install.sh installs both); a
    machine without them fails here rather than skipping."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    assert shutil.which("chromium") and Path(CHROMEDRIVER).exists(), \
        "install Debian's chromium and chromium-driver (scripts/install.sh does)"
    page = tmp_path / "resnet50.html"
    render.render_file(cnndsl.build_graph("zoo:resnet50"), page)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(page.as_uri())

        def shown():
            return [e for e in driver.find_elements(By.CSS_SELECTOR,
                                                    "#diagram .layer, #diagram .head")
                    if e.is_displayed()]

        before = {e.text for e in shown()}
        assert any(t.startswith("stage(c=64, n=3, s=1)") for t in before)
        assert not any(t.startswith("bottleneck") for t in before)
        stage = next(e for e in shown() if e.text.startswith("stage(c=64"))
        stage.click()
        after = [e.text for e in shown()]
        # the first stage: its first bottleneck, then the other two folded as `x 2`
        # torchvision's layer1[0] (with its downsample) has 75,008 parameters, layer1[1:]
        # 2 x 70,400
        # MACs at 56x56: 64*64 + 9*64*64 + 64*256 + the projection's 64*256 per position, and
        # 256*64 + 9*64*64 + 64*256 for each of the other two
        assert ("bottleneck(c=64, s=1) · 56x56x256 · 12 layers · 75,008 params · "
                "231.21 MMACs") in after  # 56*56 * 73,728 = 231,211,008
        assert ("x 2 · 56x56x256 · 20 layers · 140,800 params · 436.73 MMACs in all"
                in after)  # 2 * 56*56 * 69,632 = 436,731,904
        assert len(after) == len(before) + 2
        next(e for e in shown() if e.text.startswith("bottleneck(c=64, s=1)")).click()
        texts = [e.text for e in shown()]
        assert "CONV 1x1/1, 64\nconv2 · 56x56x64" in texts
        assert "CONV 1x1/1, 256\nconv5 · 56x56x256" in texts  # the projected shortcut
        conv2 = next(e for e in shown() if e.text.startswith("CONV 1x1/1, 64\nconv2"))
        ActionChains(driver).move_to_element(conv2).perform()
        tip = driver.find_element(By.ID, "tip")
        assert tip.is_displayed()
        # torchvision: layer1[0].conv1 is Conv2d(64, 64, 1x1), 4,096 weights, 56x56 out
        assert tip.text.split("\n") == [
            "conv2: CONV 1x1/1, 64", "output 56x56x64 · input 56x56x64",
            "parameters 4,096 · MACs 12,845,056 (12.85 M)", "receptive field 11 · spec line 11",
            "size (56 - 1 + 2*0)/1 + 1 = 56", "parameters 64 filters x (1*1*64) = 4,096"]
        (tmp_path / "shot.png").write_bytes(driver.get_screenshot_as_png())
        # search unfolds what holds the match; Enter steps to the next
        box = driver.find_element(By.ID, "search")
        box.send_keys("conv52")
        card = driver.find_element(By.CSS_SELECTOR, "#diagram .layer.hit")
        assert card.is_displayed() and "conv52 · 7x7x512" in card.text
        assert driver.find_element(By.ID, "found").text == "1 layer"
        box.clear()
        box.send_keys("maxpool")
        assert driver.find_element(By.ID, "found").text == "1 layer"
        # a table row shows its layer; a layer's row is marked
        row = driver.find_element(By.CSS_SELECTOR, "#rows tr[data-id]:nth-child(100)")
        row.click()
        hit = driver.find_element(By.CSS_SELECTOR, "#diagram .layer.hit")
        assert hit.is_displayed() and hit.get_attribute("data-id") == row.get_attribute(
            "data-id")
        box.send_keys(Keys.ESCAPE)
        driver.find_element(By.ID, "expand-all").click()
        assert len([e for e in driver.find_elements(By.CSS_SELECTOR, "#diagram .layer")
                    if e.is_displayed()]) == 176
        # --depth 2: the page starts with the stages (and the repeats in them) unfolded and
        # every bottleneck a folded line: Table 1's 3 + 4 + 6 + 3
        deep = tmp_path / "depth2.html"
        render.render_file(cnndsl.build_graph("zoo:resnet50"), deep, depth=2)
        driver.get(deep.as_uri())
        texts = [e.text for e in shown()]
        assert sum(t.startswith("bottleneck(") for t in texts) == 16
        assert sum(t.startswith("stage(") for t in texts) == 4
        assert not any(t.startswith("CONV 1x1") for t in texts)
    finally:
        driver.quit()
    assert (tmp_path / "shot.png").read_bytes().startswith(b"\x89PNG")
