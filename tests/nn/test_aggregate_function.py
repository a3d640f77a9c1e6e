"""tx.aggregate (bounded batch feedback, each input once) and tx.function (Python functions as graph nodes)."""
import pytest

import textopt as tx
from textopt.engines import ScriptedEngine
from textopt.errors import InvalidVariableError
from textopt.nn import NumberMatch


def batch(n, engine):
    p = tx.Variable("Solve it.", role="system prompt of the solver", requires_grad=True)
    model = tx.nn.LLMCall(engine, system_prompt=p)
    ys = [model(f"question {i}").retain_grad() for i in range(n)]   # non-leaves: kept only when asked
    losses = [NumberMatch()(y, i + 100).retain_grad() for i, y in enumerate(ys)]
    return p, ys, losses


def test_each_loss_gets_its_feedback_exactly_once_and_no_llm_call_under_cap():
    fwd = ScriptedEngine("The answer is 1.")
    back = ScriptedEngine(lambda req: "fix it")
    p, ys, losses = batch(3, fwd)
    total = tx.aggregate(losses + [losses[0]], max_tokens=1000)  # a duplicate input still gets one feedback
    assert total.meta["score"] == 0.0 and float(total.score) == 0.0
    total.backward(engine=back)
    for i, loss in enumerate(losses):
        assert len(loss.grad) == 1, "TextGrad's aggregate gives everything to one input; each gets one here"
        assert f"expected {i + 100}, got 1" in loss.grad[0].value
        assert len(ys[i].grad) == 1
    assert len(p.grad) == 3
    assert all(r.role == "backward" for r in back.requests) and len(back.requests) == 3  # one per LLMCall


def test_over_the_cap_one_summary_call_bounds_each_gradient():
    fwd = ScriptedEngine("The answer is 1. " + "padding " * 200)
    summary = "SUMMARY: every answer is 1; " + "x" * 5000  # a too-long answer is clipped to the cap
    back = ScriptedEngine(lambda req: summary if "Summarise" in req.messages[-1].content else "fb")
    p, ys, losses = batch(6, fwd)
    total = tx.aggregate(losses, max_tokens=64)
    total.backward(engine=back)
    summaries = [r for r in back.requests if "Summarise" in r.messages[-1].content]
    assert len(summaries) == 1 and summaries[0].max_tokens == 64
    for loss in losses:
        assert len(loss.grad) == 1 and "SUMMARY" in loss.grad[0].value
        assert len(loss.grad[0].value) <= 2 * 64 * 4 + 200


def test_aggregate_rejects_bad_input():
    with pytest.raises(InvalidVariableError):
        tx.aggregate([])
    with pytest.raises(InvalidVariableError, match="max_tokens"):
        tx.aggregate([tx.Variable("a")], max_tokens=1)


def test_function_node_backward_asks_from_purpose_inputs_and_output():
    @tx.function(purpose="extract the final number of a worked solution")
    def parse(solution: str, *, default: str = "0") -> str:
        digits = [w for w in solution.split() if w.strip(".").isdigit()]
        return digits[-1].strip(".") if digits else default

    sol = tx.Variable("First 3, then 4 more: 7.", role="worked solution", requires_grad=True)
    other = tx.Variable("none", role="fallback value", requires_grad=True)
    out = parse(sol, default=other)
    assert isinstance(out, tx.Variable) and out.value == "7" and out.node is not None
    loss = NumberMatch()(out, 8)
    engine = ScriptedEngine(lambda req: "feedback for " + ("solution" if "arg0" in req.messages[-1].content.split(
        "Give feedback on the input")[-1] else "default"))
    loss.backward(engine=engine)
    assert len(engine.requests) == 2 and all(r.role == "backward" for r in engine.requests)
    text = engine.requests[0].messages[-1].content
    assert "extract the final number" in text and "First 3, then 4 more" in text and "<OUTPUT>7</OUTPUT>" in text
    assert "expected 8, got 7" in text
    assert [f.value for f in sol.grad] == ["feedback for solution"]
    assert [f.value for f in other.grad] == ["feedback for default"]


def test_async_function_and_no_graph_without_grad():
    @tx.function(purpose="shout")
    async def shout(x):
        return x.upper()

    v = tx.Variable("hi", role="text", requires_grad=True)
    out = tx.runtime.run_sync(shout(v))
    assert out.value == "HI" and out.node is not None
    with tx.no_grad():
        assert tx.runtime.run_sync(shout(v)).node is None
    with pytest.raises(InvalidVariableError, match="purpose"):
        tx.function(purpose="")(lambda x: x)
