"""The shared call path with real SDKs: persistent cache (across processes), keys, budgets, dry run, usage,
secrets."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import textopt as tx
from textopt.engines import Budget, Request
from textopt.errors import AuthenticationError, BudgetExceeded
from textopt.testing import Fault

from .conftest import KEYS, make

ROOT = Path(__file__).resolve().parents[2]


def test_cache_hit_from_a_second_process(serve, tmp_path):
    """Both SDK engines fill a disk cache; ONE child process (importing textopt is the slow part) reads both."""
    srv = serve(lambda body: f"cached answer from {body['model']}")
    cache_dir = tmp_path / "cache"
    for provider in ("openai", "anthropic"):
        first = make(provider, srv, cache=str(cache_dir)).generate_sync(Request.chat("same question"))
        assert not first.cached
    assert len(srv.requests) == 2
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.engines.conftest import make
        from textopt.engines import Request
        class Srv:  # only the address is needed: the answers must come from the cache
            url = {srv.url!r}
            openai_base_url = {srv.openai_base_url!r}
        out = {{}}
        for provider in ("openai", "anthropic"):
            r = make(provider, Srv, cache={str(cache_dir)!r}).generate_sync(Request.chat("same question"))
            out[provider] = [r.text, r.cached]
        print(json.dumps(out))
    """)
    env = {**os.environ, "OPENAI_API_KEY": KEYS["openai"], "ANTHROPIC_API_KEY": KEYS["anthropic"]}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                         cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "openai": ["cached answer from gpt-4o-mini", True], "anthropic": ["cached answer from claude-haiku-4-5", True]}
    assert len(srv.requests) == 2   # the second process never reached the server


def test_temperature_and_sample_index_key_the_cache(provider, serve):
    srv = serve(lambda body: f"answer {len(srv.requests)}")
    eng = make(provider, srv, cache="memory")
    ask = lambda **kw: eng.generate_sync(Request.chat("q", **kw))  # noqa: E731
    a = ask()
    assert ask().cached and ask(sample_index=5).cached           # greedy: sample_index is not part of the key
    b = ask(temperature=0.7)
    assert not b.cached and b.text != a.text                     # temperature changes the key
    assert ask(temperature=0.7, sample_index=0).cached           # sample 0 again: a hit
    c = ask(temperature=0.7, sample_index=1)
    assert not c.cached                                          # sample 1: its own entry
    assert not ask(max_tokens=7).cached and not ask(stop=["x"]).cached
    assert len(srv.requests) == 5


def test_cache_switchable_per_call_and_per_engine(provider, serve):
    srv = serve("x")
    eng = make(provider, srv, cache="memory")
    eng.generate_sync(Request.chat("q"))
    assert eng.generate_sync(Request.chat("q")).cached
    assert not eng.generate_sync(Request.chat("q", use_cache=False)).cached
    off = make(provider, srv)                                    # cache=False is the engine default
    assert not off.generate_sync(Request.chat("q")).cached
    assert len(srv.requests) == 3
    assert eng.usage.as_dict()["total"] == {**eng.usage.as_dict()["total"], "calls": 2, "cached": 1}


def test_api_key_never_reaches_cache_cassette_reprs_or_errors(provider, serve, tmp_path):
    key = KEYS[provider]
    srv = serve("answer", faults=[None, Fault.unauthorized(f"bad key {key}")])
    eng = make(provider, srv, cache=str(tmp_path / "cache"), record=str(tmp_path / "calls.jsonl"))
    eng.generate_sync(Request.chat("hello", temperature=0.5))
    with pytest.raises(AuthenticationError) as info:
        eng.generate_sync(Request.chat("again"))
    assert key in srv.requests[0].headers["authorization"]      # the key did go on the wire ...
    blobs = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert (tmp_path / "calls.jsonl").stat().st_size > 0 and len(blobs) > 1000
    assert key.encode() not in blobs and key[-12:].encode() not in blobs   # ... and nowhere else
    for text in (repr(eng), str(eng), repr(vars(eng)), str(info.value), repr(info.value.__cause__),
                 tx.usage(eng)):
        assert key not in text


def test_budget_stops_before_sending(provider, serve):
    srv = serve("x")
    budget = Budget(max_calls=2)
    eng = make(provider, srv, budget=budget)
    eng.generate_sync(Request.chat("1"))
    eng.generate_sync(Request.chat("2"))
    with pytest.raises(BudgetExceeded, match="2 calls"):
        eng.generate_sync(Request.chat("3"))
    assert len(srv.requests) == 2 and budget.calls == 2


def test_budget_holds_under_concurrency_and_tokens(provider, serve):
    srv = serve("x", latency=0.05)
    budget = Budget(max_calls=3)
    eng = make(provider, srv, budget=budget)

    async def run():
        return await asyncio.gather(*(eng.complete(f"q{i}") for i in range(6)), return_exceptions=True)
    results = asyncio.run(run())
    assert sum(isinstance(r, BudgetExceeded) for r in results) == 3
    assert len(srv.requests) == 3 and budget.calls == 3

    tok = make(provider, srv, budget=Budget(max_tokens=100))
    with pytest.raises(BudgetExceeded, match="tokens"):
        tok.generate_sync(Request.chat("q", max_tokens=200))
    assert len(srv.requests) == 3


def test_budget_in_dollars_with_a_price_override(provider, serve):
    srv = serve("one two three")
    prices = {"gpt-4o-mini": (1000.0, 2000.0), "claude-haiku-4-5": (1000.0, 2000.0)}
    budget = Budget(max_usd=0.5)
    eng = make(provider, srv, budget=budget, prices=prices)
    resp = eng.generate_sync(Request.chat("q", max_tokens=10))
    assert resp.cost == pytest.approx((resp.prompt_tokens * 1000 + 3 * 2000) / 1e6)
    with pytest.raises(BudgetExceeded, match="USD"):
        eng.generate_sync(Request.chat("q" * 4000, max_tokens=200))
    assert len(srv.requests) == 1 and budget.usd == pytest.approx(resp.cost)


def test_dry_run_counts_and_estimates_without_calling(provider, serve):
    srv = serve("x")
    eng = make(provider, srv, dry_run=True, prices={"gpt-4o-mini": (1.0, 1.0), "claude-haiku-4-5": (1.0, 1.0)})
    resp = eng.generate_sync(Request.chat("a" * 400, max_tokens=100, role="forward", node="n1"))
    assert resp.finish_reason == "dry_run" and resp.completion_tokens == 100 and resp.prompt_tokens >= 100
    assert resp.cost == pytest.approx((resp.prompt_tokens + 100) / 1e6)
    eng.generate_sync(Request.chat("b", role="backward"))
    assert srv.requests == []
    usage = eng.usage.as_dict()
    assert usage["total"]["calls"] == 2 and usage["by_role"]["backward"]["calls"] == 1
    assert usage["by_node"]["n1"]["completion_tokens"] == 100


def test_usage_report_by_role_and_node(provider, serve):
    srv = serve("four words right here")
    eng = make(provider, srv, cache="memory", prices={"gpt-4o-mini": (1e6, 1e6), "claude-haiku-4-5": (1e6, 1e6)})
    eng.generate_sync(Request.chat("q", role="forward", node="llm.answer"))
    eng.generate_sync(Request.chat("q", role="forward", node="llm.answer"))    # cached
    eng.generate_sync(Request.chat("fb", role="backward", node="llm.answer"))
    eng.generate_sync(Request.chat("step", role="optimizer"))
    report = tx.usage(eng)
    lines = {line.split()[0]: line.split() for line in report.splitlines() if line.strip()}
    assert lines["forward"][1:3] == ["1", "1"] and lines["backward"][1] == "1" and lines["optimizer"][1] == "1"
    assert lines["TOTAL"][1:3] == ["3", "1"]
    assert lines["llm.answer"][1:3] == ["2", "1"]
    assert float(lines["TOTAL"][-1]) > 0


def test_api_key_never_reaches_debug_logs(provider, serve, caplog):
    key = KEYS[provider]
    srv = serve("x", faults=["500", Fault.unauthorized(f"{key} is not a valid key")])
    with caplog.at_level("DEBUG"):
        with pytest.raises(AuthenticationError):
            make(provider, srv).generate_sync(Request.chat("hi"))
    assert len(srv.requests) == 2 and caplog.records      # the SDK and httpx did log at DEBUG ...
    assert key not in caplog.text                           # ... but never the key
