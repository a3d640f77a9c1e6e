"""One `textopt optimize` run on the real embedded model with tiny sizes (marked local)."""
import json

import pytest

from textopt.cli import main


@pytest.mark.local
def test_optimize_on_the_local_model(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["optimize", "--task", "format_count", "--engine", "local", "--steps", "1", "--batch-size", "2",
                 "--train-size", "2", "--val-size", "2", "--test-size", "2", "--out", str(out), "--quiet",
                 "--max-new-tokens", "48", "--feedback-tokens", "32",
                 # every example gets feedback, so the backward pass runs even when the model got the batch right
                 "--feedback-from", "all"])
    assert code == 0
    s = json.loads((out / "summary.json").read_text())
    roles = s["usage"]["by_role"]
    # the whole loop ran on the real model: forward, feedback and the optimizer's (constrained) rewrite
    assert roles["forward"]["calls"] == 2 and roles["backward"]["calls"] >= 1 and roles["optimizer"]["calls"] >= 1
    assert 0.0 <= s["val_before"] <= 1.0 and 0.0 <= s["test_after"] <= 1.0
    assert s["optimized_prompt"].strip()
    assert "<NEW_VALUE>" not in s["optimized_prompt"]
    assert "optimized prompt:" in capsys.readouterr().out
