"""Each known TextGrad failure (docs ANCHORS.md), shown NOT to happen here — one test each."""
import hashlib

import pytest

import textopt as tx
from textopt.engines import ScriptedEngine
from textopt.errors import OptimizerStepError
from textopt.nn import NumberMatch
from textopt.optim import TGD

NEW = "<NEW_VALUE>Solve carefully.</NEW_VALUE>"


def teacher(latency=0.0, seed=0):
    def answer(req):
        if req.role == "optimizer":
            return NEW
        return "feedback #" + hashlib.sha256(req.messages[-1].content.encode()).hexdigest()[:6]
    return ScriptedEngine(answer, latency=latency, seed=seed)


def test_no_duplicated_gradients_through_concat_or_aggregate():
    p = tx.Variable("Be brief.", role="system prompt", requires_grad=True)
    q = tx.Variable("Use units.", role="style guide", requires_grad=True)
    joined = p + q                           # TextGrad's sum/+ adds every gradient twice
    twice = tx.concat([p, p, joined])        # a repeated input still gets its feedback once per edge
    twice.meta["feedback"] = "too long"
    twice.backward(engine=teacher())
    assert len(q.grad) == 1                  # q only through `joined`
    assert len(p.grad) == 2                  # p: once directly (repeats collapsed), once through `joined`
    # aggregate: N examples -> each loss once, the shared prompt once per example (not 2N, not all on one)
    s = tx.Variable("Solve.", role="system prompt of the solver", requires_grad=True)
    model = tx.nn.LLMCall(ScriptedEngine("The answer is 1."), system_prompt=s)
    losses = [NumberMatch()(model(f"q{i}"), 2).retain_grad() for i in range(4)]
    tx.aggregate(losses).backward(engine=teacher())
    assert [len(l.grad) for l in losses] == [1, 1, 1, 1]
    assert len(s.grad) == 4


def _optimizer_request(latency_seed: int) -> str:
    s = tx.Variable("Solve.", role="system prompt of the solver", requires_grad=True)
    model = tx.nn.LLMCall(ScriptedEngine("The answer is 1.", latency=(0, 0.02), seed=latency_seed), system_prompt=s)
    losses = [NumberMatch()(model(f"question {i}"), i) for i in range(5)]
    eng = teacher(latency=(0.0, 0.03), seed=latency_seed)
    tx.aggregate(losses).backward(engine=eng)
    TGD([s], engine=eng).step()
    return [r for r in eng.requests if r.role == "optimizer"][0].messages[-1].content


def test_gradient_order_does_not_depend_on_completion_order_or_addresses():
    prompts = {_optimizer_request(seed) for seed in range(4)}  # different completion orders each run
    assert len(prompts) == 1
    text = prompts.pop()
    positions = [text.index(f"expected {i}, got 1") for i in (0, 2, 3, 4)]
    assert positions == sorted(positions)  # feedback appears in example order


def test_momentum_history_reaches_the_prompt():
    p = tx.Variable("v0", role="system prompt", requires_grad=True)
    eng = ScriptedEngine(lambda r: f"<NEW_VALUE>v{len(eng.requests)}</NEW_VALUE>")
    opt = TGD([p], engine=eng, history=3)
    for i in range(2):
        opt.zero_grad()
        p._extend_grad([tx.Feedback(f"criticism {i}", p)])
        opt.step()
    second = eng.requests[1].messages[-1].content
    assert "<PAST_VALUE" in second and "v0" in second and "criticism 0" in second


def test_full_variable_in_the_optimizer_prompt():
    value = "\n".join(f"Rule {i}: handle case {i} by checking condition {i} first." for i in range(400))
    p = tx.Variable(value, role="system prompt", requires_grad=True)
    p._extend_grad([tx.Feedback("rules 17 and 230 conflict", p)])
    eng = ScriptedEngine(NEW)
    TGD([p], engine=eng).step()
    assert value in eng.requests[0].messages[-1].content  # TextGrad: first and last 10 words only


def test_missing_tag_is_repaired_then_fails_cleanly_without_changes():
    a = tx.Variable("keep A", role="prompt A", requires_grad=True, name="a")
    b = tx.Variable("keep B", role="prompt B", requires_grad=True, name="b")
    for v in (a, b):
        v._extend_grad([tx.Feedback("improve", v)])
    eng = ScriptedEngine(lambda r: NEW if any("keep A" in m.content for m in r.messages) else "no tags at all")
    with pytest.raises(OptimizerStepError, match=r"\bb\b.*NEW_VALUE"):
        TGD([a, b], engine=eng, add_when_stuck=False).step()  # TextGrad: IndexError, and `a` already changed
    assert (a.value, b.value) == ("keep A", "keep B")
    assert len([r for r in eng.requests if any("keep B" in m.content for m in r.messages)]) == 2  # one repair
