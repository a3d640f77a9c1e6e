"""A search over a task's system prompt (``beam``, ``pareto``, ``opro``, ``demos``): the run loop behind
``textopt optimize --optimizer NAME``, usable from Python.

The solver is the TGD path's (:func:`~.solver.build_solver`); ``Evaluator.from_task`` runs it on an example and
scores it with the task's metric. The optimizer proposes from the train split and selects on the val split only
(the test split never reaches it: :func:`textopt.optim.guards.optimizer_data` refuses it); the test split is
scored at the end, for the report, by :func:`~.solver.ascore_solver`. ``demos`` leaves the instruction alone and
learns few-shot demonstrations (:class:`textopt.nn.DemoCall`), appended to the system prompt
(``best_prompt.txt`` holds the whole system prompt the model saw, so ``textopt eval --prompt-file
best_prompt.txt`` reproduces the figure).

Output folder: ``config.json``; ``log.jsonl`` (the run log, :mod:`textopt.train.runlog`: the search's events,
its "init" and "step" rows the points of the curve); ``checkpoint.json`` (the optimizer's state after each step,
:class:`~textopt.optim.callbacks.Checkpoint`; ``resume`` loads it); ``curve.png``; and
:func:`~.folder.finish`'s files.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Callable

from ..errors import BudgetExceeded, DataError
from ..nn.demos import DemoCall, compose_system
from ..optim import OPTIMIZERS, Checkpoint, Evaluator, JsonlLog, NoImprovement, load_checkpoint
from ..runtime import run_sync
from ..train.curve import plot_curve
from ..train.runlog import RunLog, read_rows
from .engines import EngineSet, optimizer_tokens
from .folder import start_run
from .solver import ascore_solver, build_solver


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
    ``config.json`` (the CLI's ``data`` and ``flags``); ``progress``: called with a line after each step. A
    budget that ends before the test split is scored is a warning (the test figures are then None)."""
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
    evaluator = Evaluator.from_task(solver, task)
    settings = {"task": task.name, "data": None, "engine": fwd.name, "optimizer_engine": opt_engine.name,
                "optimizer": optimizer, "steps": steps, "batch_size": batch_size, "sizes": list(splits.sizes()),
                "seed": seed, "initial_prompt": prompt, "patience": patience, **(config or {})}
    out = start_run(out, settings, resume)

    log_path, ckpt_path = out / "log.jsonl", out / "checkpoint.json"
    stoppers = [NoImprovement(patience)] if patience else []
    opt = OPTIMIZERS[optimizer](
        params, evaluator, engine=opt_engine, data=splits.for_optimizer(), budget=engines.budget,
        stoppers=stoppers, callbacks=[JsonlLog(log_path)], max_concurrency=concurrency,
        seed=seed, executor=executor, max_tokens=optimizer_tokens(opt_engine, max_new_tokens),
        **search_options(optimizer, batch_size))
    opt.register_step_post_hook(Checkpoint(ckpt_path))
    log = RunLog(log_path)
    if resume and ckpt_path.exists():
        load_checkpoint(opt, ckpt_path)
        log.rewind(opt.step_count)
    else:
        log.clear()
    seed_values = opt.store.values(opt.seed_hash)
    if progress is not None:
        opt.register_step_post_hook(lambda o, info: progress(
            f"step {info['step']}: best val {info['best_score']:.3f}, {info['candidates']} candidates"
            + (f", stopped: {info['stopped']}" if info["stopped"] else "")))
    while opt.stopped is None and opt.step_count < steps:
        opt.step()
    best_values = opt.store.values(opt.best) if opt.best else seed_values

    def system_of(values: dict) -> str:
        return compose_system(prompt, values["demos"]) if optimizer == "demos" else values["system_prompt"]

    n_val = len(splits.val)
    seed_val = opt.store.scored(opt.seed_hash, "val")
    val_before = opt.mean(list(seed_val.values())) if len(seed_val) == n_val else None
    val_after = opt.best_score if opt.best else None
    test_before = test_after = None

    def test_score(values: dict):
        for n, v in params.items():
            v.value = values[n]
        return run_sync(ascore_solver(task, solver, splits.test, concurrency=concurrency, executor=executor))[0]
    try:   # the test split: scored here, for the report only — the optimizer never saw it
        test_before = test_score(seed_values)
        test_after = test_before if best_values == seed_values else test_score(best_values)
    except BudgetExceeded as exc:
        warnings.warn(f"the budget ended before the test split was scored: {exc}", stacklevel=2)
    finally:
        for n, v in params.items():
            v.value = best_values[n]
    history, prev, accepted = opt.best_history, val_before, []
    for i, score in enumerate(history):
        if prev is not None and score > prev:
            accepted.append(i + 1)
        prev = score
    plot_curve(read_rows(log_path), out / "curve.png")   # the best validation score after each step
    return {"task": task.name, "engine": fwd.name, "optimizer": optimizer, "val_before": val_before,
            "val_after": val_after, "test_before": test_before, "test_after": test_after,
            "steps": opt.step_count, "accepted_steps": accepted, "stopped": opt.stopped,
            "candidates": len(opt.store.candidates), "rejected": len(opt.store.rejected),
            "metric_calls": opt.metric_calls, "initial_prompt": prompt, "optimized_prompt": system_of(best_values),
            "optimized_values": best_values, "sizes": list(splits.sizes()),
            "wall_s": round(time.perf_counter() - t0, 2), "usage": engines.usage()}
