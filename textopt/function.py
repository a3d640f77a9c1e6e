"""``Function`` (a differentiable operation) and ``Node`` (one application of it in the graph)."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Sequence

import torch

from .engines.limiter import AdaptiveLimiter
from .grad_mode import _GRAD_ENABLED
from .variable import Feedback, Variable

if TYPE_CHECKING:
    from .engines.base import Engine, Request, Response


class Node:
    """One application of a Function: its inputs in order, its output, and what it saved for backward."""

    __slots__ = ("fn", "inputs", "output", "saved", "name")

    def __init__(self, fn: "Function", inputs: Sequence[Variable], output: Variable, saved: dict | None = None,
                 name: str | None = None):
        self.fn = fn
        self.inputs = tuple(inputs)
        self.output = output
        self.saved = saved or {}
        self.name = name or fn.name

    def __repr__(self) -> str:
        return f"Node({self.name}, inputs={len(self.inputs)})"


class Function:
    """Base of every graph operation.

    Subclasses compute their output in their own ``forward`` and call :meth:`attach` to record the node; the
    backward scheduler later calls :meth:`backward` with the feedback on the output (sorted, complete) and the
    inputs that need feedback, and expects one entry per target: a ``str``, a :class:`Feedback`, or ``None``.
    """

    name = "function"
    #: A hybrid Function (text <-> number bridges, numeric ops) also receives its tensor inputs as targets,
    #: is called even when no text feedback reached its output, and may return a torch.Tensor for a tensor
    #: target (a numeric gradient, added to the one torch backward that ends the pass). See textopt.numeric.
    hybrid = False
    #: The output is an evaluation (a loss: TextLoss, metrics, aggregate): a concat of losses that is itself the
    #: loss gives each such part its own evaluation, as if it were the root (see textopt.functional.Concat).
    evaluates = False

    def attach(self, inputs: Sequence[Variable], value: Any, role: str, *, saved: dict | None = None,
               name: str | None = None, meta: dict | None = None) -> Variable:
        """Make the output Variable; record a node when grad is enabled and some input requires grad."""
        out = Variable(value, role=role, meta=meta)
        if _GRAD_ENABLED.get():   # is_grad_enabled(), without the call: this runs for every operation
            for v in inputs:
                if v.requires_grad:
                    if out._is_text:
                        out._requires_grad = True
                    out.node = Node(self, inputs, out, saved, name)
                    break
        return out

    async def backward(self, ctx: "BackwardContext", node: Node, feedback: list[Feedback],
                       targets: list[Variable]) -> list[str | Feedback | None]:
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BackwardContext:
    """What a Function's backward may use: the backward engine (resolved lazily) and the shared call limit."""

    def __init__(self, engine: "Engine | str | None", max_concurrency: int):
        self._engine_spec = engine
        self._engine: "Engine | None" = None
        self.max_concurrency = max_concurrency
        self.max_tokens = 384   # default cap on a backward answer (a module's backward_max_tokens overrides it)
        # the pass's call limit: the engines' FIFO limiter, not adaptive (a slot is taken without awaiting when free)
        self._gate = AdaptiveLimiter(max_concurrency, adaptive=False)
        self.output_grads: dict[int, torch.Tensor] = {}  # id(Variable) -> d loss / d value (hybrid pre-pass)
        self.signals: dict[int, list] = {}  # id(Variable) -> [(key, tensor)]: numeric gradients from bridges
        self.order: dict[int, int] = {}     # id(Node) -> its index in the pass (the first part of every key)

    def add_signal(self, var: Variable, key: tuple, grad: torch.Tensor) -> None:
        """Record a numeric gradient on a tensor that downstream hybrid nodes produced during this pass."""
        self.signals.setdefault(id(var), []).append((key, torch.as_tensor(grad)))

    def signal(self, var: Variable) -> "torch.Tensor | None":
        """Sum of the bridges' numeric gradients on ``var`` (in key order, so deterministic), or None."""
        items = sorted(self.signals.get(id(var), []), key=lambda kv: kv[0])
        return sum((g for _, g in items[1:]), items[0][1]) if items else None

    def output_grad(self, var: Variable) -> "torch.Tensor | None":
        """d loss / d a tensor output, as far as this pass knows it: the pre-pass (tensor loss) plus the numeric
        gradients bridges produced downstream (text loss -> number->text bridge -> ... -> this output)."""
        base, extra = self.output_grads.get(id(var)), self.signal(var)
        if base is None or extra is None:
            return base if extra is None else extra
        return base + extra

    @property
    def engine(self) -> "Engine":
        if self._engine is None:
            from .engines import resolve_backward_engine
            self._engine = resolve_backward_engine(self._engine_spec)
        return self._engine

    async def generate(self, request: "Request", node: Node | None = None) -> "Response":
        """Send a backward request through the pass's concurrency limit, tagged with role and node."""
        name = node.name if node else None
        if request.role != "backward" or request.node != name:
            request = request.with_meta(role="backward", node=name)
        gate = self._gate
        if gate._try_acquire() is None:
            await gate.acquire()
        try:
            return await self.engine.generate(request)
        finally:
            gate.release()
