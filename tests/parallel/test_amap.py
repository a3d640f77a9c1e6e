"""The one evaluation loop (in-process) and engines that travel as recipes (no Ray needed)."""
from __future__ import annotations

import asyncio
import copy
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import textopt as tx
from textopt.engines import Budget, Request, ScriptedEngine
from textopt.engines import portable
from textopt.engines.openai_engine import OpenAIEngine
from textopt.errors import DataError, EngineError
from textopt.parallel import amap, get_executor

ROOT = Path(__file__).resolve().parents[2]


class Slow:
    """Answers ``item * 2`` after a delay that reverses completion order; fails on ``fail``."""

    def __init__(self, fail=()):
        self.fail, self.running, self.peak = set(fail), 0, 0

    async def __call__(self, x):
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(0.001 * (10 - x % 10))
        self.running -= 1
        if x in self.fail:
            raise ValueError(f"bad {x}")
        return x * 2


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 50), max_size=30), st.integers(1, 6))
def test_results_in_item_order_within_the_limit(items, limit):
    job = Slow()
    assert asyncio.run(amap(job, items, concurrency=limit)) == [x * 2 for x in items]
    assert job.peak <= limit


def test_first_failing_item_in_order_raises_after_all_finished():
    job = Slow(fail={3, 7})
    with pytest.raises(ValueError, match="bad 3"):
        asyncio.run(amap(job, range(10), concurrency=10))
    out = asyncio.run(amap(Slow(fail={7}), range(10), return_exceptions=True))
    assert isinstance(out[7], ValueError) and out[:7] == [0, 2, 4, 6, 8, 10, 12]
    with pytest.raises(DataError, match="unknown executor 'dask'"):
        get_executor("dask")


def test_engine_pickles_as_a_recipe_without_its_key(monkeypatch):
    key = "sk-test-PORTABLE-5ecr3t-0123456789"
    monkeypatch.setenv("MY_KEY", key)
    engine = tx.get_engine("openai:http://127.0.0.1:9/v1#m", api_key_env="MY_KEY", cache="memory")
    blob = pickle.dumps(engine)
    assert key.encode() not in blob and copy.deepcopy(engine) is engine and pickle.loads(blob) is engine
    # another process rebuilds its own engine from the recipe, reading the key from ITS environment
    code = ("import pickle, sys; e = pickle.loads(sys.stdin.buffer.read()); "
            "print(type(e).__name__, e.name, e._api_key.get(), type(e.cache).__name__, len(e.cache))")
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, timeout=600,
                         env={"PYTHONPATH": str(ROOT), "MY_KEY": "worker-key", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().split() == ["OpenAIEngine", "openai:http://127.0.0.1:9/v1#m", "worker-key",
                                           "MemoryCache", "0"]


def test_engines_that_cannot_travel_say_why(tmp_path):
    direct = OpenAIEngine("m", base_url="http://127.0.0.1:9/v1", api_key="sk-direct-0123456789")
    with pytest.raises(EngineError, match="api_key_env") as info:
        pickle.dumps(direct)
    assert "sk-direct" not in str(info.value)
    with pytest.raises(EngineError, match="cassette"):
        pickle.dumps(ScriptedEngine("x", record=tmp_path / "c.jsonl"))


def test_worker_usage_is_charged_to_the_driver_engine_and_budget():
    budget = Budget(max_calls=100)
    driver = ScriptedEngine("ok", budget=budget)
    token = portable.token_of(driver)
    worker = portable.rebuild(token + "-elsewhere", ScriptedEngine, ("ok",), {})   # as a worker would hold it
    before = portable.usage_rows()
    worker.generate_sync(Request.chat("a", role="eval", node="solver"))
    worker.generate_sync(Request.chat("b", role="eval", node="solver"))
    delta = portable.usage_delta(before, portable.usage_rows())
    portable.charge({token: delta[token + "-elsewhere"]})
    assert driver.usage.as_dict()["by_role"]["eval"]["calls"] == 2 and budget.calls == 2
    assert driver.usage.by_node["solver"].calls == 2
