"""Exact resume on a replay-engine run: interrupt after step k, resume in fresh objects, compare with an
uninterrupted replay run (parameters, log, usage)."""
import importlib.util

import pytest

import textopt as tx
from textopt.engines import ScriptedEngine
from textopt.train import Trainer
from tests.train.toy import backward_and_optimizer, data, solver

pytestmark = pytest.mark.skipif(importlib.util.find_spec("textopt.engines.replay") is None,
                                reason="textopt.engines.replay is not in this tree yet")


def build(out, fwd, teacher, steps=4):
    p = tx.Variable("Solve the sum.", role="system prompt of the solver", requires_grad=True, name="prompt")
    opt = tx.optim.TGD([p], engine=teacher)
    tr = Trainer(tx.nn.LLMCall(fwd, system_prompt=p), tx.nn.NumberMatch(), opt, train=data(6), val=data(4, 20),
                 test=data(3, 40), batch_size=2, steps=steps, out_dir=out, seed=5, backward_engine=teacher,
                 progress=False, plot=False, feedback_from="all", screen=False)
    return tr, p


def replay_engines(tmp_path):
    from textopt.engines.replay import ReplayEngine
    return ReplayEngine(tmp_path / "solver.jsonl"), ReplayEngine(tmp_path / "teacher.jsonl")


@pytest.mark.parametrize("k", [1, 3])
def test_replay_run_resumes_exactly(tmp_path, k):
    rec = build(tmp_path / "rec", ScriptedEngine(solver, record=tmp_path / "solver.jsonl"),
                ScriptedEngine(backward_and_optimizer, record=tmp_path / "teacher.jsonl"))[0]
    rec.fit()

    full, p_full = build(tmp_path / "full", *replay_engines(tmp_path))
    full_res = full.fit()

    part, _ = build(tmp_path / "part", *replay_engines(tmp_path))
    assert part.fit(max_steps=k).steps == k            # interrupted after step k
    resumed, p_res = build(tmp_path / "part", *replay_engines(tmp_path))  # a new process would do this
    res = resumed.resume()

    assert p_res.value == p_full.value and res.test_score == full_res.test_score
    assert (tmp_path / "part" / "log.jsonl").read_text() == (tmp_path / "full" / "log.jsonl").read_text()
    assert resumed.usage() == full.usage()
    assert resumed.usage()["by_role"]["optimizer"]["calls"] == 4
