"""``textopt eval``: score one prompt on one split, concurrently, with a progress bar."""
from __future__ import annotations

import json
from pathlib import Path

from tqdm.auto import tqdm

from ..checks import read_text
from ..engines.usage import Usage, format_report
from ..errors import DataError
from ..grad_mode import no_grad
from ..parallel import amap
from ..runtime import run_sync
from ..tasks import Task, get_task
from .pipeline import build_solver


def load_prompt(args, task: Task) -> str:
    if getattr(args, "prompt_file", None):
        return read_text(args.prompt_file, "--prompt-file").strip()
    if getattr(args, "prompt", None) is not None:
        return args.prompt
    return task.initial_prompt


class PromptRow:
    """The ``textopt eval`` job of one example: the solver's answer and the task's score, as a result row."""

    def __init__(self, task: Task, solver):
        self.task, self.solver = task, solver

    async def __call__(self, ex) -> dict:
        with no_grad():
            pred = await self.solver.acall(ex.input)
        s = self.task.score(pred.value, ex.target)
        return {"input": ex.input, "target": ex.target, "response": pred.value, "extracted": s.extracted,
                "score": s.value}


async def aevaluate_prompt(task: Task, engine, prompt: str, examples, *, concurrency: int = 8,
                           progress: bool = True, desc: str = "eval",
                           executor=None) -> tuple[float | None, list[dict]]:
    """Mean score of ``prompt`` on ``examples`` and one record per example (in order)."""
    if not examples:
        return None, []
    solver = build_solver(task, engine, prompt).eval()
    bar = tqdm(total=len(examples), desc=desc, leave=False, disable=not progress)
    try:
        rows = await amap(PromptRow(task, solver), examples, concurrency=max(1, concurrency), progress=bar,
                          executor=executor)
    finally:
        bar.close()
    return sum(r["score"] for r in rows) / len(rows), rows


def evaluate_prompt(task, engine, prompt, examples, **kw) -> tuple[float | None, list[dict]]:
    return run_sync(aevaluate_prompt(task, engine, prompt, examples, **kw))


def executor_of(args):
    """``--executor`` / ``--ray-address`` as an executor (None: this process)."""
    from ..parallel import get_executor
    return get_executor(getattr(args, "executor", None), address=getattr(args, "ray_address", None))


def run_eval(args) -> int:
    from .optimize import engine_set
    task = get_task(args.task, args.data)
    splits = task.splits(args.train_size, args.val_size, args.test_size, seed=args.seed)
    examples = splits[args.split]
    if not examples:
        raise DataError(f"the {args.split} split is empty; raise --{args.split}-size")
    prompt = load_prompt(args, task)
    engines = engine_set(args)
    engine = engines.get(args.engine)
    score, rows = evaluate_prompt(task, engine, prompt, examples, concurrency=args.concurrency,
                                  progress=not args.quiet, desc=f"eval {args.split}", executor=executor_of(args))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    usage = Usage()
    usage.load_dict(engines.usage())
    print(f"task {task.name}, {args.split} split (n={len(rows)}), engine {engine.name}")
    print(f"prompt: {prompt}")
    print(f"accuracy: {100 * score:.1f}% ({sum(r['score'] >= 1 for r in rows)}/{len(rows)})")
    print(format_report(usage))
    return 0
