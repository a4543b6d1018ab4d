"""Issue 19, part 3: networks with several outputs (`outputs(...)`), and torchvision's
GoogLeNet with its auxiliary classifiers reproduced exactly: parameters, and all three
outputs in training mode after torchvision's weights are transferred."""
from __future__ import annotations

import pytest
import torch
import torchvision

import cnndsl
from cnndsl.api import check_spec

SPEC = """input 8x8x3
def head = GAP - FC(5)
CONV(4, 3, pad=1) as a - RELU - CONV(4, 1) as b - CONV(8, 2, s=2) - head
  - outputs(main=identity, aux=@a - head, aux2=@b - CONV(2, 1) - head)
"""


def test_outputs_are_recorded_main_first():
    graph = check_spec(SPEC)
    assert [name for name, _ in graph.outputs] == ["main", "aux", "aux2"]
    assert graph.outputs[0][1] == graph.output


@pytest.mark.parametrize("flat", [False, True])
def test_training_mode_returns_a_named_tuple_eval_mode_the_main_output(flat):
    model = cnndsl.compile(text=SPEC, seed=0, flat=flat)
    x = torch.randn(2, 3, 8, 8)
    out = model.train()(x)
    assert out._fields == ("main", "aux", "aux2")
    assert all(t.shape == (2, 5) for t in out)
    with torch.no_grad():
        main = model.eval()(x)
    assert torch.allclose(main, out.main)
    # the heads are the layers written: aux reads conv1's output through GAP and FC
    conv = dict(model.named_modules())
    assert sum(p.numel() for p in model.parameters()) == 363 == sum(
        p.numel() for m in conv.values() for p in m.parameters(recurse=False))


def _torchvision_googlenet_state(theirs, ours) -> dict:
    """torchvision's tensors in our modules' order: theirs declares aux1 and aux2 before fc,
    ours builds the heads after the main chain, in the order `outputs(...)` names them
    (aux_logits2, then aux_logits1)."""
    state = theirs.state_dict()
    main = [k for k in state if not k.startswith(("aux1.", "aux2."))]
    order = main + [k for k in state if k.startswith("aux2.")] + \
        [k for k in state if k.startswith("aux1.")]
    slots = list(ours.state_dict().values())
    assert len(order) == len(slots)
    return {k: state[k] for k in order}


def test_googlenet_aux_parameters_are_torchvisions():
    theirs = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    expected = sum(p.numel() for p in theirs.parameters())
    assert check_spec("zoo:googlenet", aux=1).totals["params"] == expected == 13_004_888
    model = cnndsl.compile("zoo:googlenet", aux=1, device="meta")
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.slow
def test_googlenet_aux_outputs_equal_torchvisions_in_training_mode():
    """Training mode (batch norm on the batch's statistics), dropout switched off in both
    models: torchvision's GoogLeNet computes the auxiliary heads where they branch off, ours
    after the main chain, so the two draw their dropout masks in different orders; with the
    Dropout modules in eval mode every output is a function of the weights and input alone."""
    torch.manual_seed(0)
    theirs = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    ours = cnndsl.compile("zoo:googlenet", aux=1, input="64x64x3", logits=True, seed=0)
    report = cnndsl.transfer_weights(_torchvision_googlenet_state(theirs, ours), ours,
                                     source_name="torchvision")
    assert report.values == sum(v.numel() for v in theirs.state_dict().values())
    for model in (theirs, ours):
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    assert type(expected).__name__ == "GoogLeNetOutputs"
    assert got._fields == expected._fields == ("logits", "aux_logits2", "aux_logits1")
    for g, e in zip(got, expected):
        assert g.shape == e.shape == (2, 1000)
        assert (g - e).abs().max().item() <= 1e-5 * e.abs().max().item()
    with torch.no_grad():  # eval mode: the main output alone, as torchvision's
        theirs.eval()
        ours.eval()
        e, g = theirs(x), ours(x)
    assert isinstance(g, torch.Tensor)
    assert (g - e).abs().max().item() <= 1e-5 * e.abs().max().item()


def _reordered(theirs, ours, heads: list[str]) -> dict:
    """torchvision's tensors in our modules' order: its auxiliary heads (`heads`, prefixes of
    its state_dict keys, in the order `outputs(...)` names them) after everything else."""
    state = theirs.state_dict()
    order = [k for k in state if not k.startswith(tuple(heads))]
    for head in heads:
        order += [k for k in state if k.startswith(head)]
    assert len(order) == len(ours.state_dict())
    return {k: state[k] for k in order}


def _training_outputs(theirs, ours, size: int):
    """Both models in training mode (batch norm on the batch's statistics) with their Dropout
    modules in eval mode, on one input."""
    for model in (theirs, ours):
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return theirs(x), ours(x)


def test_inception_v3_aux_parameters_are_torchvisions():
    theirs = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    expected = sum(p.numel() for p in theirs.parameters())
    weights = torchvision.models.Inception_V3_Weights.DEFAULT.meta["num_params"]
    assert check_spec("zoo:inception_v3", aux=1).totals["params"] == expected == weights


@pytest.mark.long
def test_inception_v3_aux_outputs_equal_torchvisions_in_training_mode():
    """At 299x299: the auxiliary head's 5x5/3 pool and 5x5 convolution need Mixed_6e's
    17x17 map."""
    torch.manual_seed(0)
    theirs = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    ours = cnndsl.compile("zoo:inception_v3", aux=1, logits=True, seed=0)
    report = cnndsl.transfer_weights(_reordered(theirs, ours, ["AuxLogits."]), ours,
                                     source_name="torchvision")
    assert report.values == sum(v.numel() for v in theirs.state_dict().values())
    expected, got = _training_outputs(theirs, ours, 299)
    assert type(expected).__name__ == "InceptionOutputs"
    assert got._fields == expected._fields == ("logits", "aux_logits")
    for g, e in zip(got, expected):
        assert g.shape == e.shape == (2, 1000)
        assert (g - e).abs().max().item() <= 1e-4 * e.abs().max().item()
