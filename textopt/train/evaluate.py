"""Evaluation of a model on a list of examples (no graph, eval mode, concurrent, order-stable).

:func:`aevaluate` is the one "score these examples" function of textopt: the Trainer's validation, screen and
test, ``textopt eval`` and a search run's test split all call it (on :func:`textopt.parallel.amap`, the one
concurrent loop, which a search optimizer's cached candidate evaluations use too)."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping, Sequence

from tqdm.auto import tqdm

from ..errors import DataError
from ..grad_mode import no_grad
from ..parallel import amap
from ..variable import Variable
from .data import Example, as_examples


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
    """An async ``score(pred, example)``: ``metric(pred_text, example)`` (a number, or a ``textopt.tasks``
    ``Score``: kept whole, so a result row has its extracted answer) or the loss's own score."""
    async def score(pred: Variable, ex: Example):
        if metric is not None:
            out = metric(pred.value if isinstance(pred, Variable) else pred, ex)
            if inspect.isawaitable(out):
                out = await out
            return out if _is_score(out) else float(out)
        return loss_score(await call_loss(loss_fn, pred, ex))
    return score


def _is_score(x: Any) -> bool:
    return hasattr(x, "value") and hasattr(x, "extracted") and not isinstance(x, Variable)


class ScoreExample:
    """The evaluation job of one example (see :func:`textopt.parallel.amap`): the model's answer with no graph,
    scored — a float, or with ``rows`` a record (input, target, response, extracted, score). Picklable, so it
    can run in another process (``executor="ray"``)."""

    def __init__(self, model, scorer: Callable, rows: bool = False):
        self.model, self.scorer, self.rows = model, scorer, rows

    async def __call__(self, ex: Example):
        with no_grad():
            pred = await call_model(self.model, ex.x)
            out = await self.scorer(pred, ex)
        value = float(out.value) if _is_score(out) else float(out)
        if not self.rows:
            return value
        return {"input": ex.x, "target": ex.y, "response": pred.value if isinstance(pred, Variable) else pred,
                "extracted": getattr(out, "extracted", None), "score": value}


async def aevaluate(model, data: Sequence[Example], scorer: Callable, *, concurrency: int = 8,
                    progress=None, desc: str = "eval", executor=None,
                    rows: bool = False) -> tuple[float, list]:
    """Mean score and per-example results (in data order: scores, or with ``rows`` one record each) with the
    model in eval mode and no graph; ``executor``: where the examples run (None: this process; "ray": see
    :mod:`textopt.parallel`); ``progress``: None/False, True (a bar named ``desc``) or anything with
    ``update(n)``. No example: ``(nan, [])``."""
    data = as_examples(data, "evaluation")
    if not data:
        return float("nan"), []
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    given = hasattr(progress, "update")
    own = not given and bool(progress)   # True: a bar of our own, closed at the end
    bar = progress if given else tqdm(total=len(data), desc=desc, leave=False) if own else None
    try:
        results = await amap(ScoreExample(model, scorer, rows), data, concurrency=concurrency, progress=bar,
                             executor=executor)
    finally:
        if own:
            bar.close()
        if hasattr(model, "train"):
            model.train(was_training)
    scores = [r["score"] for r in results] if rows else results
    return sum(scores) / len(scores), results
