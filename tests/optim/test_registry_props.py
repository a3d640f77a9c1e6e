"""One property suite over EVERY registered optimizer (``textopt.optim.OPTIMIZERS``).

Each optimizer needs an adapter in ``ADAPTERS`` (a factory building it on a deterministic scripted world); a
registered optimizer without one fails ``test_every_optimizer_has_an_adapter``. Properties:
- a ``state_dict`` taken mid-run, JSON round-tripped and loaded into a fresh optimizer, continues to exactly the
  same parameters and state as an uninterrupted run;
- budgets (metric calls, engine calls) are never exceeded, and running out stops cleanly;
- validation-gated optimizers never end on a candidate scoring lower on val than the starting values.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import textopt as tx
from textopt.engines import Budget, ScriptedEngine
from textopt.errors import BudgetExceeded, OptimizerStepError
from textopt.optim import OPTIMIZERS
from tests.optim import search_world as W

PROPS = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass
class Harness:
    opt: object
    step: Callable[[], object]        # one optimizer step (plus whatever forward/backward it needs)
    values: Callable[[], dict]        # current parameter values
    val_score: Callable[[], float]    # true val accuracy of the current values
    gated: bool                       # promises never to end worse on val than the start
    counted: list                     # evaluator calls actually made


def _search(cls, **extra):
    def make(seed: int, *, max_metric_calls=None, budget=None, editor=W.editor, start=W.SEED_PROMPT):
        counted = []

        async def evaluate(cand, ex):
            counted.append(ex["id"])
            return await W.evaluate(cand, ex)

        p = W.make_param()
        p.value = start
        opt = cls([p], evaluate, engine=ScriptedEngine(editor, budget=budget), trainset=W.TRAIN, valset=W.VAL,
                  seed=seed, max_metric_calls=max_metric_calls, budget=budget, **extra)
        return Harness(opt, opt.step, lambda: {"prompt": p.value}, lambda: W.accuracy(p.value), True, counted)
    return make


def _demos(seed: int, *, max_metric_calls=None, budget=None, editor=None, start=""):
    counted = []

    async def evaluate(cand, ex):
        counted.append(ex["id"])
        return await W.evaluate_demos(cand, ex)

    p = W.make_demos_param()
    p.value = start
    opt = OPTIMIZERS["demos"]([p], evaluate, trainset=W.DEMO_TRAIN, valset=W.VAL, seed=seed, k=2,
                              max_metric_calls=max_metric_calls, budget=budget)
    return Harness(opt, opt.step, lambda: {"demos": p.value}, lambda: W.demo_accuracy(p.value), True, counted)


def _tgd(seed: int, *, max_metric_calls=None, budget=None, editor=None, start=W.SEED_PROMPT):
    """TGD: forward (LLMCall) -> TextLoss -> backward -> step, on training question #(step + seed)."""
    from textopt.optim.prompts import NEW_VALUE_TAG

    def respond(req):
        blob = hashlib.sha256(json.dumps(req.canonical("m"), sort_keys=True).encode()).hexdigest()[:8]
        if req.role == "optimizer":
            return f"<{NEW_VALUE_TAG}>Solve the task, variant {blob}.</{NEW_VALUE_TAG}>"
        return {"forward": "answer 7", "loss": "wrong: expected 42"}.get(req.role, f"be more careful {blob}")

    engine = ScriptedEngine(respond, budget=budget)
    p = W.make_param()
    p.value = start
    call = tx.nn.LLMCall(engine, system_prompt=p)
    loss_fn = tx.nn.TextLoss("Check the answer; the right answer is 42.", engine=engine)
    opt = OPTIMIZERS["tgd"]([p], engine=engine)

    def step():
        k = opt.state[p].get("step", 0) if p in opt.state else 0
        opt.zero_grad()
        loss = loss_fn(call(W.TRAIN[(k + seed) % len(W.TRAIN)]["question"]))
        loss.backward(engine=engine)
        return opt.step()

    return Harness(opt, step, lambda: {"prompt": p.value}, lambda: W.accuracy(p.value), False, [])


ADAPTERS = {"beam": _search(OPTIMIZERS["beam"]), "pareto": _search(OPTIMIZERS["pareto"], merge_prob=0.3),
            "opro": _search(OPTIMIZERS["opro"]), "demos": _demos}
if "tgd" in OPTIMIZERS:
    ADAPTERS["tgd"] = _tgd
NAMES = sorted(OPTIMIZERS)


def adapter(name: str):
    if name not in ADAPTERS:
        pytest.fail(f"optimizer {name!r} is registered but has no adapter in tests/optim/test_registry_props.py; "
                    f"add a factory building it on a deterministic scripted world")
    return ADAPTERS[name]


def test_every_optimizer_has_an_adapter():
    missing = [n for n in OPTIMIZERS if n not in ADAPTERS]
    assert not missing, f"add an adapter in tests/optim/test_registry_props.py for {missing}"
    assert {"beam", "pareto", "opro", "demos"} <= set(OPTIMIZERS)


def _canon(sd: dict) -> str:
    return json.dumps(sd, sort_keys=True, default=str)


@pytest.mark.parametrize("name", NAMES)
@PROPS
@given(seed=st.integers(0, 50), cut=st.integers(1, 3))
def test_state_dict_round_trip_mid_run_matches_uninterrupted_run(name, seed, cut):
    total = 4
    full = adapter(name)(seed)
    for _ in range(total):
        full.step()

    first = adapter(name)(seed)
    for _ in range(cut):
        first.step()
    saved = json.loads(_canon(first.opt.state_dict()))   # must survive JSON (checkpoints are JSON)
    first.step()                                           # the interrupted process goes on a bit; ignored

    resumed = adapter(name)(seed)
    resumed.opt.load_state_dict(saved)
    for _ in range(total - cut):
        resumed.step()
    assert resumed.values() == full.values()
    assert _canon(resumed.opt.state_dict()) == _canon(full.opt.state_dict())


@pytest.mark.parametrize("name", NAMES)
@PROPS
@given(seed=st.integers(0, 50), max_calls=st.integers(1, 12))
def test_engine_budget_is_never_exceeded(name, seed, max_calls):
    budget = Budget(max_calls=max_calls)
    h = adapter(name)(seed, budget=budget)
    stopped = False
    for _ in range(30):
        try:
            info = h.step()
        except BudgetExceeded:
            stopped = True      # manual loops: the call was refused, nothing sent
            break
        except OptimizerStepError as exc:   # TGD reports a refused update call inside its transactional error
            assert "BudgetExceeded" in str(exc)
            stopped = True
            break
        if isinstance(info, dict) and info.get("stopped"):
            stopped = True
            break
    assert budget.calls <= max_calls
    if name != "demos":         # DemoBootstrap makes no LLM call of its own here
        # either the budget ended the run, or the search reached a perfect score and had nothing left to ask
        assert budget.calls >= 1 and (stopped or getattr(h.opt, "best_score", None) == 1.0)


@pytest.mark.parametrize("name", NAMES)
@PROPS
@given(seed=st.integers(0, 50), max_metric_calls=st.integers(0, 40))
def test_metric_call_budget_is_never_exceeded(name, seed, max_metric_calls):
    from textopt.optim import SearchOptimizer
    if not issubclass(OPTIMIZERS[name], SearchOptimizer):
        pytest.skip(f"{name} calls no metric itself (its trainer does)")
    h = adapter(name)(seed, max_metric_calls=max_metric_calls)
    for _ in range(40):
        info = h.step()
        if info["stopped"]:
            break
    assert len(h.counted) == h.opt.metric_calls <= max_metric_calls
    assert info["stopped"] and "budget" in info["stopped"]


def _adversary(req):
    """An optimizer LLM that always makes things worse (adds a harmful phrase)."""
    text = req.messages[-1].content
    value = W._last(text, "current_value") or W._last(text, "value") or W._last(text, "version_a") or ""
    return f"<new_value>{value}; {W.BAD[req.sample_index % 2]}</new_value>"


@pytest.mark.parametrize("name", NAMES)
@PROPS
@given(seed=st.integers(0, 50), adversarial=st.booleans(), start=st.sampled_from(
    [W.SEED_PROMPT, W.GOOD[0], f"{W.GOOD[0]}; {W.GOOD[2]}", "; ".join(W.GOOD)]))
def test_validation_gated_optimizers_never_end_worse_than_start(name, seed, adversarial, start):
    if not adapter(name)(0).gated:
        pytest.skip(f"{name} is a local step without a validation gate (its trainer reverts instead)")
    if name == "demos":
        start = "" if start == W.SEED_PROMPT else "Input: [b] demo source 1\nOutput: 42"
    h = adapter(name)(seed, editor=_adversary if adversarial else W.editor, start=start,
                       max_metric_calls=120)
    before = h.val_score()
    for _ in range(5):
        h.step()
    assert h.val_score() >= before
    assert h.opt.best_score >= before
    if adversarial:
        assert h.values()[h.opt.names[0]] == start or name == "demos"
