"""Every layer kind in the registry against real torch: static shapes and counts == torch's.

A new kind gets these checks for free (a bare `KIND` spec); the table adds the variants
that exercise strides, padding, rounding, dilation, groups and vector inputs.
"""
from __future__ import annotations

import pytest
import torch
from torch import fx

import cnndsl
from cnndsl import layers
from cnndsl.torch_backend import to_module

KIND_SPECS = {
    "INPUT": ["input 5x7x3\nRELU", "input 12\nTANH"],
    "ADD": ["input 6x6x4\nadd(CONV(4, 3, pad=1), identity)",
            "input 8x8x4\nrounding = floor\n"
            "residual(CONV(8, 3, s=2, pad=1) - BN - RELU - CONV(8, 3, pad=1) - BN)",
            "input 10\nadd(FC(10), RELU, SIGMOID)"],
    "CONCAT": ["input 6x6x4\nconcat(CONV(2, 1), MAXPOOL(3, 1, pad=1), CONV(3, 3, pad=1))",
               "input 12\nconcat(FC(5), FC(7))"],
    "CONV": ["input 9x7x4\nCONV(6, 3x1, s=2x1, pad=1x0, groups=2, round=floor)",
             "input 11x11x3\nCONV(4, 3, d=2, bias=false)", "input 8x8x3\nCONV",
             "input 9x9x3\nCONV(5, 4, s=2, pad=1, round=floor)"],
    "DWCONV": ["input 8x8x4\nDWCONV(3, 2, pad=1, multiplier=2, round=floor)",
               "input 6x6x3\nDWCONV(bias=false)"],
    "SEPCONV": ["input 8x8x4\nSEPCONV(8, 3)", "input 9x9x4\nSEPCONV(6, 3, s=2)"],
    "MAXPOOL": ["input 9x9x2\nMAXPOOL(3, 2, round=ceil)", "input 9x9x2\nMAXPOOL(3, 2, pad=1)",
                "input 8x8x2\nPOOL", "input 10x10x2\nMAXPOOL(3, 2, round=ceil)"],
    "AVGPOOL": ["input 7x7x2\nAVGPOOL(2, round=ceil)", "input 8x8x2\nAVGPOOL(3, 1, pad=1)"],
    "GAP": ["input 5x6x3\nGAP"],
    "ADAPTIVEAVGPOOL": ["input 7x9x3\nADAPTIVEAVGPOOL(3)", "input 4x4x3\nADAPTIVEAVGPOOL(6)"],
    "FC": ["input 4x4x3\nFC(5)", "input 12\nFC(5, bias=false)"],
    "FLATTEN": ["input 3x4x5\nFLATTEN"],
    "DROPOUT": ["input 3x4x5\nDROPOUT(0.3)"],
    "LEAKYRELU": ["input 3x4x5\nLEAKYRELU(0.1)"],
    "ELU": ["input 3x4x5\nELU(alpha=0.5)"],
    "SOFTMAX": ["input 3x4x5\nSOFTMAX", "input 12\nclasses = 5\nSOFTMAX"],
    "BN": ["input 3x4x5\nBN", "input 12\nFC(6) - BN(eps=0.001, momentum=0.2)"],
    "LRN": ["input 5x5x8\nLRN(3)", "input 5x5x8\nNORM"],
    "DECONV": ["input 7x5x4\nDECONV(6, 2, s=2)",
               "input 5x6x4\nConvTranspose2d(6, 3x2, s=2x3, pad=1x0, op=1x2, groups=2, d=1x2)",
               "input 4x4x3\nCONVTRANSPOSE(5, 3, s=3, pad=1, op=2, bias=false, in_channels=3)",
               "input 6x6x2\nDECONV(2, 1, pad=0)"],
    "UPSAMPLE": ["input 5x6x3\nUPSAMPLE", "input 5x6x3\nUPSAMPLE(2x3, mode=bilinear)",
                 "input 5x6x3\nRESIZE(size=11x4, mode=bilinear, align_corners=true)",
                 "input 5x6x3\nINTERPOLATE(scale_factor=3, mode=bicubic)"],
    "RESHAPE": ["input 48\nRESHAPE(4x3x4)", "input 3x4x5\nUNFLATTEN(6x10)",
                "input 2x2x8\nRESHAPE(4x4x2)"],
    "CROP": ["input 9x8x3\nCROP(4x5)", "input 6x6x2\nCROP(6)", "input 7x10x2\nCROP(2x3)"],
    "PAD": ["input 5x4x3\nPAD(1)", "input 5x4x3\nPAD(1x2, value=-1)",
            "input 5x4x3\nPAD(top=1, right=3, mode=reflect)",
            "input 5x4x3\nPAD(2, mode=replicate)", "input 5x4x3\nPAD(0x4, mode=circular)"],
    "PIXELSHUFFLE": ["input 3x5x8\nPIXELSHUFFLE", "input 2x3x18\nPIXELSHUFFLE(3)"],
    "PIXELUNSHUFFLE": ["input 4x6x2\nPIXELUNSHUFFLE", "input 6x3x1\nPIXELUNSHUFFLE(3)"],
    "MUL": ["input 6x6x4\ngate(GAP - CONV(4, 1) - SIGMOID)", "input 6x6x4\ngate(TANH)",
            "input 10\ngate(FC(10) - HARDSIGMOID)"],
    "SPLIT": ["input 6x6x4\nSPLIT(2)", "input 6x6x6\nSPLIT(2, of=3)", "input 12\nCHUNK(1, 4)"],
    "SHUFFLE": ["input 6x6x6\nSHUFFLE(3)", "input 3x5x4\nCHANNELSHUFFLE"],
    "PRELU": ["input 6x6x4\nPRELU", "input 6x6x4\nPRELU(per_channel=true)",
              "input 12\nFC(6) - PRELU(per_channel=true, init=0.1)"],
    "LAYERNORM": ["input 3x4x5\nLAYERNORM(eps=1e-6)", "input 12\nLAYERNORM(12)"],
    "LAYERSCALE": ["input 3x4x5\nLAYERSCALE(0.5)", "input 12\nLAYERSCALE"],
    "DROPPATH": ["input 3x4x5\nDROPPATH(0.1)", "input 12\nDROPPATH"],
}


def specs_for(kind: str) -> list[str]:
    return KIND_SPECS.get(kind, [f"input 6x6x4\n{kind}"])


CASES = [pytest.param(kind, text, id=f"{kind}-{i}")
         for kind in layers.REGISTRY for i, text in enumerate(specs_for(kind))]


class ShapeRecorder(fx.Interpreter):
    """Runs the module node by node, keeping each graph node's real output shape."""

    def __init__(self, module):
        super().__init__(module)
        self.shapes: dict[int, tuple[int, ...]] = {}

    def run_node(self, n):
        out = super().run_node(n)
        if "cnndsl_node" in n.meta:
            self.shapes[n.meta["cnndsl_node"]] = tuple(out.shape[1:])
        return out


def test_every_kind_has_a_case():
    covered = {kind for kind, _ in ((c.values[0], c.values[1]) for c in CASES)}
    assert covered == set(layers.REGISTRY)


@pytest.mark.parametrize("kind, text", CASES)
def test_static_shapes_and_counts_equal_torch(kind, text):
    graph = cnndsl.build_graph(text)
    written = {(d.get("written") or "").split(".")[0] for _, d in graph.nodes(data=True)}
    assert kind in written | {d["kind"] for _, d in graph.nodes(data=True)}  # or its macro
    model = to_module(graph, flat=True).eval()  # a submodule per node: each one's shape
    start = next(v for v, d in graph.nodes(data=True) if d["kind"] == "INPUT")
    x = torch.randn(2, *graph.nodes[start]["shape"].as_list())
    recorder = ShapeRecorder(model)
    with torch.no_grad():
        out = recorder.run(x)
    recorder.shapes[start] = tuple(x.shape[1:])
    modules = dict(model.named_children())
    for v, data in graph.nodes(data=True):
        assert recorder.shapes[v] == tuple(data["shape"].as_list()), (data["name"], text)
        module = modules.get(data["name"])
        params = sum(p.numel() for p in module.parameters()) if module is not None else 0
        buffers = sum(b.numel() for name, b in module.named_buffers()
                      if not name.endswith("num_batches_tracked")) if module is not None else 0
        assert (params, buffers) == (data["n_params"], data["n_buffers"]), (data["name"], text)
    out_shape = graph.nodes[graph.graph["output"]]["shape"].as_list()
    assert tuple(out.shape) == (2, *out_shape)
    assert sum(p.numel() for p in model.parameters()) == graph.graph["totals"]["params"]


def test_silu_computes_torchs_silu():
    """The kind added in its own file (cnndsl/layers/silu.py): the registry tests above cover
    its shapes and counts; here its values, against torch.nn.functional.silu."""
    model = cnndsl.compile("input 4x4x3\nCONV(5, 3, pad=1) - SWISH", seed=0).eval()
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        assert torch.equal(model(x), torch.nn.functional.silu(model.conv1(x)))
    assert layers.lookup("swish") is layers.lookup("SILU")
