"""cnndsl: a declarative language and compiler for convolutional network architectures."""
from __future__ import annotations

from .api import build_graph
from .errors import (CnnArgumentError, CnnDslError, CnnLimitError, CnnNameError,
                     CnnShapeError, CnnSyntaxError)
from .shapes import Shape

__version__ = "0.1.0"

__all__ = ["build_graph", "CnnDslError", "CnnSyntaxError", "CnnNameError", "CnnArgumentError",
           "CnnShapeError", "CnnLimitError", "Shape", "__version__"]
