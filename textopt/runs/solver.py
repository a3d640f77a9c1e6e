"""What a task run optimizes: the task's solver (one ``LLMCall`` with a learnable system prompt), its metric as a
loss, and the solver's score on a split (:func:`aevaluate_prompt`: the one model evaluator,
:func:`textopt.train.evaluate.aevaluate`, with one result row per example)."""
from __future__ import annotations

from typing import Any

from ..engines import Engine
from ..nn import LLMCall
from ..nn.metrics import MetricLoss
from ..runtime import run_sync
from ..tasks import Task
from ..tasks.prompts import PROMPT_ROLE
from ..train.evaluate import aevaluate, make_scorer
from ..variable import Variable


class TaskMetric(MetricLoss):
    """The task's own metric as a loss: score in [0, 1] plus the explanation that seeds backward."""

    def __init__(self, task: Task):
        super().__init__(name=f"metric:{task.name}")
        self.task = task

    def compare(self, pred: str, target: Any) -> tuple[float, str]:
        s = self.task.score(pred, str(target))
        return s.value, s.explanation


def build_solver(task: Task, engine: Engine, prompt: str | None = None, *,
                 feedback_tokens: int | None = None) -> LLMCall:
    """The task's solver: ``LLMCall(engine, system_prompt=<learnable prompt>)``; ``feedback_tokens`` caps the
    backward LLM's answers on it (``backward_max_tokens``: a small local model rambles on to the default cap)."""
    system = Variable(prompt if prompt is not None else task.initial_prompt,
                      role=PROMPT_ROLE.format(task=task.description or task.name), requires_grad=True,
                      name="system_prompt")
    return LLMCall(engine, system_prompt=system, max_tokens=task.max_tokens, name="solver",
                   backward_max_tokens=feedback_tokens)


def task_scorer(task: Task):
    """The task's metric as a scorer of :func:`~textopt.train.evaluate.aevaluate` (its ``Score`` kept, so a
    result row has the extracted answer)."""
    return make_scorer(lambda text, ex: task.score(text, str(ex.y)), None)


async def ascore_solver(task: Task, solver, examples, *, concurrency: int = 8, progress: bool = False,
                        desc: str = "eval", executor=None, rows: bool = False):
    """Mean score of ``solver`` (as its parameters are now) on a task's ``examples`` — None for no example —
    and, with ``rows``, one record per example (in order): input, target, response, extracted, score."""
    if not examples:
        return None, []
    mean, results = await aevaluate(solver, examples, task_scorer(task),
                                    concurrency=max(1, concurrency), progress=progress, desc=desc,
                                    executor=executor, rows=rows)
    return mean, results


async def aevaluate_prompt(task: Task, engine, prompt: str, examples, *, concurrency: int = 8,
                           progress: bool = True, desc: str = "eval",
                           executor=None) -> tuple[float | None, list[dict]]:
    """Mean score of ``prompt`` (as the task's solver's system prompt) on ``examples`` and one record per
    example (in order): input, target, response, extracted, score."""
    solver = build_solver(task, engine, prompt).eval()
    return await ascore_solver(task, solver, examples, concurrency=concurrency, progress=progress, desc=desc,
                               executor=executor, rows=True)


def evaluate_prompt(task, engine, prompt, examples, **kw) -> tuple[float | None, list[dict]]:
    return run_sync(aevaluate_prompt(task, engine, prompt, examples, **kw))


def task_graph(task: Task, engine: Engine, prompt: str, example):
    """The loss of one example through the task's pipeline (its graph: ``textopt graph``, ``textopt report``)."""
    solver = build_solver(task, engine, prompt)
    pred = solver(example.input)
    return TaskMetric(task)(pred, example.target)
