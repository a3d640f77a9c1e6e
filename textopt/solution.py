"""Test-time optimization: refine ONE solution with textual gradients, then vote over the trajectory.

``tx.optimize_solution(question, engine=..., steps=3, vote="majority" | "inverse_entropy")``:

1. the engine writes a first solution;
2. each step: the solution is a ``Variable``; a ``TextLoss`` critic (``critic_engine``, default the same engine)
   names its errors; ``backward`` turns the critique into the solution's gradient; the engine rewrites the
   solution from that gradient (``role="optimizer"``, tagged output; an unparseable rewrite keeps the old one);
3. every iterate's answer is extracted (``extract``, default: the last ``Answer:`` line, else the last number)
   and the answer is chosen by vote over the whole trajectory — the last iterate alone is often worse.

``vote="inverse_entropy"`` weighs each iterate by 1 / (mean negative token log-probability of its generation),
an estimate of the model's uncertainty, when the engine returns ``Response.logprobs``; when it does not, the
vote falls back to majority and ``result.note`` says so. Ties go to the later iterate.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .engines import Engine, Request, get_engine
from .engines.structured import agenerate_tagged
from .errors import InvalidVariableError, ParseError
from .optim.prompts_search import (SOLUTION_FIRST, SOLUTION_LOSS, SOLUTION_SYSTEM, SOLUTION_TAG,
                                   SOLUTION_UPDATE)
from .runtime import run_sync
from .variable import Variable

VOTES = ("majority", "inverse_entropy")


@dataclass
class SolutionResult:
    answer: str | None           # the voted answer
    solution: str                # the latest iterate giving that answer
    final: str                   # the last iterate
    trajectory: list[dict] = field(default_factory=list)  # {"solution", "answer", "entropy", "weight"}
    votes: dict[str, float] = field(default_factory=dict)
    vote: str = "majority"       # the method actually used
    note: str = ""


def extract_answer(text: str) -> str | None:
    """The last ``Answer: ...`` line, else the last number, else None; normalised for voting."""
    found = re.findall(r"answer\s*(?:is)?\s*[:=]\s*(.+)", text, re.I)
    if found:
        ans = found[-1].strip().strip("*").strip()
    else:
        nums = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)
        if not nums:
            return None
        ans = nums[-1]
    ans = ans.rstrip(".").strip()
    num = ans.replace(",", "").replace("$", "")
    try:
        f = float(num)
        return str(int(f)) if f == int(f) else str(f)
    except ValueError:
        return ans.lower()


def _entropy(logprobs) -> float | None:
    if not logprobs:
        return None
    return -sum(logprobs) / len(logprobs)


async def aoptimize_solution(question: str, engine: "Engine | str", *, steps: int = 3, vote: str = "majority",
                             critic_engine: "Engine | str | None" = None, extract=extract_answer,
                             max_tokens: int = 512, temperature: float = 0.0) -> SolutionResult:
    """Async twin of :func:`optimize_solution`."""
    from .nn.losses import TextLoss
    if not isinstance(question, str) or not question.strip():
        raise InvalidVariableError("optimize_solution needs the question as a non-empty string")
    if vote not in VOTES:
        raise InvalidVariableError(f"vote must be one of {VOTES}, got {vote!r}")
    if not isinstance(steps, int) or steps < 0:
        raise InvalidVariableError(f"steps must be an int >= 0, got {steps!r}")
    engine = get_engine(engine)
    critic = get_engine(critic_engine) if critic_engine is not None else engine
    want_lp = vote == "inverse_entropy"
    notes = []

    resp = await engine.generate(Request.chat(SOLUTION_FIRST.format(question=question), max_tokens=max_tokens,
                                              temperature=temperature, logprobs=want_lp, role="forward",
                                              node="solution"))
    trajectory = [{"solution": resp.text, "entropy": _entropy(resp.logprobs)}]
    loss_fn = TextLoss(SOLUTION_LOSS.format(question=question), engine=critic, name="solution_critic")
    for step in range(steps):
        current = trajectory[-1]["solution"]
        sol = Variable(current, role="solution to the problem", requires_grad=True)
        loss = await loss_fn.acall(sol)
        await loss.abackward(engine=critic)
        user = SOLUTION_UPDATE.format(question=question, solution=current, feedback=sol.grad_text())
        req = Request.chat(user, system=SOLUTION_SYSTEM, max_tokens=max_tokens, temperature=temperature,
                           logprobs=want_lp, role="optimizer", node="solution")
        try:
            text, resp = await agenerate_tagged(engine, req, SOLUTION_TAG)
        except ParseError as exc:
            notes.append(f"step {step + 1}: the rewrite could not be parsed ({exc}); kept the previous solution")
            trajectory.append({"solution": current, "entropy": trajectory[-1]["entropy"]})
            continue
        trajectory.append({"solution": text, "entropy": _entropy(resp.logprobs)})

    method = vote
    if vote == "inverse_entropy" and any(t["entropy"] is None for t in trajectory):
        method = "majority"
        notes.append(f"{engine.name} returned no token log-probs, so inverse-entropy voting fell back to majority")
    for t in trajectory:
        t["answer"] = extract(t["solution"])
    answer, votes, at = vote_answers(trajectory, method)
    for t in trajectory:
        t["weight"] = _weight(t, method)
    if answer is None:
        notes.append("no iterate contained an extractable answer")
        return SolutionResult(None, trajectory[-1]["solution"], trajectory[-1]["solution"], trajectory, {},
                              method, "; ".join(notes))
    return SolutionResult(answer, trajectory[at]["solution"], trajectory[-1]["solution"], trajectory, votes, method,
                          "; ".join(notes))


def _weight(t: dict, method: str) -> float:
    return 1.0 if method == "majority" else 1.0 / (t["entropy"] + 1e-6)


def vote_answers(trajectory: list[dict], method: str = "majority") -> tuple[str | None, dict[str, float], int]:
    """Vote over iterates (``{"answer", "entropy"}`` each; ``answer`` None abstains): ``majority`` counts them,
    ``inverse_entropy`` weighs each by 1 / its mean token negative log-probability (every entropy must be
    known). Returns (answer, votes, index of the latest iterate giving it); ties go to the later iterate."""
    if method not in VOTES:
        raise InvalidVariableError(f"vote must be one of {VOTES}, got {method!r}")
    if method == "inverse_entropy" and any(t.get("entropy") is None for t in trajectory):
        raise InvalidVariableError("inverse_entropy voting needs every iterate's entropy (token log-probs); "
                                   "use majority for an engine without log-probs")
    votes: dict[str, float] = {}
    last_index: dict[str, int] = {}
    for i, t in enumerate(trajectory):
        if t.get("answer") is not None:
            votes[t["answer"]] = votes.get(t["answer"], 0.0) + _weight(t, method)
            last_index[t["answer"]] = i
    if not votes:
        return None, {}, len(trajectory) - 1
    answer = max(votes, key=lambda a: (votes[a], last_index[a]))
    return answer, votes, last_index[answer]


def optimize_solution(question: str, engine: "Engine | str", *, steps: int = 3, vote: str = "majority",
                      **kw) -> SolutionResult:
    """Refine a solution to ``question`` with textual gradients for ``steps`` steps; vote over the trajectory.
    See the module docstring; keyword options: ``critic_engine``, ``extract``, ``max_tokens``, ``temperature``."""
    return run_sync(aoptimize_solution(question, engine, steps=steps, vote=vote, **kw))
