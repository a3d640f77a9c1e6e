"""textopt.runs: a run of an optimizer on a task's system prompt, as ``textopt optimize`` / ``textopt eval`` do
it, usable from Python — the engines of each role (:class:`EngineSet`), the task's solver and metric
(:func:`build_solver`, :class:`TaskMetric`, :func:`evaluate_prompt`), the runs (:func:`train_task`: TGD;
:func:`search_task`: a search optimizer — both configurations of the one run loop, the
:class:`~textopt.train.Trainer`, with one checkpoint and result.json) and the output folder they share
(:mod:`.folder`; the run log and curve: :mod:`textopt.train.runlog`, :mod:`textopt.train.curve`).

    engines = EngineSet(cache=False)
    task = get_task("counting"); splits = task.splits(20, 20, 20)
    summary = search_task(task, splits, task.initial_prompt, optimizer="beam", engines=engines,
                          engine="openai:gpt-4o-mini", optimizer_engine="openai:gpt-4o", out="runs/beam")
    print(finish("runs/beam", summary))
"""
from .engines import EngineSet, optimizer_tokens
from .folder import accepted_steps, check_resume, finish, render_summary, start_run, unchanged_steps
from .search import search_optimizers, search_options, search_task
from .solver import (TaskMetric, aevaluate_prompt, ascore_solver, build_solver,
                     evaluate_prompt, task_graph)
from .tgd import train_task

__all__ = ["EngineSet", "optimizer_tokens", "TaskMetric", "build_solver", "evaluate_prompt",
           "aevaluate_prompt", "ascore_solver", "task_graph", "train_task", "search_task", "search_optimizers",
           "search_options", "check_resume", "start_run", "finish", "render_summary", "accepted_steps",
           "unchanged_steps"]
