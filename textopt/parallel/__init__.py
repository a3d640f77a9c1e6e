"""Where evaluation work runs: in this process (default) or fanned out over a Ray cluster.

    scores = await amap(job, examples, concurrency=8, executor="ray")

``amap`` is the one "score these examples concurrently" loop of textopt (the Trainer's validation and test,
``textopt eval``, the search optimizers' candidate evaluations): results come back in the order of the items,
whatever ran where. See :mod:`.executor` and :mod:`.ray_executor` (loaded when
``executor="ray"`` is first asked for).
"""
from __future__ import annotations

import asyncio
from typing import Any, Sequence

from ..errors import DataError
from .executor import LOCAL, Executor, InProcessExecutor, Job

_RAY: dict = {}


def get_executor(spec: "Executor | str | None" = None, *, address: str | None = None) -> Executor:
    """None / "local": in-process; "ray": a :class:`~textopt.parallel.ray_executor.RayExecutor` (connecting to
    ``address``, or the running Ray runtime, or starting a local one); an ``Executor`` as it is."""
    if spec is None or spec == "local":
        return LOCAL
    if isinstance(spec, Executor):
        return spec
    if spec == "ray":
        if address not in _RAY:
            from .ray_executor import RayExecutor
            _RAY[address] = RayExecutor(address=address)
        return _RAY[address]
    raise DataError(f"unknown executor {spec!r}: use 'local' (this process) or 'ray' (a Ray cluster; "
                    f"pip install 'textopt[ray]'), or an Executor object")


async def amap(job: Job, items: Sequence[Any], *, concurrency: int = 8, executor: "Executor | str | None" = None,
               progress=None, return_exceptions: bool = False,
               semaphore: asyncio.Semaphore | None = None) -> list:
    """See the module docstring. ``progress``: anything with ``update(n)`` (a tqdm bar)."""
    items = list(items)
    if not items:
        return []
    return await get_executor(executor).amap(job, items, concurrency=concurrency, progress=progress,
                                             return_exceptions=return_exceptions, semaphore=semaphore)


__all__ = ["Executor", "InProcessExecutor", "amap", "get_executor"]
