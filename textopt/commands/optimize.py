"""``textopt optimize``: optimize a task's system prompt and print and save before/after figures.

``--optimizer tgd`` trains with TGD and the Trainer (:func:`textopt.runs.train_task`); ``beam``, ``pareto``,
``opro`` and ``demos`` run a search (:func:`textopt.runs.search_task`); ``--dry-run`` prints the estimate
(:func:`textopt.estimate.estimate_optimize`) and makes no call. Both runs write one output folder format
(``--out``):

- ``config.json``   the command's settings (task, engines, sizes, seed, starting prompt; ``flags``: every
  flag, so ``--config config.json`` repeats the run)
- ``log.jsonl``     the run log (:mod:`textopt.train.runlog`): one row per step (scores, parameter values,
  usage by role; TGD: reverted?, feedback; a search: its events too)
- ``checkpoint.json`` the Trainer's, written atomically after each step; ``--resume`` continues from it exactly
  (usage counted once)
- ``curve.png`` the run curve; ``result.json`` the Trainer's final record (both runs are Trainer runs)
- ``best_prompt.txt`` the optimized prompt; ``summary.json`` before/after accuracy, accepted steps, wall time
- ``usage.json`` / ``usage.txt`` calls, cached calls, tokens and dollars by role
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError
from ..optim.local_defaults import check_optimizer
from ..runs import finish, search_task, train_task
from ..tasks import get_task
from .common import engine_set, executor_of, load_prompt, say
from .config_file import recorded_flags


def run_optimize(args) -> int:
    check_optimizer(args.optimizer)
    if getattr(args, "dry_run", False):
        return dry_run(args)
    if getattr(args, "json", False):
        raise DataError("--json prints the --dry-run estimate: add --dry-run (a run's figures are in "
                        "OUT/summary.json and OUT/usage.json)")
    if args.steps < 0 or args.batch_size < 1:
        raise DataError("--steps must be >= 0 and --batch-size >= 1")
    task = get_task(args.task, args.data)
    splits = task.splits(args.train_size, args.val_size, args.test_size, seed=args.seed)
    prompt = load_prompt(args, task)
    engines = engine_set(args)
    # `textopt optimize --config config.json` repeats the run
    config = {"data": args.data, "flags": recorded_flags(args, prompt)}
    common = dict(engines=engines, engine=args.engine, out=args.out, steps=args.steps, batch_size=args.batch_size,
                  max_new_tokens=args.max_new_tokens, patience=args.patience, concurrency=args.concurrency,
                  executor=executor_of(args), seed=args.seed, resume=args.resume, config=config)
    backward = args.backward_engine or args.engine
    if args.optimizer == "tgd":
        summary = train_task(task, splits, prompt, backward_engine=backward,
                             optimizer_engine=args.optimizer_engine or backward,
                             feedback_tokens=args.feedback_tokens, revert_if_worse=not args.no_revert,
                             feedback_from=args.feedback_from, screen=not args.no_screen,
                             progress=not args.quiet, **common)
    else:
        summary = search_task(task, splits, prompt, optimizer=args.optimizer,
                              optimizer_engine=args.optimizer_engine or backward,
                              progress=None if args.quiet else say, **common)
    print(finish(Path(args.out), summary))
    return 0


def dry_run(args) -> int:
    """``--dry-run``: the whole run's estimate (:func:`textopt.estimate.estimate_optimize`), no engine built."""
    from ..estimate import estimate_optimize
    prompt = load_prompt(args, get_task(args.task, args.data)) if (args.prompt_file or args.prompt) else None
    est = estimate_optimize(args.task, data=args.data, engine=args.engine, backward_engine=args.backward_engine,
                            optimizer_engine=args.optimizer_engine, optimizer=args.optimizer, steps=args.steps,
                            batch_size=args.batch_size, train_size=args.train_size, val_size=args.val_size,
                            test_size=args.test_size, seed=args.seed, prompt=prompt,
                            max_new_tokens=args.max_new_tokens, feedback_tokens=args.feedback_tokens,
                            feedback_from=args.feedback_from, screen=not args.no_screen, replay=args.replay)
    if args.json:
        print(json.dumps(est.as_dict(), indent=1, ensure_ascii=False))
    else:
        st = est.settings
        n_train, n_val, n_test = st["sizes"]
        print(f"textopt optimize --dry-run: task {st['task']}, {st['optimizer']}, {st['steps']} steps of batch "
              f"{st['batch_size']}, splits {n_train}/{n_val}/{n_test}; no LLM call was made\n")
        print(est.table())
    return 0
