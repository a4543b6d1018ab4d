"""The layer registry: the one place that knows what each layer kind is.

Each module of this package declares kinds with `@register`; adding a kind is adding a module
(or a class to one). Every module here is imported, in name order.
"""
from __future__ import annotations

import importlib
import pkgutil

from . import spelling
from .base import REGISTERED, Context, LayerKind, Param, Recipe, Site, Symbol

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_info.name}")

REGISTRY: dict[str, LayerKind] = {}
_BY_NAME: dict[str, LayerKind] = {}

for _kind in REGISTERED:
    assert _kind.name not in REGISTRY, f"two layer kinds are named {_kind.name}"
    REGISTRY[_kind.name] = _kind
    for _alias in (_kind.name, *_kind.aliases):
        assert _alias.lower() not in _BY_NAME, f"two layer kinds are called {_alias}"
        _BY_NAME[_alias.lower()] = _kind


def lookup(name: str) -> LayerKind | None:
    """The kind a (case-insensitive) layer name or alias denotes, if any."""
    return _BY_NAME.get(name.lower())


def suggest(name: str, candidates) -> str | None:
    """'Did you mean' among `candidates` for an unknown layer name, never its opposite
    (`UPSAMPLE` is not a typo of `SUBSAMPLE`): see spelling.py."""
    return spelling.suggest(name, candidates)


def foreign_help(name: str) -> str | None:
    """What to write for another framework's name for a construct (`DEPTHTOSPACE`)."""
    return spelling.foreign_help(name, REGISTRY.values())


def by_spelling(name: str) -> LayerKind | None:
    """The kind another framework's word `name` stands for (`mul` -> the gate's MUL), from
    the kinds' `spellings`; None if no kind claims it."""
    low = name.lower()
    return next((kind for kind in REGISTRY.values() if low in kind.spellings), None)


def callable_names() -> list[str]:
    """Every name a spec may call a layer by (for 'did you mean')."""
    return sorted({alias for kind in REGISTRY.values() if kind.callable
                   for alias in (kind.name, *kind.aliases)})


def get(kind: str) -> LayerKind:
    return REGISTRY[kind]


def input_kind() -> LayerKind:
    """The kind of the network's entry node."""
    return next(kind for kind in REGISTRY.values() if kind.family == "input")


def merge_kind(builtin: str) -> LayerKind:
    """The kind a merge builtin makes: `concat` -> CONCAT; `add` and `residual` -> the sum."""
    builtin = "add" if builtin == "residual" else builtin
    return next(kind for kind in REGISTRY.values() if kind.merge_builtin == builtin)


def merge_builtins() -> tuple[str, ...]:
    """The language's merge builtins the registry declares."""
    return tuple(kind.merge_builtin for kind in REGISTRY.values() if kind.merge_builtin)


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
           "by_spelling", "callable_names", "foreign_help", "get", "input_kind", "merge_builtins",
           "merge_kind", "paper_token", "paper_token_pattern", "suggest"]
