"""textopt: optimize compound LLM systems by backpropagating feedback — text and tensors in one graph."""
from . import errors, graph
from .backward import abackward, backward
from .engines import Engine, Request, Response, RoutedEngine, backward_engine, get_engine, usage
from .errors import BudgetExceeded, TextoptError
from .function import Function, Node
from .functional import concat
from .grad_mode import enable_grad, is_grad_enabled, no_grad
from . import lazy
from .lazy import synchronize
from .variable import Feedback, Variable
# packages built on the core (imported after it)
from . import nn  # noqa: E402
from .nn.aggregate import aggregate  # noqa: E402
from .nn.pyfunction import function  # noqa: E402
from . import optim, train  # noqa: E402
from .solution import aoptimize_solution, optimize_solution  # noqa: E402  (test-time optimization)

__version__ = "0.1.0"

__all__ = ["Variable", "Feedback", "Function", "Node", "concat", "aggregate", "function", "no_grad", "enable_grad",
           "is_grad_enabled", "lazy", "synchronize", "backward", "abackward", "backward_engine", "get_engine",
           "Engine", "Request", "Response", "RoutedEngine", "usage", "optimize_solution", "aoptimize_solution",
           "graph", "nn", "optim", "train", "errors", "TextoptError", "BudgetExceeded"]
