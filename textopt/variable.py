"""``Variable``: a text or tensor value in the graph, and ``Feedback``: a textual gradient."""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .checks import chat_pairs, expect, is_tensor, meta_dict, variable_args
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

    __slots__ = ("_value", "_is_text", "role", "_requires_grad", "_grad", "_retain", "node", "index", "name",
                 "_meta", "_pending", "__weakref__")

    def __init__(self, value: Any, role: str | None = None, requires_grad: bool = False, *,
                 name: str | None = None, meta: dict | None = None):
        plain = type(value) is str and requires_grad is False and (role is None or type(role) is str)
        if not plain:   # the common case (every LLM output, every input) has nothing to check
            variable_args(value, role, requires_grad)
        is_text = plain or isinstance(value, str)
        self._value = value
        self._is_text = is_text   # a value never changes kind (the setter refuses), and isinstance(x,
        # torch.Tensor) costs ~0.25 us (torch's metaclass): graph walks ask "text?" for every edge
        self.role = role or ("text" if is_text else "tensor")
        # Created on first use: most Variables (every LLM output) never get feedback or metadata, and each
        # container a node keeps alive adds to the garbage collector's work on large graphs.
        self._grad: list[Feedback] | None = None
        self._meta = None if meta is None else meta_dict(meta) or None
        self.node: Node | None = None
        self.index = next(_counter)
        self.name = name
        self._requires_grad = self._retain = False
        self._pending = None   # a lazy call's output before it resolves: see textopt.lazy
        if not plain and (requires_grad or not is_text):
            self.requires_grad = requires_grad

    @classmethod
    def _text(cls, value: str, role: str) -> "Variable":
        """``Variable(value, role=role)`` for a str ``value`` and a non-empty str ``role`` (what every operation's
        output is: ``Function.attach``), with nothing to check. ``tests/test_variable.py`` checks it builds
        exactly what ``__init__`` builds."""
        v = object.__new__(cls)
        _init_text(v, value, role)
        return v

    @property
    def meta(self) -> dict:
        """Free-form metadata (a metric's score and explanation, a judge's conversation ...)."""
        if self._meta is None:
            self._meta = {}
        return self._meta

    @meta.setter
    def meta(self, value: dict) -> None:
        self._meta = meta_dict(value)

    # -- value ---------------------------------------------------------------------------------------------
    @property
    def value(self) -> Any:
        return self._value

    @value.setter
    def value(self, new: Any) -> None:
        from .lazy import synchronize
        synchronize()   # launched calls read the value they were launched with
        if self._is_text and not isinstance(new, str):
            raise InvalidVariableError(f"cannot assign {type(new).__name__} to the text Variable {self.role!r}")
        if not self._is_text and not is_tensor(new):
            raise InvalidVariableError(f"cannot assign {type(new).__name__} to the tensor Variable {self.role!r}")
        self._value = new

    @property
    def is_text(self) -> bool:
        return self._is_text

    # -- grad ----------------------------------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        if not self._is_text:
            return self._value.requires_grad
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if not self._is_text:
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
        if not self._is_text:
            return self._value.grad
        if self._grad is None:
            self._grad = []
        return self._grad

    def retain_grad(self) -> "Variable":
        """Keep this non-leaf Variable's feedback after backward (torch's contract: by default only leaves —
        the parameters — keep theirs; intermediate feedback is dropped as soon as the pass has used it)."""
        self._retain = True
        return self

    @property
    def retains_grad(self) -> bool:
        return self._retain and self.node is not None

    def zero_grad(self) -> None:
        if not self._is_text:
            self._value.grad = None
        else:
            self._grad = None

    def _extend_grad(self, feedback: Sequence["Feedback"]) -> None:
        if self._grad is None:
            self._grad = list(feedback)
        else:
            self._grad.extend(feedback)

    def grad_text(self, sep: str = "\n\n") -> str:
        """All feedback texts joined in order (what an optimizer reads)."""
        return sep.join(f.value for f in self._grad or ())

    # -- graph ---------------------------------------------------------------------------------------------
    @property
    def is_leaf(self) -> bool:
        return self.node is None

    def detach(self) -> "Variable":
        value = self._value.detach() if not self._is_text else self._value
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
        if not self._is_text:
            return f"tensor{tuple(self._value.shape)}"
        text = self._value.replace("\n", " ")
        return text if len(text) <= n else text[: n - 3] + "..."

    def __repr__(self) -> str:
        flag = ", requires_grad=True" if self.requires_grad else ""
        return f"Variable({self.short()!r}, role={self.role!r}{flag})"

    def __str__(self) -> str:
        return self._value if self._is_text else str(self._value)

    def __add__(self, other: "Variable | str") -> "Variable":
        """``concat([self, other])``: the texts joined by a newline; a str is a constant part (no feedback)."""
        from .functional import concat
        return concat([self, _part(other)])

    def __radd__(self, other: str) -> "Variable":
        from .functional import concat
        return concat([_part(other), self])


class Feedback(Variable):
    """A textual gradient: criticism of a variable, with where it came from.

    ``conversation`` is the exchange it was derived from (the messages sent to the backward LLM and its
    answer, or the evaluation that seeded it); ``context`` is the forward step that explains it, as
    ``(label, text)`` pairs (the input, the output, the feedback the output received — what an optimizer shows
    next to the feedback, never the backward LLM's own instructions); ``source`` names the graph node;
    ``objective`` names the loss it serves (multi-objective runs keep one gradient per objective); ``key``
    orders gradients deterministically; ``images`` are the images the forward step read (``ImagePart``s).
    """

    __slots__ = ("_conversation", "context", "source", "objective", "key", "images")

    def __init__(self, text: str, target: Variable | None = None, *, conversation: Iterable = (),
                 source: str = "", objective: str | None = None, key: tuple = (), context: Iterable = (),
                 images: Iterable = ()):
        if not (type(source) is str and type(key) is tuple and (objective is None or type(objective) is str)
                and (target is None or isinstance(target, Variable))):   # the usual arguments: nothing to check
            expect(target, Variable, "Feedback target", "pass the Variable the feedback is about, or None",
                   error=InvalidVariableError, allow_none=True)
            expect(source, str, "Feedback source", "name the graph node it came from", error=InvalidVariableError)
            expect(objective, str, "Feedback objective", error=InvalidVariableError, allow_none=True)
            expect(key, tuple, "Feedback key", error=InvalidVariableError)
        role = f"feedback to {target.role}" if target is not None else "feedback"
        if type(text) is str:   # what Variable.__init__ makes of a str, without its checks (one per edge)
            _init_text(self, text, role)
        else:
            super().__init__(text, role=role)
        # kept as (role, content) string pairs: a backward pass makes one Feedback per edge, and pairs of
        # strings are untracked by the garbage collector (dicts are not)
        self._conversation = chat_pairs(conversation)
        try:
            self.context = () if type(context) is tuple and not context else \
                tuple((str(label), str(text)) for label, text in context)
        except (TypeError, ValueError):
            raise InvalidVariableError("Feedback context must be (label, text) pairs, e.g. "
                                       "[('input', question), ('output', answer)]") from None
        self.source = source
        self.objective = objective
        self.key = key
        self.images = tuple(images)   # ImageParts the forward step read (the optimizer is shown them too)

    @classmethod
    def _make(cls, text: str, target: Variable, conversation: tuple, source: str, context: tuple = (),
              images: tuple = ()) -> "Feedback":
        """``Feedback(text, target, conversation=..., source=...)`` for callers that already hold a str and
        (role, content) string pairs (the backward pass's own Functions): nothing to check or convert, one
        per edge of every pass. ``tests/test_variable.py`` checks it builds exactly what ``__init__`` builds."""
        fb = object.__new__(cls)
        _init_text(fb, text, "feedback to " + target.role)
        fb.objective = None
        fb._conversation, fb.source, fb.key, fb.context, fb.images = conversation, source, (), context, images
        return fb

    @property
    def conversation(self) -> tuple[dict, ...]:
        """The exchange as chat messages: ``({"role": ..., "content": ...}, ...)``."""
        return tuple({"role": r, "content": c} for r, c in self._conversation)

    def __repr__(self) -> str:
        return f"Feedback({self.short()!r}, source={self.source!r})"


def _init_text(v: Variable, value: str, role: str) -> None:
    """The slots ``Variable(value, role=role)`` sets for a str ``value`` and a non-empty str ``role``: nothing to
    check (``Variable._text``, and every Feedback made of a str)."""
    v._value, v._is_text, v.role = value, True, role
    v._grad = v._meta = v.node = v.name = v._pending = None
    v.index = next(_counter)
    v._requires_grad = v._retain = False


def _part(x: Any) -> Variable:
    if isinstance(x, Variable):
        return x
    if isinstance(x, str):
        return Variable(x)
    raise InvalidVariableError(f"a text Variable can be joined (+) with a Variable or a str, not {type(x).__name__}")


def as_variable(x: Any, role: str = "text") -> Variable:
    """Wrap plain strings and tensors; return Variables unchanged."""
    if isinstance(x, Variable):
        return x
    return Variable(x, role=role)
