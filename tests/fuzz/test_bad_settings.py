"""Bad settings and bad saved state, as a user writes them: each is ONE textopt error when the object is built (not
at its first call, not a TypeError from deep inside), and a state_dict that does not load leaves the object as it
was. Hypothesis covers the values; the parametrized cases name the settings."""
from __future__ import annotations

import copy
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import textopt as tx
from textopt.engines import Budget, Request
from textopt.errors import (BadRequestError, CheckpointError, DataError, EngineSpecError, GraphError,
                            InvalidVariableError, TextoptError)
from textopt.train import Sampler, Trainer

from .test_fuzz_inputs import fuzz

pytestmark = pytest.mark.fuzz

ENGINE = tx.get_engine("scripted", cache=False)
JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                 st.text(max_size=8), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3),
                                                                                          st.integers(), max_size=2))


def prompt() -> tx.Variable:
    return tx.Variable("Answer.", role="system prompt", requires_grad=True, name="p")


# -- settings --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [{"temperature": -1}, {"temperature": math.nan}, {"temperature": math.inf},
                                {"top_p": 0}, {"top_p": 1.5}, {"max_tokens": 0}, {"foo": 1}, {"messages": ()}])
def test_bad_request_settings_are_refused_where_the_module_is_built(kw):
    with pytest.raises(BadRequestError):
        Request.chat("q", **kw)
    with pytest.raises(BadRequestError):
        tx.nn.LLMCall(ENGINE, **kw)
    with pytest.raises(BadRequestError):
        tx.nn.FormattedLLMCall(ENGINE, "Q: {q}", **kw)


def test_bad_backward_and_loss_caps_are_refused_where_the_module_is_built():
    with pytest.raises(BadRequestError, match="backward_max_tokens"):
        tx.nn.LLMCall(ENGINE, backward_max_tokens=-1)
    with pytest.raises(BadRequestError, match="max_tokens"):
        tx.nn.TextLoss("Evaluate.", ENGINE, max_tokens=0)


@given(key=st.sampled_from(["constraints", "examples", "history", "max_gradients", "max_gradient_chars",
                            "max_context_chars", "history_feedback_chars", "temperature", "max_tokens", "lr",
                            "value_pattern", "copy_guard", "repair_temperature", "add_when_stuck",
                            "refuse_reverted", "tactics", "tactic_turns", "edit", "add_retries"]), value=JUNK)
@fuzz(150)
def test_tgd_options_are_accepted_or_refused_at_construction(key, value):
    """Whatever the value, building TGD either works or raises InvalidVariableError, for the defaults and for a
    param group's own options alike."""
    for build in (lambda: tx.optim.TGD([prompt()], engine=ENGINE, **{key: value}),
                  lambda: tx.optim.TGD([{"params": [prompt()], key: value}], engine=ENGINE)):
        try:
            build()
        except InvalidVariableError as exc:
            assert f"TGD {key}" in str(exc)


@pytest.mark.parametrize("params,match", [
    ("p", "write TGD\\(\\[p\\]\\)"), (5, "iterable of parameters"), ({"params": []}, "iterable of parameters"),
    ([{"lr": 1}], "'params' list"), ([{"params": 5}], "'params' must be"), ([], "empty parameter list")])
def test_an_optimizer_given_something_else_than_parameters_says_what_to_pass(params, match):
    params = prompt() if params == "p" else params
    with pytest.raises(InvalidVariableError, match=match):
        tx.optim.TGD(params, engine=ENGINE)


@pytest.mark.parametrize("kw,match", [
    ({"max_concurrency": 0}, "max_concurrency"), ({"max_concurrency": "8"}, "max_concurrency"),
    ({"max_retries": -1}, "max_retries"), ({"retry_max_wait": -1.0}, "retry_max_wait"),
    ({"retry_initial_wait": math.inf}, "retry_initial_wait"), ({"timeout_retries": 1.5}, "timeout_retries"),
    ({"budget": 5}, "budget")])
def test_bad_engine_settings_are_one_spec_error(kw, match):
    with pytest.raises(EngineSpecError, match=match):
        tx.get_engine("scripted", **kw)


@pytest.mark.parametrize("timeout", [0, -1, "60", math.nan])
def test_a_provider_timeout_must_be_a_positive_number(timeout):
    with pytest.raises(EngineSpecError, match="timeout"):
        tx.get_engine("openai:http://127.0.0.1:9/v1#m", timeout=timeout)


@pytest.mark.parametrize("kw", [{"max_usd": -1}, {"max_calls": "x"}, {"max_tokens": 1.5}, {"max_usd": "1"}])
def test_bad_budget_limits_are_refused(kw):
    with pytest.raises(EngineSpecError, match="Budget"):
        Budget(**kw)


@pytest.mark.parametrize("limit", [0, -1, 2.5, "4", True])
def test_backward_refuses_a_bad_concurrency_limit(limit):
    p = prompt()
    loss = tx.nn.LLMCall(ENGINE, system_prompt=p)("q")
    with pytest.raises(GraphError, match="max_concurrency"):
        loss.backward(engine=ENGINE, max_concurrency=limit)
    assert not p.grad   # nothing ran


def _trainer(**kw):
    p = prompt()
    args = dict(model=tx.nn.LLMCall(ENGINE, system_prompt=p), loss_fn=tx.nn.NumberMatch(),
                optimizer=tx.optim.TGD([p], engine=ENGINE), train=[("1 + 1?", "2")], progress=False, plot=False)
    args.update(kw)
    return Trainer(args.pop("model"), args.pop("loss_fn"), args.pop("optimizer"), **args)


@pytest.mark.parametrize("kw,match", [
    ({"model": 5}, "model"), ({"loss_fn": "exact"}, "loss_fn"), ({"optimizer": "tgd"}, "optimizer"),
    ({"steps": "3"}, "steps"), ({"steps": -1}, "steps"), ({"batch_size": 0}, "batch_size"),
    ({"seed": 1.5}, "seed"), ({"patience": 0}, "patience"), ({"eval_concurrency": 0}, "eval_concurrency"),
    ({"out_dir": 5}, "out_dir"), ({"train": 5}, "list of examples"), ({"train": "abc"}, "list of examples"),
    ({"val": {"x": 1, "y": 2}}, "list of examples")])
def test_bad_trainer_arguments_are_one_data_error(kw, match):
    with pytest.raises(DataError, match=match):
        _trainer(**kw)


@pytest.mark.parametrize("examples", [5, "abc", {"x": 1}, None])
def test_split_dataset_and_searches_refuse_what_is_not_a_list_of_examples(examples):
    with pytest.raises(DataError, match="list of examples"):
        tx.optim.split_dataset(examples)
    if examples is not None:
        with pytest.raises(DataError, match="list of examples"):
            tx.optim.BeamSearch([prompt()], lambda *a: 1.0, trainset=examples, valset=[("a", "b")])


def test_text_joins_with_plus_on_either_side_and_refuses_other_types():
    p = prompt()
    assert ("Be brief.\n" + p).value == "Be brief.\n\nAnswer." and (p + "!").value == "Answer.\n!"
    with pytest.raises(InvalidVariableError, match="joined"):
        p + 5


# -- state_dicts: malformed ones raise one CheckpointError and change nothing ------------------------------------
def _corruptions(sd: dict) -> list:
    """A state_dict with a key taken out or a value replaced, at each level of its top two."""
    out = [None, 5, [], "state"]
    for key in sd:
        out.append({k: v for k, v in sd.items() if k != key})
        for junk in (None, 5, "x", [1], {"0": 1}):
            out.append({**sd, key: junk})
        if isinstance(sd[key], dict):
            for inner in sd[key]:
                out.append({**sd, key: {**sd[key], inner: "x"}})
    return out


def _check_all_or_nothing(obj, snapshot=None):
    """Every corruption of ``obj.state_dict()`` either loads or raises a textopt error with ``snapshot()`` (what
    the object holds: its state_dict, and the parameters' values) unchanged."""
    snapshot = snapshot or obj.state_dict
    good, before = obj.state_dict(), snapshot()
    for bad in _corruptions(copy.deepcopy(good)):
        try:
            obj.load_state_dict(bad)
        except TextoptError:
            assert snapshot() == before, f"a failed load changed the state: {bad!r:.200}"
        else:
            obj.load_state_dict(copy.deepcopy(good))


def test_optimizer_state_dicts_load_all_or_nothing():
    p = prompt()
    opt = tx.optim.TGD([p], engine=ENGINE)
    opt.state[p]["history"] = [{"value": "Answer.", "feedback": "fine"}]

    _check_all_or_nothing(opt, lambda: (p.value, opt.state_dict()))
    with pytest.raises(CheckpointError, match="TGD.load_state_dict"):
        opt.load_state_dict({"param_groups": opt.state_dict()["param_groups"]})   # "state" missing


def test_module_sampler_and_budget_state_dicts_load_all_or_nothing():
    model = tx.nn.LLMCall(ENGINE, system_prompt=prompt())
    _check_all_or_nothing(model)
    with pytest.raises(InvalidVariableError):
        model.load_state_dict({"system_prompt": 5})
    assert model.system_prompt.value == "Answer."
    sampler = Sampler(5, 2, seed=1)
    sampler.next_batch()
    _check_all_or_nothing(sampler)
    with pytest.raises(CheckpointError, match="perm"):
        sampler.load_state_dict({**sampler.state_dict(), "perm": [0, 0, 1, 2, 3]})
    budget = Budget(max_calls=10)
    budget.calls = 3
    _check_all_or_nothing(budget)
    with pytest.raises(CheckpointError):
        budget.load_state_dict({"calls": -1, "tokens": 0, "usd": 0.0})


def test_a_malformed_checkpoint_leaves_the_trainer_as_it_was(tmp_path):
    tr = _trainer(out_dir=tmp_path / "run", steps=1)
    good = tr.state_dict()
    for bad in ({**good, "sampler": {"n": 1}}, {**good, "optimizer": {"state": {}}}, {**good, "history": None},
                {**good, "params": {"system_prompt": 7}}, {k: v for k, v in good.items() if k != "step"}):
        with pytest.raises(TextoptError):
            tr.load_state_dict(bad)
        assert tr.model.system_prompt.value == "Answer." and tr.step_count == 0
    tr.load_state_dict(good)


# -- searches, metrics and numeric bridges -------------------------------------------------------------------------
DATA = dict(trainset=[("a", "b")], valset=[("c", "d")])


@pytest.mark.parametrize("cls,kw,match", [
    ("BeamSearch", {"population": 3}, "unknown options \\['population'\\]"),
    ("BeamSearch", {"beam_width": 0}, "beam_width"), ("BeamSearch", {"edits": "2"}, "edits"),
    ("BeamSearch", {"ucb_pulls": -1}, "ucb_pulls"), ("BeamSearch", {"seed": [1]}, "seed"),
    ("BeamSearch", {"max_metric_calls": -1}, "max_metric_calls"), ("BeamSearch", {"max_concurrency": 0}, "max_concurrency"),
    ("BeamSearch", {"temperature": -0.5}, "temperature"), ("BeamSearch", {"budget": 3}, "budget"),
    ("OPRO", {"top_n": 0}, "top_n"), ("OPRO", {"n_examples": -1}, "n_examples"),
    ("ParetoEvolution", {"merge_prob": 2}, "merge_prob"), ("ParetoEvolution", {"minibatch_size": 0}, "minibatch")])
def test_bad_search_options_are_refused_at_construction(cls, kw, match):
    with pytest.raises(InvalidVariableError, match=match):
        getattr(tx.optim, cls)([prompt()], lambda *a: 1.0, engine=ENGINE, **DATA, **kw)


@pytest.mark.parametrize("params", ["p", 5, [("a", prompt(), 3)]])
def test_searches_and_the_mixed_optimizer_say_how_to_pass_parameters(params):
    params = prompt() if params == "p" else params
    with pytest.raises(InvalidVariableError, match="parameters|pairs"):
        tx.optim.BeamSearch(params, lambda *a: 1.0, engine=ENGINE, **DATA)
    if not isinstance(params, list):
        with pytest.raises(InvalidVariableError, match="iterable of parameters"):
            tx.optim.MixedOptimizer(params)


def test_bad_metric_and_numeric_settings_are_refused_at_construction():
    import textopt.numeric as N
    for build, match in ((lambda: tx.nn.Regex("("), "not a regular expression"),
                         (lambda: tx.nn.Regex(5), "not a regular expression"),
                         (lambda: N.HashingEmbedder(dim=0), "dim"), (lambda: N.HashingEmbedder(ngram="3"), "ngram"),
                         (lambda: N.EmbeddingSimilarity(5), "embedder"), (lambda: N.MetricScore("f1"), "callable"),
                         (lambda: N.JudgeScore(ENGINE, 5), "instruction"),
                         (lambda: N.JudgeScore(ENGINE, "Rate.", low=3, high=1), "low < high"),
                         (lambda: N.parameter("x", "w"), "numbers"), (lambda: N.parameter(math.nan, "w"), "finite")):
        with pytest.raises(InvalidVariableError, match=match):
            build()
    with pytest.raises(BadRequestError):
        N.JudgeScore(ENGINE, "Rate.", max_tokens=0)
