"""FormattedLLMCall (per-field feedback), MultiFieldLoss (judge over named fields), TextLoss API kept."""
import pytest

import textopt as tx
from textopt.engines import ScriptedEngine
from textopt.errors import InvalidVariableError
from textopt.nn import FormattedLLMCall, MultiFieldLoss, TextLoss


def test_formatted_call_renders_and_gives_each_field_its_feedback():
    fwd = ScriptedEngine(lambda req: "answer to: " + req.messages[-1].content)
    notes = tx.Variable("Count carefully.", role="solving notes", requires_grad=True)
    q = tx.Variable("How many legs has a cat?", role="question")
    call = FormattedLLMCall(fwd, "Question: {question}\nNotes: {notes}", system_prompt="Be brief.")
    out = call(question=q, notes=notes)
    assert out.value == "answer to: Question: How many legs has a cat?\nNotes: Count carefully."
    assert fwd.requests[0].system == "Be brief."
    back = ScriptedEngine(lambda req: "fb:" + req.messages[-1].content.split("Give feedback on the field ")[-1][:10])
    out.backward(engine=back)
    assert len(back.requests) == 1  # only the learnable field (question and system prompt do not require grad)
    sent = back.requests[0].messages[-1].content
    assert "{notes}" in sent and "Count carefully." in sent
    assert [f.value for f in notes.grad] == ["fb:{notes} on"]
    assert q.grad == []


def test_formatted_call_errors():
    e = ScriptedEngine("x")
    with pytest.raises(InvalidVariableError, match="missing \\['b'\\]"):
        FormattedLLMCall(e, "{a} {b}")(a="1")
    with pytest.raises(InvalidVariableError, match="no \\{fields\\}"):
        FormattedLLMCall(e, "plain")
    with pytest.raises(InvalidVariableError, match="plain name"):
        FormattedLLMCall(e, "{0}")


def test_multi_field_loss_routes_evaluation_to_each_learnable_field():
    judge = ScriptedEngine("The answer ignores the reference: it says 5, the reference says 6.")
    ans = tx.Variable("5", role="answer", requires_grad=True)
    ctxv = tx.Variable("some context", role="retrieved context", requires_grad=True)
    loss_fn = MultiFieldLoss("Judge the answer against the reference.", judge,
                             fields={"answer": "answer to evaluate", "context": "retrieved context",
                                     "reference": "reference answer"})
    loss = loss_fn(answer=ans, context=ctxv, reference="6")
    sent = judge.requests[0]
    assert sent.role == "loss" and "<ANSWER" in sent.messages[-1].content and "<REFERENCE" in sent.messages[-1].content
    back = ScriptedEngine("unused")
    loss.backward(engine=back)
    assert back.requests == []  # routed directly
    assert len(ans.grad) == 1 and "field answer" in ans.grad[0].value and "says 5" in ans.grad[0].value
    assert len(ctxv.grad) == 1 and "field context" in ctxv.grad[0].value
    with pytest.raises(InvalidVariableError, match="missing"):
        loss_fn(answer=ans)


def test_text_loss_keeps_its_api():
    judge = ScriptedEngine("Too long.")
    y = tx.Variable("a long answer", role="answer", requires_grad=True)
    loss = TextLoss("Evaluate the answer.", engine=judge)(y)
    assert loss.value == "Too long." and not TextLoss.needs_target
    loss.backward(engine=ScriptedEngine("x"))
    assert [f.value for f in y.grad] == ["Too long."]
