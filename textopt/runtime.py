"""Run textopt's async core from synchronous code.

All synchronous entry points (``Variable.backward``, ``LLMCall.__call__``, ``Optimizer.step`` ...) submit their
coroutine to ONE private event loop running in a daemon thread. One loop for the whole process means SDK clients,
limiters and micro-batchers are created once and reused; it also works when the caller is itself inside a running
loop (Jupyter): the caller's thread blocks while the private loop runs the work. Inside ``async`` code, use the
``a``-prefixed twins (``await loss.abackward()``) instead, which run on the caller's own loop.
"""
from __future__ import annotations

import asyncio
import contextvars
import threading
from threading import get_ident
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_thread_id: int | None = None   # the loop thread's ident: on_private_loop() runs for every lazy call


def private_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread, _thread_id
    with _lock:
        if _loop is None or _loop.is_closed() or _thread is None or not _thread.is_alive():
            _loop = asyncio.new_event_loop()
            _thread = threading.Thread(target=_loop.run_forever, name="textopt-loop", daemon=True)
            _thread.start()
            _thread_id = _thread.ident
        return _loop


def on_private_loop() -> bool:
    """True in the private loop's own thread (where a synchronous API must not block)."""
    return _thread_id is not None and get_ident() == _thread_id


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on the private loop and return its result (exceptions propagate).

    Calls launched lazily (:mod:`textopt.lazy`) finish first: every synchronous entry point is a barrier. An
    interruption while waiting (KeyboardInterrupt) cancels ``coro`` and every launched call, and waits for them
    to stop before it propagates."""
    loop = private_loop()
    if get_ident() == _thread_id:
        coro.close()
        raise RuntimeError("textopt: a synchronous API was called from inside textopt's own event loop; "
                           "use the async twin (await x.abackward(), await module.acall(...)) instead")
    from . import lazy
    try:
        lazy.synchronize()
    except BaseException:
        coro.close()
        raise
    ctx = contextvars.copy_context()  # carry no_grad / backward_engine settings into the loop thread
    task: list[asyncio.Task] = []
    future = asyncio.run_coroutine_threadsafe(_in_context(ctx, coro, task), loop)
    try:
        return future.result()
    except BaseException:
        if not future.done():   # interrupted while waiting: stop the work, and wait until it has stopped
            asyncio.run_coroutine_threadsafe(_stop(task), loop).result(10)
            lazy.cancel_all()
        raise


async def _in_context(ctx: contextvars.Context, coro, task: list):
    # Re-apply the caller's context variables inside the task running on the private loop.
    task.append(asyncio.current_task())
    for var, value in ctx.items():
        var.set(value)
    return await coro


async def _stop(task: list) -> None:
    if task and not task[0].done():
        task[0].cancel()
        await asyncio.wait(task)
