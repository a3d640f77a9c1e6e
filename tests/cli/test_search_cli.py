"""``textopt optimize --optimizer beam|pareto|opro|demos`` end to end on a scripted engine."""
import json

import pytest

from textopt.cli import main
from textopt.engines import Request, ScriptedEngine, register

from .scripted import NEW_PROMPT, _answer

SEARCH = ["beam", "pareto", "opro", "demos"]
BASE = ["optimize", "--task", "format_count", "--engine", "clisearch", "--batch-size", "2", "--train-size", "6",
        "--val-size", "5", "--test-size", "6", "--quiet", "--no-cache"]


def respond(req: Request) -> str:
    """The solver puts the count first when its system prompt asks for it or shows demonstrations, and for
    questions whose count is even (so some training traces pass and DemoBootstrap has demonstrations to use);
    the optimizer always proposes NEW_PROMPT in the search optimizers' tag."""
    if req.role in ("forward", "eval"):
        n = _answer(req.messages[-1].content)
        system = req.system or ""
        first = "count first" in system or "Examples of correct answers" in system or int(n) % 2 == 0
        return f"{n}. Let me count." if first else f"Of 9 items, you have {n}."
    if req.role == "optimizer":
        return (f"{NEW_PROMPT}</new_value>" if req.prefill else f"<new_value>{NEW_PROMPT}</new_value>")
    return "The system prompt must ask for the count first."


def from_spec(rest: str, **kw) -> ScriptedEngine:
    return ScriptedEngine(respond, **kw)


def priced_from_spec(rest: str, **kw) -> ScriptedEngine:
    return ScriptedEngine(respond, prices={"scripted": (1000.0, 1000.0)}, **kw)


register("clisearch", "tests.cli.test_search_cli:from_spec")
register("clisearchpriced", "tests.cli.test_search_cli:priced_from_spec")


def _run(tmp_path, name, *extra, steps="2", out="run"):
    return main(BASE + ["--optimizer", name, "--steps", steps, "--out", str(tmp_path / out), *extra])


@pytest.mark.parametrize("name", SEARCH)
def test_search_optimizer_end_to_end(name, tmp_path, capsys):
    assert _run(tmp_path, name) == 0
    text = capsys.readouterr().out
    out = tmp_path / "run"
    s = json.loads((out / "summary.json").read_text())
    assert s["optimizer"] == name and s["val_before"] == pytest.approx(0.2)
    assert s["val_after"] >= s["val_before"] and s["val_after"] == 1.0
    assert s["test_after"] == 1.0 and s["test_before"] < 1.0
    assert s["accepted_steps"] == [1] and 1 <= s["steps"] <= 2
    best = (out / "best_prompt.txt").read_text().strip()
    assert best == s["optimized_prompt"]
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"   # best val after each step
    if name == "demos":   # the instruction is kept; demonstrations are appended
        assert best.startswith("Answer the question.\n\nExamples of correct answers:") and "Input: I have" in best
    else:
        assert best == NEW_PROMPT
        assert s["usage"]["by_role"]["optimizer"]["calls"] >= 1
    for f in ("config.json", "log.jsonl", "checkpoint.json", "result.json", "usage.json", "usage.txt"):
        assert (out / f).is_file(), f
    events = [json.loads(line)["kind"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert "new_best" in events and events.count("step") == s["steps"]
    result = json.loads((out / "result.json").read_text())   # the Trainer's record, as for TGD
    assert (result["steps"], result["best_val"], result["test_score"]) == (s["steps"], 1.0, 1.0)
    assert result["params"]["system_prompt" if name != "demos" else "demos"] in best
    ckpt = json.loads((out / "checkpoint.json").read_text())   # the Trainer's layout, the optimizer's state inside
    assert ckpt["step"] == s["steps"] and ckpt["optimizer"]["extra"]["step"] == s["steps"]
    splits = {k.split("|")[1] for k, _ in ckpt["optimizer"]["extra"]["store"]["evals"]}
    assert splits <= {"train", "val"}      # the test split never reached the optimizer
    assert " 20.0%" in text and "100.0%" in text and best.splitlines()[0] in text
    assert f"of {name})" in text and "wall time" in text and "eval" in text


def test_demos_best_prompt_reproduces_the_test_figure(tmp_path):
    from textopt.runs import evaluate_prompt
    from textopt.engines import get_engine
    from textopt.tasks import get_task
    assert _run(tmp_path, "demos", steps="1") == 0
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    task = get_task("format_count")
    test = task.splits(6, 5, 6, seed=0).test
    score, _ = evaluate_prompt(task, get_engine("clisearch"), s["optimized_prompt"], test, progress=False)
    assert score == s["test_after"]


def test_unknown_optimizer_is_one_clear_error(tmp_path, capsys):
    assert _run(tmp_path, "sgd") == 2
    err = capsys.readouterr().err
    assert "unknown optimizer 'sgd'" in err
    for name in SEARCH + ["tgd"]:
        assert name in err
    assert not (tmp_path / "run").exists()


def test_help_names_every_registered_optimizer(capsys):
    from textopt.optim import OPTIMIZERS
    with pytest.raises(SystemExit):
        main(["optimize", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert sorted(OPTIMIZERS) == sorted(SEARCH + ["tgd"])
    for name in OPTIMIZERS:
        assert name in text.split("--optimizer NAME")[-1].split("--backward-engine")[0]


@pytest.mark.parametrize("name", ["beam", "demos"])
def test_search_resume_continues_to_the_same_end(tmp_path, name):
    """A search stopped after step 1 and resumed ends as an uninterrupted run: same figures, log, result.json
    and usage (restored from the checkpoint: every call counted once, --no-cache)."""
    _run(tmp_path, name, steps="1", out="r")
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["steps"] == 1
    _run(tmp_path, name, "--resume", out="r")
    _run(tmp_path, name, out="full")
    a, b = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("r", "full"))
    keys = ("steps", "val_before", "val_after", "test_before", "test_after", "optimized_prompt", "accepted_steps",
            "candidates", "metric_calls", "usage")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys} and a["steps"] == 2
    ev = lambda d: [json.loads(x) for x in (tmp_path / d / "log.jsonl").read_text().splitlines()]  # noqa: E731
    assert ev("r") == ev("full")
    assert (tmp_path / "r" / "result.json").read_text() == (tmp_path / "full" / "result.json").read_text()


def test_resuming_a_search_checkpoint_from_before_the_trainer_is_one_clear_error(tmp_path, capsys):
    _run(tmp_path, "beam", steps="1", out="r")
    ckpt = tmp_path / "r" / "checkpoint.json"
    ckpt.write_text(json.dumps(json.loads(ckpt.read_text())["optimizer"]))   # the old layout: the optimizer's only
    capsys.readouterr()
    assert _run(tmp_path, "beam", "--resume", out="r") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds only a search optimizer's state" in err and "new output" in err


def test_search_resume_with_another_optimizer_is_refused(tmp_path, capsys):
    _run(tmp_path, "beam", steps="1", out="r")
    assert _run(tmp_path, "opro", "--resume", out="r") == 2
    assert "different settings (optimizer" in capsys.readouterr().err


def test_search_record_then_replay(tmp_path):
    cassette = tmp_path / "calls.jsonl"
    assert _run(tmp_path, "pareto", "--record", str(cassette), out="rec") == 0
    assert _run(tmp_path, "pareto", "--replay", str(cassette), out="rep") == 0
    a, b = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("rec", "rep"))
    assert b["engine"].startswith("replay")
    assert (a["val_after"], a["test_after"], a["optimized_prompt"]) == \
        (b["val_after"], b["test_after"], b["optimized_prompt"])


def test_search_budget_stops_cleanly(tmp_path, capsys):
    args = ["--engine", "clisearchpriced", "--budget-usd", "0.2"]   # a few calls of 0.026 USD each
    assert main(BASE + args + ["--optimizer", "opro", "--steps", "2", "--out", str(tmp_path / "b")]) == 0
    s = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert "budget of 0.2 USD would be exceeded" in s["stopped"]
    assert 0 < s["usage"]["total"]["cost"] <= 0.2 and s["test_after"] is None   # no call past the budget
    assert "stopped: budget" in capsys.readouterr().out
