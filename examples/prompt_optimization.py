"""Prompt optimization on BBH object counting (shipped with textopt; ``--data`` gives another copy).

    python examples/prompt_optimization.py --engine local --steps 2
    python examples/prompt_optimization.py --engine openai:gpt-4o-mini --steps 6 --val-size 50

The whole training loop in the Python API: a learnable system prompt, a metric loss whose explanation seeds
backward, TGD, and the Trainer (validation with revert-if-worse, checkpoints, log, final test).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import textopt as tx
from textopt.tasks import get_task

def load_task(data: str | None = None):
    """BBH object counting: the shipped copy, or ``data`` (a BBH folder or the task's JSON file); a ``data`` path
    that does not exist gives the generated counting task instead (no files at all)."""
    if data is None:
        return get_task("object_counting")
    bbh = Path(data)
    if (bbh / "object_counting.json").is_file() or bbh.is_file():
        return get_task("object_counting", data=bbh)
    return get_task("counting")


def run(engine="local", *, steps=2, batch_size=3, sizes=(6, 6, 6), out_dir="runs/prompt_optimization",
        data=None, seed=0, progress=True):
    engine = tx.get_engine(engine)
    task = load_task(data)
    splits = task.splits(*sizes, seed=seed)
    prompt = tx.Variable(task.initial_prompt, role="system prompt of a model that counts objects",
                         requires_grad=True, name="system_prompt")
    solver = tx.nn.LLMCall(engine, system_prompt=prompt, max_tokens=task.max_tokens)
    loss_fn = tx.nn.NumberMatch()                  # "Wrong answer: expected 8, got 7." seeds backward
    optimizer = tx.optim.TGD([prompt], engine=engine, max_tokens=256)
    trainer = tx.train.Trainer(solver, loss_fn, optimizer, train=splits.train, val=splits.val,
                               test=splits.test, batch_size=batch_size, steps=steps, out_dir=out_dir,
                               seed=seed, backward_engine=engine, progress=progress)
    result = trainer.fit()
    return task, result, prompt.value


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="local")
    ap.add_argument("--data", default=None, help="BBH folder or object_counting.json (default: the shipped copy)")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--val-size", type=int, default=6)
    ap.add_argument("--out", default="runs/prompt_optimization")
    args = ap.parse_args(argv)
    task, result, prompt = run(args.engine, steps=args.steps, sizes=(6, args.val_size, args.val_size),
                               out_dir=args.out, data=args.data)
    print(f"task {task.name}: best val {result.best_val:.2f}, test {result.test_score:.2f}")
    print(f"prompt: {prompt}")
    print(tx.usage())


if __name__ == "__main__":
    main()
