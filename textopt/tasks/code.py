"""Test-time code optimization on LeetCode-style problems: public tests give the feedback, hidden tests the score.

    problems = load_code_problems()                    # shipped: textopt/tasks/data/code_problems.json
    result = optimize_code(problems[0], engine="openai:gpt-4o", steps=3)
    result.hidden_before, result.hidden_after           # pass rates on the hidden tests

One problem: the engine writes a first solution from the statement (or ``start=`` gives it); each step runs the
PUBLIC tests in the sandbox (``nn.CodeTestsLoss``), the failures become the code's gradient (no LLM call) and
TGD rewrites the code. The kept solution is the first iterate with the best public pass rate (a rewrite must
pass more public tests to replace the code: a tie is no evidence that it is better);
the HIDDEN tests score the first and the kept solution and never reach a prompt. An unusable rewrite keeps the
code unchanged and is noted.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..engines import Engine, Request, get_engine
from ..errors import DataError, InvalidVariableError, OptimizerStepError
from ..runtime import run_sync
from ..variable import Variable
from .prompts import CODE_CONSTRAINTS, CODE_FIRST, CODE_ROLE


@dataclass(frozen=True)
class CodeProblem:
    name: str
    entry: str                     # the function to write
    statement: str                 # what the model is told
    public: tuple[str, ...]        # assert snippets shown as feedback
    hidden: tuple[str, ...]        # assert snippets for the score only


@dataclass
class CodeResult:
    problem: str
    code: str                      # the kept solution
    public_before: float
    public_after: float
    hidden_before: float
    hidden_after: float
    trajectory: list[dict] = field(default_factory=list)   # {"code", "public", "feedback"} per iterate
    notes: list[str] = field(default_factory=list)


def load_code_problems(path: str | Path | None = None) -> list[CodeProblem]:
    """The shipped problems, or a JSON file of the same shape (``{"problems": [{name, entry, statement, public,
    hidden}]}``)."""
    path = Path(path) if path else Path(__file__).with_name("data") / "code_problems.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data["problems"]
        problems = [CodeProblem(p["name"], p["entry"], p["statement"], tuple(p["public"]), tuple(p["hidden"]))
                    for p in items]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a code-problem file ({type(exc).__name__}: {exc}); expected "
                        '{"problems": [{"name", "entry", "statement", "public": [...], "hidden": [...]}]}') from None
    for p in problems:
        if not p.public or not p.hidden:
            raise DataError(f"{path}: problem {p.name!r} needs public and hidden tests")
    return problems


def _code_of(text: str) -> str:
    from ..nn.code_tests import strip_fences
    return strip_fences(text).strip() + "\n"


async def aoptimize_code(problem: CodeProblem, engine: "Engine | str", *, steps: int = 3, start: str | None = None,
                         timeout: float = 20.0, max_tokens: int = 600) -> CodeResult:
    """Async twin of :func:`optimize_code`."""
    from ..nn.code_tests import CodeTestsLoss
    from ..optim import TGD
    if not isinstance(problem, CodeProblem):
        raise InvalidVariableError(f"optimize_code takes a CodeProblem (load_code_problems()), got "
                                   f"{type(problem).__name__}")
    if not isinstance(steps, int) or steps < 0:
        raise InvalidVariableError(f"steps must be an int >= 0, got {steps!r}")
    engine = get_engine(engine)
    if start is None:
        resp = await engine.generate(Request.chat(CODE_FIRST.format(statement=problem.statement),
                                                  max_tokens=max_tokens, role="forward", node=f"code:{problem.name}"))
        start = _code_of(resp.text)
    code = Variable(start, role=CODE_ROLE.format(entry=problem.entry), requires_grad=True, name=problem.name)
    public = CodeTestsLoss(tests=list(problem.public), timeout=timeout, name="public_tests")
    hidden = CodeTestsLoss(tests=list(problem.hidden), timeout=timeout, name="hidden_tests")
    optimizer = TGD([code], engine=engine, max_tokens=max_tokens,
                    constraints=[c.format(statement=problem.statement) for c in CODE_CONSTRAINTS])
    trajectory, notes = [], []
    for step in range(steps + 1):
        loss = await public.acall(code)
        trajectory.append({"code": code.value, "public": loss.meta["score"], "feedback": loss.meta["feedback"]})
        if loss.meta["score"] == 1.0 or step == steps:
            break
        optimizer.zero_grad()
        await loss.abackward(engine=engine)
        try:
            await optimizer.astep()
        except OptimizerStepError as exc:
            notes.append(f"step {step + 1}: the rewrite was unusable, the code is unchanged ({str(exc)[:200]})")
        code.value = _code_of(code.value)
    best = max(range(len(trajectory)), key=lambda i: (trajectory[i]["public"], -i))
    first_hidden, kept_hidden = await asyncio.gather(hidden.acall(trajectory[0]["code"]),
                                                     hidden.acall(trajectory[best]["code"]))
    return CodeResult(problem.name, trajectory[best]["code"], trajectory[0]["public"], trajectory[best]["public"],
                      first_hidden.meta["score"], kept_hidden.meta["score"], trajectory, notes)


def optimize_code(problem: CodeProblem, engine: "Engine | str", *, steps: int = 3, **kw) -> CodeResult:
    """Optimize one problem's solution against its public tests; score it on the hidden ones (module docstring).
    Keyword options: ``start``, ``timeout``, ``max_tokens``."""
    return run_sync(aoptimize_code(problem, engine, steps=steps, **kw))


def pass_rates(results: Sequence[CodeResult]) -> dict:
    """Mean hidden and public pass rates before and after, over several problems."""
    n = max(1, len(results))
    return {k: sum(getattr(r, k) for r in results) / n
            for k in ("public_before", "public_after", "hidden_before", "hidden_after")}
