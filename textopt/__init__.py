"""textopt: optimize compound LLM systems by backpropagating feedback — text and tensors in one graph.

The core (Variable, Function, backward, grad modes, lazy calls, errors) is imported here; the packages built on it
(engines, nn, optim, train, graph export ...) load on first use (``tx.nn``, ``tx.get_engine``), so importing the
core loads no engine, cache or provider code. ``tests/test_layers.py`` keeps the layers apart.
"""
import importlib

from . import errors
from .backward import abackward, backward
from .errors import BudgetExceeded, TextoptError
from .function import Function, Node
from .functional import concat
from .grad_mode import enable_grad, is_grad_enabled, no_grad
from . import lazy
from .lazy import synchronize
from .variable import Feedback, Variable

del function   # noqa: F821 — the submodule; `tx.function` is the decorator of textopt.nn.pyfunction (below)

# name -> module providing it (the packages built on the core, loaded on first use)
_LAZY = {"Engine": "engines", "Request": "engines", "Response": "engines", "RoutedEngine": "engines",
         "backward_engine": "engines", "get_engine": "engines", "usage": "engines", "ImageVariable": "image",
         "aggregate": "nn.aggregate", "function": "nn.pyfunction", "optimize_solution": "solution",
         "aoptimize_solution": "solution"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    elif name.startswith("__"):   # dunders tools probe for (__wrapped__, __file__ ...) are never submodules
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    else:   # a subpackage or module: tx.nn, tx.optim, tx.train, tx.graph ...
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


__version__ = "0.1.0"

__all__ = ["Variable", "Feedback", "ImageVariable", "Function", "Node", "concat", "aggregate", "function", "no_grad",
           "enable_grad", "is_grad_enabled", "lazy", "synchronize", "backward", "abackward", "backward_engine",
           "get_engine", "Engine", "Request", "Response", "RoutedEngine", "usage", "optimize_solution",
           "aoptimize_solution", "graph", "nn", "optim", "train", "errors", "TextoptError", "BudgetExceeded"]
