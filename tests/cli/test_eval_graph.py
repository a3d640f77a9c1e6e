"""``textopt eval`` and ``textopt graph`` on scripted engines."""
import json
import shutil

import pytest

from textopt.cli import main
from textopt.engines import register

register("clitest", "tests.cli.scripted:from_spec")


def test_eval_scores_a_prompt_on_a_split(tmp_path, capsys):
    out = tmp_path / "preds.jsonl"
    args = ["eval", "--task", "format_count", "--engine", "clitest", "--split", "val", "--val-size", "7",
            "--quiet", "--no-cache", "--out", str(out)]
    assert main(args + ["--prompt", "Say the count first."]) == 0
    text = capsys.readouterr().out
    assert "accuracy: 100.0% (7/7)" in text
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(rows) == 7 and all(r["score"] == 1.0 and r["response"][0].isdigit() for r in rows)
    assert main(args) == 0
    assert "accuracy: 0.0% (0/7)" in capsys.readouterr().out


def test_eval_prompt_file(tmp_path, capsys):
    p = tmp_path / "p.txt"
    p.write_text("Reply with the count first.\n")
    assert main(["eval", "--task", "format_count", "--engine", "clitest", "--test-size", "3", "--quiet",
                 "--no-cache", "--prompt-file", str(p)]) == 0
    assert "(3/3)" in capsys.readouterr().out


@pytest.mark.parametrize("fmt,needle", [("dot", "digraph textopt"), ("mermaid", "flowchart LR")])
def test_graph_text_formats(tmp_path, capsys, fmt, needle):
    assert main(["graph", "--task", "counting", "--format", fmt, "--no-cache"]) == 0
    text = capsys.readouterr().out
    assert needle in text and "system prompt" in text and "solver" in text and "metric:counting" in text


def test_graph_png(tmp_path, capsys):
    out = tmp_path / "g.png"
    code = main(["graph", "--task", "counting", "--format", "png", "--out", str(out), "--no-cache"])
    if shutil.which("dot") is None:
        assert code == 2 and "graphviz" in capsys.readouterr().err
    else:
        assert code == 0 and out.read_bytes()[:4] == b"\x89PNG"


def test_tasks_lists_generated_and_file_tasks(capsys):
    assert main(["tasks"]) == 0
    text = capsys.readouterr().out
    assert "format_count" in text and "gsm8k" in text and "object_counting" in text
