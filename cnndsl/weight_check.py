"""The check against the outputs: the source and the model run on one random input, and how
far their outputs agree."""
from __future__ import annotations

from .errors import first_line

CHECK_SIZE = 32  # the largest side the outputs are compared at, where the network allows


class Checker:
    """The source's output on one random input in eval mode, and the model's with a candidate
    state (torch.func.functional_call: the model's own tensors are not touched). Both
    models' modes are restored after. The input is at most CHECK_SIZE on a side where the
    network takes it (the pairing is the same at any size), else the model's own size."""

    def __init__(self, source, model, sizes, places, tolerance, modes):
        self.source, self.model, self.sizes, self.places = source, model, sizes, places
        self.tolerance, self.modes = tolerance, modes
        self.expected: dict[int, object] = {}

    @classmethod
    def make(cls, source, model, input_shape):
        """A checker, or why the outputs cannot be compared."""
        import torch

        shape = input_shape
        for holder in (model, source):
            if shape is None:
                shape = (getattr(holder, "cnndsl_info", None) or {}).get("input_shape")
        if shape is None:
            return "the model's input shape is not known (pass input_shape=(C, H, W))"
        shape = [int(d) for d in shape]
        places = []
        for module in (source, model):
            tensor = next(iter(module.state_dict().values()), None)
            if tensor is None or tensor.device.type == "meta":
                return "a model has no weights to run (meta)"
            places.append((tensor.device, tensor.dtype if tensor.is_floating_point()
                           else torch.float32))
        cpu = all(d.type == "cpu" for d, _ in places)
        if all(t in (torch.float32, torch.float64) for _, t in places):
            tolerance = 1e-5 if cpu else 1e-3  # CUDA's convolutions may use TF32
        else:
            tolerance = 5e-2
        sizes = [shape]
        if len(shape) == 3 and max(shape[1:]) > CHECK_SIZE:
            sizes.insert(0, [shape[0], min(shape[1], CHECK_SIZE), min(shape[2], CHECK_SIZE)])
        modes = [(m, m.training) for module in (source, model) for m in module.modules()]
        source.eval()
        model.eval()
        return cls(source, model, sizes, places, tolerance, modes)

    def _input(self, size):
        import torch

        return torch.randn(1, *size, generator=torch.Generator().manual_seed(0))

    def _expected(self, k: int):
        """The source's output at sizes[k], or why there is none."""
        import torch

        if k not in self.expected:
            size = self.sizes[k]
            try:
                with torch.no_grad():
                    value = _output(self.source(self._input(size).to(*self.places[0])))
            except Exception as exc:  # noqa: BLE001 (a size the network does not take)
                value = f"the source fails on a random {_size(size)} input: {first_line(exc)}"
            if value is None:
                value = "the source's output is not a tensor"
            elif not isinstance(value, str) and not torch.isfinite(value).all():
                value = "the source's output is not finite"
            self.expected[k] = value
        return self.expected[k]

    def check(self, state, *, every_size: bool = True) -> tuple[bool | None, str]:
        """Whether the model with `state` computes the source's output (None: not compared),
        and by how much. The sizes are tried in turn until one agrees (every_size), or the
        first one the source takes only."""
        import torch
        from torch.func import functional_call

        result: tuple[bool | None, str] = (None, "")
        for k, size in enumerate(self.sizes):
            expected = self._expected(k)
            if isinstance(expected, str):
                result = result if result[0] is False else (None, expected)
                continue
            try:
                with torch.no_grad():
                    got = _output(functional_call(
                        self.model, state, (self._input(size).to(*self.places[1]),)))
            except Exception as exc:  # noqa: BLE001 (a size the network does not take)
                reason = f"the model fails on a random {_size(size)} input: {first_line(exc)}"
                result = result if result[0] is False else (None, reason)
                continue
            result = self._compare(expected, got, size)
            if result[0] or not every_size:
                return result
        return result

    def _compare(self, expected, got, size) -> tuple[bool, str]:
        where = f"on one random {_size(size)} input in eval mode"
        if got is None or got.numel() != expected.numel():
            return False, (f"the source's output is {tuple(expected.shape)}, the model's "
                           f"{None if got is None else tuple(got.shape)}, {where}")
        expected = expected.reshape(got.shape)
        best = None
        for a, b in ((expected, got), *_softmaxes(expected, got)):
            worst = (a - b).abs().max().item()
            scale = max(a.abs().max().item(), b.abs().max().item())
            if worst <= self.tolerance * scale or worst == 0:
                return True, (f"outputs agree within {worst / scale if scale else 0:.1e} "
                              f"of their scale {where}")
            best = best or (worst, scale)
        worst, scale = best
        return False, (f"they differ by {worst:.3g} ({worst / scale:.2g} of the output's "
                       f"scale) {where}")

    def restore(self) -> None:
        for module, training in self.modes:
            module.training = training


def _size(size) -> str:
    """[C, H, W] as cnndsl writes volumes, HxWxC."""
    return "x".join(map(str, list(size[1:]) + list(size[:1])))


def _output(value):
    """A model's output as a float tensor on the CPU (the first tensor of a tuple)."""
    import torch

    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        return None
    return value.detach().to("cpu", torch.float64)


def _softmaxes(expected, got):
    """A spec's trailing SOFTMAX against a source's logits, and the other way round."""
    if expected.dim() != 2:
        return ()
    return ((expected.softmax(1), got), (expected, got.softmax(1)))
