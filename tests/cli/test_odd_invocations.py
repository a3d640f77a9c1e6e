"""Odd command lines as a new user types them: each ends with exit code 2 and ONE line saying what was wrong
— never a traceback, never a hang (pytest-timeout bounds each)."""
from __future__ import annotations

import json

import pytest

from textopt.cli import main
from textopt.engines import register

register("clitest", "tests.cli.scripted:from_spec")

BASE = ["optimize", "--task", "format_count", "--engine", "clitest", "--steps", "1", "--batch-size", "2",
        "--train-size", "4", "--val-size", "4", "--test-size", "4", "--quiet"]
EVAL = ["eval", "--task", "format_count", "--engine", "clitest", "--test-size", "3", "--quiet"]

# (arguments with {tmp} for the test's folder, a fragment the one-line message must contain)
ODD = [
    (BASE + ["--concurrency", "0"], "--concurrency: must be from 1"),
    (BASE + ["--concurrency", "-3"], "--concurrency: must be from 1"),
    (BASE + ["--concurrency", "many"], "expected an integer"),
    (BASE + ["--optimizer", "beam", "--concurrency", "0"], "--concurrency"),
    (EVAL + ["--concurrency", "0"], "--concurrency"),
    (BASE + ["--seed", str(2 ** 80)], "--seed: must be from 0"),
    (BASE + ["--seed", "-1"], "--seed"),
    (BASE + ["--test-size", "100000000"], "at most 100000 per split"),
    (BASE + ["--train-size", "-1"], "--train-size: must be >= 0"),
    (BASE + ["--steps", "-1"], "--steps"),
    (BASE + ["--batch-size", "0"], "--batch-size"),
    (BASE + ["--patience", "0"], "--patience"),
    (BASE + ["--max-new-tokens", "0"], "--max-new-tokens"),
    (BASE + ["--budget-usd", "-1"], "--budget-usd"),
    (BASE + ["--budget-usd", "nan"], "--budget-usd"),
    (BASE + ["--engine", "local:~nosuchuser/model.gguf"], "~nosuchuser"),
    (BASE + ["--engine", "nosuch:model"], "unknown engine spec"),
    (BASE + ["--out", "{tmp}/afile"], "--out: {tmp}/afile: is a file"),
    (BASE + ["--out", "{tmp}/afile/run"], "is a file, so nothing can be written under it"),
    (BASE + ["--out", "/proc/textopt-nowhere/run"], "/proc/textopt-nowhere"),
    (BASE + ["--record", "{tmp}/adir"], "--record: {tmp}/adir: is a folder"),
    (BASE + ["--record", "{tmp}/afile/calls.jsonl"], "nothing can be written under it"),
    (BASE + ["--cache-dir", "{tmp}/afile"], "--cache-dir: {tmp}/afile: is a file"),
    (BASE + ["--cache-dir", "/proc/textopt-nowhere"], "response cache folder /proc/textopt-nowhere"),
    (BASE + ["--prompt-file", "{tmp}/latin1.txt"], "not UTF-8"),
    (BASE + ["--prompt-file", "{tmp}/adir"], "is a folder"),
    (BASE + ["--prompt-file", "{tmp}/absent.txt"], "no such file"),
    (BASE + ["--prompt-file", "{tmp}/empty.txt"], "empty"),
    (BASE + ["--replay", "{tmp}/latin1.txt"], "not UTF-8"),
    (BASE + ["--replay", "{tmp}/list.json"], "{tmp}/list.json:1: a cassette line must be a JSON object"),
    (BASE + ["--resume", "--out", "{tmp}/listckpt"], "holds a JSON list"),
    (BASE + ["--resume", "--out", "{tmp}/listconfig"], "--resume: {tmp}/listconfig/config.json must be a JSON object"),
    (BASE + ["--resume", "--out", "{tmp}/tornckpt"], "invalid JSON"),
    (BASE + ["--optimizer", "nosuch"], "unknown optimizer"),
    (["optimize", "--task", "gsm8k", "--data", "{tmp}/latin1.txt", "--engine", "clitest"], "not UTF-8"),
    (["optimize", "--task", "gsm8k", "--data", "{tmp}/deep.jsonl", "--engine", "clitest"], "nested too deeply"),
    (["optimize", "--task", "nosuchtask", "--engine", "clitest"], "nosuchtask"),
    (EVAL + ["--out", "{tmp}/adir"], "--out: {tmp}/adir: is a folder"),
    (["graph", "--task", "format_count", "--out", "{tmp}/afile/g.dot"], "nothing can be written under it"),
    (["optimize"], "--task"),
    (["nosuchcommand"], "invalid choice"),
]


@pytest.fixture
def odd_tmp(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "list.json").write_text("[1, 2]\n")
    (tmp_path / "deep.jsonl").write_text("[" * 100_000 + "]" * 100_000)
    for name, files in {"listckpt": {"checkpoint.json": "[1, 2]"}, "listconfig": {"config.json": "[1]"},
                        "tornckpt": {"checkpoint.json": '{"version": 1, "st'}}.items():
        (tmp_path / name).mkdir()
        for f, text in files.items():
            (tmp_path / name / f).write_text(text)
    return tmp_path


@pytest.mark.timeout(120)
@pytest.mark.parametrize("argv,fragment", ODD, ids=[" ".join(a[len(BASE) if a[:len(BASE)] == BASE else 0:])
                                                    for a, _ in ODD])
def test_odd_invocation_exits_2_with_one_line(odd_tmp, capsys, argv, fragment):
    argv = [a.replace("{tmp}", str(odd_tmp)) for a in argv]
    if "--out" not in argv and argv[0] == "optimize":
        argv += ["--out", str(odd_tmp / "run")]
    try:
        rc = main(argv)
    except SystemExit as exc:   # argparse's own exit
        rc = exc.code
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert rc == 2, (rc, err)
    assert "Traceback" not in captured.err + captured.out
    assert len(err.splitlines()) == 1, err
    assert fragment.replace("{tmp}", str(odd_tmp)) in err, err
    assert err.startswith("textopt")


def test_a_checkpoint_of_the_wrong_shape_is_refused_not_crashed_on(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(BASE + ["--out", str(out), "--no-cache"]) == 0
    state = json.loads((out / "checkpoint.json").read_text())
    del state["sampler"]
    (out / "checkpoint.json").write_text(json.dumps(state))
    capsys.readouterr()
    assert main(BASE + ["--out", str(out), "--no-cache", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "does not hold a state this run can restore (missing field 'sampler')" in err
