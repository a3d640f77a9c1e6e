"""End to end on the real embedded model (SmolLM2-135M): 2 steps, 2 examples — the whole loop runs."""
import importlib.util
import json

import pytest

import textopt as tx
from textopt.train import Trainer

pytestmark = pytest.mark.local

HAS_LOCAL = importlib.util.find_spec("textopt.engines.local") is not None


@pytest.mark.skipif(not HAS_LOCAL, reason="textopt.engines.local (get_engine('local')) is not in this tree yet")
def test_two_steps_on_the_local_model(tmp_path):
    engine = tx.get_engine("local")
    p = tx.Variable("Answer the arithmetic question with a number.", role="system prompt of the solver",
                    requires_grad=True, name="prompt")
    model = tx.nn.LLMCall(engine, system_prompt=p, max_tokens=24, backward_max_tokens=48)
    opt = tx.optim.TGD([p], engine=engine, max_tokens=48, history=2)
    data = [{"x": "What is 2 + 3?", "y": "5"}, {"x": "What is 4 + 4?", "y": "8"}]
    trainer = Trainer(model, tx.nn.NumberMatch(), opt, train=data, val=data, batch_size=2, steps=2,
                      out_dir=tmp_path, seed=0, backward_engine=engine, progress=False,
                      aggregate_max_tokens=64)
    res = trainer.fit()
    assert res.steps == 2
    rows = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    usage = rows[-1]["usage"]["by_role"]
    # answered by the model or by the response cache (on by default; the spec's engine is shared by the session)
    sent = {role: u["calls"] + u["cached"] for role, u in usage.items()}
    assert sent["forward"] >= 4 and sent["backward"] >= 2 and sent["optimizer"] >= 2
    for r in rows[1:]:  # each step either produced a clean value or changed nothing and said why
        value = r["params"]["system_prompt"]
        assert value.strip() and "<NEW_VALUE>" not in value and "</NEW_VALUE>" not in value
        assert r["step_error"] is None or "NEW_VALUE" in r["step_error"]
    assert "tgd:prompt" in rows[-1]["usage"]["by_node"]
    assert (tmp_path / "curve.png").exists() and (tmp_path / "checkpoint.json").exists()
