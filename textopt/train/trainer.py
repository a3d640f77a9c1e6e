"""``Trainer``: the training loop for text (and tensor) parameters, with exact resume.

Contract (the CLI builds on it; keep it stable)::

    trainer = Trainer(model, loss_fn, optimizer, train=train_examples, val=val_examples, test=test_examples,
                      metric=None, batch_size=3, steps=12, out_dir="runs/x", seed=0)
    result = trainer.fit()                 # or trainer.fit(resume=True) / trainer.resume()

- ``model``: an ``nn.Module``; each example's ``x`` is passed to ``await model.acall(x)`` (a dict ``x`` is spread
  as keyword arguments).
- ``loss_fn``: a loss ``nn.Module`` — called ``(pred, example.y)`` if it declares ``needs_target`` (ExactMatch,
  NumberMatch, Regex, F1, CodeTestsLoss), else ``(pred)`` (TextLoss) — or any callable ``(pred, example)``,
  sync or async, returning a loss Variable.
- ``metric``: ``callable(prediction_text, example) -> float`` for validation/test; None uses the loss's own
  ``meta["score"]``.
- ``executor``: where validation and test examples run — None (this process) or "ray" (Ray tasks, each worker
  with its own engines; same scores, log and checkpoint: :mod:`textopt.parallel`). The training step itself
  (forward, backward, optimizer) stays in this process.
- examples: :class:`Example`, dicts with "x"/"y", or ``(x, y)`` pairs; the test split (``task.splits(...).test``,
  a slice of it) is refused as ``train`` or ``val`` with a ``DataError``.

One step of an optimizer that reads gradients (TGD; :func:`.steps.gradient_step`): a seeded minibatch ->
concurrent forward (``acall``) -> losses -> ``tx.aggregate`` (bounded batch feedback) -> backward ->
``optimizer.step()`` -> validation; with ``revert_if_worse`` a step that lowers the validation score is undone
(parameters only; the optimizer keeps the rejected attempt in its history). An optimizer with ``guard_against``
(TGD) is given the training split, so no new value may copy a training example; the log row's ``unchanged``
names the parameters the step left as they were.

``feedback_from="failures"`` (the default) backpropagates only the examples whose loss scored below 1.0 (a
loss without a score always counts): feedback on a correct answer is noise to an optimizer, and costs a backward
call. A batch that is entirely correct is a skipped step (no backward, no optimizer call, no validation: the
parameters did not change; the row says ``skipped``). ``feedback_from="all"`` backpropagates every example.

``screen=True`` (the default) tries a changed value on the step's own minibatch before the validation split, as
GEPA accepts a proposal: unless the minibatch score strictly improves, the value is reverted at once (the
optimizer records it as rejected) and the validation split is not spent on it; the row's ``screen`` holds the
two minibatch scores. A step that changed no parameter is not validated again either (its score is the current
one). So a budget of calls buys more steps: a rejected proposal costs ``batch_size`` calls, not the val split.
``patience`` stops after that many steps without a new best. An optimizer step whose LLM answers stayed
unusable after the repair (``OptimizerStepError`` from ``ParseError`` only) changed nothing: with
``skip_invalid_updates`` (default) the trainer logs it as ``step_error`` and goes on; engine errors propagate.
At the end the best parameters are loaded and the test set is scored (a budget that ends first is a warning:
``test_score`` is then None).

A search optimizer (``BeamSearch``, ``ParetoEvolution``, ``OPRO``, ``DemoBootstrap``: ``uses_gradients =
False``) evaluates and selects by itself, on the data and evaluator it was built with: one step is ``await
optimizer.astep()`` — no forward, backward, screen or revert — and the validation score is its best
candidate's; its events ("init" (the starting values, scored, in the first step), "proposed", "rejected",
"new_best", "step", "stop") are the log's rows, and a reason it stops for (a budget, a stopper, nothing left
to try) ends the run like ``patience``. ``loss_fn`` / ``metric`` then only score the test split; ``train`` and
``val`` are only checked against the test split (see :mod:`.steps`).

Files in ``out_dir``: ``log.jsonl`` (the run log, schema in :mod:`.runlog`: one row per step: scores,
parameter values, the step's textual gradients as ``feedback`` (bounded: :func:`~.evaluate.feedback_of`),
cumulative usage by role),
``checkpoint.json`` (written atomically after every step: parameters, optimizer state, RNG states, sampler
position, usage, best-so-far, the log's rows), ``result.json`` (steps, best_val, test_score, stopped_early,
stopped (the reason, or None), params, usage) and ``curve.png``. ``fit(resume=True)`` continues from the
checkpoint and ends exactly where an uninterrupted run would (same parameters, log and usage), provided the
engines answer deterministically (replay, scripted, cached or temperature-0 local). The RNG states are Python's
and, when the program has loaded torch (it has, if a parameter is a tensor), torch's: ``fit`` seeds it and every
checkpoint holds it (a resume loads torch to restore it); a text program never loads torch. Usage is restored per
engine from the checkpoint; calls of a step that crashed and were stored in a response cache come back as
cache hits after the resume, so then only the call/cached split of that step differs.
"""
from __future__ import annotations

import copy
import json
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from tqdm.auto import tqdm

from ..checks import FILE_FIX, expand_user, expect_int, loading
from ..data import refuse_test_examples, refuse_test_split
from ..engines import Engine, current_backward_engine, get_engine
from ..engines.usage import merge
from ..errors import BudgetExceeded, CheckpointError, DataError
from ..runtime import run_sync
from . import checkpoint as ckpt
from .data import Sampler, as_examples
from .evaluate import aevaluate, make_scorer
from .runlog import RunLog
from .steps import gradient_step, search_logger, search_step, uses_gradients

CHECKPOINT_VERSION = 1


@dataclass
class TrainResult:
    """What ``fit`` returns: steps done, best validation score, test score (None until the run finishes),
    final parameter values by name, whether the run stopped before its last step (and why: ``stopped``, e.g.
    patience, a search's budget), the output folder and the log rows."""

    steps: int
    best_val: float | None
    test_score: float | None
    params: dict
    stopped_early: bool
    out_dir: str | None
    history: list = field(default_factory=list)
    stopped: str | None = None


class Trainer:
    def __init__(self, model, loss_fn, optimizer, train: Iterable[Any], val: Iterable[Any] | None = None,
                 test: Iterable[Any] | None = None, *, metric: Callable | None = None, batch_size: int = 3,
                 steps: int = 12, out_dir: str | Path | None = None, seed: int = 0, revert_if_worse: bool = True,
                 patience: int | None = None, backward_engine: "Engine | str | None" = None,
                 engines: Sequence[Engine] | None = None, aggregate_max_tokens: int = 1024,
                 eval_concurrency: int = 8, progress: bool = True, plot: bool = True,
                 skip_invalid_updates: bool = True, feedback_from: str = "failures", screen: bool = True,
                 executor=None):
        if not (callable(model) and hasattr(model, "named_parameters") and hasattr(model, "load_state_dict")):
            raise DataError(f"the Trainer's model must be a textopt.nn.Module (its parameters are saved and "
                            f"restored), got {type(model).__name__}")
        if not callable(loss_fn):
            raise DataError(f"the Trainer's loss_fn must be a loss or metric called as loss_fn(output, target), "
                            f"got {type(loss_fn).__name__}")
        if not (callable(getattr(optimizer, "astep", None)) and hasattr(optimizer, "load_state_dict")):
            raise DataError(f"the Trainer's optimizer must be a textopt.optim.Optimizer (TGD, a search, "
                            f"MixedOptimizer ...), got {type(optimizer).__name__}")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        for name, data in (("train", train), ("val", val)):
            refuse_test_split(data, f"the Trainer's {name}=", "pass train=splits.train, val=splits.val and "
                              "test=splits.test (the test split is scored once, at the end)")
        self.train_set = as_examples(train, "train")
        self.val_set = as_examples(val, "val")
        self.test_set = as_examples(test, "test")
        refuse_test_examples(self.test_set, {"train": self.train_set, "val": self.val_set},
                             "pass train=splits.train and val=splits.val")
        if not self.train_set:
            raise DataError("Trainer needs at least one training example")
        expect_int(steps, "Trainer steps", lo=0)
        expect_int(batch_size, "Trainer batch_size", lo=1)
        expect_int(seed, "Trainer seed")
        expect_int(patience, "Trainer patience", lo=1, allow_none=True)
        expect_int(eval_concurrency, "Trainer eval_concurrency", lo=1)
        expect_int(aggregate_max_tokens, "Trainer aggregate_max_tokens", lo=1)
        self.batch_size, self.steps, self.seed = batch_size, steps, seed
        self.out_dir = expand_user(out_dir, "the Trainer's out_dir") if out_dir is not None else None
        self.revert_if_worse, self.patience = revert_if_worse, patience
        self.backward_engine = backward_engine
        self.aggregate_max_tokens = aggregate_max_tokens
        self.eval_concurrency, self.progress, self.plot = eval_concurrency, progress, plot
        self.skip_invalid_updates = skip_invalid_updates
        if feedback_from not in ("failures", "all"):
            raise DataError(f"feedback_from must be 'failures' or 'all', got {feedback_from!r}")
        self.feedback_from = feedback_from
        self.screen = screen
        self.executor = executor   # where validation and test run: None (this process), "ray", an Executor
        self.scorer = make_scorer(metric, loss_fn)
        self.engines = list(engines) if engines is not None else self._find_engines()
        guard = getattr(optimizer, "guard_against", None)
        if callable(guard):
            guard(self.train_set)
        self.sampler = Sampler(len(self.train_set), batch_size, seed)
        self.step_count = 0
        self.best_val: float | None = None
        self.current_val: float | None = None   # the validation score of the parameters as they are now
        self.best_params: dict | None = None
        self.bad_steps = 0
        self.stopped_early = False
        self.stop_reason: str | None = None
        self.history: list[dict] = []

    # -- engines and usage ---------------------------------------------------------------------------------
    def _find_engines(self) -> list[Engine]:
        found: list[Engine] = []

        def add(e):
            if isinstance(e, Engine) and all(e is not f for f in found):
                found.append(e)
        for obj in (self.model, self.loss_fn):
            if hasattr(obj, "named_modules"):
                for _, m in obj.named_modules():
                    for v in vars(m).values():
                        add(v)
        add(getattr(self.optimizer, "engine", None))
        self._context_backward = current_backward_engine()  # a `with tx.backward_engine(...)` around construction
        backward = self.backward_engine if self.backward_engine is not None else self._context_backward
        if backward is not None:
            add(get_engine(backward))
        return found

    def usage(self) -> dict:
        return merge(e.usage for e in self.engines).as_dict()

    def _budgets(self) -> list:
        """The engines' distinct Budgets, in engine order (one Budget may be shared by several engines)."""
        out: list = []
        for e in self.engines:
            b = getattr(e, "budget", None)
            if b is not None and all(b is not c for c in out):
                out.append(b)
        return out

    def _backward_engine(self):
        if self.backward_engine is not None:
            return self.backward_engine
        return (current_backward_engine() or getattr(self, "_context_backward", None)
                or getattr(self.optimizer, "engine", None))

    # -- one step ------------------------------------------------------------------------------------------
    def _param_values(self) -> dict:
        return {n: ckpt.to_jsonable(v.value) for n, v in self.model.named_parameters()}

    async def _validate(self, desc: str) -> float | None:
        if not self.val_set:
            return None
        score, _ = await aevaluate(self.model, self.val_set, self.scorer, concurrency=self.eval_concurrency,
                                   progress=self.progress, desc=desc, executor=self.executor)
        return score

    # -- persistence ---------------------------------------------------------------------------------------
    @property
    def log_path(self) -> Path | None:
        return self.out_dir / "log.jsonl" if self.out_dir else None

    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / "checkpoint.json" if self.out_dir else None

    def _log(self, row: dict) -> None:
        RunLog(self.log_path, self.history).append(row)   # the one run-log writer (schema: train.runlog)

    def state_dict(self) -> dict:
        return {"version": CHECKPOINT_VERSION, "step": self.step_count, "steps": self.steps, "seed": self.seed,
                "params": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "rng": ckpt.rng_states(), "sampler": self.sampler.state_dict(),
                "usage": [{"engine": e.name, "usage": e.usage.as_dict()} for e in self.engines],
                "budgets": [b.state_dict() for b in self._budgets()],
                "best_val": self.best_val, "current_val": self.current_val, "best_params": self.best_params,
                "bad_steps": self.bad_steps, "stopped_early": self.stopped_early, "stopped": self.stop_reason,
                "history": self.history}

    def load_state_dict(self, d: dict) -> None:
        """Resume from a checkpoint's contents; a malformed one raises one ``CheckpointError`` and leaves the run
        (parameters, optimizer, sampler, usage, random states) as it was."""
        before = self.state_dict()
        with loading("the state_dict given to Trainer.load_state_dict", d, lambda: self._load(before)):
            self._load(d)

    def _load(self, d: dict) -> None:
        if d.get("version") is None and "extra" in d:
            raise CheckpointError("this checkpoint holds only a search optimizer's state (a search run of textopt "
                                  "before its runs used the Trainer); it cannot be resumed: use a new output folder")
        if d.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(f"checkpoint version {d.get('version')} is not {CHECKPOINT_VERSION}")
        if d["seed"] != self.seed:
            raise CheckpointError(f"checkpoint was made with seed {d['seed']}, this trainer has seed {self.seed}")
        names = [u["engine"] for u in d["usage"]]
        if names != [e.name for e in self.engines]:
            raise CheckpointError(f"checkpoint usage is for engines {names}, this run has "
                                  f"{[e.name for e in self.engines]}; build the run with the same engines")
        self.model.load_state_dict(d["params"])
        self.optimizer.load_state_dict(d["optimizer"])
        ckpt.set_rng_states(d["rng"])
        self.sampler.load_state_dict(d["sampler"])
        for e, u in zip(self.engines, d["usage"]):
            e.usage.load_dict(u["usage"])
        budgets, spent = self._budgets(), d.get("budgets")   # (checkpoints made before budgets were saved: none)
        if spent is not None and len(spent) == len(budgets):
            for b, s in zip(budgets, spent):   # what was spent counts against the limits the resumed run has
                b.load_state_dict(s)
        elif spent:
            warnings.warn(f"the checkpoint holds {len(spent)} engine budget(s), this run has {len(budgets)}: "
                          "their spending is not restored (the budgets start from zero)", stacklevel=3)
        if not (type(d["step"]) is int and d["step"] >= 0 and isinstance(d["history"], list)
                and type(d["bad_steps"]) is int and isinstance(d["stopped_early"], bool)
                and (d["best_val"] is None or type(d["best_val"]) in (int, float))
                and (d["best_params"] is None or isinstance(d["best_params"], dict))):
            raise TypeError("step, bad_steps, history, stopped_early, best_val or best_params has the wrong type")
        self.step_count, self.best_val, self.best_params = d["step"], d["best_val"], d["best_params"]
        self.current_val = d.get("current_val", d["best_val"])
        self.bad_steps, self.stopped_early, self.history = d["bad_steps"], d["stopped_early"], d["history"]
        self.stop_reason = d.get("stopped") or (self._patience_reason() if self.stopped_early else None)

    def _save(self) -> None:
        if self.checkpoint_path is not None:
            ckpt.save(self.checkpoint_path, self.state_dict())

    def _restore_log(self) -> None:
        """Rewrite the log to exactly the checkpointed rows (drops rows of a step that crashed after logging)."""
        RunLog(self.log_path).rewrite(self.history)

    # -- the loop ------------------------------------------------------------------------------------------
    async def afit(self, *, resume: bool = False, max_steps: int | None = None) -> TrainResult:
        """Train. ``resume``: continue from ``out_dir/checkpoint.json`` (a fresh start if there is none).
        ``max_steps``: stop after this many steps in this call (the checkpoint lets a later call continue)."""
        search = not uses_gradients(self.optimizer)
        if resume and self.checkpoint_path is not None and self.checkpoint_path.exists():
            with loading(f"checkpoint {self.checkpoint_path}", fix=FILE_FIX):
                self.load_state_dict(ckpt.load(self.checkpoint_path))
            self._restore_log()
        else:
            RunLog(self.log_path).clear()
            self.sampler = Sampler(len(self.train_set), self.batch_size, self.seed)
            self.step_count, self.bad_steps, self.stopped_early, self.history = 0, 0, False, []
            self.stop_reason = None
            random.seed(self.seed)
            torch = ckpt.torch_loaded()   # loaded by a program with tensors; a text program never loads it
            if torch is not None:
                torch.manual_seed(self.seed)
            if not search:   # a search scores its starting values itself, in its first step ("init" row)
                val = await self._validate("validate (initial)")
                self.best_val, self.best_params = val, copy.deepcopy(self.model.state_dict())
                self.current_val = val
                self._log({"step": 0, "kind": "init", "val_score": val, "train_score": None, "reverted": False,
                           "batch": [], "params": self._param_values(), "usage": self.usage()})
            self._save()
        done_now = 0
        bar = tqdm(total=self.steps, initial=self.step_count, desc="train", disable=not self.progress)
        logger = search_logger(self) if search else None
        if logger is not None:
            self.optimizer.callbacks.append(logger)   # the search's events are rows of this run's log
        try:
            while self.step_count < self.steps and not self.stopped_early:
                if max_steps is not None and done_now >= max_steps:
                    break
                await (search_step(self) if search else gradient_step(self))
                if self.patience is not None and self.bad_steps >= self.patience and not self.stopped_early:
                    self.stop(self._patience_reason())
                self._save()
                done_now += 1
                bar.update(1)
        finally:
            bar.close()
            if logger is not None:
                self.optimizer.callbacks.remove(logger)
        if self.step_count >= self.steps or self.stopped_early:
            return await self._finish()
        return self._result(None)

    def stop(self, reason: str) -> None:
        """End the run after this step (``reason``: result.json's and the TrainResult's ``stopped``)."""
        self.stopped_early, self.stop_reason = True, reason

    def _patience_reason(self) -> str:
        return f"no improvement in {self.patience} steps"

    async def _finish(self) -> TrainResult:
        if self.best_params is not None and self.val_set:
            self.model.load_state_dict(self.best_params)
        test_score = None
        if self.test_set:
            try:
                test_score, _ = await aevaluate(self.model, self.test_set, self.scorer,
                                                concurrency=self.eval_concurrency, progress=self.progress,
                                                desc="test", executor=self.executor)
            except BudgetExceeded as exc:
                warnings.warn(f"the budget ended before the test split was scored: {exc}", stacklevel=2)
        result = self._result(test_score)
        if self.out_dir is not None:
            ckpt.atomic_write_text(self.out_dir / "result.json", json.dumps(
                {"steps": result.steps, "best_val": result.best_val, "test_score": test_score,
                 "stopped_early": result.stopped_early, "stopped": result.stopped, "params": result.params,
                 "usage": self.usage()}, indent=1, ensure_ascii=False))
            if self.plot:
                from .curve import plot_curve
                plot_curve(self.history, self.out_dir / "curve.png")
        return result

    def _result(self, test_score) -> TrainResult:
        return TrainResult(steps=self.step_count, best_val=self.best_val, test_score=test_score,
                           params=self._param_values(), stopped_early=self.stopped_early,
                           out_dir=str(self.out_dir) if self.out_dir else None, history=list(self.history),
                           stopped=self.stop_reason)

    def fit(self, *, resume: bool = False, max_steps: int | None = None) -> TrainResult:
        return run_sync(self.afit(resume=resume, max_steps=max_steps))

    def resume(self, *, max_steps: int | None = None) -> TrainResult:
        if self.checkpoint_path is None or not self.checkpoint_path.exists():
            raise CheckpointError(f"nothing to resume: no checkpoint.json in {self.out_dir}")
        return self.fit(resume=True, max_steps=max_steps)

