"""cnndsl: a declarative language and compiler for convolutional network architectures."""
from __future__ import annotations

from .api import build_graph
from .errors import (CnnArgumentError, CnnDslError, CnnLimitError, CnnNameError,
                     CnnShapeError, CnnSyntaxError)
from .shapes import Shape

__version__ = "0.1.0"

__all__ = ["build_graph", "compile", "load", "transfer_weights", "CnnDslError", "CnnSyntaxError", "CnnNameError",
           "CnnArgumentError", "CnnShapeError", "CnnLimitError", "Shape", "__version__"]


def __getattr__(name: str):
    # compile and load need torch; importing cnndsl (for check, summary, render) must not.
    if name == "compile":
        from .torch_backend import compile
        return compile
    if name == "load":
        from .artifacts import load
        return load
    if name == "transfer_weights":
        from .weights import transfer_weights
        return transfer_weights
    raise AttributeError(f"module 'cnndsl' has no attribute {name!r}")
