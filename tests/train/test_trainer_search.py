"""The Trainer drives a search optimizer (``uses_gradients = False``) in its one run loop: ``await opt.astep()``
per step, the Trainer's log, checkpoint and result.json, exact resume with usage counted once, patience and the
optimizer's own stop reasons."""
import json
import re

import pytest

import textopt as tx
from textopt.optim import BeamSearch, Evaluator, OPRO
from textopt.train import Trainer
from tests.train.toy import data, h, make_engines


def editor(req) -> str:
    """The optimizer LLM of a search: adds one operand kind the current value lacks (then a unique phrase)."""
    text = req.messages[-1].content
    found = re.findall(r"<current_value>\n(.*?)\n</current_value>", text, re.S) or \
        re.findall(r"<value[^>]*>\n(.*?)\n</value>", text, re.S)
    cur = found[-1] if found else "Solve the sum."
    add = "small" if "small" not in cur else ("large" if "large" not in cur else f"v{h(text)}")
    return f"<new_value>{cur} Handle {add} sums.</new_value>"


def build(tmp_path, name="run", steps=3, cls=BeamSearch, opt_kw=None, **kw):
    fwd, teacher = make_engines()
    teacher.responder = editor
    p = tx.Variable("Solve the sum.", role="system prompt of the solver", requires_grad=True, name="prompt")
    model = tx.nn.LLMCall(fwd, system_prompt=p)
    evaluator = Evaluator.from_module(model, tx.nn.NumberMatch(), input="x", target="y")
    train, val = data(6), data(4, 30)   # disjoint: a search selects on a held-out split
    opt = cls(model.named_parameters(), evaluator, engine=teacher, trainset=train, valset=val, seed=3,
              **({"minibatch_size": 2, "edits": 1} if cls is BeamSearch else {}), **(opt_kw or {}))
    tr = Trainer(model, tx.nn.NumberMatch(), opt, train=train, val=val, test=data(3, 40), steps=steps,
                 out_dir=tmp_path / name, seed=3, progress=False, **kw)
    return tr, p, fwd, teacher


def rows(tmp_path, name):
    return [json.loads(line) for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]


def test_a_search_runs_in_the_trainer_with_its_files(tmp_path):
    tr, p, fwd, teacher = build(tmp_path)
    res = tr.fit()
    assert "small" in p.value and "large" in p.value
    assert res.steps == 3 and res.best_val == 1.0 and res.test_score == 1.0 and res.stopped is None
    log = rows(tmp_path, "run")
    kinds = [r["kind"] for r in log]
    assert kinds[:2] == ["new_best", "init"] and kinds.count("step") == 3 and "proposed" in kinds
    init = log[1]
    assert init["val_score"] == 0.0 and init["params"] == {"system_prompt": "Solve the sum."}
    steps = [r for r in log if r["kind"] == "step"]
    assert [r["step"] for r in steps] == [1, 2, 3] and steps[-1]["val_score"] == 1.0
    assert all("optimizer" in r["usage"]["by_role"] for r in steps)   # the usage so far, in every curve row
    ck = json.loads((tmp_path / "run" / "checkpoint.json").read_text())   # the Trainer's layout
    assert ck["step"] == 3 and ck["params"]["system_prompt"] == p.value and ck["optimizer"]["extra"]["step"] == 3
    assert [u["engine"] for u in ck["usage"]] == ["solver", "teacher"]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert (result["steps"], result["best_val"], result["test_score"], result["stopped"]) == (3, 1.0, 1.0, None)
    assert result["params"] == {"system_prompt": p.value}
    assert (tmp_path / "run" / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert teacher.usage.as_dict()["by_role"]["optimizer"]["calls"] >= 2
    assert tr.optimizer.callbacks == []   # the Trainer's log callback is removed after the run


class Crash(Exception):
    pass


@pytest.mark.parametrize("k", [0, 1, 2])
def test_search_resume_after_a_crash_matches_the_uninterrupted_run(tmp_path, k):
    ref, p_ref, fwd_ref, teacher_ref = build(tmp_path, name="ref", steps=4)
    ref_res = ref.fit()

    tr, p, fwd, teacher = build(tmp_path, name="crash", steps=4)
    def crashing(req):
        if tr.optimizer.step_count == k:   # step k+1 dies mid-way, after some of its evaluations
            raise Crash("power cut")
        return editor(req)
    teacher.responder = crashing
    teacher.max_retries = 0
    with pytest.raises(Exception):
        tr.fit()
    assert json.loads((tmp_path / "crash" / "checkpoint.json").read_text())["step"] == k
    assert fwd.usage.as_dict() != fwd_ref.usage.as_dict()

    # a new process: fresh objects, same configuration
    tr2, p2, fwd2, teacher2 = build(tmp_path, name="crash", steps=4)
    res = tr2.resume()
    assert p2.value == p_ref.value and res.steps == ref_res.steps == 4
    assert (res.best_val, res.test_score) == (ref_res.best_val, ref_res.test_score)
    assert (tmp_path / "crash" / "log.jsonl").read_text() == (tmp_path / "ref" / "log.jsonl").read_text()
    assert (tmp_path / "crash" / "result.json").read_text() == (tmp_path / "ref" / "result.json").read_text()
    # usage restored from the checkpoint: the crashed step's calls are not counted twice
    assert fwd2.usage.as_dict() == fwd_ref.usage.as_dict()
    assert teacher2.usage.as_dict() == teacher_ref.usage.as_dict()
    assert tr2.optimizer.state_dict() == ref.optimizer.state_dict()


def test_search_interrupted_with_max_steps_then_resumed(tmp_path):
    ref, p_ref, _, _ = build(tmp_path, name="ref", steps=3, cls=OPRO)
    ref.fit()
    part = build(tmp_path, name="part", steps=3, cls=OPRO)[0].fit(max_steps=1)
    assert part.steps == 1 and part.test_score is None and not (tmp_path / "part" / "result.json").exists()
    tr2, p2, _, _ = build(tmp_path, name="part", steps=3, cls=OPRO)
    tr2.fit(resume=True)
    assert p2.value == p_ref.value and tr2.usage() == ref.usage()
    assert (tmp_path / "part" / "log.jsonl").read_text() == (tmp_path / "ref" / "log.jsonl").read_text()


def test_patience_stops_a_search_without_a_new_best(tmp_path):
    tr, p, fwd, teacher = build(tmp_path, steps=10, patience=2)
    teacher.responder = lambda req: "<new_value>Guess.</new_value>"   # never better than the start
    res = tr.fit()
    assert res.stopped_early and res.steps == 2 and res.stopped == "no improvement in 2 steps"
    assert p.value == "Solve the sum." and res.best_val == 0.0
    assert json.loads((tmp_path / "run" / "result.json").read_text())["stopped"] == "no improvement in 2 steps"


def test_the_optimizers_own_stop_ends_the_run(tmp_path):
    tr, p, fwd, teacher = build(tmp_path, steps=10, opt_kw={"max_metric_calls": 30})
    res = tr.fit()
    assert res.stopped_early and res.stopped.startswith("budget") and res.steps < 10
    assert res.steps == tr.optimizer.step_count and res.test_score is not None   # the test split is still scored
    resumed = build(tmp_path, steps=10, opt_kw={"max_metric_calls": 30})[0].fit(resume=True)
    assert (resumed.steps, resumed.stopped, resumed.test_score) == (res.steps, res.stopped, res.test_score)
