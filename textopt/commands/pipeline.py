"""What the CLI optimizes: a task's solver (one ``LLMCall`` with a learnable system prompt), its metric as a loss,
and the engines of each role built once per spec (the local model loads once per process)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..engines import Engine, get_engine
from ..engines.usage import Budget, merge
from ..nn import LLMCall
from ..nn.llm import LLMCallFn
from ..nn.metrics import MetricLoss
from ..tasks import Task
from ..tasks.prompts import PROMPT_ROLE
from ..variable import Variable



class TaskMetric(MetricLoss):
    """The task's own metric as a loss: score in [0, 1] plus the explanation that seeds backward."""

    def __init__(self, task: Task):
        super().__init__(name=f"metric:{task.name}")
        self.task = task

    def compare(self, pred: str, target: Any) -> tuple[float, str]:
        s = self.task.score(pred, str(target))
        return s.value, s.explanation


class _BoundedContext:
    """The backward context with a ``max_tokens`` for feedback (``LLMCallFn`` reads ``ctx.max_tokens``)."""

    def __init__(self, ctx, max_tokens: int):
        self._ctx, self.max_tokens = ctx, max_tokens

    def __getattr__(self, name):
        return getattr(self._ctx, name)


class BoundedFeedbackFn(LLMCallFn):
    """``LLMCallFn`` whose feedback requests ask for at most ``max_tokens`` (a small local model rambles on
    to the default cap, and each token costs time on a CPU)."""

    def __init__(self, max_tokens: int):
        self.max_tokens = max_tokens

    async def backward_target(self, ctx, node, feedback, target):
        return await super().backward_target(_BoundedContext(ctx, self.max_tokens), node, feedback, target)


def build_solver(task: Task, engine: Engine, prompt: str | None = None, *,
                 feedback_tokens: int | None = None) -> LLMCall:
    system = Variable(prompt if prompt is not None else task.initial_prompt,
                      role=PROMPT_ROLE.format(task=task.description or task.name), requires_grad=True,
                      name="system_prompt")
    solver = LLMCall(engine, system_prompt=system, max_tokens=task.max_tokens, name="solver")
    if feedback_tokens is not None:
        solver.fn = BoundedFeedbackFn(feedback_tokens)
    return solver


class EngineSet:
    """Engines by spec for one run: one object per distinct spec (shared usage, one model load), with the
    run's cache, budget and recording options. ``replay`` routes every role to one cassette."""

    def __init__(self, *, cache: Any = None, budget_usd: float | None = None, record: str | Path | None = None,
                 replay: str | Path | None = None, budget_tokens: int | None = None):
        self.cache = cache
        self.budget = Budget(max_usd=budget_usd, max_tokens=budget_tokens) \
            if budget_usd is not None or budget_tokens is not None else None
        self.record = record
        self.replay = replay
        self._made: dict[str, Engine] = {}

    def get(self, spec: "str | Engine") -> Engine:
        if isinstance(spec, Engine):
            return spec
        if self.replay is not None:
            spec = f"replay:{self.replay}"
        if spec not in self._made:
            kw: dict[str, Any] = {}
            if not spec.startswith("replay:"):
                # a recording run sends every call (a cache hit would leave a hole in the cassette)
                kw["cache"] = False if self.record else self.cache
                if self.record:
                    kw["record"] = self.record
            if self.budget is not None:
                kw["budget"] = self.budget
            self._made[spec] = get_engine(spec, **kw)
        return self._made[spec]

    def engines(self) -> list[Engine]:
        return list(self._made.values())

    def usage(self) -> dict:
        return merge(e.usage for e in self._made.values()).as_dict()
