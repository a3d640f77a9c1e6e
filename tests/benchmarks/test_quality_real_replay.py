"""The committed real-model runs (benchmarks/results/quality_real/<task>-seed<S>: textopt TGD on
Qwen2.5-Coder-1.5B through llama-server) replay from their cassettes with no server, and give exactly the figures
RESULTS.md reports: every validation score of the trainer's log, the final prompt, and the test accuracy of the
starting and final prompts. One test per committed run folder."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "quality_real"
RUNS = sorted(p for p in RESULTS.glob("*-seed*") if (p / "tx_tgd.cassette.jsonl").is_file())
sys.path[:0] = [str(ROOT / "benchmarks" / "workers"), str(ROOT / "benchmarks")]

pytestmark = pytest.mark.skipif(not RUNS, reason=f"no committed run in {RESULTS}")


def _data(name: str) -> tuple:
    """(task, the data argument that loads it): the shipped copy, else ../shared/datasets/bbh."""
    from textopt.errors import DataError
    from textopt.tasks import get_task
    shared = ROOT.parent / "shared" / "datasets" / "bbh"
    try:
        return get_task(name, None), None
    except DataError:
        if not shared.is_dir():
            pytest.skip(f"BBH {name} is neither shipped with textopt nor at ../shared/datasets/bbh")
        return get_task(name, str(shared)), str(shared)


@pytest.mark.parametrize("RUN", RUNS, ids=[p.name for p in RUNS])
def test_recorded_tgd_run_replays_to_the_reported_figures(tmp_path, RUN):
    import qr_textopt
    from textopt.runs import evaluate_prompt
    from textopt.engines import get_engine

    result = json.loads((RUN / "tx_tgd.json").read_text())
    cfg = result["config"]
    name = RUN.name.rsplit("-seed", 1)[0]
    task, data = _data(name)
    task.max_tokens = cfg["answer_tokens"]
    splits = task.splits(*cfg["sizes"], seed=cfg["seed"])
    rows = qr_textopt.job_rows
    job = {"mode": "tgd", "task": name, "data": data, "train": rows(splits.train),
           "val": rows(splits.val), "seed": cfg["seed"], "batch": cfg["batch"], "steps": cfg["tx_steps"],
           "initial_prompt": task.initial_prompt, "answer_tokens": cfg["answer_tokens"],
           "spec": f"replay:{RUN / 'tx_tgd.cassette.jsonl'}", "cache_dir": str(tmp_path / "cache"),
           "out_dir": str(tmp_path / "run"), "record": None,
           # TGD options the run was recorded with where they differ from today's defaults (refuse_reverted
           # came after the recording: with it the optimizer's requests differ, so they are not in the cassette)
           # (tactic_turns: a run recorded before the option existed rotated its tactics by successful steps;
           # add_retries: one recorded before it did not ask again within a step)
           "tgd_options": {"tactic_turns": "steps", "add_retries": 0, **(cfg.get("tgd_options") or {})}}
    out = qr_textopt.handle(job)
    assert out["final_prompt"] == result["final_prompt"]
    assert [r["val_score"] for r in out["steps"]] == [r["val_score"] for r in result["steps"]]
    assert out["best_val"] == result["best_val"]

    for prompt, key, cassette in ((task.initial_prompt, "baseline", "baseline.test.cassette.jsonl"),
                                  (result["final_prompt"], "after", "tx_tgd.test.cassette.jsonl")):
        engine = get_engine(f"replay:{RUN / cassette}")
        score, _ = evaluate_prompt(task, engine, prompt, splits.test, progress=False)
        expected = result["test_after"]["accuracy"] if key == "after" else \
            json.loads((RUN / "baseline.json").read_text())["test"]["accuracy"]
        assert score == expected
