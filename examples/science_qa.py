"""Science-style multiple-choice QA by test-time solution optimization and voting (the paper's GPQA recipe) on
the BBH multiple-choice tasks shipped with textopt.

    python examples/science_qa.py --engine local --n 3 --steps 2
    python examples/science_qa.py --engine openai:gpt-4o --task logical_deduction_five_objects --n 20

Each question: a first solution, then ``steps`` rounds of critique -> backward -> rewrite
(``tx.optimize_solution``); the answer is chosen by a vote over the whole trajectory, by majority and by inverse
entropy (each iterate weighted by 1 / its mean token negative log-probability, when the engine returns log-probs:
the local engine and OpenAI-compatible servers do). Prints the accuracy of the first attempt, the last iterate and
both votes.
"""
from __future__ import annotations

import argparse

import textopt as tx
from textopt.solution import vote_answers
from textopt.tasks import extract_choice, get_task

DEFAULT_TASK = "logical_deduction_three_objects"


def run(engine="local", *, task: str = DEFAULT_TASK, n: int = 3, steps: int = 2, seed: int = 0) -> dict:
    engine = tx.get_engine(engine)
    t = get_task(task)
    if t.metric.__name__ != "choice_match":
        raise tx.errors.DataError(f"{task!r} is not a multiple-choice task; try {DEFAULT_TASK} or date_understanding")
    rows = []
    for ex in t.splits(0, 0, n, seed=seed).test:
        res = tx.optimize_solution(ex.input, engine, steps=steps, vote="inverse_entropy", extract=extract_choice)
        traj = res.trajectory
        entropy_known = res.vote == "inverse_entropy"
        rows.append({"target": ex.target, "first": traj[0]["answer"], "last": traj[-1]["answer"],
                     "majority": vote_answers(traj, "majority")[0],
                     "inverse_entropy": vote_answers(traj, "inverse_entropy")[0] if entropy_known else None,
                     "note": res.note})
    acc = {k: sum(r[k] == r["target"] for r in rows) / len(rows) for k in ("first", "last", "majority")}
    acc["inverse_entropy"] = (sum(r["inverse_entropy"] == r["target"] for r in rows) / len(rows)
                              if all(r["inverse_entropy"] is not None for r in rows) else None)
    return {"task": task, "rows": rows, "accuracy": acc}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="local")
    ap.add_argument("--task", default=DEFAULT_TASK)
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2)
    args = ap.parse_args(argv)
    result = run(args.engine, task=args.task, n=args.n, steps=args.steps)
    for r in result["rows"]:
        print(f"target {r['target']}  first {r['first']}  last {r['last']}  majority {r['majority']}  "
              f"inverse-entropy {r['inverse_entropy']}")
    acc = result["accuracy"]
    print("accuracy: " + ", ".join(f"{k} {v:.2f}" if v is not None else f"{k} n/a (no log-probs)"
                                    for k, v in acc.items()))


if __name__ == "__main__":
    main()
