"""How big is one TGD optimizer request, and what does it repeat? (scripted engines: no model, deterministic)

    .venv/bin/python benchmarks/tgd_request.py [--batch 3]

One training step as the Trainer runs it on object counting: a batch of questions -> the solver (a scripted
answer of ~700 characters of reasoning ending in "Answer: N") -> the task's number metric -> ``tx.aggregate`` ->
backward (a scripted feedback of ~300 characters per edge) -> the optimizer request TGD builds. Prints the
request's characters and estimated tokens (characters / 4), how often it carries the variable's value, the
feedback engine's instructions and each gradient, and whether the solver's reasoning is visible. Only public API
is used, so the same script measures an older commit (``git worktree add /tmp/old <commit>`` and run it there).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import textopt as tx  # noqa: E402
from textopt.engines import ScriptedEngine  # noqa: E402
from textopt.prompts import BACKWARD_SYSTEM  # noqa: E402

PROMPT = ("Answer the question. Think step by step, then finish with the line 'Answer: N' where N is a number.")
MISTAKE = "the two trombones count as one instrument"


def solver(req) -> str:
    steps = " ".join(f"Item {i}: I look at the next object in the list and decide if it belongs." for i in range(6))
    return f"Let me go through the list: {req.messages[-1].content} {steps} Note that {MISTAKE}. {steps}\nAnswer: 5"


def feedback(req) -> str:
    return ("The system prompt does not tell the model to multiply each item by its quantity: it counted the two "
            "trombones as one. Ask it to list every item with its number, skip items outside the category, and "
            "add the numbers before writing the final line.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=3)
    args = ap.parse_args(argv)
    p = tx.Variable(PROMPT, role="system prompt of the language model that answers each question of the task",
                    requires_grad=True)
    call = tx.nn.LLMCall(ScriptedEngine(solver), system_prompt=p)
    losses = []
    for i in range(args.batch):
        q = tx.Variable(f"I have a flute, a piano, two trombones, and {i + 2} violins. How many musical "
                        f"instruments do I have?", role="question")
        losses.append(tx.nn.NumberMatch()(call(q), str(i + 6)))
    tx.aggregate(losses).backward(engine=ScriptedEngine(feedback))
    opt_engine = ScriptedEngine(f"<NEW_VALUE>{PROMPT} List every item with its number first.</NEW_VALUE>")
    tx.optim.TGD([p], engine=opt_engine).step()
    req = opt_engine.requests[0]
    text = "\n".join(m.content for m in req.messages)
    out = {"batch": args.batch, "request_chars": len(text), "request_tokens_est": len(text) // 4,
           "value_copies": text.count(PROMPT), "backward_instruction_copies": text.count(BACKWARD_SYSTEM[:80]),
           "gradient_copies": text.count(feedback(None)), "reasoning_visible": text.count(MISTAKE)}
    print(f"optimizer request, batch {args.batch}: {out['request_chars']} characters (~{out['request_tokens_est']} "
          f"tokens); the value {out['value_copies']}x, the feedback engine's instructions "
          f"{out['backward_instruction_copies']}x, each gradient {out['gradient_copies'] / args.batch:g}x, the "
          f"solver's mistake visible in {out['reasoning_visible']} of {args.batch} items")
    print("RESULT_JSON " + json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
