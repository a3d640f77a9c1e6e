"""The Trainer's log keeps each step's textual gradients (bounded) and a reverted step's proposal: what
``textopt report`` shows."""
import json

import textopt as tx
from textopt.train import evaluate as ev
from tests.train.test_trainer import build


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_step_logs_its_gradients_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(ev, "FEEDBACK_ITEMS", 1)
    monkeypatch.setattr(ev, "FEEDBACK_CHARS", 8)
    tr, p, fwd, teacher = build(tmp_path, steps=2)
    tr.fit()
    rows = _rows(tmp_path / "run" / "log.jsonl")
    assert "feedback" not in rows[0]   # the initial validation has no step
    for row in rows[1:]:
        (name, items), = row["feedback"].items()
        assert name == "system_prompt" and len(items) == 1
        assert items[0].startswith("feedback"[:8]) and items[0].endswith(" [...]") and len(items[0]) == 8 + 6


def test_feedback_of_skips_frozen_and_tensor_parameters():
    trainable = tx.Variable("p", role="a prompt", requires_grad=True, name="p")
    frozen = tx.Variable("q", role="a frozen prompt", name="q")
    trainable._extend_grad([tx.Feedback("more detail", trainable)])

    class M:
        def named_parameters(self):
            return [("p", trainable), ("q", frozen)]
    assert ev.feedback_of(M()) == {"p": ["more detail"]}


def test_a_reverted_step_logs_what_it_tried(tmp_path):
    tr, p, fwd, teacher = build(tmp_path, steps=2)
    worse = iter(["Think very hard.", "Guess quickly."])
    teacher.responder = lambda req: (f"<NEW_VALUE>{next(worse)}</NEW_VALUE>" if req.role == "optimizer"
                                     else "fb")
    p.value = "Handle small sums. Handle large sums."
    tr.fit()
    rows = _rows(tmp_path / "run" / "log.jsonl")
    assert [r["reverted"] for r in rows] == [False, True, True]
    assert [r["proposed"]["system_prompt"] for r in rows[1:]] == ["Think very hard.", "Guess quickly."]
    assert all(r["params"]["system_prompt"] == "Handle small sums. Handle large sums." for r in rows)
    assert rows[1]["feedback"] == {"system_prompt": ["fb", "fb"]}
