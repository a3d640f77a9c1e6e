"""``textopt optimize``: TGD on a task's system prompt with the Trainer; prints and saves before/after figures.
(``--optimizer beam|pareto|opro|demos``, the search optimizers, run in :mod:`textopt.commands.search`.)

Output folder (``--out``):
- ``config.json``   the command's settings (task, engines, sizes, seed, starting prompt; ``flags``: every
  flag, so ``--config config.json`` repeats the run)
- ``log.jsonl``     one row per step (train/val scores, prompt value, reverted?, usage by role) — the Trainer's
- ``checkpoint.json`` written atomically after each step; ``--resume`` continues from it exactly
- ``result.json``   the Trainer's final record; ``curve.png`` the training curve
- ``best_prompt.txt`` the optimized prompt; ``summary.json`` before/after accuracy, accepted steps, wall time
- ``usage.json`` / ``usage.txt`` calls, cached calls, tokens and dollars by role
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..engines.usage import Usage, format_report
from ..checks import expect, parse_json, read_text
from ..errors import CheckpointError, DataError
from ..optim import TGD
from ..tasks import get_task
from ..train import Trainer
from ..optim.local_defaults import LOCAL_FEEDBACK_TOKENS, LOCAL_OPTIMIZER_TOKENS, LOCAL_TGD, check_optimizer  # noqa: F401
from ..train.checkpoint import atomic_write_text
from .config_file import recorded_flags
from .evaluate import evaluate_prompt, executor_of, load_prompt
from .pipeline import EngineSet, TaskMetric, build_solver


def engine_set(args) -> EngineSet:
    # None: the engines' default (the shared disk cache, unless TEXTOPT_CACHE=0)
    cache = False if args.no_cache else (getattr(args, "cache", None) or args.cache_dir or None)
    return EngineSet(cache=cache, budget_usd=args.budget_usd, budget_tokens=getattr(args, "budget_tokens", None),
                     record=args.record, replay=args.replay)


def accepted_steps(history: list[dict]) -> list[int]:
    """Steps whose update was kept: the prompt changed, no step error, not reverted."""
    out, prev = [], None
    for row in history:
        params = row.get("params")
        if row.get("kind") == "step" and not row.get("reverted") and not row.get("step_error") \
                and prev is not None and params != prev:
            out.append(row["step"])
        if not row.get("reverted"):
            prev = params
    return out


def unchanged_steps(history: list[dict]) -> list[int]:
    """Steps whose optimizer returned the parameters as they were (even when asked again)."""
    return [row["step"] for row in history if row.get("kind") == "step" and row.get("unchanged")]


def _pct(x) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def run_optimize(args) -> int:
    t0 = time.perf_counter()
    check_optimizer(args.optimizer)
    if getattr(args, "dry_run", False):
        return dry_run(args)
    if getattr(args, "json", False):
        raise DataError("--json prints the --dry-run estimate: add --dry-run (a run's figures are in "
                        "OUT/summary.json and OUT/usage.json)")
    if args.optimizer != "tgd":
        from .search import run_search
        return run_search(args, t0)
    if args.steps < 0 or args.batch_size < 1:
        raise DataError("--steps must be >= 0 and --batch-size >= 1")
    task = get_task(args.task, args.data)
    splits = task.splits(args.train_size, args.val_size, args.test_size, seed=args.seed)
    if not splits.train:
        raise DataError(f"task {task.name!r} gave no training example; raise --train-size")
    prompt = load_prompt(args, task)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    engines = engine_set(args)
    fwd = engines.get(args.engine)
    bwd_spec = args.backward_engine or args.engine
    bwd = engines.get(bwd_spec)
    opt_engine = engines.get(args.optimizer_engine or bwd_spec)
    max_tokens = args.max_new_tokens or (LOCAL_OPTIMIZER_TOKENS if opt_engine.provider == "local" else 1024)
    feedback_tokens = args.feedback_tokens or (LOCAL_FEEDBACK_TOKENS if bwd.provider == "local" else None)

    solver = build_solver(task, fwd, prompt, feedback_tokens=feedback_tokens)
    loss = TaskMetric(task)
    compact = LOCAL_TGD if opt_engine.provider == "local" else {}
    optimizer = TGD([solver.system_prompt], engine=opt_engine, max_tokens=max_tokens, **compact)
    config = {"task": task.name, "data": args.data, "engine": fwd.name, "backward_engine": bwd.name,
              "optimizer_engine": opt_engine.name, "optimizer": args.optimizer, "steps": args.steps,
              "batch_size": args.batch_size, "sizes": list(splits.sizes()), "seed": args.seed,
              "initial_prompt": prompt, "revert_if_worse": not args.no_revert, "patience": args.patience,
              "feedback_from": args.feedback_from, "screen": not args.no_screen}
    config["flags"] = recorded_flags(args, prompt)   # `textopt optimize --config config.json` repeats the run
    _check_resume(out, config, args.resume)
    atomic_write_text(out / "config.json", json.dumps(config, indent=1, ensure_ascii=False))

    trainer = Trainer(solver, loss, optimizer, train=splits.train, val=splits.val, test=splits.test,
                      batch_size=args.batch_size, steps=args.steps, out_dir=out, seed=args.seed,
                      revert_if_worse=not args.no_revert, patience=args.patience, backward_engine=bwd,
                      engines=engines.engines(), eval_concurrency=args.concurrency, progress=not args.quiet,
                      executor=executor_of(args), feedback_from=args.feedback_from,
                      screen=not args.no_screen)
    result = trainer.fit(resume=args.resume)
    best = solver.system_prompt.value
    # The starting prompt on the test split (after training, so a resumed run counts it once; cached anyway).
    test_before, _ = evaluate_prompt(task, fwd, prompt, splits.test, concurrency=args.concurrency,
                                     progress=not args.quiet, desc="test (initial prompt)",
                                     executor=executor_of(args))
    wall = time.perf_counter() - t0
    history = result.history
    val_before = history[0].get("val_score") if history else None
    summary = {"task": task.name, "engine": fwd.name, "val_before": val_before, "val_after": result.best_val,
               "test_before": test_before, "test_after": result.test_score, "steps": result.steps,
               "accepted_steps": accepted_steps(history), "unchanged_steps": unchanged_steps(history),
               "initial_prompt": prompt, "optimized_prompt": best,
               "sizes": list(splits.sizes()), "wall_s": round(wall, 2), "usage": engines.usage()}
    finish(out, summary)
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


def finish(out: Path, summary: dict, files: str | None = None) -> None:
    """Write best_prompt.txt, summary.json, usage.json/.txt and print the end-of-run summary (every optimizer)."""
    atomic_write_text(out / "best_prompt.txt", summary["optimized_prompt"] + "\n")
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1, ensure_ascii=False))
    usage = Usage()
    usage.load_dict(summary["usage"])
    report = format_report(usage)
    atomic_write_text(out / "usage.json", json.dumps(summary["usage"], indent=1))
    atomic_write_text(out / "usage.txt", report + "\n")
    print(render_summary(summary, report, out, **({"files": files} if files else {})))


def _check_resume(out: Path, config: dict, resume: bool) -> None:
    cfg = out / "config.json"
    if resume and cfg.exists():
        old = parse_json(read_text(cfg, "run settings", error=CheckpointError), cfg, error=CheckpointError)
        expect(old, dict, f"--resume: {cfg}", "it was not written by textopt; use a new --out",
               error=CheckpointError)
        diff = [k for k in config if k not in ("patience", "steps", "flags") and old.get(k) != config[k]]
        if diff:
            raise CheckpointError(f"--resume: {out} holds a run with different settings ({', '.join(diff)}); "
                                  "use the same command, or a new --out")


TGD_FILES = "summary.json, best_prompt.txt, log.jsonl, checkpoint.json, curve.png, usage.txt"


def render_summary(s: dict, report: str, out: Path, files: str = TGD_FILES) -> str:
    n_train, n_val, n_test = s["sizes"]
    acc = s["accepted_steps"]
    lines = [
        "",
        f"textopt optimize: task {s['task']} on {s['engine']} ({s['steps']} steps"
        + (f" of {s['optimizer']}" if s.get("optimizer", "tgd") != "tgd" else "") + ")",
        f"{'':14}{'before':>8}{'after':>9}",
        f"{'val':<4}(n={n_val:<4}) {_pct(s['val_before']):>8}{_pct(s['val_after']):>9}",
        f"{'test':<4}(n={n_test:<4}) {_pct(s['test_before']):>8}{_pct(s['test_after']):>9}",
        f"updates accepted on validation: {len(acc)} of {s['steps']}"
        + (f" (step {', '.join(map(str, acc))})" if acc else "")
        + (f"; left unchanged by the optimizer: step {', '.join(map(str, s['unchanged_steps']))}"
           if s.get("unchanged_steps") else ""),
        "initial prompt:   " + s["initial_prompt"].replace("\n", "\n                  "),
        "optimized prompt: " + s["optimized_prompt"].replace("\n", "\n                  "),
        "calls and tokens by role (cached calls cost nothing):",
        report,
        f"wall time: {s['wall_s']:.1f} s",
        *([f"stopped: {s['stopped']}"] if s.get("stopped") else []),
        f"output: {out}/ ({files})",
    ]
    return "\n".join(lines)
