"""cnndsl: a declarative language and compiler for convolutional network architectures."""
from __future__ import annotations

# compile and load import torch when called, not here: `import cnndsl` (check, summary,
# render) stays torch-free.
from .api import build_graph, compile, load
from .errors import (CnnArgumentError, CnnDslError, CnnDslWarning, CnnLimitError, CnnNameError,
                     CnnShapeError, CnnSyntaxError, NoClassifierWarning, UnusedVariableWarning)
from .shapes import Shape
from .version import __version__
from .weights import transfer_weights

__all__ = ["build_graph", "compile", "load", "transfer_weights", "CnnDslError", "CnnSyntaxError",
           "CnnNameError", "CnnArgumentError", "CnnShapeError", "CnnLimitError", "CnnDslWarning",
           "UnusedVariableWarning", "NoClassifierWarning",
           "Shape", "__version__"]
