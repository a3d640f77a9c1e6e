"""``executor="ray"``: the same run in-process and fanned out over a local Ray runtime gives the same scores,
logs and checkpoints (one Ray runtime for the module: its start-up is slow on 2 cores). Skipped when Ray is
not installed."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'textopt[ray]'): the Ray executor "
                                        "tests need a local Ray runtime")

import textopt as tx  # noqa: E402
from textopt.cli import main  # noqa: E402
from textopt.testing import LoopbackServer  # noqa: E402
from textopt.train import Trainer  # noqa: E402
from tests.cli import test_search_cli  # noqa: E402,F401  (registers the "clisearch" engine spec)
from tests.train.test_openai_loopback import responder  # noqa: E402
from tests.train.toy import data  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
KEY_ENV, KEY = "TEXTOPT_RAY_TEST_KEY", "sk-test-RAY-5ecr3t-0123456789abcdef"


@pytest.fixture(scope="module")
def local_ray():
    if ray.is_initialized():
        ray.shutdown()
    # the workers get the key the way a cluster would: from their own environment, never from a pickle
    kw = dict(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=80 * 2**20,
              runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), KEY_ENV: KEY}})
    try:
        ray.init(**kw)
    except Exception:  # noqa: BLE001 - Ray gives its raylet 30 s to start: once more on a very busy machine
        ray.shutdown()
        ray.init(**kw)
    yield
    ray.shutdown()


def read(folder: Path, name: str) -> str:
    return (folder / name).read_text(encoding="utf-8")


def test_trainer_same_log_checkpoint_and_result(local_ray, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    with LoopbackServer(responder) as srv:
        def run(out, executor):
            engine = tx.get_engine(srv.openai_spec("gpt-4o-mini"), api_key_env=KEY_ENV, retry_initial_wait=0.01,
                                   timeout=10.0, cache=False)   # both runs call the server (no shared cache)
            p = tx.Variable("Solve the sum.", role="system prompt of the solver", requires_grad=True,
                            name="prompt")
            tr = Trainer(tx.nn.LLMCall(engine, system_prompt=p), tx.nn.NumberMatch(),
                         tx.optim.TGD([p], engine=engine, history=2), train=data(4), val=data(6, 20),
                         test=data(5, 40), batch_size=2, steps=2, out_dir=out, seed=1, backward_engine=engine,
                         progress=False, plot=False, executor=executor)
            return tr.fit(), len(srv.requests)
        local, n_local = run(tmp_path / "local", None)
        remote, n_all = run(tmp_path / "ray", "ray")
        auth = {r.headers.get("authorization") for r in srv.requests}
    assert local.best_val == remote.best_val == 1.0 and local.test_score == remote.test_score == 1.0
    for f in ("log.jsonl", "checkpoint.json", "result.json"):
        assert read(tmp_path / "local", f) == read(tmp_path / "ray", f), f
    assert n_all == 2 * n_local                       # the same calls, each counted once
    assert auth == {f"Bearer {KEY}"}                  # the workers read the key from their environment
    usage = json.loads(read(tmp_path / "ray", "result.json"))["usage"]["by_role"]
    assert usage["forward"]["calls"] == 4 and usage["forward"]["calls"] < usage["eval"]["calls"]


SEARCH = ["optimize", "--task", "format_count", "--engine", "clisearch", "--batch-size", "2", "--train-size", "6",
          "--val-size", "6", "--test-size", "6", "--quiet", "--no-cache", "--optimizer", "beam", "--steps", "2"]


def test_search_cli_same_summary_log_and_checkpoint(local_ray, tmp_path, capsys):
    assert main(SEARCH + ["--out", str(tmp_path / "local")]) == 0
    assert main(SEARCH + ["--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    for f in ("log.jsonl", "checkpoint.json", "usage.json"):
        assert read(tmp_path / "local", f) == read(tmp_path / "ray", f), f
    a, b = (json.loads(read(tmp_path / d, "summary.json")) for d in ("local", "ray"))
    a.pop("wall_s"), b.pop("wall_s")
    assert a == b and a["val_after"] == 1.0 and a["test_before"] < a["test_after"]


def test_eval_cli_same_rows(local_ray, tmp_path, capsys):
    base = ["eval", "--task", "format_count", "--engine", "clisearch", "--split", "test", "--test-size", "12",
            "--quiet", "--no-cache"]
    assert main(base + ["--out", str(tmp_path / "local.jsonl")]) == 0
    local_out = capsys.readouterr().out
    assert main(base + ["--out", str(tmp_path / "ray.jsonl"), "--executor", "ray"]) == 0
    ray_out = capsys.readouterr().out
    assert (tmp_path / "local.jsonl").read_text() == (tmp_path / "ray.jsonl").read_text()
    assert re.search(r"accuracy: [\d.]+%", local_out).group(0) == re.search(r"accuracy: [\d.]+%", ray_out).group(0)
    assert len((tmp_path / "ray.jsonl").read_text().splitlines()) == 12
