"""``textopt eval``: score one prompt on one split, concurrently, with a progress bar."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tqdm.auto import tqdm

from ..engines.usage import Usage, format_report
from ..errors import DataError
from ..grad_mode import no_grad
from ..runtime import run_sync
from ..tasks import Task, get_task
from .pipeline import build_solver


def load_prompt(args, task: Task) -> str:
    if getattr(args, "prompt_file", None):
        path = Path(args.prompt_file)
        if not path.is_file():
            raise DataError(f"--prompt-file {path}: no such file")
        text = path.read_text(encoding="utf-8").strip()
        if not text:
            raise DataError(f"--prompt-file {path}: the file is empty")
        return text
    if getattr(args, "prompt", None) is not None:
        return args.prompt
    return task.initial_prompt


async def aevaluate_prompt(task: Task, engine, prompt: str, examples, *, concurrency: int = 8,
                           progress: bool = True, desc: str = "eval") -> tuple[float | None, list[dict]]:
    """Mean score of ``prompt`` on ``examples`` and one record per example (in order)."""
    if not examples:
        return None, []
    solver = build_solver(task, engine, prompt).eval()
    sem = asyncio.Semaphore(max(1, concurrency))
    bar = tqdm(total=len(examples), desc=desc, leave=False, disable=not progress)

    async def one(ex):
        async with sem:
            with no_grad():
                pred = await solver.acall(ex.input)
        s = task.score(pred.value, ex.target)
        bar.update(1)
        return {"input": ex.input, "target": ex.target, "response": pred.value, "extracted": s.extracted,
                "score": s.value}
    try:
        rows = list(await asyncio.gather(*(one(ex) for ex in examples)))
    finally:
        bar.close()
    return sum(r["score"] for r in rows) / len(rows), rows


def evaluate_prompt(task, engine, prompt, examples, **kw) -> tuple[float | None, list[dict]]:
    return run_sync(aevaluate_prompt(task, engine, prompt, examples, **kw))


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
                                  progress=not args.quiet, desc=f"eval {args.split}")
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
