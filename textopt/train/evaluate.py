"""Evaluation of a model on a list of examples (no graph, eval mode, concurrent, order-stable)."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping, Sequence

from ..errors import DataError
from ..grad_mode import no_grad
from ..parallel import amap
from ..variable import Variable
from .data import Example


async def call_model(model, x: Any) -> Variable:
    """``model.acall(x)``; a Mapping input is spread as keyword arguments (multi-field modules)."""
    if isinstance(x, Mapping):
        return await model.acall(**x)
    return await model.acall(x)


async def call_loss(loss_fn, pred: Variable, ex: Example) -> Variable:
    """Loss contract: a textopt ``nn.Module`` loss is called with ``(pred, ex.y)`` when it declares
    ``needs_target = True`` (metric and code losses) and with ``(pred)`` otherwise (``TextLoss``); any other
    callable is called as ``loss_fn(pred, example)`` and may be async."""
    from ..nn.module import Module
    if isinstance(loss_fn, Module):
        if getattr(loss_fn, "needs_target", False):
            return await loss_fn.acall(pred, ex.y)
        return await loss_fn.acall(pred)
    out = loss_fn(pred, ex)
    if inspect.isawaitable(out):
        out = await out
    return out


FEEDBACK_ITEMS, FEEDBACK_CHARS = 6, 2000   # what a log row keeps of a step's gradients (a run stays readable)


def feedback_of(model) -> dict[str, list[str]]:
    """The textual gradients of the model's trainable text parameters, bounded: at most ``FEEDBACK_ITEMS`` per
    parameter, each cut to ``FEEDBACK_CHARS`` characters (the Trainer logs them; ``textopt report`` shows them)."""
    out = {}
    for name, var in model.named_parameters():
        if var.is_text and var.requires_grad and var.grad:
            out[name] = [f.value if len(f.value) <= FEEDBACK_CHARS else f.value[:FEEDBACK_CHARS] + " [...]"
                         for f in list(var.grad)[:FEEDBACK_ITEMS]]
    return out


def loss_score(loss: Variable) -> float:
    score = loss.meta.get("score") if isinstance(loss, Variable) else None
    if score is None:
        raise DataError(f"the loss {loss!r} carries no numeric score (meta['score']); give the Trainer a "
                        "metric=callable(prediction_text, example) -> float, or use a metric loss "
                        "(ExactMatch, NumberMatch, Regex, F1, CodeTestsLoss)")
    return float(score)


def make_scorer(metric: Callable | None, loss_fn) -> Callable:
    """An async ``score(pred, example) -> float``: ``metric(pred_text, example)`` or the loss's own score."""
    async def score(pred: Variable, ex: Example) -> float:
        if metric is not None:
            out = metric(pred.value if isinstance(pred, Variable) else pred, ex)
            if inspect.isawaitable(out):
                out = await out
            return float(out)
        return loss_score(await call_loss(loss_fn, pred, ex))
    return score


class ScoreExample:
    """The evaluation job of one example (see :func:`textopt.parallel.amap`): the model's answer with no graph,
    scored. Picklable, so it can run in another process (``executor="ray"``)."""

    def __init__(self, model, scorer: Callable):
        self.model, self.scorer = model, scorer

    async def __call__(self, ex: Example) -> float:
        with no_grad():
            pred = await call_model(self.model, ex.x)
            return await self.scorer(pred, ex)


async def aevaluate(model, data: Sequence[Example], scorer: Callable, *, concurrency: int = 8,
                    progress=None, executor=None) -> tuple[float, list[float]]:
    """Mean score and per-example scores (in data order) with the model in eval mode and no graph;
    ``executor``: where the examples run (None: this process; "ray": see :mod:`textopt.parallel`)."""
    if not data:
        return float("nan"), []
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        scores = await amap(ScoreExample(model, scorer), data, concurrency=concurrency, progress=progress,
                            executor=executor)
    finally:
        if hasattr(model, "train"):
            model.train(was_training)
    return sum(scores) / len(scores), scores
