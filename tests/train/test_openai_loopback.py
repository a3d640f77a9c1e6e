"""The training loop over the real OpenAI SDK path (loopback HTTP server): the loop runs, TGD's request reaches
the wire with the full value and history, and the API key never reaches the log, checkpoint or result."""
import re

import pytest

import textopt as tx
from textopt.train import Trainer
from tests.train.toy import data

pytest.importorskip("openai")
servers = pytest.importorskip("textopt.testing")

KEY = "sk-test-TRAINER-5ecr3t-0123456789abcdef"


def responder(body: dict) -> str:
    msgs = body["messages"]
    system = next((m["content"] for m in msgs if m["role"] == "system"), "")
    last = msgs[-1]["content"]
    if system.startswith(("You are the optimizer", "You write instructions")):
        cur = re.search(r"<CURRENT_VALUE>\n(.*?)\n</CURRENT_VALUE>", last, re.S).group(1)
        add = "small" if "small" not in cur else "large"
        return f"<NEW_VALUE>{cur} Handle {add} sums.</NEW_VALUE>"
    if system.startswith("You are the feedback engine"):
        return "Name the kinds of sums the solver must handle."
    a, b = map(int, re.findall(r"\d+", last)[:2])
    kind = "large" if a + b >= 10 else "small"
    return f"The answer is {a + b}." if kind in system else "The answer is 0."


def test_training_over_the_openai_wire(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with servers.LoopbackServer(responder) as srv:
        engine = tx.get_engine(srv.openai_spec("gpt-4o-mini"), retry_initial_wait=0.01, timeout=5.0)
        p = tx.Variable("Solve the sum.", role="system prompt of the solver", requires_grad=True, name="prompt")
        tr = Trainer(tx.nn.LLMCall(engine, system_prompt=p), tx.nn.NumberMatch(),
                     tx.optim.TGD([p], engine=engine, history=2), train=data(4), val=data(4, 20), batch_size=2,
                     steps=2, out_dir=tmp_path, seed=1, backward_engine=engine, progress=False, plot=False)
        res = tr.fit()
        bodies = [r.body for r in srv.requests]
    assert res.best_val == 1.0 and "small" in p.value and "large" in p.value
    opt_bodies = [b for b in bodies if b["messages"][0]["content"].startswith(("You are the optimizer", "You write instructions"))]
    assert len(opt_bodies) == 2
    second = opt_bodies[1]["messages"][-1]["content"]
    assert "<PAST_VALUE" in second and "Solve the sum." in second  # history on the wire
    usage = res.history[-1]["usage"]["by_role"]
    # forward requests answered by the server or by the response cache (on by default: a repeated one is a hit)
    assert usage["optimizer"]["calls"] == 2 and usage["forward"]["calls"] + usage["forward"]["cached"] == 4
    for f in ("log.jsonl", "checkpoint.json", "result.json"):
        assert KEY not in (tmp_path / f).read_text()
