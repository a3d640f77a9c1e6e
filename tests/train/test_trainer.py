"""Trainer: a full scripted run, revert-if-worse, early stopping, files, and exact resume after a crash."""
import json

import pytest

import textopt as tx
from textopt.errors import CheckpointError, DataError
from textopt.train import Example, Sampler, Trainer
from tests.train.toy import data, make_engines


def build(tmp_path, name="run", steps=3, **kw):
    fwd, teacher = make_engines()
    p = tx.Variable("Solve the sum.", role="system prompt of the solver", requires_grad=True, name="prompt")
    model = tx.nn.LLMCall(fwd, system_prompt=p)
    opt = tx.optim.TGD([p], engine=teacher)
    tr = Trainer(model, tx.nn.NumberMatch(), opt, train=data(6), val=data(4, 20), test=data(3, 40),
                 batch_size=2, steps=steps, out_dir=tmp_path / name, seed=3, backward_engine=teacher,
                 progress=False, **{"feedback_from": "all", "screen": False, **kw})   # the loop's mechanics
    return tr, p, fwd, teacher


def test_full_run_learns_and_writes_files(tmp_path):
    tr, p, fwd, teacher = build(tmp_path)
    res = tr.fit()
    assert res.steps == 3
    assert "small" in p.value and "large" in p.value
    assert res.best_val == 1.0 and res.test_score == 1.0
    rows = [json.loads(l) for l in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    assert rows[0]["val_score"] == 0.0
    assert rows[-1]["params"]["system_prompt"] == p.value
    assert set(rows[-1]["usage"]["by_role"]) >= {"forward", "eval", "backward", "optimizer"}
    assert (tmp_path / "run" / "curve.png").read_bytes()[:4] == b"\x89PNG"
    ck = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert ck["step"] == 3 and ck["params"]["system_prompt"] == p.value
    assert "history" in json.dumps(ck["optimizer"]["state"])


def test_revert_if_worse(tmp_path):
    tr, p, fwd, teacher = build(tmp_path, steps=2)
    # a teacher that makes things worse: the solver then fails every example
    worse = iter(["Think very hard.", "Guess quickly.", "Reply with zero."])   # a reverted value is never re-proposed
    teacher.responder = lambda req: (f"<NEW_VALUE>{next(worse)}</NEW_VALUE>" if req.role == "optimizer"
                                     else "fb")
    p.value = "Handle small sums. Handle large sums."
    res = tr.fit()
    assert p.value == "Handle small sums. Handle large sums."
    assert [r["reverted"] for r in res.history] == [False, True, True]
    # the optimizer remembers the reverted attempt: the next request says it lowered the validation score
    second = [r for r in teacher.requests if r.role == "optimizer"][1].messages[-1].content
    assert "Think very hard." in second and "reverted: it changed the validation score from 1.000 to 0.000" in second
    tr2, p2, _, teacher2 = build(tmp_path, name="noreverts", steps=1, revert_if_worse=False)
    teacher2.responder = lambda req: ("<NEW_VALUE>Think very hard.</NEW_VALUE>" if req.role == "optimizer"
                                      else "fb")
    p2.value = "Handle small sums. Handle large sums."
    res2 = tr2.fit()
    # without revert the worse value stays during training, but the best parameters are loaded at the end
    assert res2.history[-1]["params"]["system_prompt"] == "Think very hard."
    assert p2.value == "Handle small sums. Handle large sums."


def test_early_stopping(tmp_path):
    tr, p, fwd, teacher = build(tmp_path, steps=10, patience=2)
    teacher.responder = lambda req: ("<NEW_VALUE>Think very hard.</NEW_VALUE>" if req.role == "optimizer"
                                     else "fb")
    res = tr.fit()
    assert res.stopped_early and res.steps == 2


class Crash(Exception):
    pass


@pytest.mark.parametrize("k", [1, 2])
def test_resume_after_crash_matches_uninterrupted(tmp_path, k):
    ref, p_ref, _, _ = build(tmp_path, name="ref", steps=4)
    ref_res = ref.fit()
    ref_log = (tmp_path / "ref" / "log.jsonl").read_text()

    tr, p, fwd, teacher = build(tmp_path, name="crash", steps=4)
    calls = {"n": 0}
    inner = teacher.responder

    def crashing(req):
        if req.role == "optimizer":
            calls["n"] += 1
            if calls["n"] == k + 1:  # the step after step k dies mid-way (after forward and backward calls)
                raise Crash("power cut")  # a provider error: not a bad answer, so it propagates
        return inner(req)
    teacher.responder = crashing
    teacher.max_retries = 0
    with pytest.raises(Exception):
        tr.fit()
    assert json.loads((tmp_path / "crash" / "checkpoint.json").read_text())["step"] == k

    # a new process: fresh objects, same configuration
    tr2, p2, fwd2, teacher2 = build(tmp_path, name="crash", steps=4)
    res = tr2.resume()
    assert p2.value == p_ref.value
    assert res.test_score == ref_res.test_score and res.best_val == ref_res.best_val
    assert (tmp_path / "crash" / "log.jsonl").read_text() == ref_log
    assert fwd2.usage.as_dict() == ref.engines[0].usage.as_dict()
    assert teacher2.usage.as_dict() == ref.engines[1].usage.as_dict()


def test_interrupt_with_max_steps_then_resume(tmp_path):
    ref, p_ref, _, _ = build(tmp_path, name="ref", steps=3)
    ref.fit()
    tr, p, _, _ = build(tmp_path, name="part", steps=3)
    part = tr.fit(max_steps=1)
    assert part.steps == 1 and part.test_score is None
    tr2, p2, fwd2, teacher2 = build(tmp_path, name="part", steps=3)
    tr2.fit(resume=True)
    assert p2.value == p_ref.value
    assert (tmp_path / "part" / "log.jsonl").read_text() == (tmp_path / "ref" / "log.jsonl").read_text()
    assert tr2.usage() == ref.usage()


def test_resume_rejects_other_seed(tmp_path):
    tr, *_ = build(tmp_path, steps=2)
    tr.fit(max_steps=1)
    fwd, teacher = make_engines()
    p = tx.Variable("x", role="system prompt of the solver", requires_grad=True, name="prompt")
    other = Trainer(tx.nn.LLMCall(fwd, system_prompt=p), tx.nn.NumberMatch(), tx.optim.TGD([p], engine=teacher),
                    train=data(6), batch_size=2, steps=2, out_dir=tmp_path / "run", seed=99, progress=False)
    with pytest.raises(CheckpointError, match="seed"):
        other.fit(resume=True)


def test_sampler_is_seeded_and_resumable():
    a = Sampler(7, 3, seed=1)
    seq = [a.next_batch() for _ in range(5)]
    assert all(len(b) == 3 for b in seq)
    assert sorted(seq[0] + seq[1]) == sorted(set(seq[0] + seq[1]))  # no repeats inside an epoch
    b = Sampler(7, 3, seed=1)
    b.next_batch(); b.next_batch()
    c = Sampler(7, 3, seed=1)
    c.load_state_dict(json.loads(json.dumps(b.state_dict())))
    assert [c.next_batch() for _ in range(3)] == seq[2:]
    assert Sampler(7, 3, seed=2).next_batch() != seq[0] or Sampler(7, 3, seed=3).next_batch() != seq[0]


def test_example_coercion_and_errors():
    assert Example.coerce({"x": 1, "y": 2, "id": 7}) == Example(1, 2, {"id": 7})
    assert Example.coerce(("q", "a")).y == "a"
    assert Example.coerce({"question": "q", "answer": "a"}).x == "q"
    with pytest.raises(DataError, match="'x'"):
        Example.coerce({"prompt": "q"})
    with pytest.raises(DataError, match="at least one"):
        fwd, teacher = make_engines()
        p = tx.Variable("x", role="r", requires_grad=True)
        Trainer(tx.nn.LLMCall(fwd, system_prompt=p), tx.nn.NumberMatch(), tx.optim.TGD([p]), train=[])


def test_unusable_optimizer_answer_is_logged_and_skipped(tmp_path):
    tr, p, fwd, teacher = build(tmp_path, steps=2)
    teacher.responder = lambda req: "I cannot help with that." if req.role == "optimizer" else "fb"
    res = tr.fit()
    assert res.steps == 2 and p.value == "Solve the sum."
    assert all("NEW_VALUE" in r["step_error"] for r in res.history[1:])
    tr2, p2, _, teacher2 = build(tmp_path, name="strict", steps=1, skip_invalid_updates=False)
    teacher2.responder = teacher.responder
    with pytest.raises(tx.errors.OptimizerStepError):
        tr2.fit()


def test_dict_inputs_are_spread_into_a_formatted_call(tmp_path):
    fwd, teacher = make_engines()
    p = tx.Variable("Handle small sums. Handle large sums.", role="system prompt of the solver",
                    requires_grad=True)
    model = tx.nn.FormattedLLMCall(fwd, "Q: {question}", system_prompt=p)
    train = [{"x": {"question": d["x"]}, "y": d["y"]} for d in data(4)]
    tr = Trainer(model, tx.nn.NumberMatch(), tx.optim.TGD([p], engine=teacher), train=train, val=train,
                 batch_size=2, steps=1, seed=0, backward_engine=teacher, progress=False)
    res = tr.fit()
    assert res.best_val == 1.0 and fwd.requests[0].messages[-1].content.startswith("Q: What is")


def test_fit_twice_without_resume_starts_over(tmp_path):
    tr, p, fwd, teacher = build(tmp_path, steps=2)
    first = tr.fit()
    p.value = "Solve the sum."
    second = tr.fit()
    assert [r["step"] for r in second.history] == [0, 1, 2]
    assert second.history[1]["batch"] == first.history[1]["batch"]  # same seeded sampler
    assert len((tmp_path / "run" / "log.jsonl").read_text().splitlines()) == 3


def test_resume_restores_what_the_budgets_spent(tmp_path):
    def with_budget(name):
        tr, p, fwd, teacher = build(tmp_path, name=name, steps=3)
        shared = tx.engines.Budget(max_calls=10_000)
        fwd.budget = teacher.budget = shared          # one budget for both engines: saved once
        return tr, p, shared

    ref, p_ref, b_ref = with_budget("ref")
    ref.fit()
    tr, _, _ = with_budget("part")
    tr.fit(max_steps=1)
    assert len(json.loads((tmp_path / "part" / "checkpoint.json").read_text())["budgets"]) == 1
    tr2, p2, b2 = with_budget("part")
    tr2.fit(resume=True)
    assert p2.value == p_ref.value
    assert (b2.calls, b2.tokens) == (b_ref.calls, b_ref.tokens) and b2.calls > 0
