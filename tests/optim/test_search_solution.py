"""Test-time optimization: ``tx.optimize_solution`` refines with textual gradients and votes over the trajectory."""
from __future__ import annotations

import pytest

import textopt as tx
from textopt.engines import Response, ScriptedEngine
from textopt.errors import InvalidVariableError
from textopt.solution import extract_answer


def _solver(answers, critique="step 2 is wrong: 3*3 is 9"):
    """First solution, then one rewrite per step, answers taken in order."""
    seq = list(answers)

    def respond(req):
        if req.role == "loss":
            return critique
        return f"work...\nAnswer: {seq.pop(0)}" if req.role == "forward" else \
            f"<improved_solution>better work\nAnswer: {seq.pop(0)}</improved_solution>"
    return ScriptedEngine(respond)


class LogprobEngine(ScriptedEngine):
    """Returns per-token log-probs: confident (-0.05) for answer 5, unsure (-2.0) otherwise."""

    async def _send(self, request):
        resp = await super()._send(request)
        lp = -0.05 if "Answer: 5" in resp.text else -2.0
        return Response(text=resp.text, prompt_tokens=resp.prompt_tokens, completion_tokens=resp.completion_tokens,
                        model=resp.model, logprobs=[lp] * 4 if request.logprobs else None)


def test_refines_with_textual_gradients_and_majority_votes_over_the_trajectory():
    engine = _solver(["7", "8", "8", "7"])
    r = tx.optimize_solution("What is 3*3-1?", engine=engine, steps=3)
    assert [t["answer"] for t in r.trajectory] == ["7", "8", "8", "7"]
    assert r.votes == {"7": 2.0, "8": 2.0}
    # a tie goes to the later iterate: "7" is the last answer
    assert r.answer == "7" and r.final.endswith("Answer: 7") and r.vote == "majority" and r.note == ""
    roles = [q.role for q in engine.requests]
    assert roles == ["forward"] + ["loss", "optimizer"] * 3
    update = engine.requests[2].messages[-1].content
    assert "step 2 is wrong: 3*3 is 9" in update and "Answer: 7" in update   # the gradient reached the update


def test_majority_beats_the_last_iterate():
    r = tx.optimize_solution("q?", engine=_solver(["8", "8", "7"]), steps=2)
    assert r.answer == "8" and r.final.endswith("Answer: 7") and r.solution.endswith("Answer: 8")


def test_inverse_entropy_weighs_confident_iterates():
    seq = ["5", "6", "6"]

    def respond(req):
        if req.role == "loss":
            return "check it"
        return f"Answer: {seq.pop(0)}" if req.role == "forward" else \
            f"<improved_solution>Answer: {seq.pop(0)}</improved_solution>"
    engine = LogprobEngine(respond)
    r = tx.optimize_solution("q?", engine=engine, steps=2, vote="inverse_entropy")
    assert r.vote == "inverse_entropy" and r.answer == "5"
    assert r.votes["5"] > r.votes["6"] and all(q.logprobs for q in engine.requests if q.role != "loss")
    seq[:] = ["5", "6", "6"]
    engine2 = LogprobEngine(respond)
    assert tx.optimize_solution("q?", engine=engine2, steps=2, vote="majority").answer == "6"


def test_inverse_entropy_falls_back_to_majority_and_says_so():
    r = tx.optimize_solution("q?", engine=_solver(["1", "2", "2"]), steps=2, vote="inverse_entropy")
    assert r.vote == "majority" and "fell back to majority" in r.note and r.answer == "2"


def test_an_unparseable_rewrite_keeps_the_previous_solution():
    def respond(req):
        return {"forward": "Answer: 4", "loss": "fine"}.get(req.role, "no tags at all")
    r = tx.optimize_solution("q?", engine=ScriptedEngine(respond), steps=1)
    assert r.answer == "4" and len(r.trajectory) == 2 and "could not be parsed" in r.note


def test_bad_arguments_are_clear_errors():
    e = _solver(["1"])
    with pytest.raises(InvalidVariableError, match="vote"):
        tx.optimize_solution("q", engine=e, vote="best")
    with pytest.raises(InvalidVariableError, match="question"):
        tx.optimize_solution("  ", engine=e)
    with pytest.raises(InvalidVariableError, match="steps"):
        tx.optimize_solution("q", engine=e, steps=-1)


@pytest.mark.parametrize("text,ans", [("so the answer is: 42.", "42"), ("Answer: $1,200", "1200"),
                                      ("x = 3.50 then 7.0", "7"), ("Answer: (B)", "(b)"), ("no idea", None)])
def test_extract_answer(text, ans):
    assert extract_answer(text) == ans


def test_vote_answers_majority_inverse_entropy_ties_and_bad_input():
    import pytest as _pytest
    from textopt.errors import InvalidVariableError as _IVE
    from textopt.solution import vote_answers
    traj = [{"answer": "(A)", "entropy": 0.1}, {"answer": "(B)", "entropy": 1.0}, {"answer": "(B)", "entropy": 1.0},
            {"answer": None, "entropy": 0.01}]
    assert vote_answers(traj, "majority")[:1] == ("(B)",) and vote_answers(traj, "majority")[2] == 2
    answer, votes, at = vote_answers(traj, "inverse_entropy")
    assert answer == "(A)" and at == 0 and votes["(A)"] > votes["(B)"]
    assert vote_answers([{"answer": "x"}, {"answer": "y"}])[0] == "y"          # a tie goes to the later iterate
    assert vote_answers([{"answer": None}]) == (None, {}, 0)
    with _pytest.raises(_IVE, match="needs every iterate's entropy"):
        vote_answers([{"answer": "x", "entropy": None}], "inverse_entropy")
    with _pytest.raises(_IVE, match="vote must be one of"):
        vote_answers(traj, "plurality")
