"""The shared search machinery: evaluation cache, evaluator contract, module evaluator, concurrency, stoppers,
callbacks, held-out splits and the copy detector."""
from __future__ import annotations

import asyncio
import logging

import pytest

import textopt as tx
from textopt.engines import ScriptedEngine
from textopt.errors import DataError, InvalidVariableError
from textopt.optim import (BeamSearch, CopyDetector, Evaluator, MaxSteps, NoImprovement, OPRO, ParetoEvolution,
                           StopFile, Timeout, split_dataset)
from textopt.optim.store import CandidateStore, candidate_hash, normalize_result, pareto_front
from textopt.runtime import run_sync
from tests.optim import search_world as W


def _opt(cls=BeamSearch, evaluate=W.evaluate, **kw):
    kw.setdefault("engine", W.make_engine())
    kw.setdefault("seed", 0)
    return cls([W.make_param()], evaluate, trainset=W.TRAIN, valset=W.VAL, **kw)


def test_candidate_hash_ignores_key_order_and_is_stable():
    assert candidate_hash({"a": "x", "b": "y"}) == candidate_hash({"b": "y", "a": "x"})
    assert candidate_hash({"a": "x"}) != candidate_hash({"a": "x "})
    assert len(candidate_hash({"a": "x"})) == 16


def test_evaluation_cache_is_keyed_by_candidate_example_and_split():
    calls = []

    async def evaluate(cand, ex):
        calls.append((cand["prompt"], ex["id"]))
        return await W.evaluate(cand, ex)

    opt = _opt(evaluate=evaluate)
    h = opt.seed_hash
    run_sync(opt.evaluate(h, "val", [0, 1]))
    run_sync(opt.evaluate(h, "val", [1, 2]))          # 1 is cached
    run_sync(opt.evaluate(h, "train", [1]))           # same position, other split: a new call
    other = opt.store.add({"prompt": "other"})
    run_sync(opt.evaluate(other, "val", [1]))
    assert calls == [(W.SEED_PROMPT, "v0"), (W.SEED_PROMPT, "v1"), (W.SEED_PROMPT, "v2"), (W.SEED_PROMPT, "t1"),
                     ("other", "v1")]
    assert opt.metric_calls == 5


def test_evaluations_run_concurrently_under_the_limit_and_are_stored_in_example_order():
    state = {"now": 0, "peak": 0}

    async def evaluate(cand, ex):
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.01 * (6 - int(ex["id"][1:])))   # later examples finish first
        state["now"] -= 1
        return float(ex["kind"]), f"fb {ex['id']}", None

    opt = _opt(evaluate=evaluate, max_concurrency=3)
    evals = run_sync(opt.evaluate(opt.seed_hash, "val"))
    assert state["peak"] == 3
    assert [e.feedback["score"] for e in evals] == [f"fb v{i}" for i in range(6)]
    assert list(opt.store.scored(opt.seed_hash, "val")) == [f"v{i}" for i in range(6)]


def test_evaluator_results_are_validated_with_clear_errors():
    assert normalize_result(0.5, ["score"]).scores == {"score": 0.5}
    ev = normalize_result((1, [tx.Feedback("too long", objective="length"), tx.Feedback("ok")], {"x": {1, 2}}),
                          ["score"])
    assert ev.feedback == {"length": "too long", "score": "ok"} and isinstance(ev.trace["x"], str)
    with pytest.raises(InvalidVariableError, match=r"\(score, feedback, trace\)"):
        normalize_result("great", ["score"])
    with pytest.raises(InvalidVariableError, match="float"):
        normalize_result(("high", "", None), ["score"])


def test_module_evaluator_loads_each_candidate_and_never_mixes_them():
    import random
    rng = random.Random(0)

    async def respond(req):
        await asyncio.sleep(rng.uniform(0, 0.01))
        return f"{req.system}|{req.messages[-1].content}"

    prompt = tx.Variable("p0", role="system prompt", requires_grad=True)
    module = tx.nn.LLMCall(ScriptedEngine(respond), system_prompt=prompt)
    ev = Evaluator.from_module(module, lambda out, ex: (float(out.startswith("good")), "fb"), input="question")

    async def many():
        jobs = [ev({"system_prompt": f"p{i % 3}"}, {"question": f"q{i}"}) for i in range(12)]
        return await asyncio.gather(*jobs)

    outs = run_sync(many())
    for i, (score, fb, trace) in enumerate(outs):
        assert trace["output"] == f"p{i % 3}|q{i}"
    opt = BeamSearch(module.named_parameters(), ev, engine=W.make_engine(), trainset=W.TRAIN, valset=W.VAL)
    assert opt.names == ["system_prompt"]
    with pytest.raises(DataError, match="input="):
        run_sync(ev({"system_prompt": "x"}, {"text": "q"}))


def test_parameters_must_be_named_text_variables():
    a = tx.Variable("x", role="r", requires_grad=True, name="same")
    b = tx.Variable("y", role="r", requires_grad=True, name="same")
    with pytest.raises(InvalidVariableError, match="distinct names"):
        BeamSearch([a, b], W.evaluate, trainset=W.TRAIN, valset=W.VAL)
    import torch
    t = tx.Variable(torch.zeros(2), requires_grad=True)
    with pytest.raises(InvalidVariableError, match="text Variables"):
        BeamSearch({"t": t}, W.evaluate, trainset=W.TRAIN, valset=W.VAL)


def test_stoppers_and_callbacks(tmp_path):
    events = []
    opt = _opt(stoppers=[MaxSteps(2)], callbacks=[lambda e, info: events.append(e)])
    info = opt.run()
    assert info["step"] == 2 and info["stopped"] == "reached 2 steps"
    assert {"proposed", "step", "new_best"} <= set(events)
    stop = tmp_path / "STOP"
    opt = _opt(stoppers=[StopFile(stop)])
    opt.step()
    stop.touch()
    assert opt.step()["stopped"].startswith("stop file") and opt.step_count == 1
    assert _opt(stoppers=[Timeout(-1)]).run()["stopped"].startswith("timeout")
    flat = _opt(engine=ScriptedEngine(lambda r: "<new_value>be brief</new_value>"), stoppers=[NoImprovement(2)])
    info = flat.run(max_steps=10)
    assert info["stopped"] == "no improvement in 2 steps" and info["step"] == 3


def test_copy_detector_rejects_training_text_and_logs_why(caplog):
    long_q = "A farmer has seventeen sheep and all but nine run away; how many are left"
    train = [{"id": "x1", "question": long_q, "answer": "nine sheep are left over", "kind": 0}] + W.TRAIN
    det = CopyDetector(train)
    assert det.check("Think step by step and count carefully.") is None
    assert "training example" in det.check(f"Example: {long_q.upper()}. Answer: 9")
    assert "verbatim" in det.check("Remember: nine sheep are left over!")
    assert det.check("The farmer has sheep.") is None   # a few shared words are not a copy

    def paste(req):
        return f"<new_value>Solve it. For instance: {long_q}</new_value>"

    p = W.make_param()
    opt = OPRO([p], W.evaluate, engine=ScriptedEngine(paste), trainset=train, valset=W.VAL, seed=0)
    with caplog.at_level(logging.INFO, logger="textopt.optim.guards"):
        opt.step()
    assert long_q not in p.value
    assert opt.store.rejected and "copies a training example" in opt.store.rejected[0]["reason"]
    assert "copies a training example" in caplog.text
    loose = OPRO([W.make_param()], W.evaluate, engine=ScriptedEngine(paste), trainset=train, valset=W.VAL,
                 copy_guard=False)
    loose.step()
    assert not loose.store.rejected


def test_the_test_split_cannot_reach_an_optimizer():
    data = [{"id": str(i), "q": f"question {i}"} for i in range(20)]
    splits = split_dataset(data, val=0.25, test=0.25, seed=1)
    ids = [{e["id"] for e in s} for s in (splits.train, splits.val, splits.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2]) and sum(map(len, ids)) == 20
    with pytest.raises(DataError, match="for_optimizer"):
        BeamSearch([W.make_param()], W.evaluate, data=splits)
    with pytest.raises(DataError, match="test split"):
        BeamSearch([W.make_param()], W.evaluate, trainset=splits.train, valset=splits.test)
    with pytest.raises(DataError, match="valset"):
        BeamSearch([W.make_param()], W.evaluate, trainset=splits.train)
    with pytest.raises(DataError, match="held out"):
        BeamSearch([W.make_param()], W.evaluate, trainset=splits.train, valset=splits.val + splits.train[:1])
    with pytest.raises(DataError, match="duplicate example ids"):
        BeamSearch([W.make_param()], W.evaluate, trainset=splits.train, valset=[{"id": 1}, {"id": 1, "x": 2}])
    opt = ParetoEvolution([W.make_param()], W.evaluate, data=splits.for_optimizer())
    assert opt.val.name == "val" and not hasattr(opt, "test")


def test_pareto_front_over_objectives():
    pts = {"a": {"acc": 1.0, "len": 0.0}, "b": {"acc": 0.5, "len": 0.5}, "c": {"acc": 0.4, "len": 0.4},
           "d": {"acc": 0.0, "len": 1.0}}
    assert pareto_front(pts) == ["a", "b", "d"]


def test_store_state_survives_sorted_json():
    import json
    s = CandidateStore()
    for v in ["zeta", "alpha", "mid"]:
        s.add({"p": v})
    again = CandidateStore.from_state(json.loads(json.dumps(s.state_dict(), sort_keys=True)))
    assert list(again.candidates) == list(s.candidates)


def test_parameters_hold_the_best_candidate_after_each_step_with_a_module_evaluator():
    """The module evaluator loads every candidate it scores into the module's parameters (which ARE the
    optimizer's parameters); after a step they must hold the best candidate again, not the last one scored."""
    prompt = tx.Variable(W.SEED_PROMPT, role="system prompt of the solver", requires_grad=True)
    module = tx.nn.LLMCall(ScriptedEngine(lambda req: req.system), system_prompt=prompt)
    ev = Evaluator.from_module(module, lambda out, ex: float(W.GOOD[ex["kind"]] in out), input="question")
    opt = BeamSearch(module.named_parameters(), ev, engine=W.make_engine(), trainset=W.TRAIN, valset=W.VAL,
                     seed=0, beam_width=1, edits=3)
    for _ in range(3):
        opt.step()
        assert prompt.value == opt.store.values(opt.best)["system_prompt"]
        assert len(opt.store.candidates) > 1


def test_module_evaluator_accepts_a_metric_loss_module():
    module = tx.nn.LLMCall(ScriptedEngine(lambda req: "The answer is 8."),
                           system_prompt=tx.Variable("s", role="system prompt", requires_grad=True))
    ev = Evaluator.from_module(module, tx.nn.NumberMatch(), input="question", target="answer")
    good = run_sync(ev({"system_prompt": "s"}, {"question": "4+4?", "answer": 8}))
    bad = run_sync(ev({"system_prompt": "s"}, {"question": "4+3?", "answer": 7}))
    assert good[0] == 1.0 and bad[0] == 0.0
    assert "7" in bad[1] and bad[2] == {"input": "4+3?", "output": "The answer is 8."}


def test_dollar_and_token_budgets_stop_the_search_cleanly():
    from textopt.engines import Budget
    for budget in (Budget(max_usd=0.05), Budget(max_tokens=3000)):
        engine = ScriptedEngine(W.editor, budget=budget, prices={"scripted": (10.0, 10.0)})
        opt = _opt(engine=engine, budget=budget)
        info = opt.run(max_steps=50)
        assert info["stopped"] and "budget" in info["stopped"]
        assert (budget.usd <= 0.05) if budget.max_usd else (budget.tokens <= 3000)
        assert opt.step()["step"] == info["step"]          # a stopped search stays stopped
        assert opt.params()[0].value == opt.store.values(opt.best)["prompt"]


from hypothesis import given, settings, strategies as st  # noqa: E402

_words = st.lists(st.sampled_from("alpha beta gamma delta river stone cloud seven apple north".split()),
                  min_size=6, max_size=14).map(" ".join)


@settings(max_examples=40, deadline=None)
@given(question=_words, before=_words, after=_words)
def test_copy_detector_flags_any_verbatim_training_input(question, before, after):
    det = CopyDetector([{"question": question, "answer": "x"}])
    assert det.check(f"{before}. {question.capitalize()}! {after}") is not None
    assert det.check("Count the objects carefully and answer with a number.") is None


def test_module_evaluator_with_one_metric_per_objective():
    module = tx.nn.LLMCall(ScriptedEngine(lambda req: "The answer is 8, as computed at length."),
                           system_prompt=tx.Variable("s", role="system prompt", requires_grad=True))
    ev = Evaluator.from_module(module, {"accuracy": tx.nn.NumberMatch(),
                                        "brevity": lambda out, ex: (float(len(out) < 20), "too long")},
                               input="question")
    opt = BeamSearch(module.named_parameters(), ev, engine=W.make_engine(), objectives={"accuracy": 1.0,
                     "brevity": 0.5}, trainset=[{"question": "4+4?", "answer": 8, "id": "t"}],
                     valset=[{"question": "4+4?", "answer": 8}], copy_guard=False)
    (res,) = run_sync(opt.evaluate(opt.seed_hash, "val"))
    assert res.scores == {"accuracy": 1.0, "brevity": 0.0} and res.feedback["brevity"] == "too long"
    assert opt.mean([res]) == 1.0
    with pytest.raises(DataError, match="target="):
        run_sync(Evaluator.from_module(module, tx.nn.NumberMatch(), input="question")(
            {"system_prompt": "s"}, {"question": "q", "solution": 8}))


def test_concurrency_limit_is_shared_by_every_evaluation_of_the_optimizer():
    state = {"now": 0, "peak": 0}

    async def evaluate(cand, ex):
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.005)
        state["now"] -= 1
        return 0.0, "", None

    opt = _opt(evaluate=evaluate, max_concurrency=2)
    hs = [opt.store.add({"prompt": f"c{i}"}) for i in range(4)]
    run_sync(opt.evaluate_many(hs, "val"))
    assert state["peak"] == 2 and opt.metric_calls == 24


def test_state_dict_refuses_other_data_or_parameters():
    from textopt.errors import CheckpointError
    opt = _opt()
    opt.step()
    sd = opt.state_dict()
    other = BeamSearch([W.make_param()], W.evaluate, engine=W.make_engine(), trainset=W.TRAIN[:-1], valset=W.VAL)
    with pytest.raises(CheckpointError, match="different train/val"):
        other.load_state_dict(sd)
    assert other.params()[0].value == W.SEED_PROMPT and other.step_count == 0   # nothing changed
    renamed = BeamSearch({"instructions": W.make_param()}, W.evaluate, engine=W.make_engine(), trainset=W.TRAIN,
                         valset=W.VAL)
    with pytest.raises(CheckpointError, match="parameters"):
        renamed.load_state_dict(sd)


def test_works_with_textopt_tasks_examples_metrics_and_splits():
    T = pytest.importorskip("textopt.tasks")
    if not hasattr(T, "get_task"):
        pytest.skip("textopt.tasks has no get_task yet (issue 6)")
    task = T.get_task("counting")
    splits = task.splits(4, 3, 3, seed=0)
    with pytest.raises(DataError, match="test split"):
        BeamSearch([W.make_param()], W.evaluate, data=splits)
    prompt = tx.Variable(task.initial_prompt, role="system prompt", requires_grad=True)
    module = tx.nn.LLMCall(ScriptedEngine(lambda req: "Answer: 3"), system_prompt=prompt)
    opt = BeamSearch(module.named_parameters(), Evaluator.from_task(module, task), engine=W.make_engine(),
                     trainset=splits.train, valset=splits.val, seed=0)
    opt.step()
    evals = list(opt.store.scored(opt.seed_hash, "val").values())
    assert len(evals) == 3
    for ev, ex in zip(evals, splits.val):
        assert ev.scores["score"] == float(ex.target == "3")
        assert ev.trace["input"] == ex.input and (ex.target == "3" or "expected" in ev.feedback["score"])
    det = CopyDetector(splits.train)
    assert det.check(f"For example: {splits.train[0].input}") is not None


def test_module_evaluator_works_from_sync_and_async_callers_alike():
    prompt = tx.Variable(W.SEED_PROMPT, role="system prompt of the solver", requires_grad=True)
    module = tx.nn.LLMCall(ScriptedEngine(lambda req: req.system), system_prompt=prompt)
    ev = Evaluator.from_module(module, lambda out, ex: float(W.GOOD[ex["kind"]] in out), input="question")
    opt = BeamSearch(module.named_parameters(), ev, engine=W.make_engine(), trainset=W.TRAIN, valset=W.VAL)
    opt.step()                                   # textopt's private loop
    asyncio.run(opt.astep())                     # the caller's own loop
    assert opt.step_count == 2 and prompt.value == opt.store.values(opt.best)["system_prompt"]


def test_checkpoint_hook_and_jsonl_log_resume_a_killed_run(tmp_path):
    import json

    from textopt.errors import CheckpointError
    from textopt.optim.callbacks import Checkpoint, JsonlLog, load_checkpoint

    full = _opt(ParetoEvolution, seed=4)
    for _ in range(5):
        full.step()
    ck = tmp_path / "run" / "search.json"
    first = _opt(ParetoEvolution, seed=4, callbacks=[JsonlLog(tmp_path / "run" / "events.jsonl")])
    first.register_step_post_hook(Checkpoint(ck))
    for _ in range(3):
        first.step()
    events = [json.loads(line)["kind"] for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert events.count("step") == 3
    resumed = _opt(ParetoEvolution, seed=4)
    load_checkpoint(resumed, ck)
    for _ in range(2):
        resumed.step()
    assert json.dumps(resumed.state_dict(), sort_keys=True) == json.dumps(full.state_dict(), sort_keys=True)
    assert not list(ck.parent.glob("*.tmp"))
    ck.write_text("{broken")
    with pytest.raises(CheckpointError, match="search.json"):
        load_checkpoint(resumed, ck)


def test_parameters_must_be_the_evaluated_modules_own():
    prompt = tx.Variable("s", role="system prompt", requires_grad=True)
    module = tx.nn.LLMCall(ScriptedEngine("x"), system_prompt=prompt)
    ev = Evaluator.from_module(module, lambda out, ex: 0.0, input="question")
    with pytest.raises(InvalidVariableError, match="system_prompt"):
        BeamSearch({"prompt": prompt}, ev, trainset=W.TRAIN, valset=W.VAL)
    with pytest.raises(InvalidVariableError, match="never see"):
        BeamSearch({"system_prompt": W.make_param()}, ev, trainset=W.TRAIN, valset=W.VAL)
    assert BeamSearch([prompt], ev, trainset=W.TRAIN, valset=W.VAL).names == ["system_prompt"]
