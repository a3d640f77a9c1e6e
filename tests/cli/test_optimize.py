"""``textopt optimize`` end to end on a scripted engine: figures, output folder, cache, record/replay, resume."""
import json

import pytest

from textopt.cli import main
from textopt.engines import register

from .scripted import NEW_PROMPT

register("clitest", "tests.cli.scripted:from_spec")

BASE = ["optimize", "--task", "format_count", "--engine", "clitest", "--steps", "2", "--batch-size", "2",
        "--train-size", "4", "--val-size", "5", "--test-size", "6", "--quiet"]


def test_optimize_prints_and_saves_before_after(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(BASE + ["--out", str(out), "--cache-dir", str(tmp_path / "cache")]) == 0
    text = capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    assert s["val_before"] == 0.0 and s["val_after"] == 1.0
    assert s["test_before"] == 0.0 and s["test_after"] == 1.0
    assert s["accepted_steps"] == [1] and s["optimized_prompt"] == NEW_PROMPT
    assert (out / "best_prompt.txt").read_text().strip() == NEW_PROMPT
    for name in ("log.jsonl", "checkpoint.json", "result.json", "curve.png", "usage.json", "usage.txt",
                 "config.json"):
        assert (out / name).is_file(), name
    rows = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    by_role = s["usage"]["by_role"]
    assert by_role["optimizer"]["calls"] >= 1 and by_role["backward"]["calls"] >= 1
    assert "  0.0%" in text and "100.0%" in text and NEW_PROMPT in text
    assert "optimizer" in text and "wall time" in text
    assert "updates accepted on validation: 1 of 2 (step 1)" in text


def test_rerun_with_warm_cache_makes_no_call(tmp_path, capsys):
    cache = str(tmp_path / "cache")
    main(BASE + ["--out", str(tmp_path / "a"), "--cache-dir", cache])
    main(BASE + ["--out", str(tmp_path / "b"), "--cache-dir", cache])
    first = json.loads((tmp_path / "a" / "summary.json").read_text())
    second = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert first["usage"]["total"]["calls"] > 0
    assert second["usage"]["total"]["calls"] == 0
    assert second["usage"]["total"]["cached"] == first["usage"]["total"]["calls"] + first["usage"]["total"]["cached"]
    assert {k: second[k] for k in ("val_after", "test_after", "optimized_prompt")} == \
        {k: first[k] for k in ("val_after", "test_after", "optimized_prompt")}


def test_record_then_replay_gives_the_same_run(tmp_path):
    cassette = tmp_path / "calls.jsonl"
    main(BASE + ["--out", str(tmp_path / "rec"), "--record", str(cassette)])
    assert cassette.is_file() and cassette.read_text().count("\n") > 5
    main(BASE + ["--out", str(tmp_path / "rep"), "--replay", str(cassette), "--engine", "local"])
    a = json.loads((tmp_path / "rec" / "summary.json").read_text())
    b = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert b["engine"].startswith("replay")
    assert (a["val_after"], a["test_after"], a["optimized_prompt"]) == \
        (b["val_after"], b["test_after"], b["optimized_prompt"])


def test_resume_continues_to_the_same_end(tmp_path):
    cache = str(tmp_path / "cache")
    one = BASE[:]
    one[one.index("--steps") + 1] = "1"
    main(one + ["--out", str(tmp_path / "r"), "--cache-dir", cache])
    main(BASE + ["--out", str(tmp_path / "r"), "--cache-dir", cache, "--resume"])
    main(BASE + ["--out", str(tmp_path / "full"), "--no-cache"])
    rows = lambda d: [{k: r[k] for k in ("step", "val_score", "params", "reverted")}  # noqa: E731
                      for r in map(json.loads, (tmp_path / d / "log.jsonl").read_text().splitlines())]
    assert rows("r") == rows("full")


def test_resume_with_other_settings_is_refused(tmp_path, capsys):
    main(BASE + ["--out", str(tmp_path / "r"), "--no-cache"])
    other = BASE + ["--out", str(tmp_path / "r"), "--no-cache", "--resume", "--seed", "5"]
    assert main(other) == 2
    assert "different settings (seed" in capsys.readouterr().err


def test_bad_arguments_give_one_clear_error(tmp_path, capsys):
    assert main(["optimize", "--task", "bbh", "--engine", "clitest", "--out", str(tmp_path)]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["eval", "--task", "counting", "--engine", "nope:x"]) == 2
    assert "unknown engine spec" in capsys.readouterr().err


def test_budget_stops_a_paid_run_before_the_call(tmp_path, capsys):
    register("clitestpriced", "tests.cli.scripted:priced_from_spec")
    args = BASE + ["--engine", "clitestpriced", "--out", str(tmp_path / "b"), "--no-cache"]
    assert main(args + ["--budget-usd", "0.05"]) == 2
    err = capsys.readouterr().err
    assert "budget of 0.05 USD would be exceeded" in err
    assert main(args + ["--budget-usd", "100"]) == 0


def test_local_optimizer_requests_are_pattern_constrained():
    import re

    import textopt as tx
    from textopt.engines import ScriptedEngine
    from textopt.optim import TGD
    from textopt.optim.prompts import INSTRUCTION_VALUE_PATTERN as PAT

    p = tx.Variable("Answer the question.", role="system prompt", requires_grad=True)
    p._extend_grad([tx.Feedback("Put the count first.", p)])
    eng = ScriptedEngine("<NEW_VALUE>Give the count first.</NEW_VALUE>")
    eng.supports_pattern = eng.supports_prefill = True      # declares constrained decoding, like `local`
    TGD([p], engine=eng).step()
    assert eng.requests[0].pattern == PAT and eng.requests[0].role == "optimizer"
    assert p.value == "Give the count first."
    plain = ScriptedEngine("<NEW_VALUE>Give it.</NEW_VALUE>")  # no constrained decoding: no pattern sent
    q = tx.Variable("Answer.", role="system prompt", requires_grad=True)
    q._extend_grad([tx.Feedback("Shorter.", q)])
    TGD([q], engine=plain).step()
    assert plain.requests[0].pattern is None
    assert re.fullmatch(PAT, "Give the count first.\nBe brief.</NEW_VALUE>")
    assert not re.fullmatch(PAT, "<FEEDBACK>Put the count first.</FEEDBACK></NEW_VALUE>")
    assert not re.fullmatch(PAT, "Give the count first.")
    assert not re.fullmatch(PAT, "The improved system prompt is: count.</NEW_VALUE>")
