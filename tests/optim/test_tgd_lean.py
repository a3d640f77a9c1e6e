"""What an optimizer request holds after a real backward pass (lean: each thing once, the reasoning visible),
copies of training examples refused, and unchanged values reported — TGD alone and through the Trainer."""
from __future__ import annotations

import json
import logging

import pytest

import textopt as tx
from textopt.engines import ScriptedEngine
from textopt.errors import OptimizerStepError
from textopt.optim import TGD
from textopt.optim.tgd import StepResult
from textopt.prompts import BACKWARD_SYSTEM
from textopt.train import Trainer

QUESTIONS = [f"I have a flute, {n} pianos and a violin. How many musical instruments do I have?" for n in (2, 3, 4)]
MISCOUNT = "so the pianos count as one instrument"


def solver_answer(req) -> str:
    # a long chain of reasoning with the telling mistake in its middle, the answer on the last line
    question = req.messages[-1].content
    padding = " ".join(f"step{i} checks the list again." for i in range(12))
    return f"Let me list the items of: {question} {padding} The flute is one, {MISCOUNT}, {padding}\nAnswer: 3"


def feedback_answer(req) -> str:
    return "The prompt should ask the model to count each item with its quantity."


def build(prompt: str = "Answer the question."):
    p = tx.Variable(prompt, role="system prompt of the solver", requires_grad=True, name="system_prompt")
    solver = tx.nn.LLMCall(ScriptedEngine(solver_answer), system_prompt=p, name="solver")
    return p, solver


def run_backward(p, solver, feedback_engine):
    losses = [tx.nn.NumberMatch()(solver(tx.Variable(q, role="question")), str(n + 2))
              for q, n in zip(QUESTIONS, (2, 3, 4))]
    tx.aggregate(losses).backward(engine=feedback_engine)


def test_the_request_holds_value_and_each_gradient_once_and_no_backward_instructions():
    p, solver = build("Answer the question. Count carefully.")
    feedback = ScriptedEngine(lambda req: f"feedback #{len(feedback.requests)}: count quantities.")
    run_backward(p, solver, feedback)
    assert len(p.grad) == 3
    opt = TGD([p], engine=ScriptedEngine("<NEW_VALUE>x</NEW_VALUE>"))
    text = opt.build_request(p, opt.param_groups[0], "system_prompt").messages[-1].content
    assert text.count(p.value) == 1                          # the value once (it was 7 times with a batch of 3)
    assert BACKWARD_SYSTEM[:60] not in text                  # never the feedback engine's instructions
    for g in p.grad:
        assert text.count(g.value) == 1                      # each gradient once
    for q in QUESTIONS:
        assert q in text                                     # the input each feedback is about
    assert text.count(MISCOUNT) == 3                         # the reasoning survives the bound, in every item
    assert text.count("Wrong answer: expected") >= 3         # the evaluation each output received


def test_request_is_smaller_than_one_carrying_conversations():
    p, solver = build()
    run_backward(p, solver, ScriptedEngine(feedback_answer))
    opt = TGD([p], engine=ScriptedEngine("<NEW_VALUE>x</NEW_VALUE>"))
    lean = len(opt.build_request(p, opt.param_groups[0], "p").messages[-1].content)
    whole = sum(len(m["content"]) for g in p.grad for m in g.conversation)   # what the contexts used to copy
    assert lean < whole


def test_a_value_copying_a_seen_input_is_repaired():
    p, solver = build()
    run_backward(p, solver, ScriptedEngine(feedback_answer))
    answers = [f"<NEW_VALUE>Answer like this: {QUESTIONS[0]} Answer: 4</NEW_VALUE>",
               "<NEW_VALUE>List every item with its quantity, add them up, then answer.</NEW_VALUE>"]
    eng = ScriptedEngine(answers)
    TGD([p], engine=eng).step()
    assert p.value.startswith("List every item")
    assert "copies a training example" in eng.requests[1].messages[-1].content


def test_identical_value_is_asked_again_then_reported_unchanged(caplog):
    p, solver = build()
    run_backward(p, solver, ScriptedEngine(feedback_answer))
    eng = ScriptedEngine(f"<NEW_VALUE>{p.value}</NEW_VALUE>")
    with caplog.at_level(logging.WARNING, logger="textopt.optim.tgd"):
        result = TGD([p], engine=eng, add_when_stuck=False).step()
    assert isinstance(result, StepResult) and result.unchanged == ["system_prompt"]
    assert len(eng.requests) == 2 and "identical to the current value" in eng.requests[1].messages[-1].content
    assert (eng.requests[0].temperature, eng.requests[1].temperature) == (0.0, 0.7)   # asked again, sampled
    assert any("unchanged" in r.message for r in caplog.records)


def test_identical_value_then_a_change_is_a_normal_step():
    p, solver = build()
    run_backward(p, solver, ScriptedEngine(feedback_answer))
    eng = ScriptedEngine([f"<NEW_VALUE>{p.value}</NEW_VALUE>", "<NEW_VALUE>Count each item.</NEW_VALUE>"])
    result = TGD([p], engine=eng, add_when_stuck=False).step()
    assert result.unchanged == [] and p.value == "Count each item."


def test_trainer_guards_its_training_split_and_logs_unchanged_steps(tmp_path):
    train = [{"x": f"I have {n} apples and a big red wooden chair in the kitchen. How many fruits?", "y": str(n)}
             for n in range(2, 8)]
    p = tx.Variable("Answer.", role="system prompt of the solver", requires_grad=True, name="system_prompt")
    solver = tx.nn.LLMCall(ScriptedEngine("Answer: 3"), system_prompt=p, name="solver")
    copied = train[5]["x"]   # never in a batch of the first step: only the trainer's guard knows it
    answers = iter([f"<NEW_VALUE>Example: {copied}</NEW_VALUE>", "<NEW_VALUE>Answer.</NEW_VALUE>",
                    "<NEW_VALUE>Answer.</NEW_VALUE>"])
    opt_engine = ScriptedEngine(lambda req: next(answers))
    opt = TGD([p], engine=opt_engine, add_when_stuck=False)
    trainer = Trainer(solver, tx.nn.NumberMatch(), opt, train=train, val=train[:2], batch_size=2, steps=1,
                      out_dir=tmp_path, backward_engine=ScriptedEngine(feedback_answer), progress=False,
                      plot=False)
    trainer.fit()
    assert "copies a training example" in opt_engine.requests[1].messages[-1].content
    row = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()][-1]
    assert row["unchanged"] == ["system_prompt"] and p.value == "Answer."


def _arith_trainer(tmp_path, answers: dict, **kw):
    """Questions "n+n?" whose solver answer is looked up in ``answers`` (default: correct)."""
    train = [{"x": f"{n}+{n}?", "y": str(2 * n)} for n in range(1, 7)]
    p = tx.Variable("Add.", role="system prompt of the solver", requires_grad=True, name="system_prompt")

    def solve(req):
        q = req.messages[-1].content
        n = int(q.split("+")[0])
        return f"Answer: {answers.get(n, 2 * n)}"
    solver = tx.nn.LLMCall(ScriptedEngine(solve), system_prompt=p, name="solver")
    feedback = ScriptedEngine(lambda req: "Add carefully.")
    opt_engine = ScriptedEngine("<NEW_VALUE>Add the two numbers.</NEW_VALUE>")
    trainer = Trainer(solver, tx.nn.NumberMatch(), TGD([p], engine=opt_engine), train=train, val=train[:2],
                      batch_size=3, steps=1, out_dir=tmp_path, backward_engine=feedback, progress=False,
                      plot=False, **kw)
    return trainer, feedback, opt_engine


def test_feedback_comes_from_the_failing_examples_only(tmp_path):
    trainer, feedback, opt_engine = _arith_trainer(tmp_path, {n: 0 for n in range(1, 7) if n % 2})   # odd n fail
    trainer.fit()
    asked = [r.messages[-1].content for r in feedback.requests]
    batch = trainer.history[-1]["batch"]
    failing = [i for i in batch if (i + 1) % 2]
    assert len(asked) == len(failing) and len(opt_engine.requests) == 1
    assert all("Wrong answer" in a for a in asked)


def test_an_all_correct_batch_is_a_skipped_step(tmp_path):
    trainer, feedback, opt_engine = _arith_trainer(tmp_path, {})
    trainer.fit()
    row = trainer.history[-1]
    assert row["skipped"] and not feedback.requests and not opt_engine.requests
    assert row["val_score"] == trainer.history[0]["val_score"]


def test_feedback_from_all_backpropagates_every_example(tmp_path):
    trainer, feedback, _ = _arith_trainer(tmp_path, {}, feedback_from="all")
    trainer.fit()
    assert len(feedback.requests) == 3


def test_a_value_copying_a_worked_answer_it_was_shown_is_repaired():
    p, solver = build()
    run_backward(p, solver, ScriptedEngine(feedback_answer))
    worked = p.grad[0].context[1][1]          # the solver's output for the first question
    eng = ScriptedEngine([f"<NEW_VALUE>Answer the question.\n{worked}</NEW_VALUE>",
                          "<NEW_VALUE>Count every item with its quantity.</NEW_VALUE>"])
    TGD([p], engine=eng).step()
    assert p.value == "Count every item with its quantity."
    assert "copies a training example" in eng.requests[1].messages[-1].content


ADD = "<ADDITION>Write the quantity of every item before adding them up.</ADDITION>"


def test_a_stuck_prompt_gets_one_instruction_appended():
    p, solver = build()
    run_backward(p, solver, ScriptedEngine(feedback_answer))
    before = p.value
    eng = ScriptedEngine(lambda req: ADD if "<ADDITION>" in req.messages[0].content else
                         f"<NEW_VALUE>{before}</NEW_VALUE>")
    result = TGD([p], engine=eng).step()
    assert p.value == before + "\nWrite the quantity of every item before adding them up." and not result.unchanged
    add = eng.requests[-1].messages[-1].content
    assert len(eng.requests) == 2 and before in add and "Wrong answer: expected" in add   # evaluations, no outputs
    assert MISCOUNT not in add


def test_an_unusable_rewrite_falls_back_to_an_addition_and_both_failing_reports_the_rewrite():
    p, solver = build()
    run_backward(p, solver, ScriptedEngine(feedback_answer))
    eng = ScriptedEngine(lambda req: ADD if "<ADDITION>" in req.messages[0].content else "<CONTEXT>junk")
    TGD([p], engine=eng).step()
    assert p.value.endswith("before adding them up.")
    q, solver = build()
    run_backward(q, solver, ScriptedEngine(feedback_answer))
    with pytest.raises(OptimizerStepError, match="NEW_VALUE"):
        TGD([q], engine=ScriptedEngine("no tags")).step()
    assert q.value == "Answer the question."


def test_an_addition_already_in_the_value_is_refused_and_code_never_gets_one():
    p, solver = build("Answer the question. Write the quantity of every item before adding them up.")
    run_backward(p, solver, ScriptedEngine(feedback_answer))
    eng = ScriptedEngine(lambda req: ADD if "<ADDITION>" in req.messages[0].content else
                         f"<NEW_VALUE>{p.value}</NEW_VALUE>")
    result = TGD([p], engine=eng).step()
    assert result.unchanged == ["system_prompt"]
    assert "already in the instructions" in eng.requests[-1].messages[-1].content
    code = tx.Variable("def f(x): return x", role="code of the solution", requires_grad=True, name="code")
    code._extend_grad([tx.Feedback("handle negatives", code)])
    eng = ScriptedEngine("<NEW_VALUE>def f(x): return x</NEW_VALUE>")
    assert TGD([code], engine=eng).step().unchanged == ["code"]
    assert all("<ADDITION>" not in r.messages[0].content for r in eng.requests)


def test_an_instruction_is_asked_for_as_an_assistants_instructions_and_a_value_as_a_fix():
    """A prompt's request shows each feedback item as an example of the assistant's work (input, answer, the
    evaluation, the reviewer's note) and asks for instructions that are not answers; any other variable keeps the
    generic <FEEDBACK>/<CONTEXT> form."""
    p, solver = build()
    run_backward(p, solver, ScriptedEngine(feedback_answer))
    opt = TGD([p], engine=ScriptedEngine(lambda r: "<NEW_VALUE>Count each item.</NEW_VALUE>"))
    req = opt.build_request(p, opt.param_groups[0], "system_prompt")
    text = req.messages[-1].content
    assert req.messages[0].content == tx.optim.prompts.INSTRUCT_SYSTEM
    assert text.count("# Example ") == 3 and text.count("## Reviewer's note") == 3
    assert "## Input\n" + QUESTIONS[0] in text and "## Assistant's answer\n" in text and MISCOUNT in text
    assert "<FEEDBACK" not in text and "do not solve or quote the examples" in text
    code = tx.Variable("def f(x): return x", role="code of the solution", requires_grad=True)
    code._extend_grad([tx.Feedback("off by one", code, context=(("input", "f(1)"), ("output", "1")))])
    text = opt.build_request(code, opt.param_groups[0], "code").messages[-1].content
    assert "<FEEDBACK" in text and "<CONTEXT>" in text and "# Example" not in text


def test_an_instruction_that_loops_on_one_line_is_repaired():
    """A small model's decoding loop (the same instruction over and over) is not a value: one repair asks for
    each instruction once."""
    loop = "\n".join(f"{i}. If you are unsure, think of a different approach." for i in range(1, 8))
    answers = iter([f"<NEW_VALUE>{loop}</NEW_VALUE>", "<NEW_VALUE>1. Count each item.</NEW_VALUE>"])
    eng = ScriptedEngine(lambda r: next(answers))
    p, solver = build()
    run_backward(p, solver, ScriptedEngine(feedback_answer))
    TGD([p], engine=eng, add_when_stuck=False).step()
    assert p.value == "1. Count each item."
    assert "repeats the line" in eng.requests[1].messages[-1].content


def test_a_value_already_reverted_is_not_proposed_again():
    """A small model shown a reverted value in the history returns it verbatim; TGD refuses it (also a near copy)
    and repairs once, so the next validation is spent on a new value."""
    tried = "1. Count each item.\n2. Write the total as 'Answer: N'."
    answers = iter([f"<NEW_VALUE>{tried.replace('item.', 'item!')}</NEW_VALUE>",
                    "<NEW_VALUE>1. List every item with its quantity, then add.</NEW_VALUE>"])
    eng = ScriptedEngine(lambda r: next(answers))
    p, solver = build()
    opt = TGD([p], engine=eng, add_when_stuck=False)
    opt.record_rejection(p, tried, before=0.5, after=0.4)
    run_backward(p, solver, ScriptedEngine(feedback_answer))
    opt.step()
    assert p.value == "1. List every item with its quantity, then add."
    assert "already tried and reverted" in eng.requests[1].messages[-1].content
    assert opt.state_dict()["state"][0]["rejected"] == [tried]   # kept in the checkpoint for a resume


def test_a_short_line_said_over_and_over_is_a_loop_too():
    from textopt.optim.newvalue import _check_repeats
    with pytest.raises(ValueError, match="repeats the line"):
        _check_repeats("Be brief.\n" + "The assistant will.\n" * 9, "Be brief.")
    _check_repeats("Q: one\nA: 1\n---\nQ: two\nA: 2\n---\nQ: six\nA: 6\n---\n---\n---", "")   # short labels: fine
    _check_repeats("Answer: N\n" * 4, "")                          # a short line four times: not yet a loop
    _check_repeats("Step one.\n" * 6, "Step one.\n" * 6)           # the current value repeats it already
