"""Normalisation: batch norm (BN) and AlexNet's local response normalisation (LRN/NORM)."""
from __future__ import annotations

from ..errors import CnnArgumentError
from ..limits import MAX_AXIS
from .base import LayerKind, Param, Recipe, check_input_size, register, volume_in


@register
class BatchNorm(LayerKind):
    name = "BN"
    aliases = ("BATCHNORM", "BATCH_NORM", "BATCHNORM2D")
    family = "norm"
    batch_norm = True
    doc = ("Batch normalisation: a scale and a shift per channel (trainable) and running mean "
           "and variance (buffers). 2d on volumes, 1d on vectors. `channels` is optional, as "
           "PyTorch's `BatchNorm2d(64)` writes it, and must match the input.")
    params = (Param("channels", "count", None, ("num_features", "c")),
              Param("eps", "float", 1e-5), Param("momentum", "float", 0.1))

    def check_bound(self, values, span):
        # PyTorch's batch_norm refuses it only at the first forward (issue 17, F13); a
        # negative eps can make the variance plus eps negative and its square root NaN
        if values["eps"] < 0:
            raise CnnArgumentError(f"BN: `eps` must be at least 0, not {values['eps']:g}", span,
                                   help="eps is added to the variance; PyTorch's default is "
                                   "1e-5")

    def resolve(self, p, ins, ctx, site):
        check_input_size(self.name, "channels", p.get("channels"), ins[0].c, site)
        return p

    def count_params(self, p, ins, out):
        return 2 * ins[0].c, 2 * ins[0].c

    def recipe(self, p, ins, out):
        cls = "BatchNorm2d" if ins[0].is_volume else "BatchNorm1d"
        return Recipe(cls, dict(num_features=ins[0].c, eps=p["eps"], momentum=p["momentum"]),
                      positional=("num_features",), defaults={"eps": 1e-5, "momentum": 0.1},
                      accumulable=True)

    def inputs_per_neuron(self, p, ins, out, n_params):
        return 2  # one input scaled by gamma, plus the shift beta (the layer's bias)

    def explain(self, p, ins, out, n_params):
        c = ins[0].c
        return [f"parameters 2 x {c} channels = {n_params:,} (a scale and a shift each), "
                f"and 2 x {c} running statistics"]


@register
class LocalResponseNorm(LayerKind):
    name = "LRN"
    aliases = ("NORM", "LOCALRESPONSENORM")
    family = "norm"
    doc = ("Local response normalisation across `size` neighbouring channels (AlexNet's NORM1 "
           "and NORM2; the paper's k=2, n=5, alpha=1e-4, beta=0.75 are the defaults).")
    params = (Param("size", "count", 5, ("n",)), Param("alpha", "float", 1e-4),
              Param("beta", "float", 0.75), Param("k", "float", 2.0))

    def check_bound(self, values, span):
        # PyTorch pads the channels by the window and sizes it in 32 bits: LRN(10^12)
        # checked, then failed at its forward (issue 17, F13)
        if values["size"] > MAX_AXIS:
            raise CnnArgumentError(f"LRN: the window of {values['size']:,} channels is larger "
                                   f"than PyTorch can size ({MAX_AXIS:,})", span,
                                   help="AlexNet's is 5")

    def infer(self, p, ins, ctx, site):
        return volume_in(self.name, ins[0], site)

    def recipe(self, p, ins, out):
        return Recipe("LocalResponseNorm", dict(size=p["size"], alpha=p["alpha"],
                                                beta=p["beta"], k=p["k"]))

    def label(self, p):
        return f"LRN {p['size']}"

    def inputs_per_neuron(self, p, ins, out, n_params):
        return p["size"]  # the neighbouring channels it normalises over
