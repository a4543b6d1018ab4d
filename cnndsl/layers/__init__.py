"""The layer registry: the one place that knows what each layer kind is."""
from __future__ import annotations

from . import activation, bias, conv, dense, merge, norm, pool
from .base import Context, LayerKind, Param, Recipe, Site, Symbol

REGISTRY: dict[str, LayerKind] = {}
_BY_NAME: dict[str, LayerKind] = {}

for _module in (merge, conv, pool, dense, activation, norm, bias):
    for _kind in _module.KINDS:
        REGISTRY[_kind.name] = _kind
        for _alias in (_kind.name, *_kind.aliases):
            assert _alias.lower() not in _BY_NAME, _alias
            _BY_NAME[_alias.lower()] = _kind


def lookup(name: str) -> LayerKind | None:
    """The kind a (case-insensitive) layer name or alias denotes, if any."""
    return _BY_NAME.get(name.lower())


def callable_names() -> list[str]:
    """Every name a spec may call a layer by (for 'did you mean')."""
    return sorted({alias for kind in REGISTRY.values() if kind.callable
                   for alias in (kind.name, *kind.aliases)})


def get(kind: str) -> LayerKind:
    return REGISTRY[kind]


def paper_token_pattern() -> str:
    """One regex matching every kind's paper token (`conv3-64`, `FC-4096`, `soft-max`), for the
    grammar's PAPER_TOKEN terminal; matched case-insensitively, as paper_token() matches."""
    # dict.fromkeys: a subclass that inherits its parent's token (DWCONV's CONV) adds nothing
    patterns = dict.fromkeys(kind.paper_token for kind in REGISTRY.values() if kind.paper_token)
    return "|".join(f"(?:{pattern})" for pattern in patterns)


def paper_token(text: str) -> tuple[LayerKind, tuple, dict] | None:
    """The kind and argument values a paper's token (`conv3-64`, `FC-4096`) stands for."""
    import re

    for kind in REGISTRY.values():
        match = kind.paper_token and re.fullmatch(kind.paper_token, text, re.IGNORECASE)
        if match:
            args, kwargs = kind.from_paper_token(match)
            return kind, args, kwargs
    return None


__all__ = ["REGISTRY", "Context", "LayerKind", "Param", "Recipe", "Site", "Symbol", "lookup",
           "callable_names", "get", "paper_token", "paper_token_pattern"]
