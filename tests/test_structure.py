"""Compiled models keep the spec's structure (issue 12): a class per def with the def's
parameters, repeats as nn.Sequential, named branches, torchvision-shaped source."""
from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cnndsl
from cnndsl.codegen import to_source
from cnndsl.weights import transfer_weights

SPECS = Path(__file__).resolve().parent.parent / "specs"

# The limits on the generated files (torchvision needs 200-400 lines for these).
LIMITS = {"resnet50": 130, "resnet152": 150, "googlenet": 130, "mobilenet_v2": 120}


def source_of(name: str, **options) -> str:
    return to_source(cnndsl.build_graph(SPECS / f"{name}.cnn", **options), class_name="Net")


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_zoo_sources_are_small_and_ruff_clean(name, tmp_path):
    source = source_of(name)
    lines = source.splitlines()
    assert len(lines) <= LIMITS[name]
    assert max(map(len, lines)) <= 100
    path = tmp_path / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    ruff = [sys.executable, "-m", "ruff"]
    for command in (["check", "--isolated", "--line-length", "100"],
                    ["format", "--check", "--isolated", "--line-length", "100"]):
        done = subprocess.run([*ruff, *command, str(path)], capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def assert_same_as_flat(text: str, shape) -> nn.Module:
    """The class-per-def model computes what the flat one does, the flat one's weights
    transferred by structure."""
    model = cnndsl.compile(text, seed=2).eval()
    flat = cnndsl.compile(text, seed=1, flat=True).eval()
    transfer_weights(flat, model)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(model(x), flat(x), rtol=1e-5, atol=1e-5)
    return model


def classes_of(source: str) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)}


def test_one_class_per_def_taking_the_defs_parameters():
    """ResNet-50: Bottleneck(in_channels, c, s=1) as torchvision's Bottleneck(inplanes,
    planes, stride); the stage as nn.Sequential repeating it n - 1 times."""
    source = source_of("resnet50")
    classes = classes_of(source)
    assert list(classes) == ["Bottleneck", "Stage", "Net"]
    init = next(f for f in classes["Bottleneck"].body if isinstance(f, ast.FunctionDef))
    assert [a.arg for a in init.args.args] == ["self", "in_channels", "c", "s"]
    assert "class Stage(nn.Sequential):" in source
    assert "*[Bottleneck(4 * c, c) for _ in range(n - 1)]" in source
    # torchvision's stages: [3, 4, 6, 3] blocks of widths 64..512 (He et al., Table 1)
    for k, (c, n) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], 1):
        assert f"self.stage{k} = Stage(" in source and f", {c}, {n}" in source
    assert "x.add_" not in source and "        out += identity\n" in source


def test_state_dict_reads_like_torchvision():
    """The keys name blocks, repeats by index, and the projection `shortcut`; their number
    and shapes are torchvision's ResNet-50's (torchvision names the stages layer1..4)."""
    import torchvision

    model = cnndsl.compile(SPECS / "resnet50.cnn", device="meta")
    keys = model.state_dict()
    assert "stage2.0.conv1.weight" in keys and "stage2.0.shortcut.0.weight" in keys
    assert "stage2.1.shortcut.0.weight" not in keys  # identity where the shape holds
    assert "stage4.2.bn3.running_var" in keys
    theirs = torchvision.models.resnet50().state_dict()
    assert len(keys) == len(theirs) == 320
    assert sorted(tuple(t.shape) for t in keys.values()) == \
        sorted(tuple(t.shape) for t in theirs.values())
    assert type(model).__name__ == "Resnet50"
    text = repr(model)
    assert "(stage1): Stage(" in text and "(0): Bottleneck(" in text


def test_weights_of_torchvision_give_identical_outputs(tmp_path):
    """torchvision's ResNet-50 state_dict (random, with non-trivial BN statistics) through
    `compile --weights` and the generated model.py: the same outputs as torchvision's."""
    import torchvision

    torch.manual_seed(0)
    theirs = torchvision.models.resnet50().eval()
    with torch.no_grad():
        for m in theirs.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    weights = tmp_path / "resnet50.pth"
    torch.save(theirs.state_dict(), weights)
    out = tmp_path / "m.py"
    done = subprocess.run([sys.executable, "-m", "cnndsl", "compile", "zoo:resnet50", "--logits",
                           "--weights", str(weights), "-o", str(out)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    namespace: dict = {"__name__": "generated"}
    exec(compile(out.read_text(encoding="utf-8"), str(out), "exec"), namespace)  # noqa: S102
    mine = namespace["Resnet50"]().eval()
    mine.load_state_dict(torch.load(out.with_suffix(".pth"), weights_only=True))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = theirs(x)
        assert torch.allclose(mine(x), expected, atol=1e-5 * expected.abs().max().item())
        api = cnndsl.compile("zoo:resnet50", logits=True, weights=theirs).eval()
        assert torch.allclose(api(x), expected, atol=1e-5 * expected.abs().max().item())


def test_calls_that_differ_in_repeats_and_projections_share_a_class():
    """A repeat of 0, 1 and 3 iterations and a projection in some calls: one class, whose
    forward projects only where the call's shape changes."""
    text = """input 8x8x4
def unit(c) = residual(CONV(c, 3, pad=1) - BN)
def stage(c, n) = unit(c) * n
stage(4, 0) - stage(8, 1) - stage(8, 3) - stage(16, 2) - GAP - FC(3)"""
    source = to_source(cnndsl.build_graph(text), class_name="Net")
    classes = classes_of(source)
    assert list(classes) == ["Unit", "Stage", "Net"]
    assert "if in_channels != c:" in source
    model = assert_same_as_flat(text, (4, 8, 8))
    # stage(4, 0) makes no layers, so no module: the stages with layers are numbered
    assert [len(model.stage1), len(model.stage2), len(model.stage3)] == [1, 3, 2]


def test_named_groups_become_submodules():
    text = """input 32x32x3
classes = 10
features = [(CONV(32, 3, pad=1) - RELU) * 2 - MAXPOOL(2)] * 2
classifier = FC(128) - RELU - DROPOUT(0.5) - FC(classes)
features - classifier"""
    model = cnndsl.compile(text, seed=0)
    assert [name for name, _ in model.named_children()] == ["features", "classifier"]
    assert "features.0.0.0.weight" in model.state_dict()
    assert "classifier.fc2.weight" in model.state_dict()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # 3x3 convs 3->32 and three 32->32, FC 2048->128 and 128->10, by the lecture's formula
    expected = (27 * 32 + 32) + 3 * (288 * 32 + 32) + (2048 * 128 + 128) + (128 * 10 + 10)
    assert sum(p.numel() for p in model.parameters()) == expected == \
        cnndsl.build_graph(text).graph["totals"]["params"]


def test_a_group_never_hides_a_module_method():
    from cnndsl.module_params import MODULE_ATTRIBUTES

    public = {a for cls in (torch.nn.Module, torch.nn.Sequential) for a in dir(cls)
              if not a.startswith("_")}
    assert public <= MODULE_ATTRIBUTES
    text = "input 8x8x3\nforward = CONV(4, 3) - RELU\neval = FC(2)\nforward - eval"
    model = cnndsl.compile(text, seed=0)
    assert [name for name, _ in model.named_children()] == ["forward_", "eval_"]
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 2)


def test_flat_keeps_one_submodule_per_layer(tmp_path):
    model = cnndsl.compile(SPECS / "resnet18.cnn", flat=True, device="meta")
    assert type(model).__mro__[1].__name__ == "GraphModule"
    assert "conv8.weight" in model.state_dict()
    out = tmp_path / "flat.py"
    done = subprocess.run([sys.executable, "-m", "cnndsl", "compile", "zoo:resnet18", "--flat",
                           "-o", str(out)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "class Basic" not in out.read_text(encoding="utf-8")


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_source_is_registered_for_inspect_and_torchscript():
    model = cnndsl.compile(SPECS / "resnet18.cnn", seed=0).eval()
    assert "def forward(self, x: torch.Tensor)" in inspect.getsource(type(model))
    scripted = torch.jit.script(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x))


BODIES = [
    "CONV(c, 3, s=s, pad=1) - RELU",
    "residual(CONV(c, 3, s=s, pad=1, bias=false) - BN - RELU - CONV(c, 3, pad=1) - BN) - RELU",
    "concat(CONV(c, 1), CONV(c, 3, s=s, pad=1) - RELU)",
    "add(CONV(c, 1, s=s), identity * s - CONV(c, 3, s=s, pad=1))",
    "residual(CONV(c, 1, s=s) - RELU * n2)",
    "CONV(c, 3, s=s, pad=1) - residual(RELU - CONV(c, 1) - BN, shortcut=CONV(c, 1))",
    "concat(identity, CONV(c, 1, s=1), identity) - CONV(c, 1, s=s)",
    "(CONV(c, 1) - RELU) * n2 - MAXPOOL(s, s)",
]


@st.composite
def def_specs(draw):
    """Specs whose defs are called with other numbers, repeats of 0, 1 and more, strides
    that change the shape in some calls only: what makes classes share and differ."""
    body = draw(st.sampled_from(BODIES))
    calls = draw(st.lists(st.tuples(st.sampled_from([4, 8]), st.sampled_from([1, 2]),
                                    st.integers(0, 2), st.integers(0, 2)),
                          min_size=1, max_size=4))
    stage = draw(st.sampled_from(["a(c, s, n2) - a(c, 1, n2) * n",
                                  "a(c, s, n2) * n", "(a(c, s, n2) - a(c, 1, 1)) * n"]))
    network = " - ".join(f"b({c}, {s}, {n}, {n2})" for c, s, n, n2 in calls)
    size = draw(st.sampled_from([16, 12]))
    return (f"input {size}x{size}x3\nrounding = floor\n"
            f"def a(c, s=1, n2=1) = {body}\n"
            f"def b(c, s, n, n2) = {stage}\n"
            f"CONV(4, 3, pad=1) - {network} - GAP - FC(3)\n"), (3, size, size)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(def_specs())
def test_structured_and_flat_models_compute_the_same(case):
    """Random specs with defs: the class-per-def model and the flat one, the flat one's
    weights transferred by structure, give the same outputs; the source is ruff-shaped."""
    text, shape = case
    try:
        graph = cnndsl.build_graph(text)
    except cnndsl.CnnDslError:
        assume(False)  # a window that no longer fits after the strides
    assert_same_as_flat(text, shape)
    source = to_source(graph)
    code = source[source.index('"""\n\nimport torch'):]  # the spec's own lines may be long
    assert max(map(len, code.splitlines())) <= 100
    ast.parse(source)


def test_a_class_comes_after_the_classes_it_calls():
    """stage's first call repeats nothing; a later call repeats a block whose structure is
    new (its class is made after stage's): the file still defines every class before use."""
    text = """input 16x16x3
rounding = floor
def block(c, s) = if(s == 2, CONV(c, 3, s=2, pad=1), CONV(c, 1) - RELU)
def stage(c, n) = block(c, 2) - block(c, 1) * (n - 1)
stage(8, 1) - stage(16, 3) - GAP - FC(3)"""
    source = to_source(cnndsl.build_graph(text), class_name="Net")
    names = list(classes_of(source))
    assert names.index("Stage") > names.index("Block")  # block(c, 2) is one layer: no class
    assert_same_as_flat(text, (3, 16, 16))


def test_memory_format_channels_last_computes_the_same():
    plain = cnndsl.compile(SPECS / "resnet18.cnn", seed=0, logits=True).eval()
    nhwc = cnndsl.compile(SPECS / "resnet18.cnn", seed=0, logits=True,
                          memory_format="channels_last").eval()
    assert nhwc.stage2[0].conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(nhwc(x), plain(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(cnndsl.errors.UsageError, match="window is larger than its input"):
        cnndsl.compile("input 2x2x1\nCONV(1, 3, pad=1)", memory_format="channels_last")
    with pytest.raises(cnndsl.errors.UsageError, match="unknown memory format"):
        cnndsl.compile("input 8x8x1\nCONV(1, 3)", memory_format="nhwc")
