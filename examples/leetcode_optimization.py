"""Test-time code optimization on LeetCode-style problems: public tests give feedback, hidden tests the score.

    python examples/leetcode_optimization.py --engine local --steps 1 --n 2
    python examples/leetcode_optimization.py --engine openai:gpt-4o --steps 3

For each shipped problem (``textopt.tasks.code``): the engine writes a solution, the public tests run in the
sandbox and their failures are the code's gradient, TGD rewrites it; the hidden tests score the first and the kept
solution. Prints the pass rates before and after.
"""
from __future__ import annotations

import argparse

import textopt as tx
from textopt.tasks.code import load_code_problems, optimize_code, pass_rates


def run(engine="local", *, steps: int = 2, n: int | None = None) -> tuple[list, dict]:
    engine = tx.get_engine(engine)
    problems = load_code_problems()[:n] if n else load_code_problems()
    results = [optimize_code(p, engine, steps=steps) for p in problems]
    return results, pass_rates(results)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="local")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--n", type=int, default=None, help="only the first N problems")
    args = ap.parse_args(argv)
    results, rates = run(args.engine, steps=args.steps, n=args.n)
    for r in results:
        print(f"{r.problem:24s} public {r.public_before:.2f} -> {r.public_after:.2f}   "
              f"hidden {r.hidden_before:.2f} -> {r.hidden_after:.2f}" + (f"   ({r.notes[0][:60]})" if r.notes else ""))
    print(f"mean hidden pass rate: {rates['hidden_before']:.2f} -> {rates['hidden_after']:.2f} "
          f"(public {rates['public_before']:.2f} -> {rates['public_after']:.2f})")


if __name__ == "__main__":
    main()
