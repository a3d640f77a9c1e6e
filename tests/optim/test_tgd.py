"""TGD: what reaches the optimizer request, transactional concurrent steps, validation/repair, state_dict."""
import json
import re

import pytest
import torch

import textopt as tx
from textopt.engines import ScriptedEngine
from textopt.errors import InvalidVariableError, OptimizerStepError
from textopt.optim import OPTIMIZERS, TGD
from textopt.optim.tgd import check_new_value
from textopt.variable import Feedback


def param(value="Solve the task.", role="system prompt of the solver", name=None):
    return tx.Variable(value, role=role, requires_grad=True, name=name)


def give_feedback(p, *texts, conversation=()):
    p._extend_grad([Feedback(t, p, source=f"node{i}", conversation=conversation) for i, t in enumerate(texts)])


def new_value_engine(fn=None, **kw):
    fn = fn or (lambda req: "<NEW_VALUE>Improved prompt.</NEW_VALUE>")
    return ScriptedEngine(fn, **kw)


def user_text(req):
    return req.messages[-1].content


def test_request_carries_role_full_value_ordered_feedback_context_constraints_examples():
    long_value = "Rule: " + " ".join(f"word{i}" for i in range(3000))  # ~25k characters, never truncated
    p = param(long_value)
    give_feedback(p, "first: too vague", "second: misses units",
                  conversation=[{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "5"}])
    eng = new_value_engine()
    opt = TGD([p], engine=eng, constraints=["Keep it under 200 words."], examples=["Think step by step."])
    opt.step()
    req = eng.requests[0]
    text = user_text(req)
    assert req.role == "optimizer" and req.node.startswith("tgd:")
    assert "system prompt of the solver" in text
    assert long_value in text, "TextGrad shows only the first and last words; the full value must be sent"
    assert text.index("first: too vague") < text.index("second: misses units")
    assert "What is 2+2?" in text and "## Assistant's answer\n5" in text
    assert "<CONSTRAINT>Keep it under 200 words.</CONSTRAINT>" in text
    assert "<EXAMPLE>\nThink step by step.\n</EXAMPLE>" in text
    assert p.value == "Improved prompt."


def test_history_window_reaches_the_request():
    p = param("v0")
    eng = new_value_engine(lambda req: f"<NEW_VALUE>v{len(eng.requests)}</NEW_VALUE>")
    opt = TGD([p], engine=eng, history=2)
    for step in range(4):
        opt.zero_grad()
        give_feedback(p, f"feedback at step {step}")
        opt.step()
    assert p.value == "v4"
    last = user_text(eng.requests[-1])
    # momentum: the two previous values and the feedback each received are in the prompt (window 2)
    assert '<PAST_VALUE step="2">\nv1\n</PAST_VALUE>' in last and "feedback at step 1" in last
    assert '<PAST_VALUE step="3">\nv2\n</PAST_VALUE>' in last and "feedback at step 2" in last
    assert '<PAST_VALUE step="1">' not in last and "\nv0\n" not in last
    assert "feedback at step 0" not in last
    first = user_text(eng.requests[0])
    assert "PAST_VALUE" not in first


def test_history_zero_is_allowed_and_sends_no_history():
    p = param()
    eng = new_value_engine()
    opt = TGD([p], engine=eng, history=0)
    for _ in range(2):
        opt.zero_grad()
        give_feedback(p, "fb")
        opt.step()
    assert all("PAST_VALUE" not in user_text(r) for r in eng.requests)
    with pytest.raises(InvalidVariableError, match="history"):
        TGD([p], engine=eng, history=-1)


def test_missing_tag_is_repaired_once():
    p = param()
    give_feedback(p, "fb")
    answers = iter(["Sure! Here is a better prompt: Be precise.", "<NEW_VALUE>Be precise.</NEW_VALUE>"])
    eng = new_value_engine(lambda req: next(answers))
    TGD([p], engine=eng).step()
    assert p.value == "Be precise." and len(eng.requests) == 2
    assert "could not be used" in user_text(eng.requests[1])


def test_step_is_transactional_and_names_the_failing_parameter():
    a, b = param("prompt A", name="planner"), param("prompt B", role="instructions of the checker", name="checker")
    give_feedback(a, "fb a")
    give_feedback(b, "fb b")

    def answer(req):
        if any("prompt B" in m.content for m in req.messages):
            return "I would rather not."  # never a tag, even after the repair request
        return "<NEW_VALUE>new A</NEW_VALUE>"
    eng = new_value_engine(answer, latency=(0.0, 0.02), seed=1)
    opt = TGD([a, b], engine=eng)
    with pytest.raises(OptimizerStepError) as err:
        opt.step()
    msg = str(err.value)
    assert "checker" in msg and "planner" not in msg and "NEW_VALUE" in msg
    assert a.value == "prompt A" and b.value == "prompt B", "nothing may change when one update fails"
    assert opt.state[a].get("history", []) == [] and opt.state[b].get("history", []) == []
    # both asked once, the failing one repaired once, then asked (and repaired) for one instruction to add,
    # and asked (and repaired) once more with the next tactic (add_retries=1)
    assert len(eng.requests) == 7


@pytest.mark.parametrize("bad,why", [
    ("", "empty"),
    ("<FEEDBACK>Be precise.</FEEDBACK>", "tag"),
    ("Be precise. You are the optimizer of an LLM pipeline.", "instruction"),
    ("Use </CURRENT_VALUE> wisely", "tag"),
    ("Answer.\n<SYSTEM_PROMPT>Answer.</SYSTEM_PROMPT>", "prompt tag <SYSTEM_PROMPT>"),  # seen from SmolLM2-135M
    ("The improved system prompt of the solver is: Answer.", "commentary"),
    ("Here is the new prompt: Answer with a number.", "commentary"),
])
def test_validation_rejects_leaks(bad, why):
    with pytest.raises(ValueError, match=why):
        check_new_value(bad, "Solve the task.", "system prompt of the solver")
    check_new_value("Be precise and show the units.", "Solve the task.")
    check_new_value("Here is how to solve it: add the numbers.", "Solve it.")
    check_new_value("The improved version of the report must list sources.", "The improved version of the report")
    check_new_value("Answer in <b>bold</b> and keep <INPUT> as is.", "Keep <INPUT> as is.")
    check_new_value("Keep <EXAMPLE> blocks.", "Keep <EXAMPLE> blocks as they are.")  # already in the value


def test_leaked_answer_is_repaired_then_clean_value_used():
    p = param()
    give_feedback(p, "fb")
    answers = iter(["<NEW_VALUE>Be precise. <FEEDBACK>fb</FEEDBACK></NEW_VALUE>", "<NEW_VALUE>Be precise.</NEW_VALUE>"])
    eng = new_value_engine(lambda req: next(answers))
    TGD([p], engine=eng).step()
    assert p.value == "Be precise."
    assert "optimizer's tag <FEEDBACK>" in user_text(eng.requests[1])


def test_prefill_and_stop_on_engines_that_support_them():
    class Prefilling(ScriptedEngine):
        supports_prefill = True
    p = param()
    give_feedback(p, "fb")
    eng = Prefilling(lambda req: req.prefill + "Better prompt.")  # stopped before the closing tag
    TGD([p], engine=eng).step()
    req = eng.requests[0]
    assert req.prefill == "<NEW_VALUE>" and "</NEW_VALUE>" in req.stop
    assert p.value == "Better prompt."


def test_parameters_update_concurrently_and_skip_those_without_feedback():
    ps = [param(f"prompt {i}", name=f"p{i}") for i in range(4)]
    for p in ps[:3]:
        give_feedback(p, "fb")
    eng = new_value_engine(latency=0.05)
    updated = TGD(ps, engine=eng).step()
    assert sorted(updated) == ["p0", "p1", "p2"] and ps[3].value == "prompt 3"
    assert eng.peak_in_flight == 3


def test_state_dict_is_json_and_resumes_exactly():
    def run(opt, p, eng, steps):
        for s in steps:
            opt.zero_grad()
            give_feedback(p, f"fb {s}")
            opt.step()
    eng1 = new_value_engine(lambda req: f"<NEW_VALUE>v{len(re.findall('PAST_VALUE step', user_text(req)))}"
                                        f"-{len(user_text(req))}</NEW_VALUE>")
    p1 = param()
    o1 = TGD([p1], engine=eng1, constraints=["short"])
    run(o1, p1, eng1, [0, 1])
    sd = json.loads(json.dumps(o1.state_dict()))
    assert sd["param_groups"][0]["constraints"] == ["short"] and sd["state"]["0"]["history"]
    run(o1, p1, eng1, [2])

    eng2 = new_value_engine(eng1.responder)
    p2 = param("something else")
    o2 = TGD([p2], engine=eng2)
    o2.load_state_dict(sd)
    assert o2.param_groups[0]["constraints"] == ["short"]
    run(o2, p2, eng2, [2])
    assert p2.value == p1.value and user_text(eng2.requests[0]) == user_text(eng1.requests[-1])


def test_registry_spec_string_and_context_engine():
    assert OPTIMIZERS["tgd"] is TGD and tx.optim.TGD is TGD
    p = param()
    give_feedback(p, "fb")
    opt = tx.optim.TGD([p], engine="scripted:<NEW_VALUE>From a spec.</NEW_VALUE>")
    opt.step()
    assert p.value == "From a spec."
    q = param()
    give_feedback(q, "fb")
    with tx.backward_engine(new_value_engine(lambda r: "<NEW_VALUE>From context.</NEW_VALUE>")):
        TGD([q]).step()
    assert q.value == "From context."
    with pytest.raises(InvalidVariableError, match="unknown options"):
        TGD([q], momentum=3)
    give_feedback(q, "fb")
    with pytest.raises(InvalidVariableError, match="no engine"):
        TGD([q]).step()
    assert q.value == "From context."


def test_tensor_parameters_take_an_sgd_step_with_lr():
    w = tx.Variable(torch.tensor([1.0, 2.0]), requires_grad=True)
    (w.value * 3).sum().backward()
    TGD([w], engine=new_value_engine(), lr=0.1).step()
    assert torch.allclose(w.value.detach(), torch.tensor([0.7, 1.7]))


def test_record_rejection_enters_the_history_window():
    p = param("v0")
    eng = new_value_engine(lambda req: "<NEW_VALUE>v-next</NEW_VALUE>")
    opt = TGD([p], engine=eng, history=3)
    opt.record_rejection(p, "a bad attempt", 0.8, 0.5)
    give_feedback(p, "fb")
    opt.step()
    text = user_text(eng.requests[0])
    assert "a bad attempt" in text and "from 0.800 to 0.500" in text
    with pytest.raises(InvalidVariableError, match="not a parameter"):
        opt.record_rejection(param("other"), "x", 1.0, 0.0)
    json.dumps(opt.state_dict())
