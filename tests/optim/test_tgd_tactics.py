"""TGD tactics (one general technique named per step, in turn) and edit="add" (one instruction appended)."""
import json

import pytest
from hypothesis import given, settings, strategies as st

import textopt as tx
from textopt.engines import ScriptedEngine
from textopt.errors import InvalidVariableError
from textopt.optim import TGD
from textopt.optim import prompts as P
from textopt.variable import Feedback


def param(value="Solve the task.", role="system prompt of the solver"):
    return tx.Variable(value, role=role, requires_grad=True)


def feed(p, text="wrong: expected 4, got 5"):
    p._extend_grad([Feedback(text, p, source="solver")])


def run_steps(opt, p, eng, n):
    for _ in range(n):
        opt.zero_grad()
        feed(p)
        opt.step()
    return [r.messages[-1].content for r in eng.requests]


def test_default_tactics_rotate_one_per_step_for_instruction_like_variables():
    p = param()
    eng = ScriptedEngine(lambda r: f"<NEW_VALUE>Prompt version {len(eng.requests)}.</NEW_VALUE>")
    users = run_steps(TGD([p], engine=eng), p, eng, len(P.INSTRUCT_TACTICS) + 1)
    for k, text in enumerate(users):
        tactic = P.INSTRUCT_TACTICS[k % len(P.INSTRUCT_TACTICS)]
        assert tactic in text
        assert sum(t in text for t in P.INSTRUCT_TACTICS) == 1   # one technique per request


def test_no_tactics_for_other_variables_and_when_turned_off():
    code = param("def f(x): return x", role="code of the solution")
    eng = ScriptedEngine(lambda r: "<NEW_VALUE>def f(x): return x + 1</NEW_VALUE>")
    users = run_steps(TGD([code], engine=eng), code, eng, 2)
    assert not any(t in u for u in users for t in P.INSTRUCT_TACTICS)
    p = param()
    eng = ScriptedEngine(lambda r: f"<NEW_VALUE>Prompt version {len(eng.requests)}.</NEW_VALUE>")
    users = run_steps(TGD([p], engine=eng, tactics=[]), p, eng, 2)
    assert not any("A technique" in u for u in users)


def test_own_tactics_are_used_in_turn_and_survive_a_resume(tmp_path):
    mine = ["Use a table.", "Quote the units."]
    p = param()
    eng = ScriptedEngine(lambda r: f"<NEW_VALUE>Prompt version {len(eng.requests)}.</NEW_VALUE>")
    opt = TGD([p], engine=eng, tactics=mine)
    run_steps(opt, p, eng, 1)
    state = json.loads(json.dumps(opt.state_dict()))
    p2 = param(p.value)
    eng2 = ScriptedEngine(lambda r: "<NEW_VALUE>Prompt version two.</NEW_VALUE>")
    opt2 = TGD([p2], engine=eng2, tactics=mine)
    opt2.load_state_dict(state)
    users = run_steps(opt2, p2, eng2, 1)
    assert "Quote the units." in users[0] and "Use a table." not in users[0]


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.text(max_size=5), st.integers(), st.lists(st.one_of(st.integers(), st.just(""), st.just("  ")),
                                                                min_size=1, max_size=3)))
def test_bad_tactics_get_one_clear_error(bad):
    if bad == "auto":
        return
    with pytest.raises(InvalidVariableError, match="tactics"):
        TGD([param()], engine=ScriptedEngine(lambda r: ""), tactics=bad)


def test_edit_add_appends_one_instruction_built_on_the_steps_tactic():
    p = param("Answer the question.")
    eng = ScriptedEngine(lambda r: "<ADDITION>Write the running result after each step.</ADDITION>")
    opt = TGD([p], engine=eng, edit="add")
    feed(p)
    opt.step()
    assert p.value == "Answer the question.\nWrite the running result after each step."
    req = eng.requests[0]
    assert req.messages[0].content == P.TGD_ADD_SYSTEM and P.INSTRUCT_TACTICS[0] in req.messages[-1].content
    assert "expected 4, got 5" in req.messages[-1].content


def test_edit_add_leaves_other_variables_to_rewrites_and_bad_edit_is_refused():
    code = param("x = 1", role="code of the solution")
    eng = ScriptedEngine(lambda r: "<NEW_VALUE>x = 2</NEW_VALUE>")
    opt = TGD([code], engine=eng, edit="add")
    feed(code)
    opt.step()
    assert code.value == "x = 2"
    with pytest.raises(InvalidVariableError, match="edit must be"):
        TGD([param()], engine=eng, edit="append")


def test_a_failed_step_uses_up_its_tactic_so_the_next_step_asks_another_way():
    """A small model asked with the same technique repeats the same (already present) instruction: the failed
    step's turn is spent, so the next step names the next technique ("steps" keeps the older rotation)."""
    from textopt.errors import OptimizerStepError

    def answer(r):   # the first technique's request (and its repair) gets an instruction the prompt holds
        if any(P.INSTRUCT_TACTICS[0] in m.content for m in r.messages):
            return "<ADDITION>Answer the question.</ADDITION>"
        return "<ADDITION>Write the running result after each step.</ADDITION>"

    for turns, second_tactic in (("attempts", P.INSTRUCT_TACTICS[1]), ("steps", P.INSTRUCT_TACTICS[0])):
        p = param("Answer the question.")
        eng = ScriptedEngine(answer)
        opt = TGD([p], engine=eng, edit="add", tactic_turns=turns, add_retries=0)
        feed(p)
        with pytest.raises(OptimizerStepError, match="already in the instructions"):
            opt.step()
        assert p.value == "Answer the question."
        asked = len(eng.requests)
        opt.zero_grad()
        feed(p)
        if turns == "steps":
            with pytest.raises(OptimizerStepError):
                opt.step()
        else:
            opt.step()
            assert p.value.endswith("Write the running result after each step.")
        assert second_tactic in eng.requests[asked].messages[-1].content
    with pytest.raises(InvalidVariableError, match="tactic_turns"):
        TGD([param()], engine=eng, tactic_turns="never")


def test_an_unusable_addition_is_asked_again_in_the_same_step_with_the_next_tactic():
    """The 1.5B reference model answered four techniques in a row with the instruction it had added before, and
    repeated it when told so in the repair turn: the step asks once more with the next technique, in a request
    that shows neither the rejected answer nor the current value nor the suggestions (the evaluations only),
    and the following step goes on from the technique after that."""
    def answer(r):
        if any(P.INSTRUCT_TACTICS[0] in m.content for m in r.messages):
            return "<ADDITION>Answer the question.</ADDITION>"
        return f"<ADDITION>Write the running result after each step ({len(eng.requests)}).</ADDITION>"

    p = param("Answer the question.")
    eng = ScriptedEngine(answer)
    opt = TGD([p], engine=eng, edit="add", repair_temperature=0.7)
    p._extend_grad([Feedback("rewrite it", p, source="solver",
                             context=(("input", "2+2"), ("feedback on the output", "expected 4, got 5")))])
    opt.step()
    assert p.value.startswith("Answer the question.\nWrite the running result after each step")
    first, repair, retry = eng.requests
    assert len(repair.messages) == 4 and len(retry.messages) == 2 and repair.temperature == 0.7
    asked = retry.messages[-1].content
    assert P.INSTRUCT_TACTICS[1] in asked and "expected 4, got 5" in asked and retry.temperature == 0.0
    assert "Answer the question." not in asked and "Suggestion" not in asked
    opt.zero_grad()
    feed(p)
    opt.step()
    assert P.INSTRUCT_TACTICS[2] in eng.requests[-1].messages[-1].content and eng.requests[-1].temperature == 0.0
    with pytest.raises(InvalidVariableError, match="add_retries"):
        TGD([param()], engine=eng, add_retries=-1)
