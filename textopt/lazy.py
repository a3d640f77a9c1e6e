"""Lazy calls: plain synchronous code runs concurrently, as CUDA kernels and JAX operations do.

``module(x)`` called from synchronous code, for a Module that declares ``lazy = True`` (LLMCall, TextLoss,
FormattedLLMCall, the metric losses ...), does not wait for the model: it *launches* the call and returns a
pending Variable at once. The whole mechanism is in this module:

- **launch** (caller's thread): a placeholder ``Pending`` Variable (its ``index`` in program order, no value) and a
  ``_Call``
  join a queue, with the caller's context variables (``no_grad``, ``backward_engine``). The first call queued
  wakes textopt's loop with ONE thread hop; calls queued before the loop gets to them ride along: no hop, no
  future per call.
- **start** (textopt's loop thread, queue order = program order): a driver task takes the queued calls in order
  and runs each module's ``aforward`` — after awaiting the pending Variables among its arguments
  (``judge(solver(q))`` chains on ``solver(q)``). A call that finishes without waiting (an instant engine, a
  cache hit) costs no task of its own; the first that waits keeps the driver (a call never moves between tasks)
  and the queue goes on in a new driver. Calls whose inputs are ready reach their engine, cache and budget in
  program order.
- **resolve**: the Variable that ``aforward`` returned is merged into the placeholder (its node's output is
  repointed to it, its class becomes the returned one's), so graph, requests, cache keys and gradients are
  those of an eager run. ``retain_grad()`` and a ``name`` given while it was pending are kept (its other
  attributes are the call's).
- **force**: reading anything of a pending Variable (``.value``, ``str()``, ``.role``, ``.node`` ...) reaches
  ``Pending.__getattr__`` and waits for the call (one hop, unless it has finished). ``Variable`` itself has no
  ``__getattr__``: a class with one gets none of the interpreter's fast paths for its attributes, and a graph
  reads its Variables' attributes millions of times. A call that failed raises there, and at every later read,
  the textopt error it raised eagerly, its message prefixed with the failing node (for a chained call, the node
  whose call failed), the original exception chained. ``resolve(variables)`` forces many with one hop
  (``concat`` and ``aggregate`` use it).
- **barriers**: every other synchronous entry point (``backward()``, ``optimizer.step()``, ``run_sync``),
  assigning a Variable's ``.value``, ``Module.train()``/``eval()`` and reading an engine's usage first wait for
  every launched call, so a call sees the parameter values and modes of the moment it was launched.
  ``synchronize()`` is the explicit barrier. KeyboardInterrupt (or any exception) while waiting cancels every
  launched call and waits for them to stop before it propagates: nothing is left running.

``eager()`` (a context manager) or ``TEXTOPT_LAZY=0`` restores eager calls. Async code is unchanged
(``await module.acall(x)`` is what it was; it awaits pending arguments first).
"""
from __future__ import annotations

import asyncio
import contextvars
import os
from collections import deque
from typing import Any, Iterable

from . import runtime
from .errors import GraphError
from .variable import Variable, _counter

_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "textopt_lazy", default=os.environ.get("TEXTOPT_LAZY", "1").strip().lower() not in ("0", "false", "no"))
_queue: deque = deque()      # launched, not started (appended by callers, taken by drivers on the loop)
_running: set = set()        # launched, not finished
_drivers: set = set()        # the driver tasks (see _drive)
_scheduled = False           # a drain is scheduled on the loop
_dirty = False               # something was launched since the last barrier
_DIRECT: set = set()         # aforward functions that return the output of the one node their module's fn attaches
_fill_fn = None              # while a step of such a call runs (loop thread): the module's fn (see fill) ...
_fill_out = None             # ... and the call's pending Variable, which that node's output is built in


class _Call:
    __slots__ = ("module", "args", "kwargs", "ctx", "out", "fut", "done", "error", "failed")

    def __init__(self, module, args, kwargs, ctx, out):
        self.module, self.args, self.kwargs, self.ctx, self.out = module, args, kwargs, ctx, out
        self.fut: asyncio.Future | None = None   # made only when something waits for the call while it runs
        self.done = False
        self.error: BaseException | None = None
        self.failed = ""    # the node whose call raised ``error`` (this one, or an input it chained on)

    @property
    def name(self) -> str:
        return getattr(self.module, "node_name", None) or type(self.module).__name__

    def finished(self) -> "asyncio.Future":
        """A future done when the call is (loop thread only)."""
        if self.fut is None:
            self.fut = asyncio.get_running_loop().create_future()
            if self.done:
                self.fut.set_result(None)
        return self.fut


class eager:
    """``with textopt.lazy.eager():`` module calls inside wait for their answer, as before lazy calls."""

    def __enter__(self):
        self._token = _ENABLED.set(False)
        return self

    def __exit__(self, *exc):
        _ENABLED.reset(self._token)
        return False


def enabled() -> bool:
    return _ENABLED.get()


class Pending(Variable):
    """A lazy call's output before it resolves: no state but ``index``, ``name``, ``_retain`` and ``_pending``;
    reading anything else waits for the call (and raises its error). Resolving turns it into the class of what
    the call returned (``Variable``, ``Scored`` ...), in place."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        # Reached only for a missing attribute: all of them but the four above until the call finishes.
        call = object.__getattribute__(self, "_pending")
        if call is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        wait(call)
        return object.__getattribute__(self, name)


def direct_output(aforward):
    """Mark (decorator) a lazy Module's ``aforward`` that returns the output of the one node ``self.fn.attach``
    records: a launched call builds that output in its pending Variable (:func:`fill`), no copy at resolution.
    A subclass that overrides ``aforward`` is not marked: its result is merged as any module's."""
    _DIRECT.add(aforward)
    return aforward


def fill(value: Any, role: str, meta: dict | None) -> Variable:
    """The pending Variable of the running call, made ``Variable(value, role=role, meta=meta)`` in place (its
    ``index``, ``name`` and ``retain_grad()`` kept). ``Function.attach`` calls it, once per call, for the node of
    the function the driver named."""
    global _fill_fn
    out, _fill_fn = _fill_out, None   # once: a second node of that function gets a Variable of its own
    if type(value) is str and type(role) is str and role and (meta is None or type(meta) is dict):
        # an LLM's answer (a judge's, with its conversation): what Variable(...) makes, with nothing to check
        out._value, out._is_text, out.role = value, True, role
        out._grad = out.node = None
        out._meta = dict(meta) or None if meta is not None else None
        out._requires_grad = False
    else:
        index, name, retain, call = out.index, out.name, out._retain, out._pending
        try:
            Variable.__init__(out, value, role=role, meta=meta)
        finally:   # a bad value raises with the placeholder as it was (it keeps the failed call)
            out.index, out.name, out._retain, out._pending = index, name, retain, call
    out.__class__ = Variable
    return out


_FILLED = ("_value", "_is_text", "role", "_requires_grad", "_grad", "_meta", "node")   # what fill sets


def launch(module, args: tuple, kwargs: dict) -> Variable:
    """Queue ``module.aforward(*args, **kwargs)`` and return its pending output Variable (see the docstring)."""
    global _scheduled, _dirty
    out = object.__new__(Pending)
    out.index = next(_counter)
    out._retain, out.name = False, None   # what a caller may set while it is pending (kept by _merge)
    call = out._pending = _Call(module, args, kwargs, contextvars.copy_context(), out)
    _running.add(call)
    _queue.append(call)
    _dirty = True
    if not _scheduled:   # append first, then check: a drain that missed the call has cleared the flag
        _scheduled = True
        runtime.private_loop().call_soon_threadsafe(_drain)
    return out


def _drain() -> None:
    global _scheduled
    _scheduled = False
    if _queue:
        task = asyncio.get_running_loop().create_task(_drive())
        _drivers.add(task)
        task.add_done_callback(_drivers.discard)


async def _drive() -> None:
    """Start queued calls in order, in this task, while they finish without waiting (an instant engine, a cache
    hit): no task per call. The first call that waits (for its engine, or for a pending input) hands the queue
    to a new driver and keeps this task until it finishes; a call never moves between tasks."""
    global _fill_fn, _fill_out
    while _queue:
        call = _queue.popleft()
        try:
            deps = _pending_in(call.args, call.kwargs)
            if deps:   # inputs launched before it and not finished when it was launched
                # plain loops, no comprehension: this runs for every step of a chain
                for d in deps:
                    if not d.done:
                        _drain()
                        await asyncio.wait([d.finished() for d in deps if not d.done])
                        break
                failed = None
                for d in deps:
                    if d.error is not None:
                        failed = d
                        break
                if failed is not None:      # an input failed: this call fails with its error
                    _finish(call, None, failed.error, failed.failed)
                    continue
            module = call.module
            coro = module.aforward(*call.args, **call.kwargs)
            fn = module.fn if type(module).aforward in _DIRECT else None
            _fill_fn, _fill_out = fn, call.out
            try:
                step = call.ctx.run(coro.send, None)
            except StopIteration as stop:
                _fill_fn = None
                _finish(call, stop.value)
                continue
            _fill_fn = None
            _drain()
            _finish(call, await _Resume(call.ctx, coro, step, fn, call.out))
        except BaseException as exc:   # noqa: BLE001 - kept, raised where the value is needed
            _fill_fn = None
            _finish(call, None, exc, call.name)
            if isinstance(exc, asyncio.CancelledError):
                raise


class _Resume:
    """``await _Resume(ctx, coro, first, fn, out)``: go on with ``coro``, suspended at ``first`` (what its first
    step yielded), in the awaiting task — as ``await coro`` would have, each step in the call's context ``ctx``
    (and, for a direct-output call, with ``fn`` and ``out`` named for :func:`fill`)."""

    __slots__ = ("ctx", "coro", "step", "fn", "out")

    def __init__(self, ctx, coro, step, fn, out):
        self.ctx, self.coro, self.step, self.fn, self.out = ctx, coro, step, fn, out

    def __await__(self):
        global _fill_fn, _fill_out
        ctx, coro, step, fn, out = self.ctx, self.coro, self.step, self.fn, self.out
        while True:
            try:
                sent, thrown = (yield step), None
            except BaseException as exc:   # a cancellation (or anything) thrown into the task: pass it on
                sent, thrown = None, exc
            _fill_fn, _fill_out = fn, out
            try:
                step = ctx.run(coro.send, sent) if thrown is None else ctx.run(coro.throw, thrown)
            except StopIteration as stop:
                return stop.value
            finally:
                _fill_fn = thrown = None


def _finish(call: _Call, result: Any, error: BaseException | None = None, failed: str = "") -> None:
    try:
        if error is None:
            _merge(call.out, result, call)
    except BaseException as exc:   # noqa: BLE001 - a module that broke its lazy contract
        error, failed = exc, call.name
    call.error, call.failed, call.done = error, failed, True
    _running.discard(call)
    if error is None:
        call.out._pending = None   # nothing keeps the call now (the graph keeps what it needs)
    else:                          # the placeholder keeps the failed call: not what it was called with
        call.module = call.args = call.kwargs = call.ctx = None
        out = call.out
        if out.__class__ is not Pending:   # failed after its node was built in it (fill): pending again
            for slot in _FILLED:
                if hasattr(out, slot):
                    delattr(out, slot)
            out.__class__ = Pending
    if call.fut is not None and not call.fut.done():
        call.fut.set_result(None)


def _pending_in(args: Iterable, kwargs: dict) -> list[_Call]:
    """Unresolved calls among the arguments (Variables, or Variables in a list/tuple/dict argument)."""
    out = []
    for a in ((*args, *kwargs.values()) if kwargs else args):
        if isinstance(a, Variable):
            if a._pending is not None:
                out.append(a._pending)
        elif isinstance(a, (list, tuple, dict)):
            for b in (a.values() if isinstance(a, dict) else a):
                if isinstance(b, Variable) and b._pending is not None:
                    out.append(b._pending)
    return out


def _merge(out: Variable, result: Any, call: _Call) -> None:
    """Make the placeholder ``out`` the Variable that ``aforward`` returned (same class, node, state)."""
    if result is out:   # built in place (fill)
        return
    if out.__class__ is not Pending:   # filled by a node, yet aforward returned something else
        raise GraphError(f"{type(call.module).__name__}.aforward is marked direct_output but did not return the "
                         "output of the node its fn attached; remove the mark (textopt.lazy.direct_output)")
    if not isinstance(result, Variable) or result._pending is not None:
        raise GraphError(f"{type(call.module).__name__} declares lazy = True but its aforward returned "
                         f"{type(result).__name__}, not a new Variable; set lazy = False on it")
    out.__class__ = type(result)   # Variable, Scored ... (no slots of their own: the layout is Variable's)
    node = result.node
    if node is not None and node.output is result:
        node.output = out
    out._value, out._is_text, out.role, out._requires_grad = result._value, result._is_text, result.role, \
        result._requires_grad
    out._grad, out._meta, out.node = result._grad, result._meta, node
    out._retain = out._retain or result._retain    # retain_grad() and a name given while pending are kept
    if out.name is None:
        out.name = result.name


def _raise(call: _Call) -> None:
    """Raise ``call``'s failure as the error it is, naming the node that failed, the original chained."""
    exc = call.error
    if isinstance(exc, asyncio.CancelledError):
        raise GraphError(f"the call of node {call.failed!r} was cancelled before it finished (an interrupt "
                         "while waiting, or the loop shut down); call it again") from exc
    try:
        new = type(exc).__new__(type(exc))
        new.__dict__.update(getattr(exc, "__dict__", {}))
        new.args = (f"node {call.failed!r}: {exc}",) + tuple(exc.args[1:])
    except Exception:   # noqa: BLE001 - an exception type that cannot be copied: raise the original
        raise exc from None
    raise new from exc


def _check_thread(what: str) -> None:
    if runtime.on_private_loop():
        raise GraphError(f"{what} inside textopt's event loop (async code) before its call finished: "
                         "`await textopt.lazy.aresolve(x)` first, or call modules with `await module.acall(x)`")


def wait(call: _Call) -> None:
    """Block until ``call`` finished; raise its error (``Pending.__getattr__`` calls this)."""
    if not call.done:
        _check_thread(f"a pending Variable (output of {call.name!r}) was read")
        _block(_await_calls([call]))
    if call.error is not None:
        _raise(call)


def resolve(variables: Iterable[Variable]) -> None:
    """Force every pending Variable of ``variables`` with one wait; raise the first failure in their order."""
    calls = [v._pending for v in variables if isinstance(v, Variable) and v._pending is not None]
    if not calls:
        return
    if not all(c.done for c in calls):
        _check_thread("pending Variables were read")
        _block(_await_calls(calls))
    for c in calls:
        if c.error is not None:
            _raise(c)


async def aresolve(*variables: Any) -> None:
    """Async twin of :func:`resolve` (arguments as a module call takes them: Variables, lists, dicts)."""
    calls = _pending_in(variables, {})
    if calls:
        await _await_calls(calls)
        for c in calls:
            if c.error is not None:
                _raise(c)


def synchronize() -> None:
    """Wait for every launched call (errors stay with their Variables, raised where they are read)."""
    global _dirty
    if not _dirty or runtime.on_private_loop():
        return
    _dirty = False
    _block(_await_all())


async def _await_calls(calls: list[_Call]) -> None:
    waiting = [c.finished() for c in calls if not c.done]
    if waiting:
        await asyncio.wait(waiting)


async def _await_all() -> None:
    while _running:
        await asyncio.wait([c.finished() for c in list(_running)])


def _block(coro) -> None:
    """Run ``coro`` on the loop from a caller's thread; on any interruption cancel every launched call."""
    future = asyncio.run_coroutine_threadsafe(coro, runtime.private_loop())
    try:
        future.result()
    except BaseException:
        future.cancel()
        cancel_all()
        raise


def cancel_all(timeout: float = 10.0) -> None:
    """Cancel every launched call and wait (up to ``timeout`` s) until none is left running."""
    global _dirty
    loop = runtime.private_loop()

    async def stop() -> None:
        while _queue or _running or _drivers:
            while _queue:   # never started
                call = _queue.popleft()
                _finish(call, None, asyncio.CancelledError(), call.name)
            drivers = list(_drivers)
            for t in drivers:
                t.cancel()
            if drivers:
                await asyncio.wait(drivers)
            elif _running:   # launched from another thread just now: let its drain run, then go round again
                await asyncio.sleep(0)

    if runtime.on_private_loop():
        raise GraphError("cancel_all() is for synchronous code; inside the loop, cancel the tasks you started")
    asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout)
    _dirty = False
