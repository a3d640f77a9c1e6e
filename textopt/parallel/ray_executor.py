"""``RayExecutor``: evaluation fanned out as Ray tasks (``executor="ray"``, ``--executor ray``).

    Trainer(..., executor="ray")                     # validation and test
    BeamSearch(..., executor="ray")                  # every candidate evaluation
    textopt eval ... --executor ray --ray-address ray://head:10001

One evaluation (``amap``) puts the job in Ray's object store once and runs it on chunks of items, one Ray task
per chunk (about four chunks per CPU of the cluster, so a slow chunk does not hold the rest). In the worker the
job is unpickled — its engines rebuilt from their recipe, once per worker process, reading API keys from the
worker's environment (:mod:`textopt.engines.portable`) — and the chunk runs through the in-process executor
with the same ``concurrency``. Each task returns its results and the usage its engines recorded, which is
charged to the driver's engines (and budgets), so usage reports, logs and checkpoints match an in-process run.

What differs from in-process, by design: a ``Budget`` is charged when a chunk returns (a hard limit may be
overshot by the chunks in flight); a memory cache is per worker (use a disk cache on one machine, Redis across
machines); at most ``concurrency`` calls per worker, so the cluster sends up to workers x concurrency at once.

Ray is optional (``pip install 'textopt[ray]'``). With no running runtime and no ``address``, ``ray.init()``
starts a local one with ``init_kw`` (e.g. ``num_cpus=2``).
"""
from __future__ import annotations

import asyncio
import math
from typing import Any

from ..errors import TextoptError
from .executor import Executor, LOCAL, raise_first

_REMOTE = None


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise TextoptError("executor='ray' needs Ray: pip install 'textopt[ray]' (or use the local executor)") \
            from exc
    return ray


def _run_chunk(job, items: list, concurrency: int) -> tuple[list, dict]:
    """In a Ray worker: the chunk's outcomes (result or exception, in order) and the usage it cost."""
    from ..engines import portable
    from ..runtime import run_sync
    before = portable.usage_rows()
    results = run_sync(LOCAL.amap(job, items, concurrency=concurrency, return_exceptions=True))
    return [_sendable(r) for r in results], portable.usage_delta(before, portable.usage_rows())


def _sendable(result: Any) -> Any:
    """An exception that cannot be pickled back becomes a TextoptError with its text."""
    if not isinstance(result, BaseException):
        return result
    from ray import cloudpickle
    try:
        cloudpickle.loads(cloudpickle.dumps(result))
        return result
    except Exception:  # noqa: BLE001 - any pickling failure
        return TextoptError(f"{type(result).__name__}: {result}")


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str | None = None, *, chunks_per_cpu: int = 4, **init_kw: Any):
        self.address, self.chunks_per_cpu, self.init_kw = address, chunks_per_cpu, init_kw

    def _start(self):
        global _REMOTE
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=self.address, **self.init_kw)
        if _REMOTE is None:
            _REMOTE = ray.remote(_run_chunk)
        return ray, _REMOTE

    def cpus(self) -> int:
        ray, _ = self._start()
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    async def amap(self, job, items, *, concurrency=8, progress=None, return_exceptions=False, semaphore=None):
        ray, remote = self._start()
        items = list(items)
        n_chunks = min(len(items), self.cpus() * self.chunks_per_cpu)
        size = math.ceil(len(items) / n_chunks)
        job_ref = ray.put(job)                        # pickled once: engines travel as recipes
        results: list = [None] * len(items)
        from ..engines import portable

        async def chunk(start: int) -> None:
            ref = remote.remote(job_ref, items[start:start + size], concurrency)
            outcomes, usage = await asyncio.wrap_future(ref.future())
            portable.charge(usage)                    # once per chunk that returned (a retried task: once)
            results[start:start + len(outcomes)] = outcomes
            if progress is not None:
                progress.update(len(outcomes))
        await asyncio.gather(*(chunk(s) for s in range(0, len(items), size)))
        if not return_exceptions:
            raise_first(results)
        return results

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r})"
