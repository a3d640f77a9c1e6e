"""``Variable``: a text or tensor value in the graph, and ``Feedback``: a textual gradient."""
from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import torch

from .errors import InvalidVariableError

if TYPE_CHECKING:
    from .function import Node

_counter = itertools.count()


class Variable:
    """A node value: ``str`` text or a ``torch.Tensor``.

    ``role`` says what the value is for ("system prompt of the solver"); every backward and optimizer prompt is
    built around it. ``requires_grad`` is False by default (TextGrad's default of True costs a backward call for
    every forgotten input). Text variables keep an ordered list of :class:`Feedback` in ``.grad``; tensor
    variables keep torch's own ``.grad``.
    """

    __slots__ = ("_value", "role", "_requires_grad", "_grad", "node", "index", "name", "meta", "__weakref__")

    def __init__(self, value: Any, role: str | None = None, requires_grad: bool = False, *,
                 name: str | None = None, meta: dict | None = None):
        if not isinstance(value, (str, torch.Tensor)):
            raise InvalidVariableError(
                f"Variable value must be a str or a torch.Tensor, got {type(value).__name__}: "
                f"convert it first (str(x) for text, torch.tensor(x) for numbers)")
        if role is not None and not isinstance(role, str):
            raise InvalidVariableError(
                f"Variable role must be a string describing what the value is for, got {type(role).__name__}")
        if not isinstance(requires_grad, bool):
            raise InvalidVariableError(f"requires_grad must be True or False, got {requires_grad!r}")
        if requires_grad and isinstance(value, str) and not (role and role.strip()):
            raise InvalidVariableError(
                "a text Variable with requires_grad=True needs a role, e.g. "
                "Variable('...', role='system prompt of the solver', requires_grad=True): "
                "the role tells the backward and optimizer LLMs what the text is for")
        self._value = value
        self.role = role or ("tensor" if isinstance(value, torch.Tensor) else "text")
        self._grad: list[Feedback] = []
        self.node: Node | None = None
        self.index = next(_counter)
        self.name = name
        self.meta = dict(meta or {})
        self._requires_grad = False
        self.requires_grad = requires_grad

    # -- value ---------------------------------------------------------------------------------------------
    @property
    def value(self) -> Any:
        return self._value

    @value.setter
    def value(self, new: Any) -> None:
        if isinstance(self._value, str) and not isinstance(new, str):
            raise InvalidVariableError(f"cannot assign {type(new).__name__} to the text Variable {self.role!r}")
        if isinstance(self._value, torch.Tensor) and not isinstance(new, torch.Tensor):
            raise InvalidVariableError(f"cannot assign {type(new).__name__} to the tensor Variable {self.role!r}")
        self._value = new

    @property
    def is_text(self) -> bool:
        return isinstance(self._value, str)

    # -- grad ----------------------------------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        if isinstance(self._value, torch.Tensor):
            return self._value.requires_grad
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if isinstance(self._value, torch.Tensor):
            if flag and not self._value.requires_grad:
                if not (self._value.is_floating_point() or self._value.is_complex()):
                    raise InvalidVariableError("only floating-point tensors can require grad")
                self._value.requires_grad_(True)
            elif not flag and self._value.requires_grad and self._value.grad_fn is None:
                self._value.requires_grad_(False)
        self._requires_grad = bool(flag)

    def requires_grad_(self, flag: bool = True) -> "Variable":
        self.requires_grad = flag
        return self

    @property
    def grad(self):
        if isinstance(self._value, torch.Tensor):
            return self._value.grad
        return self._grad

    def zero_grad(self) -> None:
        if isinstance(self._value, torch.Tensor):
            self._value.grad = None
        else:
            self._grad = []

    def _extend_grad(self, feedback: Sequence["Feedback"]) -> None:
        self._grad.extend(feedback)

    def grad_text(self, sep: str = "\n\n") -> str:
        """All feedback texts joined in order (what an optimizer reads)."""
        return sep.join(f.value for f in self._grad)

    # -- graph ---------------------------------------------------------------------------------------------
    @property
    def is_leaf(self) -> bool:
        return self.node is None

    def detach(self) -> "Variable":
        value = self._value.detach() if isinstance(self._value, torch.Tensor) else self._value
        return Variable(value, role=self.role, name=self.name, meta=self.meta)

    def backward(self, engine=None, *, max_concurrency: int | None = None) -> None:
        """Compute textual (and torch) gradients of every ``requires_grad`` ancestor. See :mod:`textopt.backward`."""
        from .backward import backward
        backward(self, engine=engine, max_concurrency=max_concurrency)

    async def abackward(self, engine=None, *, max_concurrency: int | None = None) -> None:
        from .backward import abackward
        await abackward(self, engine=engine, max_concurrency=max_concurrency)

    # -- display -------------------------------------------------------------------------------------------
    def short(self, n: int = 60) -> str:
        if isinstance(self._value, torch.Tensor):
            return f"tensor{tuple(self._value.shape)}"
        text = self._value.replace("\n", " ")
        return text if len(text) <= n else text[: n - 3] + "..."

    def __repr__(self) -> str:
        flag = ", requires_grad=True" if self.requires_grad else ""
        return f"Variable({self.short()!r}, role={self.role!r}{flag})"

    def __str__(self) -> str:
        return self._value if isinstance(self._value, str) else str(self._value)

    def __add__(self, other: "Variable") -> "Variable":
        from .functional import concat
        return concat([self, other])


class Feedback(Variable):
    """A textual gradient: criticism of a variable, with where it came from.

    ``conversation`` is the exchange it was derived from (the messages sent to the backward LLM and its
    answer, or the evaluation that seeded it); ``source`` names the graph node; ``objective`` names the loss it
    serves (multi-objective runs keep one gradient per objective); ``key`` orders gradients deterministically.
    """

    __slots__ = ("conversation", "source", "objective", "key")

    def __init__(self, text: str, target: Variable | None = None, *, conversation: Iterable[dict] = (),
                 source: str = "", objective: str | None = None, key: tuple = ()):
        role = f"feedback to {target.role}" if target is not None else "feedback"
        super().__init__(text, role=role)
        self.conversation = tuple(dict(m) for m in conversation)
        self.source = source
        self.objective = objective
        self.key = key

    def __repr__(self) -> str:
        return f"Feedback({self.short()!r}, source={self.source!r})"


def as_variable(x: Any, role: str = "text") -> Variable:
    """Wrap plain strings and tensors; return Variables unchanged."""
    if isinstance(x, Variable):
        return x
    return Variable(x, role=role)
