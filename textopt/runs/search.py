"""A search over a task's system prompt (``beam``, ``pareto``, ``opro``, ``demos``): the run loop behind
``textopt optimize --optimizer NAME``, usable from Python.

The solver is the TGD path's (:func:`~.solver.build_solver`); ``Evaluator.from_task`` runs it on an example and
scores it with the task's metric. The optimizer proposes from the train split and selects on the val split only
(the test split never reaches it: :func:`textopt.optim.guards.optimizer_data` refuses it); the test split is
scored at the end, for the report, by :func:`~.solver.ascore_solver`. ``demos`` leaves the instruction alone and
learns few-shot demonstrations (:class:`textopt.nn.DemoCall`), appended to the system prompt
(``best_prompt.txt`` holds the whole system prompt the model saw, so ``textopt eval --prompt-file
best_prompt.txt`` reproduces the figure).

The run loop is the :class:`~textopt.train.Trainer`'s, as for TGD (:func:`~.tgd.train_task`): a search
optimizer's step needs no gradients (``uses_gradients = False``), so the Trainer just awaits it. Output folder,
the TGD run's: ``config.json``; ``log.jsonl`` (the run log, :mod:`textopt.train.runlog`: the search's events,
its "init" and "step" rows the points of the curve); ``checkpoint.json`` (the Trainer's: its state, the
optimizer's ``state_dict``, usage and RNG after each step; ``resume`` continues from it exactly, usage counted
once); ``result.json`` (the Trainer's final record); ``curve.png``; and :func:`~.folder.finish`'s files.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Callable

from ..errors import BudgetExceeded, DataError
from ..nn.demos import DemoCall, compose_system
from ..optim import OPTIMIZERS, Evaluator
from ..runtime import run_sync
from ..train import Trainer
from ..train.runlog import curve_points
from .engines import EngineSet, optimizer_tokens
from .folder import accepted_steps, start_run
from .solver import TaskMetric, ascore_solver, build_solver


def search_optimizers() -> list[str]:
    return sorted(n for n in OPTIMIZERS if n != "tgd")


def search_options(name: str, batch_size: int) -> dict:
    """The run's batch size where an optimizer has a per-step sample size."""
    return {"beam": {"minibatch_size": batch_size}, "pareto": {"minibatch_size": batch_size},
            "opro": {"score_size": max(batch_size, 1)}, "demos": {"bootstrap_size": batch_size}}.get(name, {})


def search_task(task, splits, prompt: str, *, optimizer: str, engines: EngineSet, engine, optimizer_engine,
                out: str | Path, steps: int = 3, batch_size: int = 3, max_new_tokens: int | None = None,
                patience: int | None = None, concurrency: int = 8, executor=None, seed: int = 0,
                resume: bool = False, config: dict | None = None,
                progress: Callable[[str], None] | None = None) -> dict:
    """Run search ``optimizer`` on ``task``'s system prompt for up to ``steps`` steps in folder ``out`` and
    return the summary (written by the caller with :func:`~.folder.finish`). ``config``: extra settings for
    ``config.json`` (the CLI's ``data`` and ``flags``); ``progress``: called with a line after each step;
    ``patience``: the Trainer's (steps without a new best val score). A budget that ends before the test split
    is scored is a warning (the test figures not scored are then None)."""
    t0 = time.perf_counter()
    if steps < 0 or batch_size < 1:
        raise DataError("--steps must be >= 0 and --batch-size >= 1")
    if not splits.train or not splits.val:
        raise DataError(f"task {task.name!r} gave an empty train or val split; a search proposes from the "
                        f"train split and selects on the val split: raise --train-size / --val-size")
    fwd, opt_engine = engines.get(engine), engines.get(optimizer_engine)
    solver = build_solver(task, fwd, prompt)
    if optimizer == "demos":
        solver = DemoCall.from_call(solver)
        params = {"demos": solver.demos}
    else:
        params = dict(solver.named_parameters())
    solver.eval()   # a search only evaluates: no graph, no backward
    settings = {"task": task.name, "data": None, "engine": fwd.name, "optimizer_engine": opt_engine.name,
                "optimizer": optimizer, "steps": steps, "batch_size": batch_size, "sizes": list(splits.sizes()),
                "seed": seed, "initial_prompt": prompt, "patience": patience, **(config or {})}
    out = start_run(out, settings, resume)

    opt = OPTIMIZERS[optimizer](
        params, Evaluator.from_task(solver, task), engine=opt_engine, data=splits.for_optimizer(),
        budget=engines.budget, max_concurrency=concurrency, seed=seed, executor=executor,
        max_tokens=optimizer_tokens(opt_engine, max_new_tokens), **search_options(optimizer, batch_size))
    if progress is not None:
        opt.register_step_post_hook(lambda o, info: progress(
            f"step {info['step']}: best val {info['best_score']:.3f}, {info['candidates']} candidates"
            + (f", stopped: {info['stopped']}" if info["stopped"] else "")))
    trainer = Trainer(solver, TaskMetric(task), opt, train=splits.train, val=splits.val, test=splits.test,
                      batch_size=batch_size, steps=steps, out_dir=out, seed=seed, patience=patience,
                      engines=engines.engines(), eval_concurrency=concurrency, progress=False,
                      executor=executor)
    result = trainer.fit(resume=resume)
    seed_values, best_values = opt.store.values(opt.seed_hash), opt.current_values()

    def system_of(values: dict) -> str:
        return compose_system(prompt, values["demos"]) if optimizer == "demos" else values["system_prompt"]

    # The starting values on the test split, for the report only (the optimizer never saw it): after the run,
    # as for TGD, so a resumed run counts it once.
    test_before = result.test_score if best_values == seed_values else None
    if best_values != seed_values and result.test_score is not None:
        try:
            for n, v in params.items():
                v.value = seed_values[n]
            test_before = run_sync(ascore_solver(task, solver, splits.test, concurrency=concurrency,
                                                 executor=executor))[0]
        except BudgetExceeded as exc:
            warnings.warn(f"the budget ended before the test split was scored: {exc}", stacklevel=2)
        finally:
            for n, v in params.items():
                v.value = best_values[n]
    points = curve_points(result.history)
    return {"task": task.name, "engine": fwd.name, "optimizer": optimizer,
            "val_before": points[0].get("val_score") if points else None, "val_after": result.best_val,
            "test_before": test_before, "test_after": result.test_score, "steps": result.steps,
            "accepted_steps": accepted_steps(result.history), "stopped": result.stopped,
            "candidates": len(opt.store.candidates), "rejected": len(opt.store.rejected),
            "metric_calls": opt.metric_calls, "initial_prompt": prompt, "optimized_prompt": system_of(best_values),
            "optimized_values": best_values, "sizes": list(splits.sizes()),
            "wall_s": round(time.perf_counter() - t0, 2), "usage": engines.usage()}
