"""The orchestration workload, shared by both frameworks' workers and by the server's responder (stdlib only).

Two-stage pipeline: a learnable system prompt -> solver call on each question -> judge loss on each answer;
batch of 8; one backward; one optimizer step. The responder recognises what each request asks for and answers
the same fixed texts to both frameworks, so completion tokens differ only by the number and kind of calls.
"""
from __future__ import annotations

import re

SYSTEM_PROMPT = "You solve short arithmetic word problems. Think briefly, then end with 'Answer: <number>'."
SYSTEM_ROLE = "system prompt of the solver"
EVAL_INSTRUCTION = ("You grade an answer to an arithmetic word problem. Say whether the reasoning and the final "
                    "number are right, and what exactly went wrong if not. Be concise.")
QUESTION_MARK = "Question #"

# Each answer names the case it answers ("case R.I", taken from the request), so answers differ per sample as
# they would with a real model, and no framework's cache can merge the calls of different samples.
SOLVER_ANSWER = ("For case {case}: there are some boxes with 4 apples each, so multiplying gives the total "
                 "number of apples. Answer: 12")
JUDGE_ANSWER = ("For case {case}: the final number is wrong, the question asks for the apples left after giving "
                "5 away, so the answer should subtract 5 from the total. The solver skipped the last step.")
FEEDBACK_ANSWER = ("For case {case}: the system prompt should tell the solver to re-read the question and apply "
                   "every step it mentions, including subtractions at the end, before the final answer line.")
NEW_PROMPT = ("You solve short arithmetic word problems. Re-read the question, apply every step it mentions in "
              "order, check the result, then end with 'Answer: <number>'.")


def questions(batch: int, rep: int) -> list[str]:
    """Distinct per repetition, so no cache (TextGrad's is always on) can serve a later repetition."""
    return [f"{QUESTION_MARK}{rep}.{i}: There are {3 + i} boxes with 4 apples each. After giving 5 apples away, "
            f"how many apples are left?" for i in range(batch)]


def case_of(text: str) -> str:
    m = re.search(r"#(\d+\.\d+)|case (\d+\.\d+)", text)
    return (m.group(1) or m.group(2)) if m else "?"


def classify(messages: list[tuple[str, str]]) -> tuple[str, str]:
    """(kind, full answer) for a request given as [(role, text), ...]."""
    system = next((t for r, t in messages if r == "system"), "")
    user = next((t for r, t in reversed(messages) if r == "user"), "")
    everything = system + "\n" + user
    if "<NEW_VALUE>" in everything:                         # textopt's TGD
        return "optimizer", f"<NEW_VALUE>{NEW_PROMPT}</NEW_VALUE>"
    if "<IMPROVED_VARIABLE>" in everything:                 # TextGrad's TGD
        return "optimizer", f"<IMPROVED_VARIABLE>{NEW_PROMPT}</IMPROVED_VARIABLE>"
    case = case_of(user)
    if system.strip() == EVAL_INSTRUCTION:
        return "judge", JUDGE_ANSWER.format(case=case)
    if user.startswith(QUESTION_MARK):
        return "solver", SOLVER_ANSWER.format(case=case)
    return "backward", FEEDBACK_ANSWER.format(case=case)
