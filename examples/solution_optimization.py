"""Test-time solution optimization on GSM8K: refine ONE solution with textual gradients, then vote.

    python examples/solution_optimization.py --engine local --n 2
    python examples/solution_optimization.py --engine openai:gpt-4o --n 20

Uses ``tx.optimize_solution`` (critic -> backward -> rewrite, majority vote over the trajectory) on the GSM8K test
split shipped with textopt (``--data`` gives another JSONL; a path that does not exist gives two built-in word
problems).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import textopt as tx
from textopt.tasks import Example, get_task, load_gsm8k

BUILT_IN = [Example("Tom has 3 boxes with 4 pencils each. He gives away 5 pencils. How many are left?", "7"),
            Example("A shop sells pens at 2 dollars each. Ann buys 6 pens and pays with a 20 dollar bill. "
                    "How much change does she get?", "8")]


def questions(data: str | None, n: int, seed: int = 0) -> list[Example]:
    if data is None:
        return get_task("gsm8k").splits(0, 0, n, seed=seed).test
    if Path(data).is_file():
        return load_gsm8k(data).splits(0, 0, n, seed=seed).test
    return BUILT_IN[:n]


def run(engine="local", *, n=2, steps=2, data=None):
    engine = tx.get_engine(engine)
    rows = []
    for ex in questions(data, n):
        res = tx.optimize_solution(ex.input, engine, steps=steps, max_tokens=256)
        first = res.trajectory[0]["answer"] if res.trajectory else None
        rows.append({"question": ex.input, "target": ex.target, "first": first, "voted": res.answer})
    return rows


def _same(a, b) -> bool:
    try:
        return a is not None and abs(float(str(a).replace(",", "")) - float(b)) < 1e-6
    except ValueError:
        return False


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="local")
    ap.add_argument("--data", default=None, help="GSM8K JSONL (default: the shipped test split)")
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2)
    args = ap.parse_args(argv)
    rows = run(args.engine, n=args.n, steps=args.steps, data=args.data)
    for r in rows:
        print(f"target {r['target']:>6}  first attempt {r['first']!s:>6}  after optimization {r['voted']!s:>6}")
    print(f"accuracy: first {sum(_same(r['first'], r['target']) for r in rows)}/{len(rows)}, "
          f"optimized {sum(_same(r['voted'], r['target']) for r in rows)}/{len(rows)}")


if __name__ == "__main__":
    main()
