"""``textopt optimize --optimizer beam|pareto|opro|demos``: a search optimizer over the task's system prompt.

The solver is the one the TGD path builds; ``Evaluator.from_task`` runs it on an example and scores it with the
task's metric. The optimizer proposes from the train split and selects on the val split only (the test split
never reaches it: :func:`textopt.optim.guards.optimizer_data` refuses it); the test split is scored once per
candidate at the end, for the report. ``demos`` leaves the instruction alone and learns few-shot
demonstrations, appended to the system prompt (``best_prompt.txt`` holds the whole system prompt the model saw,
so ``textopt eval --prompt-file best_prompt.txt`` reproduces the figure).

Output folder (``--out``): ``config.json``; ``log.jsonl`` (the search's events: proposed, rejected, new_best,
step, stop — :class:`~textopt.optim.callbacks.JsonlLog`); ``checkpoint.json`` (the optimizer's state after each
step — :class:`~textopt.optim.callbacks.Checkpoint`; ``--resume`` loads it); ``best_prompt.txt``;
``summary.json``; ``usage.json`` / ``usage.txt``; ``curve.png`` (the best validation score after each step).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..checks import parse_json, read_text
from ..engines import Request
from ..errors import BudgetExceeded, DataError
from ..nn import LLMCall
from ..optim import OPTIMIZERS, Checkpoint, Evaluator, JsonlLog, NoImprovement, load_checkpoint
from ..optim.store import DEFAULT_OBJECTIVE, CandidateJob
from ..parallel import amap
from ..runtime import run_sync
from ..tasks import get_task
from ..train.checkpoint import atomic_write_text
from ..train.curve import plot_curve
from ..variable import Variable
from .config_file import recorded_flags
from .evaluate import executor_of, load_prompt
from .optimize import LOCAL_OPTIMIZER_TOKENS, _check_resume, engine_set, finish
from .pipeline import build_solver

DEMOS_HEADER = "Examples of correct answers:"
SEARCH_FILES = "summary.json, best_prompt.txt, log.jsonl, checkpoint.json, curve.png, usage.txt"


def search_optimizers() -> list[str]:
    return sorted(n for n in OPTIMIZERS if n != "tgd")


def compose_system(prompt: str, demos: str) -> str:
    demos = demos.strip()
    return f"{prompt}\n\n{DEMOS_HEADER}\n\n{demos}" if demos else prompt


class DemoCall(LLMCall):
    """The solver with a second text parameter, ``demos``, appended to its system prompt on every call."""

    def __init__(self, solver: LLMCall):
        super().__init__(solver.engine, system_prompt=solver.system_prompt, output_role=solver.output_role,
                         temperature=solver.temperature, max_tokens=solver.max_tokens, name=solver.node_name,
                         backward_max_tokens=solver.backward_max_tokens, **solver.request_kw)
        self.fn = solver.fn
        self.demos = Variable("", role="few-shot demonstrations appended to the system prompt",
                              requires_grad=True, name="demos")

    def forward_request(self, x: Variable, role: str) -> Request:
        return Request.chat(x.value, system=compose_system(self.system_prompt.value, self.demos.value),
                            temperature=self.temperature, max_tokens=self.max_tokens, role=role,
                            node=self.node_name, **self.request_kw)


def _optimizer_kw(name: str, batch_size: int) -> dict:
    """The CLI's --batch-size where an optimizer has a per-step sample size."""
    return {"beam": {"minibatch_size": batch_size}, "pareto": {"minibatch_size": batch_size},
            "opro": {"score_size": max(batch_size, 1)}, "demos": {"bootstrap_size": batch_size}}.get(name, {})


async def _mean_score(evaluator: Evaluator, values: dict, examples, concurrency: int,
                      executor=None) -> float | None:
    if not examples:
        return None
    evals = await amap(CandidateJob(evaluator, values, [DEFAULT_OBJECTIVE]), examples,
                       concurrency=max(1, concurrency), executor=executor)
    return sum(e.total({DEFAULT_OBJECTIVE: 1.0}) for e in evals) / len(evals)


def _trim_log(path: Path, step: int) -> None:
    """On resume: drop events past the checkpoint (a step that was interrupted is run, and logged, again)."""
    if not path.exists():
        return
    keep, lines = 0, read_text(path, "search log", allow_empty=True).splitlines(keepends=True)
    for i, line in enumerate(lines):
        row = parse_json(line, path, line=i + 1)
        if isinstance(row, dict) and row.get("event") == "step" and row.get("step", 0) <= step:
            keep = i + 1
    atomic_write_text(path, "".join(lines[:keep]))


def run_search(args, t0: float) -> int:
    if args.steps < 0 or args.batch_size < 1:
        raise DataError("--steps must be >= 0 and --batch-size >= 1")
    task = get_task(args.task, args.data)
    splits = task.splits(args.train_size, args.val_size, args.test_size, seed=args.seed)
    if not splits.train or not splits.val:
        raise DataError(f"task {task.name!r} gave an empty train or val split; a search proposes from the "
                        f"train split and selects on the val split: raise --train-size / --val-size")
    prompt = load_prompt(args, task)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    engines = engine_set(args)
    fwd = engines.get(args.engine)
    opt_spec = args.optimizer_engine or args.backward_engine or args.engine
    opt_engine = engines.get(opt_spec)
    max_tokens = args.max_new_tokens or (LOCAL_OPTIMIZER_TOKENS if opt_engine.provider == "local" else 1024)

    solver = build_solver(task, fwd, prompt)
    if args.optimizer == "demos":
        solver = DemoCall(solver)
        params = {"demos": solver.demos}
    else:
        params = dict(solver.named_parameters())
    solver.eval()   # a search only evaluates: no graph, no backward
    executor = executor_of(args)
    evaluator = Evaluator.from_task(solver, task)
    config = {"task": task.name, "data": args.data, "engine": fwd.name, "optimizer_engine": opt_engine.name,
              "optimizer": args.optimizer, "steps": args.steps, "batch_size": args.batch_size,
              "sizes": list(splits.sizes()), "seed": args.seed, "initial_prompt": prompt,
              "patience": args.patience}
    config["flags"] = recorded_flags(args, prompt)   # `textopt optimize --config config.json` repeats the run
    _check_resume(out, config, args.resume)
    atomic_write_text(out / "config.json", json.dumps(config, indent=1, ensure_ascii=False))

    log_path, ckpt_path = out / "log.jsonl", out / "checkpoint.json"
    stoppers = [NoImprovement(args.patience)] if args.patience else []
    opt = OPTIMIZERS[args.optimizer](
        params, evaluator, engine=opt_engine, data=splits.for_optimizer(), budget=engines.budget,
        stoppers=stoppers, callbacks=[JsonlLog(log_path)], max_concurrency=args.concurrency, seed=args.seed,
        executor=executor,
        max_tokens=max_tokens, **_optimizer_kw(args.optimizer, args.batch_size))
    opt.register_step_post_hook(Checkpoint(ckpt_path))
    if args.resume and ckpt_path.exists():
        load_checkpoint(opt, ckpt_path)
        _trim_log(log_path, opt.step_count)
    elif log_path.exists():
        log_path.unlink()
    seed_values = opt.store.values(opt.seed_hash)
    if not args.quiet:
        opt.register_step_post_hook(lambda o, info: print(
            f"step {info['step']}: best val {info['best_score']:.3f}, {info['candidates']} candidates"
            + (f", stopped: {info['stopped']}" if info["stopped"] else ""), file=sys.stderr))
    while opt.stopped is None and opt.step_count < args.steps:
        opt.step()
    best_values = opt.store.values(opt.best) if opt.best else seed_values

    def system_of(values: dict) -> str:
        return compose_system(prompt, values["demos"]) if args.optimizer == "demos" else values["system_prompt"]

    n_val = len(splits.val)
    seed_val = opt.store.scored(opt.seed_hash, "val")
    val_before = opt.mean(list(seed_val.values())) if len(seed_val) == n_val else None
    val_after = opt.best_score if opt.best else None
    test_before = test_after = None
    try:   # the test split: scored here, for the report only — the optimizer never saw it
        test_before = run_sync(_mean_score(evaluator, seed_values, splits.test, args.concurrency, executor))
        test_after = test_before if best_values == seed_values else \
            run_sync(_mean_score(evaluator, best_values, splits.test, args.concurrency, executor))
    except BudgetExceeded as exc:
        print(f"textopt: the budget ended before the test split was scored: {exc}", file=sys.stderr)
    finally:
        for n, v in params.items():
            v.value = best_values[n]
    history, prev, accepted = opt.best_history, val_before, []
    for i, score in enumerate(history):
        if prev is not None and score > prev:
            accepted.append(i + 1)
        prev = score
    best = system_of(best_values)
    summary = {"task": task.name, "engine": fwd.name, "optimizer": args.optimizer, "val_before": val_before,
               "val_after": val_after, "test_before": test_before, "test_after": test_after,
               "steps": opt.step_count, "accepted_steps": accepted, "stopped": opt.stopped,
               "candidates": len(opt.store.candidates), "rejected": len(opt.store.rejected),
               "metric_calls": opt.metric_calls, "initial_prompt": prompt, "optimized_prompt": best,
               "optimized_values": best_values, "sizes": list(splits.sizes()),
               "wall_s": round(time.perf_counter() - t0, 2), "usage": engines.usage()}
    # the curve: the best validation score after each step (step 0: the initial prompt)
    points = ([{"step": 0, "val_score": val_before}] if val_before is not None else []) + \
        [{"step": i + 1, "val_score": s} for i, s in enumerate(history)]
    plot_curve(points, out / "curve.png")
    finish(out, summary, files=SEARCH_FILES)
    return 0
