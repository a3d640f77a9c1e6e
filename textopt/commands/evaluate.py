"""``textopt eval``: score one prompt on one split, concurrently, with a progress bar
(:func:`textopt.runs.evaluate_prompt`)."""
from __future__ import annotations

import json
from pathlib import Path

from ..engines.usage import Usage, format_report
from ..errors import DataError
from ..runs import evaluate_prompt
from ..tasks import get_task
from .common import engine_set, executor_of, load_prompt


def run_eval(args) -> int:
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
