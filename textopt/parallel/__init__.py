"""Where evaluation work runs: in this process (default) or fanned out over a Ray cluster.

    scores = await amap(job, examples, concurrency=8, executor="ray")

``amap`` is the one "score these examples concurrently" loop of textopt (the Trainer's validation and test,
``textopt eval``, the search optimizers' candidate evaluations): results come back in the order of the items,
whatever ran where. See :mod:`.executor` and :mod:`.ray_executor`.
"""
from .executor import Executor, InProcessExecutor, amap, get_executor

__all__ = ["Executor", "InProcessExecutor", "amap", "get_executor"]
