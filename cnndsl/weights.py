"""Weights by structure: a model's (or a state_dict's) tensors copied onto a compiled model,
paired by module order and tensor shape, not by name.

Names differ between any two codebases (torchvision's `layer1.0.downsample.0` is a
projection a spec writes inside `residual(...)`), but two builds of one architecture create
their weighted modules in the same order with the same shapes: that is what is compared.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import UsageError


class WeightsMismatch(UsageError):
    """The source's weights do not fit the model: the first module where they differ."""


@dataclass(frozen=True)
class Transfer:
    """One module's tensors: where they came from and where they went."""

    source: str  # the module's path in the source (`layer1.0.conv1`)
    target: str  # its path in the model (`conv5`)
    tensors: tuple[tuple[str, tuple[int, ...]], ...]  # (name in the model, shape)


@dataclass(frozen=True)
class Report:
    """What transfer_weights copied, module by module, in order."""

    transfers: tuple[Transfer, ...]

    @property
    def tensors(self) -> int:
        return sum(len(t.tensors) for t in self.transfers)

    @property
    def values(self) -> int:
        total = 0
        for t in self.transfers:
            for _, shape in t.tensors:
                n = 1
                for d in shape:
                    n *= d
                total += n
        return total

    def __str__(self) -> str:
        width = max((len(t.source) for t in self.transfers), default=0)
        lines = [f"{t.source or '(root)':<{width}}  ->  {t.target or '(root)'}  "
                 f"{_describe(t.tensors)}" for t in self.transfers]
        lines.append(f"{len(self.transfers):,} modules, {self.tensors:,} tensors, "
                     f"{self.values:,} values")
        return "\n".join(lines)


def _describe(tensors) -> str:
    return ", ".join(f"{name} {'x'.join(map(str, shape)) or 'scalar'}"
                     for name, shape in tensors)


def _modules(state: Mapping) -> list[tuple[str, list[tuple[str, object]]]]:
    """The state's tensors grouped by the module holding them, in order."""
    groups: dict[str, list[tuple[str, object]]] = {}
    for key, value in state.items():
        module, _, name = key.rpartition(".")
        groups.setdefault(module, []).append((name, value))
    return list(groups.items())


def state_of(source) -> Mapping:
    """A module's state_dict, or a state_dict (or a checkpoint holding one) as given."""
    import torch

    if isinstance(source, torch.nn.Module):
        return source.state_dict()
    if isinstance(source, Mapping):
        if source and all(isinstance(v, torch.Tensor) for v in source.values()):
            return source
        for key in ("state_dict", "model_state_dict", "model"):
            inner = source.get(key)
            if isinstance(inner, Mapping) and inner and all(
                    isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
    raise UsageError("the weights must be a torch module or a state_dict (a dict of tensors, "
                     "or a checkpoint holding one under 'state_dict' or 'model')")


def transfer_weights(source, model, *, source_name: str = "the source") -> Report:
    """Copy `source`'s parameters and buffers onto `model` by structure and return a report.

    `source` is a torch module or a state_dict. Modules holding tensors are paired in order;
    within a pair, tensors in order, and every shape must match. On the first mismatch,
    nothing is copied and WeightsMismatch names both modules and their shapes.
    """
    theirs, ours = _modules(state_of(source)), _modules(model.state_dict())
    new_state, transfers = {}, []
    for index in range(max(len(theirs), len(ours))):
        if index >= len(theirs) or index >= len(ours):
            extra = ours[index] if index >= len(theirs) else theirs[index]
            owner = "the model" if index >= len(theirs) else source_name
            raise WeightsMismatch(
                f"{source_name} has {len(theirs):,} modules with weights and the model "
                f"{len(ours):,}: {owner}'s `{extra[0]}` ({_describe(_shapes(extra[1]))}) "
                "has no counterpart")
        (their_path, their_tensors), (our_path, our_tensors) = theirs[index], ours[index]
        their_shapes, our_shapes = _shapes(their_tensors), _shapes(our_tensors)
        if [s for _, s in their_shapes] != [s for _, s in our_shapes]:
            raise WeightsMismatch(
                f"module {index + 1} differs: {source_name}'s `{their_path}` holds "
                f"{_describe(their_shapes)}, but the model's `{our_path}` holds "
                f"{_describe(our_shapes)}")
        for (_, value), (name, _) in zip(their_tensors, our_tensors):
            new_state[f"{our_path}.{name}" if our_path else name] = value
        transfers.append(Transfer(their_path, our_path, tuple(our_shapes)))
    model.load_state_dict(new_state)
    return Report(tuple(transfers))


def _shapes(tensors) -> list[tuple[str, tuple[int, ...]]]:
    return [(name, tuple(value.shape)) for name, value in tensors]


def load_weights(path) -> Mapping:
    """A state_dict file (torch.save), read with weights_only=True: no code runs."""
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a weights file") from None
    except Exception as exc:  # torch.load's refusals: unpickling, zip and format errors
        first = str(exc).strip().split("\n")[0]
        raise UsageError(f"{path} is not a state_dict file torch can read safely: "
                         f"{first}") from None
    return state_of(data)
