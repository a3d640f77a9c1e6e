"""``DemoBootstrap``: few-shot demonstrations as a text parameter, chosen from traces that pass the metric.

One step runs the incumbent program on a few not-yet-traced training examples; every run scoring at least
``threshold`` becomes a demonstration (``format_demo(example, trace)``; by default the trace's input and
output). Then ``candidates_per_step`` demo sets of up to ``k`` demonstrations are drawn from that pool and scored
on the whole val split; one becomes the demos parameter only if it beats the best so far. The demos parameter is
exempt from the copy detector — demonstrations ARE training examples by design; the held-out val split is what
keeps this honest. No LLM proposal is needed (``engine`` is optional).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from ..errors import InvalidVariableError
from .optimizer import register_optimizer
from .search_base import SearchOptimizer

DEMO_SEPARATOR = "\n\n"


def default_format_demo(example: Any, trace: Any) -> str:
    if isinstance(trace, Mapping) and "input" in trace and "output" in trace:
        return f"Input: {trace['input']}\nOutput: {trace['output']}"
    return f"Example: {example}"


@register_optimizer("demos")
class DemoBootstrap(SearchOptimizer):
    def __init__(self, params, evaluate, *, demos: str | None = None, k: int = 3, bootstrap_size: int = 4,
                 candidates_per_step: int = 2, threshold: float = 1.0,
                 format_demo: Callable[[Any, Any], str] = default_format_demo,
                 separator: str = DEMO_SEPARATOR, **kw):
        kw["copy_exempt"] = set(kw.get("copy_exempt", ())) | ({demos} if demos else set())
        super().__init__(params, evaluate, **kw)
        if demos is None:
            if len(self.names) != 1:
                raise InvalidVariableError(f"DemoBootstrap needs demos='<parameter name>' to know which of "
                                           f"{self.names} holds the demonstrations")
            demos = self.names[0]
            self.copy_exempt.add(demos)
        if demos not in self.names:
            raise InvalidVariableError(f"demos={demos!r} is not one of the parameters {self.names}")
        if k < 1 or bootstrap_size < 1 or candidates_per_step < 1:
            raise InvalidVariableError("k, bootstrap_size and candidates_per_step must be >= 1")
        self.demos_name, self.k, self.bootstrap_size = demos, k, bootstrap_size
        self.candidates_per_step, self.threshold = candidates_per_step, threshold
        self.format_demo, self.separator = format_demo, separator
        self.pool: list[str] = []       # demonstration texts, in the order they were found
        self.traced: list[int] = []     # training indices already run

    async def search_step(self) -> None:
        untraced = [i for i in range(len(self.train)) if i not in set(self.traced)]
        batch = sorted(self.rng.sample(untraced, min(self.bootstrap_size, len(untraced))))
        if batch:
            evals = await self.evaluate(self.best or self.seed_hash, "train", batch)
            self.traced.extend(batch)
            for i, ev in zip(batch, evals):
                if ev.total(self.weights) >= self.threshold:
                    demo = self.format_demo(self.train[i], ev.trace)
                    if demo not in self.pool:
                        self.pool.append(demo)
        if not self.pool:
            return
        base = self.store.values(self.best or self.seed_hash)
        for _ in range(self.candidates_per_step):
            chosen = sorted(self.rng.sample(range(len(self.pool)), min(self.k, len(self.pool))))
            text = self.separator.join(self.pool[j] for j in chosen)
            h = self.admit({**base, self.demos_name: text}, parents=[self.best or self.seed_hash],
                           origin="demos")
            if h is not None:
                await self.promote(h)

    def search_state(self) -> dict:
        return {"pool": list(self.pool), "traced": list(self.traced)}

    def load_search_state(self, d: dict) -> None:
        self.pool, self.traced = list(d.get("pool", [])), list(d.get("traced", []))
