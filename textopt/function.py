"""``Function`` (a differentiable operation) and ``Node`` (one application of it in the graph)."""
from __future__ import annotations

from threading import get_ident
from typing import TYPE_CHECKING, Any, Callable, Sequence

from . import lazy as _lazy
from . import runtime as _runtime
from .errors import GraphError
from .grad_mode import _GRAD_ENABLED
from .variable import Feedback, Variable

if TYPE_CHECKING:
    import torch


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
        if _lazy._fill_fn is self and _runtime._thread_id == get_ident():   # a launched call's node: built in
            # its placeholder (on textopt's loop, where the driver runs it; another thread's call never is)
            out = _lazy.fill(value, role, meta)
        elif type(value) is str and type(role) is str and role and meta is None:   # an LLM's answer: usual
            out = Variable._text(value, role)
        else:
            out = Variable(value, role=role, meta=meta)
        if _GRAD_ENABLED.get():   # is_grad_enabled(), without the call: this runs for every operation
            for v in inputs:   # v.requires_grad, without the property call
                if v._requires_grad if v._is_text else v.requires_grad:
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


# How a backward pass reaches an LLM. The core imports nothing above it: ``textopt.engines`` plugs its resolver
# (an Engine, a spec string or None -> an Engine) and the pass's call limit (limit -> a FIFO limiter with
# ``_try_acquire``/``acquire``/``release``) in when it is imported, before any Function can build a request.
_ENGINES: dict[str, Callable] = {}


def plug_engines(resolve: Callable[[Any], Any], limiter: Callable[[int], Any]) -> None:
    """Install how backward passes resolve their engine and limit their calls (called by ``textopt.engines``)."""
    _ENGINES["resolve"], _ENGINES["limiter"] = resolve, limiter


class BackwardContext:
    """What a Function's backward may use: the backward engine (resolved lazily) and the shared call limit."""

    def __init__(self, engine: Any, max_concurrency: int):
        self._engine_spec = engine
        self._engine = None
        self.max_concurrency = max_concurrency
        self.max_tokens = 384   # default cap on a backward answer (a module's backward_max_tokens overrides it)
        self._gate = None       # the pass's call limit, made with the engine (a pass of plain concats needs none)
        self.output_grads: dict[int, torch.Tensor] = {}  # id(Variable) -> d loss / d value (hybrid pre-pass)
        self.signals: dict[int, list] = {}  # id(Variable) -> [(key, tensor)]: numeric gradients from bridges
        self.order: dict[int, int] = {}     # id(Node) -> its index in the pass (the first part of every key)

    def add_signal(self, var: Variable, key: tuple, grad: torch.Tensor) -> None:
        """Record a numeric gradient on a tensor that downstream hybrid nodes produced during this pass."""
        import torch   # loaded: ``var`` holds a tensor
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
    def engine(self):
        """The pass's Engine (``textopt.engines.Engine``): the one given to backward(), else ``backward_engine``."""
        if self._engine is None:
            if not _ENGINES:
                raise GraphError("this backward pass needs an LLM but textopt.engines is not loaded: "
                                 "import textopt.engines and give the pass an engine (loss.backward(engine=...))")
            self._engine = _ENGINES["resolve"](self._engine_spec)
        return self._engine

    async def generate(self, request, node: Node | None = None):
        """Send a backward request (a ``textopt.engines.Request``) through the pass's concurrency limit, tagged
        with role and node; returns the engine's Response."""
        name = node.name if node else None
        if request.role != "backward" or request.node != name:
            request = request.with_meta(role="backward", node=name)
        engine = self._engine or self.engine   # (the property resolves it on first use)
        gate = self._gate
        if gate is None:
            gate = self._gate = _ENGINES["limiter"](self.max_concurrency)
        if gate._try_acquire() is None:
            await gate.acquire()
        try:
            return await engine.generate(request)
        finally:
            gate.release()
