"""``textopt optimize --config FILE``: flags from TOML or a run's config.json, the command line overriding them."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textopt.cli import build_parser, main
from textopt.commands.config_file import expand, load_config, to_tokens
from textopt.engines import register
from textopt.errors import DataError

from .scripted import NEW_PROMPT

register("clitest", "tests.cli.scripted:from_spec")

TOML = """
task = "format_count"
engine = "clitest"
steps = 2
batch-size = 2
train_size = 4
val-size = 5
test-size = 6
no-cache = true
quiet = true
prompt = "Answer the question."
"""


def _optimize_parser():
    parser = build_parser()
    return parser, next(a.choices for a in parser._actions if hasattr(a, "choices") and a.choices)["optimize"]


def test_a_toml_config_runs_and_the_command_line_wins(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text(TOML)
    assert main(["optimize", "--config", str(cfg), "--steps", "1", "--out", str(tmp_path / "a")]) == 0
    flags = json.loads((tmp_path / "a" / "config.json").read_text())["flags"]
    assert flags["steps"] == 1 and flags["batch_size"] == 2 and flags["train_size"] == 4   # 1: the command line
    assert flags["no_cache"] is True and flags["engine"] == "clitest"
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert s["steps"] == 1 and s["sizes"] == [4, 5, 6] and s["optimized_prompt"] == NEW_PROMPT


def test_precedence_is_file_then_command_line_whatever_the_order():
    parser, sub = _optimize_parser()
    data = {"task": "a", "steps": 7, "seed": 3, "feedback-from": "all", "no_screen": True}
    tokens = to_tokens(data, sub, "x.toml")
    assert tokens == ["--task", "a", "--steps", "7", "--seed", "3", "--feedback-from", "all", "--no-screen"]
    args = parser.parse_args(["optimize", *tokens, "--steps", "2", "--task", "b"])
    assert (args.task, args.steps, args.seed, args.feedback_from, args.no_screen) == ("b", 2, 3, "all", True)


def test_a_run_config_json_repeats_the_run(tmp_path, capsys):
    """config.json of a finished run, fed back: the same settings (all but --out), the same results."""
    first = ["optimize", "--task", "format_count", "--engine", "clitest", "--steps", "2", "--batch-size", "2",
             "--train-size", "4", "--val-size", "5", "--test-size", "6", "--quiet", "--no-cache", "--seed", "3",
             "--feedback-from", "all", "--patience", "4", "--max-new-tokens", "64", "--out", str(tmp_path / "a")]
    assert main(first) == 0
    assert main(["optimize", "--config", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / d / "config.json").read_text()) for d in "ab")
    assert a == b and a["flags"]["seed"] == 3 and a["flags"]["patience"] == 4 and "out" not in a["flags"]
    sa, sb = (json.loads((tmp_path / d / "summary.json").read_text()) for d in "ab")
    keys = ("val_before", "val_after", "test_before", "test_after", "accepted_steps", "optimized_prompt", "sizes")
    assert {k: sa[k] for k in keys} == {k: sb[k] for k in keys}


def test_a_search_run_config_json_round_trips(tmp_path, capsys):
    import tests.cli.test_search_cli  # noqa: F401  (registers the clisearch engine)
    first = ["optimize", "--task", "format_count", "--engine", "clisearch", "--optimizer", "beam", "--steps", "1",
             "--batch-size", "2", "--train-size", "6", "--val-size", "5", "--test-size", "6", "--quiet",
             "--no-cache", "--out", str(tmp_path / "a")]
    assert main(first) == 0
    assert main(["optimize", "--config", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / d / "config.json").read_text()) for d in "ab")
    assert a == b and a["optimizer"] == "beam"


@pytest.mark.parametrize("content, message", [
    ('task = "x"\nstepz = 3\n', "unknown key 'stepz'; the known keys are the flags of `textopt optimize`: "),
    ('steps = "3"\n', "steps must be an integer, got str '3'"),
    ("steps = 2.5\n", "steps must be an integer, got float 2.5"),
    ("steps = -1\n", "steps: must be >= 0, got -1"),
    ("no-cache = 1\n", "no-cache must be true or false, got 1"),
    ("budget-usd = true\n", "budget-usd must be a number, got bool True"),
    ("engine = 3\n", "engine must be a string, got int 3"),
    ('feedback-from = "some"\n', "feedback-from must be one of failures, all, got 'some'"),
    ('executor = "gpu"\n', "executor must be one of local, ray, got 'gpu'"),
    ("resume = true\n", "unknown key 'resume'"),
    ('config = "other.toml"\n', "unknown key 'config'"),
    ("steps = \n", "invalid TOML"),
    ("[optimize]\nsteps = 2\n", "unknown key 'optimize'"),
])
def test_bad_config_files_are_one_error(tmp_path, capsys, content, message):
    cfg = tmp_path / "run.toml"
    cfg.write_text(content)
    assert main(["optimize", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"textopt: error: --config {cfg}") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("name, content, message", [
    ("missing.toml", None, "no such file"),
    ("list.json", "[1, 2]", "must hold a table of settings (key = value), got a JSON list"),
    ("bad.json", "{", "invalid JSON"),
    ("old.json", '{"task": "x", "initial_prompt": "p"}', "has no 'flags' table"),
    ("flags.json", '{"flags": {"stepz": 1}}', "unknown key 'stepz'"),
])
def test_bad_config_json_is_one_error(tmp_path, capsys, name, content, message):
    cfg = tmp_path / name
    if content is not None:
        cfg.write_text(content)
    assert main(["optimize", "--config", str(cfg), "--task", "format_count"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("textopt: error: ") and message in err and err.count("\n") == 1


def test_config_without_a_value_and_on_other_commands(capsys):
    assert main(["optimize", "--task", "format_count", "--config"]) == 2
    assert "--config needs a file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:   # only optimize has --config: argparse's own one-line error
        main(["eval", "--task", "format_count", "--config", "x.toml"])
    assert exc.value.code == 2 and "unrecognized arguments: --config" in capsys.readouterr().err


def test_the_task_may_come_from_the_file_alone(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('task = "format_count"\nsteps = 0\n')
    parser, _ = _optimize_parser()
    args = parser.parse_args(expand(parser, ["optimize", f"--config={cfg}"]))
    assert args.task == "format_count" and args.steps == 0 and args.config == str(cfg)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["steps", "seed", "no-cache", "engine", "budget-usd", "patience", "stepz",
                                        "feedback-from", "concurrency"]),
                       st.none() | st.booleans() | st.integers(-5, 10 ** 20) | st.floats(allow_nan=True) |
                       st.text(max_size=8), max_size=4))
def test_any_table_gives_tokens_argparse_accepts_or_one_data_error(data):
    parser, sub = _optimize_parser()
    try:
        tokens = to_tokens(data, sub, "x.toml")
    except DataError as exc:
        assert str(exc).startswith("--config x.toml: ")
        return
    args = parser.parse_args(["optimize", "--task", "t", *tokens])   # never an argparse error after the checks
    for key, value in data.items():
        if value is not None and not isinstance(value, bool):
            assert str(getattr(args, key.replace("-", "_"))) == str(value) or key == "budget-usd"


def test_load_config_reads_the_flags_table(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"task": "x", "initial_prompt": "p", "flags": {"task": "x", "steps": 2}}))
    assert load_config(cfg) == {"task": "x", "steps": 2}
