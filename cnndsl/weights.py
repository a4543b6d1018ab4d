"""Weights by structure: a model's (or a state_dict's) tensors copied onto a compiled model,
paired by structure, not by name.

Names differ between any two codebases (torchvision's `layer1.0.downsample.0` is a
projection a spec writes inside `residual(...)`), so modules holding tensors are paired by
what they hold and where they sit:

- a module is paired by its place in the data flow: both models are traced with torch.fx
  into graphs of the modules that hold tensors, linked where one's output reaches the other
  through parameter-free operations; each module is paired with the one of equal shapes in
  the same place (refined from the input forward and from the output backward). Where both
  models create their modules in the same order, that order agrees with the data flow and is
  used as it is. Modules of equal shapes in symmetric places (a projection and a body's
  first convolution, both reading a block's input) are told apart by the operations without
  weights just after them (the body's activation). Then both models run on one random input
  and must agree within 1e-5 of their scale; where they do not, the other pairings the data
  flow allows are tried, and if none agrees nothing is copied;
- a state_dict (which cannot be run) is paired in creation order, as two builds of one
  architecture usually create their modules, and only the shapes are checked.

This module is the public face and the pairing in creation order; the pairing by data flow
is cnndsl.weight_flow's, the check against the outputs cnndsl.weight_check's.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from . import weight_check, weight_flow
from .errors import UsageError
from .weight_flow import describe, shapes


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
    """What transfer_weights copied, module by module in the model's order, how the modules
    were paired (`pairing`: "data flow", "creation order, which agrees with the data flow",
    "creation order"), and how the result was checked (`check`: the outputs' agreement, or
    why they were not compared)."""

    transfers: tuple[Transfer, ...]
    pairing: str = "creation order"
    check: str = "not checked"

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
                 f"{describe(t.tensors)}" for t in self.transfers]
        lines.append(f"{len(self.transfers):,} modules, {self.tensors:,} tensors, "
                     f"{self.values:,} values")
        lines.append(f"paired by {self.pairing}; {self.check}")
        return "\n".join(lines)


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


def transfer_weights(source, model, *, source_name: str = "the source", verify: bool = True,
                     input_shape=None) -> Report:
    """Copy `source`'s parameters and buffers onto `model` by structure and return a report.

    `source` is a torch module or a state_dict. A module is paired with `model` by the data
    flow (torch.fx; creation order where it cannot be traced), then, with `verify`, both run
    on one random input in eval mode and must agree within 1e-5 of their scale (pairings
    the data flow leaves open are decided so). A state_dict is paired in creation order.
    `input_shape` (C, H, W, or (N,) for vectors) is the input to check with; by default the
    compiled model's own. On any mismatch nothing is copied and WeightsMismatch says where.
    """
    import torch

    theirs, ours = _modules(state_of(source)), _modules(model.state_dict())
    order_error = _order_error(theirs, ours, source_name)
    order = None if order_error else [(i, i) for i in range(len(ours))]
    if not isinstance(source, torch.nn.Module):
        if order_error:
            raise WeightsMismatch(order_error)
        transfers = _apply(theirs, ours, order, model)
        return Report(transfers, "creation order",
                      "not checked: a state_dict cannot be run (pass the module itself to "
                      "have it paired by data flow and the outputs compared)")

    flows, difference = weight_flow.flows(source, model, theirs, ours), None
    if isinstance(flows, str):  # cannot be traced: creation order, checked by the outputs
        if order_error:
            raise WeightsMismatch(order_error)
        candidates, pairing, ambiguous = iter([order]), "creation order", None
        fallback = flows
    else:
        src, dst = flows
        first = weight_flow.flow_pairing(src, dst)
        fallback = None
        if first is None:  # different structures: the order names the first difference
            if order_error:
                raise WeightsMismatch(order_error)
            difference = weight_flow.first_difference(src, dst, ours, source_name)
            if not verify:
                raise WeightsMismatch(
                    f"{source_name}'s modules have the model's shapes in creation order, but "
                    f"they are connected differently: {difference}; nothing was copied")
            # creation order, which only the outputs can confirm
            candidates, pairing, ambiguous = iter([order]), "creation order", None
            fallback = f"the data flows differ ({difference})"
        elif order is not None and sorted(order) == sorted(first):
            candidates, pairing = iter([order]), "creation order, which agrees with the data flow"
        else:
            candidates, pairing = iter([first]), "data flow"
        if first is not None:
            ambiguous = weight_flow.ambiguous(src, theirs)
            if ambiguous:
                candidates = weight_flow.chain_unique(candidates,
                                                      weight_flow.alternatives(src, dst))

    pairs = next(candidates)
    checker = weight_check.Checker.make(source, model, input_shape) if verify else None
    agrees, measure = (None, "") if checker is None else (None, checker)
    tried, first_measure = 0, ""
    if isinstance(checker, weight_check.Checker):
        try:
            while pairs is not None:
                tried += 1
                # the paired tensors are tried without touching the model (functional_call)
                agrees, measure = checker.check(_new_state(theirs, ours, pairs),
                                                every_size=tried == 1)
                if agrees is not False:
                    break
                first_measure = first_measure or measure
                pairs = next(candidates, None) if tried < MAX_TRIES else None
        finally:
            checker.restore()
    if agrees is None:  # not compared
        if difference:
            raise WeightsMismatch(
                f"{source_name}'s modules have the model's shapes in creation order, but they "
                f"are connected differently: {difference}, and the outputs cannot be compared "
                f"here ({measure}); nothing was copied")
        if ambiguous and verify:
            raise WeightsMismatch(
                f"{_list(ambiguous)} have the same shapes and the same place in "
                f"{source_name}'s data flow, so only the outputs can tell which is which, "
                f"and they cannot be compared here ({measure}): pass input_shape=(C, H, W), "
                "or verify=False to pair them in creation order")
        why = "not checked (verify=False)" if checker is None else f"not checked: {measure}"
        return Report(_apply(theirs, ours, pairs, model), pairing, why)
    if agrees:
        if tried > 1:
            pairing = (f"data flow, with {_list(ambiguous)} (equal shapes in symmetric places) "
                       f"told apart by the outputs ({tried} pairings tried)")
        return Report(_apply(theirs, ours, pairs, model), pairing, measure)
    message = (f"the weights fit module by module, but {source_name} and the model "
               f"compute different outputs: {first_measure}")
    if fallback and fallback.startswith("the data flows differ"):
        message += (f". Modules were paired in creation order because {fallback}")
    elif fallback:
        message += (f". Modules were paired in creation order because {fallback}: where "
                    f"{source_name} creates modules of equal shapes in another order than the "
                    "model (a projection before a block's body), they are swapped; write the "
                    "model to create them in its order, or give a source torch.fx can trace")
    elif ambiguous:
        message += (f". {_list(ambiguous)} have the same shapes and the same place in "
                    f"the data flow, and none of the {tried} pairings of them tried gives "
                    f"{source_name}'s outputs, so the networks differ between their weighted "
                    "layers (an activation, a pooling, a softmax or another layer without "
                    "weights)")
    else:
        message += (". Every module was paired by its place in the data flow, so the networks "
                    "differ between their weighted layers (an activation, a pooling, a softmax "
                    "or another layer without weights)")
    raise WeightsMismatch(message + "; nothing was copied (verify=False copies them anyway)")


MAX_TRIES = 64  # pairings tried against the outputs where the data flow leaves some open


def _order_error(theirs, ours, source_name: str) -> str | None:
    """Why pairing in creation order fails: the first module that differs, or None."""
    for index in range(max(len(theirs), len(ours))):
        if index >= len(theirs) or index >= len(ours):
            extra = ours[index] if index >= len(theirs) else theirs[index]
            owner = "the model" if index >= len(theirs) else source_name
            return (f"{source_name} has {len(theirs):,} modules with weights and the model "
                    f"{len(ours):,}: {owner}'s `{extra[0]}` ({describe(shapes(extra[1]))}) "
                    "has no counterpart")
        (their_path, their_tensors), (our_path, our_tensors) = theirs[index], ours[index]
        their_shapes, our_shapes = shapes(their_tensors), shapes(our_tensors)
        if [s for _, s in their_shapes] != [s for _, s in our_shapes]:
            return (f"module {index + 1} differs: {source_name}'s `{their_path}` holds "
                    f"{describe(their_shapes)}, but the model's `{our_path}` holds "
                    f"{describe(our_shapes)}")
    return None


def _new_state(theirs, ours, pairs) -> dict:
    """The model's state_dict from the paired modules (source index, model index)."""
    state = {}
    for their_index, our_index in pairs:
        our_path, our_tensors = ours[our_index]
        for (_, value), (name, _) in zip(theirs[their_index][1], our_tensors):
            state[f"{our_path}.{name}" if our_path else name] = value
    return state


def _apply(theirs, ours, pairs, model) -> tuple[Transfer, ...]:
    """Load the paired tensors onto the model; what went where, in the model's order."""
    model.load_state_dict(_new_state(theirs, ours, pairs))
    return tuple(Transfer(theirs[i][0], ours[j][0], tuple(shapes(ours[j][1])))
                 for i, j in sorted(pairs, key=lambda pair: pair[1]))


def _list(paths, limit: int = 6) -> str:
    shown = ", ".join(f"`{p}`" for p in paths[:limit])
    return shown + (f" and {len(paths) - limit:,} more" if len(paths) > limit else "")


def load_weights(path) -> Mapping:
    """A state_dict file (torch.save), read with weights_only=True: no code runs."""
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a weights file") from None
    except Exception as exc:  # noqa: BLE001 (torch.load's refusals: unpickling, zip and format errors)
        first = str(exc).strip().split("\n")[0]
        raise UsageError(f"{path} is not a state_dict file torch can read safely: "
                         f"{first}") from None
    return state_of(data)
