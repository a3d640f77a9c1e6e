"""Each benchmark script runs on a tiny size and prints the fields its README promises (textopt only; the
TextGrad side too when benchmarks/.venv-textgrad exists). Figures are NOT checked here: they belong in
benchmarks/RESULTS.md."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
HAS_TEXTGRAD = (BENCH / ".venv-textgrad" / "bin" / "python").exists()


def run_script(name: str, *args: str, timeout: float = 240) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, str(BENCH / name), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT_JSON ")]
    assert len(lines) == 1, proc.stdout[-2000:]
    return json.loads(lines[0][len("RESULT_JSON "):]), proc.stdout


def test_orchestration_textopt_only():
    res, out = run_script("orchestration.py", "--reps", "1", "--latency", "0.01", "--batch", "2", "--only", "textopt")
    tx = res["frameworks"]["textopt"]
    # 2 solver + 2 judge calls, 2 backward calls (the judge's evaluation is routed without a call), 1 step
    assert tx["calls_by_kind"] == {"backward": 2, "judge": 2, "optimizer": 1, "solver": 2}
    assert tx["calls"] == 7 and tx["prompt_tokens"] > 0 and tx["completion_tokens"] > 0
    assert tx["optimizer_applied"] is True and tx["wall_s_median"] > 0
    assert res["params"]["batch"] == 2 and res["machine"]["cores"] >= 1
    assert "textopt" in out and "wall s" in out


@pytest.mark.skipif(not HAS_TEXTGRAD, reason="benchmarks/.venv-textgrad absent (bash benchmarks/setup_textgrad.sh)")
def test_orchestration_both_frameworks_alternate():
    res, _ = run_script("orchestration.py", "--reps", "2", "--latency", "0.01", "--batch", "2")
    tg = res["frameworks"]["textgrad"]
    # TextGrad: 2 solver + 2 judge + 2 (judge -> answer) + 2 (answer -> prompt) backward calls + 1 step
    assert tg["calls_by_kind"] == {"backward": 4, "judge": 2, "optimizer": 1, "solver": 2}
    assert tg["optimizer_applied"] is True and len(tg["wall_s_all"]) == 2
    assert set(res["ratios_textopt_over_textgrad"]) == {"wall_s_median", "calls", "prompt_tokens",
                                                        "completion_tokens"}
    assert isinstance(res["target_met"], bool)


def test_overhead_textopt_only():
    res, out = run_script("overhead.py", "--nodes", "60", "--reps", "1", "--only", "textopt")
    tx = res["frameworks"]["textopt"]
    nodes = res["params"]["nodes"]
    assert nodes == 51  # 2 groups of (20 chain + 4 fan-out + 1 concat) + the final concat
    assert tx["engine_calls"] == 2 * (20 + 4) * 2  # each call node: one forward and one backward call
    assert tx["param_grads"] == 2 and tx["peak_mib"] > 0
    for k in ("build_us_per_node", "backward_us_per_node", "total_us_per_node", "cpu_total_us_per_node"):
        assert tx[k] > 0
    assert "us/node" in out


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind absent (overhead.py --instructions needs it)")
def test_overhead_instructions_textopt_only():
    res, out = run_script("overhead.py", "--shape", "chain", "--nodes", "21", "--reps", "2", "--only", "textopt",
                          "--instructions", timeout=600)
    tx = res["frameworks"]["textopt"]
    assert res["params"]["nodes"] == 21 and res["params"]["instructions"] is True
    assert tx["engine_calls"] == 41 and tx["peak_mib"] is None   # 20 calls, forward and backward, + the loss
    counts = tx["all_total_instructions"]
    assert len(counts) == 2 and min(counts) > 0
    assert abs(counts[0] - counts[1]) < 0.25 * max(counts)   # repeatable (within GC and thread timing): not a time
    parts = tx["build_instructions_per_node"] + tx["backward_instructions_per_node"]
    assert abs(tx["total_instructions_per_node"] - parts) <= 1    # each rounded on its own
    assert "instr/node" in out


def test_overhead_instructions_need_valgrind_under_it():
    sys.path.insert(0, str(BENCH / "workers"))
    try:
        from phases import PhaseClock
    finally:
        sys.path.remove(str(BENCH / "workers"))
    clock = PhaseClock()            # the wall-clock mode needs nothing
    clock.start()
    clock.lap("build")
    clock.stop()
    assert set(clock.figures) == {"build_s", "build_cpu_s"}
    with pytest.raises(RuntimeError, match="valgrind"):
        PhaseClock(instructions=True)


def test_sandbox_overhead():
    res, out = run_script("sandbox_overhead.py", "--runs", "1")
    modes = res["modes"]
    assert "plain python" in modes and "weak" in modes  # the bare start and the opt-in mode always run
    assert set(modes) | set(res["unavailable"]) >= {"bwrap", "namespaces"}
    for name, row in modes.items():
        assert row["median_ms"] > 0 and (name == "plain python" or row["code_tests_loss_ms"] > 0)
    assert "over plain" in out


BBH_OC = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "bbh" / "object_counting.json"


@pytest.mark.local
@pytest.mark.skipif(not BBH_OC.is_file(), reason=f"BBH object counting not found at {BBH_OC} (../shared absent)")
def test_quality_textopt_only_tiny():
    res, out = run_script("quality.py", "--batch", "1", "--steps", "1", "--test", "1", "--max-tokens", "4",
                          "--only", "textopt", timeout=600)
    tx = res["frameworks"]["textopt"]
    assert res["params"]["n_test"] == 1 and res["params"]["n_train"] == 1
    assert 0.0 <= tx["accuracy_before"] <= 1.0 and 0.0 <= tx["accuracy_after"] <= 1.0
    assert tx["train_calls"] >= 3  # solver, judge, at least one optimizer request (the judge needs no backward)
    assert isinstance(tx["step_errors"], list) and "acc before" in out


@pytest.mark.skipif(not BBH_OC.is_file(), reason=f"BBH object counting not found at {BBH_OC} (../shared absent)")
def test_quality_real_textopt_runs_through_the_metering_proxy(tmp_path):
    """quality_real.py end to end on a loopback server standing in for the model server: the proxy meters each
    run, the test split is scored once per prompt, the report and the cassettes are written."""
    from textopt.testing import LoopbackServer

    def responder(body: dict) -> str:
        last = body["messages"][-1]["content"]
        if "<NEW_VALUE>" in last:
            return "<NEW_VALUE>List each item with its quantity, add them, and end with 'Answer: <number>'.</NEW_VALUE>"
        if "Give feedback" in last or "feedback" in body["messages"][0]["content"].lower():
            return "Ask the model to list each item with its quantity."
        return "One, two, three.\nAnswer: 3"

    with LoopbackServer(responder) as srv:
        res, out = run_script("quality_real.py", "--engine-url", srv.openai_base_url, "--model", "m",
                              "--runs", "tx_tgd,tx_null", "--sizes", "3,3,3", "--steps", "1", "--tx-steps", "1", "--out", str(tmp_path),
                              timeout=300)
    assert set(res["runs"]) == {"tx_tgd", "tx_null"} and 0.0 <= res["baseline"] <= 1.0
    for name, run in res["runs"].items():
        assert run["calls"] > 0 and 0.0 <= run["test_after"] <= 1.0
    seed_dir = tmp_path / "object_counting-seed0"
    assert (seed_dir / "tx_tgd.cassette.jsonl").stat().st_size > 0
    assert (seed_dir / "tx_tgd.test.cassette.jsonl").stat().st_size > 0
    assert "test before" in out
