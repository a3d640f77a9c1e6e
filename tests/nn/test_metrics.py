"""Metric losses: score + explanation seeding backward, routed to the prediction without an LLM call."""
import pytest
import torch

import textopt as tx
from textopt.engines import ScriptedEngine
from textopt.errors import InvalidVariableError
from textopt.nn import F1, ExactMatch, NumberMatch, Regex
from textopt.nn.metrics import parse_number


def pred(text):
    return tx.Variable(text, role="answer of the solver", requires_grad=True)


def test_number_match_explains():
    loss = NumberMatch()(pred("So we get 7 apples. The answer is 7."), "8")
    assert loss.meta["score"] == 0.0 and isinstance(loss.score, torch.Tensor) and float(loss.score) == 0.0
    assert loss.meta["feedback"] == loss.value == "Wrong answer: expected 8, got 7."
    ok = NumberMatch()(pred("#### 1,234"), 1234)
    assert ok.meta["score"] == 1.0 and "expected 1234, got 1234" in ok.value
    missing = NumberMatch()(pred("I do not know"), "3")
    assert missing.meta["score"] == 0.0 and "no number" in missing.value
    with pytest.raises(InvalidVariableError, match="not a number"):
        NumberMatch()(pred("1"), "eight")


@pytest.mark.parametrize("text,expected", [("The answer is 12, not 13", 12.0), ("a 1 b 2.5", 2.5),
                                           ("#### -3", -3.0), ("none", None), ("1,000 and 2", 2.0)])
def test_parse_number(text, expected):
    assert parse_number(text) == expected


def test_exact_match_regex_f1():
    assert ExactMatch()(pred(" Paris. "), "paris").meta["score"] == 1.0
    bad = ExactMatch()(pred("Lyon"), "Paris")
    assert bad.meta["score"] == 0.0 and "expected 'Paris', got 'Lyon'" in bad.value
    assert ExactMatch(extract=r"answer: (\w+)")(pred("reasoning... answer: Paris"), "Paris").meta["score"] == 1.0
    assert ExactMatch(normalize=False)(pred("paris"), "Paris").meta["score"] == 0.0
    r = Regex(r"^\(?[A-E]\)?$")
    assert not r.needs_target and r(pred("(B)")).meta["score"] == 1.0
    assert "must match" in r(pred("B because")).value
    assert Regex()(pred("yes"), "^(yes|no)$").meta["score"] == 1.0
    f = F1()(pred("the cat sat on a mat"), "The cat sat on the red mat")
    assert 0 < f.meta["score"] < 1 and "red" in f.value
    assert F1()(pred("Cat sat."), "cat sat").meta["score"] == 1.0


def test_metric_seeds_backward_without_llm_and_reaches_parameter():
    engine = ScriptedEngine(lambda req: "fb on prompt: " + req.messages[-1].content[-60:])
    p = tx.Variable("Answer briefly.", role="system prompt", requires_grad=True)
    y = tx.nn.LLMCall(ScriptedEngine("The answer is 7."), system_prompt=p, backward_max_tokens=77)("How many?")
    y.retain_grad()   # a non-leaf keeps its feedback only when asked (torch's contract)
    loss = NumberMatch()(y, 8)
    loss.backward(engine=engine)
    assert [f.value for f in y.grad] == ["Wrong answer: expected 8, got 7."]
    assert len(p.grad) == 1 and len(engine.requests) == 1  # one LLM call: the LLMCall's backward
    assert "expected 8, got 7" in engine.requests[0].messages[-1].content
    assert engine.requests[0].max_tokens == 77 and engine.requests[0].role == "backward"


def test_metric_needs_target():
    with pytest.raises(InvalidVariableError, match="target"):
        NumberMatch()(pred("1"))
