"""Three torchvision models written by a newcomer from docs/language.md alone.

tests/fixtures/from_docs/ holds EfficientNet-B0, RegNetY-400MF and ShuffleNet V2 1.0x, written
without reading specs/ or cnndsl's source (NOTES.md there logs where the docs fell short).
Each must match torchvision's model exactly: the parameter count, the MACs torchvision
publishes as GFLOPS (to its 3 decimals), and, with torchvision's randomly initialised weights
and randomised batch-norm statistics moved over by `cnndsl.transfer_weights`, the outputs in
eval mode within 1e-5 of their scale.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

import cnndsl
from cnndsl import summary
from test_torchvision_oracle import assert_same_outputs, with_running_statistics

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "from_docs"

# name -> parameter count from torchvision's model docs
MODELS = {
    "efficientnet_b0": 5_288_548,
    "regnet_y_400mf": 4_344_144,
    "shufflenet_v2_x1_0": 2_278_604,
}


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(MODELS))
def test_fixture_says_it_was_written_from_the_docs(name):
    first = (FIXTURES / f"{name}.cnn").read_text().splitlines()[0]
    assert first.startswith("#") and "docs/language.md" in first


@pytest.mark.parametrize("name", list(MODELS))
def test_params_and_macs_equal_torchvision_published(name):
    graph = cnndsl.build_graph(path=str(FIXTURES / f"{name}.cnn"))
    totals = summary.summarize(graph).totals
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    assert totals["params"] == meta["num_params"] == MODELS[name]
    # torchvision's "GFLOPS" are multiply-accumulates (docs/summary.md), given to 3 decimals
    assert round(totals["macs"] / 1e9, 3) == pytest.approx(meta["_ops"], abs=1e-9)


@pytest.mark.parametrize("name", list(MODELS))
def test_same_outputs_with_torchvision_weights(name):
    torch.manual_seed(0)
    # non-trivial running statistics, so that BN matters
    theirs = with_running_statistics(torchvision.models.get_model(name, weights=None)).eval()
    ours = cnndsl.compile(path=str(FIXTURES / f"{name}.cnn"), input="64x64x3",
                          logits=True, seed=0).eval()
    assert count(ours) == count(theirs) == MODELS[name]
    cnndsl.transfer_weights(theirs, ours)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    assert_same_outputs(theirs, ours, x, (2, 1000))
