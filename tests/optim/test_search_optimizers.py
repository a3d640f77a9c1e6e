"""Search optimizers on the deterministic phrase world: each finds the optimum within its budget; multi-objective
prompts keep objectives apart; merges; proposals go through the optimizer role; unparseable answers are survived."""
from __future__ import annotations

import pytest

from textopt.engines import ScriptedEngine
from textopt.optim import OPRO, BeamSearch, DemoBootstrap, MaxSteps, ParetoEvolution
from tests.optim import search_world as W

SEARCHERS = [(BeamSearch, {}), (BeamSearch, {"selection": "ucb"}), (ParetoEvolution, {}), (OPRO, {})]
IDS = ["beam-halving", "beam-ucb", "pareto", "opro"]


@pytest.mark.parametrize("cls,kw", SEARCHERS, ids=IDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_search_optimizer_finds_the_optimum_within_its_budget(cls, kw, seed):
    assert W.accuracy(W.SEED_PROMPT) == 0.0
    p = W.make_param()
    engine = W.make_engine()
    opt = cls([p], W.evaluate, engine=engine, trainset=W.TRAIN, valset=W.VAL, seed=seed, max_metric_calls=300,
              stoppers=[MaxSteps(80)], **kw)
    while opt.stopped is None and opt.best_score < 1.0:
        opt.step()
    assert opt.best_score == 1.0, opt.info()
    assert W.accuracy(p.value) == 1.0 and all(g in p.value for g in W.GOOD)
    assert opt.metric_calls <= 300
    assert {r.role for r in engine.requests} == {"optimizer"}
    assert all(r.node == cls.registry_name for r in engine.requests)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_demo_bootstrap_finds_a_demo_set_covering_every_kind(seed):
    p = W.make_demos_param()
    opt = DemoBootstrap([p], W.evaluate_demos, trainset=W.DEMO_TRAIN, valset=W.VAL, seed=seed, k=3,
                        max_metric_calls=100)
    while opt.stopped is None and opt.best_score < 1.0:
        opt.step()
    assert W.demo_accuracy(p.value) == 1.0
    # only traces that passed the metric became demos (training ids 3, 7, 11 fail)
    assert all(f"demo source {i}\n" not in p.value + "\n" for i in (3, 7, 11))
    assert opt.metric_calls <= 100


def test_demo_bootstrap_needs_to_know_the_demos_parameter():
    from textopt.errors import InvalidVariableError
    a, b = W.make_demos_param(), W.make_param()
    with pytest.raises(InvalidVariableError, match="demos="):
        DemoBootstrap([a, b], W.evaluate_demos, trainset=W.DEMO_TRAIN, valset=W.VAL)


def test_multi_objective_prompt_keeps_objectives_apart_and_states_weights():
    async def evaluate(cand, ex):
        ok = W.GOOD[ex["kind"]] in cand["prompt"]
        short = 1.0 if len(cand["prompt"]) < 40 else 0.0
        return ({"accuracy": float(ok), "brevity": short},
                {"accuracy": "ACC-FEEDBACK wrong answer", "brevity": "LEN-FEEDBACK too long"},
                {"input": ex["question"]})

    p = W.make_param()
    engine = W.make_engine()
    opt = ParetoEvolution([p], evaluate, engine=engine, trainset=W.TRAIN, valset=W.VAL, seed=0,
                          objectives={"accuracy": 0.8, "brevity": 0.2}, merge_prob=0.0)
    for _ in range(6):
        info = opt.step()
    prompt = engine.requests[0].messages[-1].content
    assert "accuracy=0.8, brevity=0.2" in prompt
    acc = prompt.index("Feedback for objective 'accuracy' (weight 0.8):\nACC-FEEDBACK")
    length = prompt.index("Feedback for objective 'brevity' (weight 0.2):\nLEN-FEEDBACK")
    assert acc < length and "ACC-FEEDBACK" not in prompt[length:length + 80]
    front = info["objective_front"]
    assert front and all(h in opt.store.candidates for h in front)
    assert set(opt.frontier_wins()) <= set(opt.pool)


def test_pareto_frontier_counts_example_objective_instances_and_drops_dominated_candidates():
    from textopt.optim.store import Evaluation
    opt = ParetoEvolution([W.make_param()], W.evaluate, engine=W.make_engine(), trainset=W.TRAIN,
                          valset=W.VAL, objectives={"acc": 1.0, "len": 1.0})
    table = {"a": ([1, 0, 0, 0, 0, 0], [1] * 6), "b": ([1, 1, 0, 0, 0, 0], [1] * 6),
             "c": ([0, 0, 1, 0, 0, 0], [0] * 6), "d": ([0, 0, 1, 0, 0, 0], [0] * 6)}
    hs = {}
    for name, (acc, length) in table.items():
        hs[name] = h = opt.store.add({"prompt": name})
        for i, ex in enumerate(W.VAL):
            opt.store.put(h, "val", ex["id"], Evaluation({"acc": acc[i], "len": length[i]}, {}))
    opt.pool = [hs[n] for n in "abcd"]
    # a's instances are a subset of b's; d holds exactly c's (c is older); ties at 0 count for everyone
    assert opt.frontier_wins() == {hs["b"]: 2 + 3 + 6, hs["c"]: 1 + 3}


def test_evaluator_missing_an_objective_is_a_clear_error():
    from textopt.errors import InvalidVariableError
    opt = BeamSearch([W.make_param()], W.evaluate, engine=W.make_engine(), trainset=W.TRAIN, valset=W.VAL,
                     objectives={"accuracy": 1.0, "cost": 0.5})
    with pytest.raises(InvalidVariableError, match="missing"):
        opt.step()


def test_pareto_merge_combines_two_frontier_candidates():
    from textopt.runtime import run_sync
    p = W.make_param()
    engine = W.make_engine()
    opt = ParetoEvolution([p], W.evaluate, engine=engine, trainset=W.TRAIN, valset=W.VAL, seed=0, merge_prob=1.0)
    a = opt.store.add({"prompt": W.GOOD[0]})
    b = opt.store.add({"prompt": W.GOOD[1]})
    run_sync(opt.promote(a))
    run_sync(opt.evaluate(b, "val"))
    opt.pool = [a, b]
    assert set(opt.frontier_wins()) == {a, b}
    opt.step()
    merged = [h for h, c in opt.store.candidates.items() if c["origin"] == "merge"]
    assert len(merged) == 1 and set(opt.store.candidates[merged[0]]["parents"]) == {a, b}
    assert "<version_a>" in engine.requests[-1].messages[-1].content
    assert W.GOOD[0] in p.value and W.GOOD[1] in p.value and opt.best == merged[0]


def test_unparseable_proposals_are_recorded_and_survived():
    p = W.make_param()
    opt = BeamSearch([p], W.evaluate, engine=ScriptedEngine("I refuse to use tags."), trainset=W.TRAIN,
                     valset=W.VAL, seed=0)
    info = opt.step()
    assert p.value == W.SEED_PROMPT and info["stopped"] is None
    assert opt.store.rejected and "unparseable" in opt.store.rejected[0]["reason"]


def test_search_needs_an_engine_for_proposals():
    from textopt.errors import InvalidVariableError
    opt = OPRO([W.make_param()], W.evaluate, trainset=W.TRAIN, valset=W.VAL)
    with pytest.raises(InvalidVariableError, match="engine="):
        opt.step()


def test_optimizer_tags_never_reach_a_parameter():
    p = W.make_param()
    engine = ScriptedEngine(lambda r: "<new_value>think step by step <current_value>x</current_value></new_value>")
    opt = BeamSearch([p], W.evaluate, engine=engine, trainset=W.TRAIN, valset=W.VAL, seed=0)
    opt.step()
    assert "<current_value>" not in p.value
    assert any("tag <current_value>" in r["reason"].lower() for r in opt.store.rejected)
    repairs = [r.messages[-1].content for r in engine.requests if "could not be used" in r.messages[-1].content]
    assert repairs and all("<current_value>" in r.lower() for r in repairs)   # each bad answer got one repair request
    assert len(engine.requests) == 2 * len(repairs)


@pytest.mark.parametrize("cls,kw", SEARCHERS, ids=IDS)
def test_interrupted_run_resumed_under_replay_matches_the_recorded_run(cls, kw, tmp_path):
    import json

    from textopt.engines.replay import ReplayEngine
    tape = tmp_path / "calls.jsonl"

    def build(engine):
        p = W.make_param()
        return p, cls([p], W.evaluate, engine=engine, trainset=W.TRAIN, valset=W.VAL, seed=3, **kw)

    p, live = build(ScriptedEngine(W.editor, record=tape))
    for _ in range(4):
        live.step()
    q, first = build(ReplayEngine(tape))
    for _ in range(2):
        first.step()
    saved = json.loads(json.dumps(first.state_dict(), sort_keys=True))
    r, resumed = build(ReplayEngine(tape))
    resumed.load_state_dict(saved)
    for _ in range(2):
        resumed.step()
    assert r.value == p.value
    assert json.dumps(resumed.state_dict(), sort_keys=True) == json.dumps(live.state_dict(), sort_keys=True)


def test_optimizer_instructions_never_leak_into_a_parameter():
    from textopt.optim.prompts_search import SEARCH_SYSTEM
    leak = SEARCH_SYSTEM.split(". ")[2]
    p = W.make_param()
    engine = ScriptedEngine(lambda r: f"<new_value>{leak}. Think step by step.</new_value>")
    opt = OPRO([p], W.evaluate, engine=engine, trainset=W.TRAIN, valset=W.VAL, seed=0, proposals=2)
    opt.step()
    assert leak not in p.value and len(opt.store.candidates) == 1
    assert all("copies the optimizer's instruction" in r["reason"] for r in opt.store.rejected) and opt.store.rejected


def test_beam_edits_are_written_from_the_examples_the_candidate_got_wrong():
    p = W.make_param()
    p.value = W.GOOD[0]          # solves the kind-0 examples only
    engine = W.make_engine()
    opt = BeamSearch([p], W.evaluate, engine=engine, trainset=W.TRAIN, valset=W.VAL, seed=0, beam_width=1,
                     edits=1, minibatch_size=9)
    opt.step()
    prompt = engine.requests[0].messages[-1].content
    assert prompt.count("wrong: expected 42") == 6 and "\ncorrect" not in prompt


def test_a_repeated_opening_tag_is_tolerated():
    p = W.make_param()
    engine = ScriptedEngine(lambda r: "<new_value><new_value> Solve the task.; think step by step</new_value>")
    opt = BeamSearch([p], W.evaluate, engine=engine, trainset=W.TRAIN, valset=W.VAL, seed=0, beam_width=1, edits=1)
    opt.step()
    assert not opt.store.rejected and "Solve the task.; think step by step" in [
        c["values"]["prompt"] for c in opt.store.candidates.values()]


def test_an_exhausted_search_stops_by_itself():
    p = W.make_param()
    p.value = "; ".join(W.GOOD)          # already perfect: every mutation is skipped
    opt = ParetoEvolution([p], W.evaluate, engine=W.make_engine(), trainset=W.TRAIN, valset=W.VAL, seed=0,
                          max_idle_steps=3)
    info = opt.run()                      # no stopper, no budget: must still end
    assert info["stopped"].startswith("search exhausted") and p.value == "; ".join(W.GOOD)
    d = W.make_demos_param()
    demos = DemoBootstrap([d], W.evaluate_demos, trainset=W.DEMO_TRAIN[:2], valset=W.VAL, seed=0, k=2)
    assert demos.run()["stopped"].startswith("search exhausted")
