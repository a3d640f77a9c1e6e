"""Executors: how ``textopt.parallel.amap(job, items, ...)`` — ``[await job(item) for item in items]`` run
concurrently, in item order — runs its jobs.

A **job** is a picklable async callable ``job(item) -> result`` (a module and its metric, a candidate and its
evaluator): the in-process executor calls it at most ``concurrency`` at a time on the current event loop; the
Ray executor (:mod:`.ray_executor`) ships it once per evaluation to worker processes — each with its own engines,
rebuilt from their recipe (:mod:`textopt.engines.portable`) — and runs the same loop there on chunks of items.
Either way the results, the usage charged to the driver's engines and the order are the same.

``return_exceptions=True``: an item's exception is its result (the others still run); otherwise the first
failing item (in item order) raises once every item has finished.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Sequence

Job = Callable[[Any], Awaitable[Any]]


class Executor:
    """Runs a job over items. Subclasses implement ``amap``."""

    name = "executor"

    async def amap(self, job: Job, items: Sequence[Any], *, concurrency: int = 8, progress=None,
                   return_exceptions: bool = False, semaphore: asyncio.Semaphore | None = None) -> list:
        raise NotImplementedError


class InProcessExecutor(Executor):
    """This process, this event loop: ``asyncio.gather`` under a semaphore (``semaphore``: one shared by
    several ``amap`` calls, e.g. a search optimizer's candidates)."""

    name = "local"

    async def amap(self, job, items, *, concurrency=8, progress=None, return_exceptions=False, semaphore=None):
        sem = semaphore or asyncio.Semaphore(max(1, concurrency))

        async def one(item):
            async with sem:
                out = await job(item)
            if progress is not None:
                progress.update(1)
            return out
        results = await asyncio.gather(*(one(x) for x in items), return_exceptions=True)
        if not return_exceptions:
            raise_first(results)
        return results

    def __repr__(self) -> str:
        return "InProcessExecutor()"


def raise_first(results: list) -> None:
    for r in results:
        if isinstance(r, BaseException):
            raise r


LOCAL = InProcessExecutor()
