"""TGD on a task's system prompt with the :class:`~textopt.train.Trainer`: the run loop behind ``textopt optimize``
(``--optimizer tgd``), usable from Python.

Output folder: ``config.json``; ``log.jsonl`` (the run log, :mod:`textopt.train.runlog`: one row per step);
``checkpoint.json`` (written atomically after each step; ``resume`` continues from it exactly); ``result.json``
(the Trainer's final record); ``curve.png``; and :func:`~.folder.finish`'s files.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import DataError
from ..optim import TGD
from ..optim.local_defaults import LOCAL_FEEDBACK_TOKENS, LOCAL_TGD
from ..runtime import run_sync
from ..train import Trainer
from .engines import EngineSet, optimizer_tokens
from .folder import accepted_steps, start_run, unchanged_steps
from .solver import TaskMetric, aevaluate_prompt, build_solver


def train_task(task, splits, prompt: str, *, engines: EngineSet, engine, backward_engine, optimizer_engine,
               out: str | Path, steps: int = 3, batch_size: int = 3, max_new_tokens: int | None = None,
               feedback_tokens: int | None = None, revert_if_worse: bool = True, patience: int | None = None,
               feedback_from: str = "failures", screen: bool = True, concurrency: int = 8, executor=None,
               seed: int = 0, resume: bool = False, config: dict | None = None, progress: bool = True) -> dict:
    """Train ``task``'s system prompt with TGD for ``steps`` steps in folder ``out``; the summary (written by
    the caller with :func:`~.folder.finish`). ``config``: extra settings for ``config.json`` (the CLI's
    ``data`` and ``flags``)."""
    t0 = time.perf_counter()
    if steps < 0 or batch_size < 1:
        raise DataError("--steps must be >= 0 and --batch-size >= 1")
    if not splits.train:
        raise DataError(f"task {task.name!r} gave no training example; raise --train-size")
    fwd, bwd, opt_engine = engines.get(engine), engines.get(backward_engine), engines.get(optimizer_engine)
    max_tokens = optimizer_tokens(opt_engine, max_new_tokens)
    feedback_tokens = feedback_tokens or (LOCAL_FEEDBACK_TOKENS if bwd.provider == "local" else None)

    solver = build_solver(task, fwd, prompt, feedback_tokens=feedback_tokens)
    compact = LOCAL_TGD if opt_engine.provider == "local" else {}
    optimizer = TGD([solver.system_prompt], engine=opt_engine, max_tokens=max_tokens, **compact)
    settings = {"task": task.name, "data": None, "engine": fwd.name, "backward_engine": bwd.name,
                "optimizer_engine": opt_engine.name, "optimizer": "tgd", "steps": steps,
                "batch_size": batch_size, "sizes": list(splits.sizes()), "seed": seed,
                "initial_prompt": prompt, "revert_if_worse": revert_if_worse, "patience": patience,
                "feedback_from": feedback_from, "screen": screen, **(config or {})}
    out = start_run(out, settings, resume)

    trainer = Trainer(solver, TaskMetric(task), optimizer, train=splits.train, val=splits.val,
                      test=splits.test,
                      batch_size=batch_size, steps=steps, out_dir=out, seed=seed,
                      revert_if_worse=revert_if_worse, patience=patience, backward_engine=bwd,
                      engines=engines.engines(), eval_concurrency=concurrency, progress=progress,
                      executor=executor, feedback_from=feedback_from, screen=screen)
    result = trainer.fit(resume=resume)
    best = solver.system_prompt.value
    # The starting prompt on the test split (after training, so a resumed run counts it once; cached anyway).
    test_before, _ = run_sync(aevaluate_prompt(task, fwd, prompt, splits.test, concurrency=concurrency,
                                               progress=progress, desc="test (initial prompt)",
                                               executor=executor))
    history = result.history
    return {"task": task.name, "engine": fwd.name, "val_before": history[0].get("val_score") if history else None,
            "val_after": result.best_val, "test_before": test_before, "test_after": result.test_score,
            "steps": result.steps, "accepted_steps": accepted_steps(history),
            "unchanged_steps": unchanged_steps(history), "initial_prompt": prompt, "optimized_prompt": best,
            "sizes": list(splits.sizes()), "wall_s": round(time.perf_counter() - t0, 2), "usage": engines.usage()}
