"""The two kinds of step of the :class:`~.trainer.Trainer` — one run loop for every optimizer.

Like ``torch.optim.LBFGS``, whose ``step(closure)`` evaluates the model itself, an optimizer says what its step
needs with ``uses_gradients`` (:class:`textopt.optim.Optimizer`):

- :func:`gradient_step` (``uses_gradients = True``: TGD, MixedOptimizer): a seeded minibatch -> forward ->
  losses -> backward -> ``await optimizer.astep()`` -> screen -> validation -> revert or keep (the Trainer's
  validation gate);
- :func:`search_step` (``uses_gradients = False``: the search optimizers of :mod:`textopt.optim.search_base`):
  ``await optimizer.astep()`` and nothing else — the optimizer evaluates its candidates with its own evaluator
  and selects on its own val split; the Trainer takes the validation score from it (``best_score``: the
  parameters hold its best candidate after each step) and logs its events (:func:`search_logger`). What the
  Trainer reads of such an optimizer is the ``SearchOptimizer`` contract: ``step_count``, ``best_score``,
  ``stopped`` (a reason to stop, or None) and ``callbacks`` (``callback(event, info)``).

Both update the Trainer's step count, best and current validation scores, best parameters and ``bad_steps``
(steps without a new best, for ``patience``); the Trainer then checkpoints.
"""
from __future__ import annotations

import asyncio
import copy
import math

from ..errors import DataError, OptimizerStepError, ParseError
from .evaluate import aevaluate, call_loss, call_model, feedback_of, loss_score
from .runlog import CURVE_KINDS, search_row


def uses_gradients(optimizer) -> bool:
    """Whether the Trainer runs forward and backward before ``optimizer``'s step (see the module docstring)."""
    return bool(getattr(optimizer, "uses_gradients", True))


# -- an optimizer that evaluates and selects by itself ----------------------------------------------------------
def search_logger(tr):
    """``callback(event, info)`` for a search optimizer's ``callbacks``: each event becomes a row of the
    Trainer's run log (:func:`~.runlog.search_row`; its "init" and "step" rows also carry the usage so far), and
    the "init" event (the starting values, scored on val, in the first step) is the run's starting point."""
    def log(event: str, info: dict) -> None:
        row = search_row(event, info)
        if event in CURVE_KINDS:
            row["usage"] = tr.usage()
        if event == "init":
            tr.best_val = tr.current_val = row["val_score"]
            tr.best_params = copy.deepcopy(tr.model.state_dict())
        tr._log(row)
    return log


async def search_step(tr) -> None:
    """One step of an optimizer with ``uses_gradients = False``: ``await optimizer.astep()``. A step the optimizer
    did not make (a budget or stopper ended it first) is not counted; its stop reason stops the run."""
    opt = tr.optimizer
    before = opt.step_count
    await opt.astep()
    if opt.step_count > before:
        tr.step_count = opt.step_count
        val = opt.best_score if isinstance(opt.best_score, (int, float)) and math.isfinite(opt.best_score) \
            else None
        if val is not None and (tr.best_val is None or val > tr.best_val):
            tr.bad_steps = 0
            tr.best_val = val
        else:
            tr.bad_steps += 1
        tr.current_val = val
        tr.best_params = copy.deepcopy(tr.model.state_dict())   # the parameters hold the best candidate
    if opt.stopped:
        tr.stop(str(opt.stopped))
    elif opt.step_count == before:
        tr.stop("the optimizer made no step")


# -- an optimizer that reads the gradients ----------------------------------------------------------------------
async def gradient_step(tr) -> None:
    """One step of an optimizer with ``uses_gradients = True`` (the Trainer's docstring has the contract): logs
    the step's row."""
    batch = tr.sampler.next_batch()
    before = copy.deepcopy(tr.model.state_dict())
    before_values = tr._param_values()
    train_score, step_error, unchanged, skipped, feedback = await _forward_backward_step(tr, batch)
    tr.step_count += 1
    changed = tr._param_values() != before_values
    tried = tr._param_values() if changed else None   # logged as "proposed" if the step is reverted
    screen, reverted = None, False
    if changed and tr.screen and train_score is not None:
        examples = [tr.train_set[i] for i in batch]
        after, _ = await aevaluate(tr.model, examples, tr.scorer, concurrency=tr.eval_concurrency)
        screen = {"before": train_score, "after": after, "accepted": after > train_score}
        if not screen["accepted"]:   # no better on its own minibatch: undone before spending the val split
            _tell_optimizer_rejected(tr, before, train_score, after, split="minibatch")
            tr.model.load_state_dict(before)
            changed, reverted = False, True
    # parameters that did not change keep the validation score they had
    val = await tr._validate(f"validate (step {tr.step_count})") if changed else tr.current_val
    if val is not None and changed:
        if tr.best_val is not None and val < tr.best_val:
            tr.bad_steps += 1
            if tr.revert_if_worse:
                _tell_optimizer_rejected(tr, before, tr.best_val, val)
                tr.model.load_state_dict(before)
                reverted = True
            else:
                tr.current_val = val
        else:
            tr.current_val = val
            if tr.best_val is not None and val == tr.best_val:
                tr.bad_steps += 1
            else:
                tr.bad_steps = 0
            tr.best_val, tr.best_params = val, copy.deepcopy(tr.model.state_dict())
    elif val is not None:
        tr.bad_steps += 1   # nothing changed: a step without a new best
    tr._log({"step": tr.step_count, "kind": "step", "train_score": train_score, "val_score": val,
             "best_val": tr.best_val, "reverted": reverted, "batch": batch, "params": tr._param_values(),
             "step_error": step_error, "unchanged": unchanged, "skipped": skipped, "screen": screen,
             "feedback": feedback, "proposed": tried if reverted else None, "usage": tr.usage()})


async def _forward_backward_step(tr, batch: list[int]) -> tuple[float | None, str | None, list[str], str | None,
                                                                 dict]:
    """Forward the batch, backward its (failing) losses, ``await optimizer.astep()``: (train score, step error,
    unchanged parameters, why the step was skipped, the step's feedback)."""
    from ..nn.aggregate import aaggregate
    examples = [tr.train_set[i] for i in batch]
    tr.model.train()
    tr.optimizer.zero_grad()
    tr.model.zero_grad()
    preds = await asyncio.gather(*(call_model(tr.model, ex.x) for ex in examples))
    losses = await asyncio.gather(*(call_loss(tr.loss_fn, p, ex) for p, ex in zip(preds, examples)))
    try:
        train_score = sum(loss_score(l) for l in losses) / len(losses)
    except DataError:
        train_score = None
    if tr.feedback_from == "failures":
        losses = [loss for loss in losses if _failing(loss)]
        if not losses:
            return train_score, None, [], "every example of the batch scored 1.0", {}
    total = await aaggregate(list(losses), max_tokens=tr.aggregate_max_tokens) if len(losses) > 1 \
        else losses[0]
    step_error, unchanged, feedback = None, [], {}
    if total.requires_grad:
        await total.abackward(engine=tr._backward_engine())
        feedback = feedback_of(tr.model)   # the gradients that drive this step, for the log (bounded)
        try:
            result = await tr.optimizer.astep()
            unchanged = list(getattr(result, "unchanged", None) or [])
        except OptimizerStepError as exc:
            failures = getattr(exc, "failures", None)
            if not (tr.skip_invalid_updates and failures
                    and all(isinstance(e, ParseError) for _, e in failures)):
                raise
            step_error = str(exc)  # the model's answer was unusable; nothing changed; go on
    return train_score, step_error, unchanged, None, feedback


def _tell_optimizer_rejected(tr, before: dict, best: float, val: float, split: str = "validation") -> None:
    """Let the optimizer remember values that were reverted (TGD puts them in its history window)."""
    record = getattr(tr.optimizer, "record_rejection", None)
    if record is None:
        return
    for name, var in tr.model.named_variables():
        if var.is_text and var.requires_grad and name in before and var.value != before[name]:
            record(var, var.value, best, val, split=split)


def _failing(loss) -> bool:
    score = loss.meta.get("score") if hasattr(loss, "meta") else None
    return score is None or float(score) < 1.0
