"""``RoutedEngine``: calls spread over replicas of one model (three real loopback servers, the official SDK)."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

import textopt as tx
from textopt.engines import Budget, Request, RoutedEngine, ScriptedEngine
from textopt.engines.cache import MemoryCache
from textopt.errors import BadRequestError, EngineSpecError, ProviderError
from textopt.testing import Fault, LoopbackServer

FAST = dict(retry_initial_wait=0.01, retry_max_wait=0.2, timeout=5.0)


def echo(body: dict) -> str:
    return "re: " + body["messages"][-1]["content"]


def routed(servers, **kw) -> RoutedEngine:
    return RoutedEngine.from_urls([s.openai_base_url for s in servers], "m", **{**FAST, **kw})


def ask_all(engine, n: int, during=None) -> list:
    """``n`` distinct calls at once (``during()`` runs in a thread meanwhile); the responses in order."""
    async def main():
        return await asyncio.gather(*(engine.generate(Request.chat(f"q{i}")) for i in range(n)))
    if during is None:
        return asyncio.run(main())
    t = threading.Thread(target=during)
    t.start()
    try:
        return asyncio.run(main())
    finally:
        t.join()


def answered(server) -> int:
    return sum(r.status == 200 for r in server.requests)


@pytest.fixture
def three():
    made = []

    def start(latencies=(0.02, 0.02, 0.02), **kw):
        for lat in latencies:
            made.append(LoopbackServer(echo, latency=lat, **kw).start())
        return made
    yield start
    for s in made:
        s.stop()


def test_spec_builds_a_router_and_equal_replicas_share_the_load(three):
    servers = three()
    engine = tx.get_engine("openai:" + ",".join(s.openai_base_url for s in servers) + "#m", **FAST,
                           max_concurrency=8)
    assert isinstance(engine, RoutedEngine) and engine.limiter.limit == 24
    out = ask_all(engine, 300)
    assert [r.text for r in out] == [f"re: q{i}" for i in range(300)]
    counts = [answered(s) for s in servers]
    assert sum(counts) == 300 and engine.usage.total.calls == 300
    assert all(abs(c - 100) <= 20 for c in counts), counts          # within 20% of an even share
    assert [s["served"] for s in engine.stats()] == counts


def test_load_shifts_away_from_a_slow_replica(three):
    servers = three((0.01, 0.01, 4.0))
    engine = routed(servers, max_concurrency=4)
    ask_all(engine, 150)
    fast, slow = (answered(servers[0]) + answered(servers[1])) / 2, answered(servers[2])
    assert slow < 0.5 * fast, [answered(s) for s in servers]


def test_a_replica_stopped_mid_run_loses_no_call_and_counts_none_twice(three):
    servers = three((0.03, 0.03, 0.03))
    budget = Budget(max_calls=10_000)
    engine = routed(servers, max_concurrency=6, budget=budget)
    stopped_at = []

    def stop_one():
        while answered(servers[1]) < 15:
            time.sleep(0.005)
        servers[1].stop()
        stopped_at.append(answered(servers[1]))
    out = ask_all(engine, 300, during=stop_one)
    assert [r.text for r in out] == [f"re: q{i}" for i in range(300)]       # no call lost, each its own answer
    assert engine.usage.total.calls == 300 and budget.calls == 300            # none counted twice
    stats = engine.stats()
    assert sum(s["served"] for s in stats) == 300
    assert stats[1]["failures"] >= 1 and not stats[1]["healthy"]
    assert stopped_at and stats[1]["served"] <= stopped_at[0] < 300
    assert answered(servers[0]) + answered(servers[2]) >= 300 - stats[1]["served"]


def test_same_cache_key_whichever_replica_answered(three):
    servers = three((0.0, 0.0, 0.0))
    cache = MemoryCache()
    first = routed(servers, cache=cache)
    assert first.generate_sync(Request.chat("hello")).text == "re: hello"
    # the same replicas listed in another order: one key, a cache hit, no request anywhere
    again = routed(list(reversed(servers)), cache=cache)
    assert again.cache_model_id() == first.cache_model_id()
    before = sum(len(s.requests) for s in servers)
    resp = again.generate_sync(Request.chat("hello"))
    assert resp.cached and resp.text == "re: hello" and sum(len(s.requests) for s in servers) == before
    # a named pool keeps its entries when a replica is added
    named = routed(servers[:2], cache=cache, cache_id="openai:pool")
    named.generate_sync(Request.chat("x"))
    grown = routed(servers, cache=cache, cache_id="openai:pool")
    assert grown.generate_sync(Request.chat("x")).cached


def test_rate_limited_replica_fails_over_and_counts_it_on_its_own_limiter(three):
    servers = three((0.0, 0.0, 0.0))
    servers[0].add_faults(Fault.rate_limit(retry_after=5))
    engine = routed(servers, max_concurrency=4)
    resp = engine.generate_sync(Request.chat("a"))
    assert resp.text == "re: a" and engine.usage.total.calls == 1
    assert servers[0].requests[0].status == 429 and engine.replicas[0].limiter.rate_limits == 1
    assert engine.replicas[1].limiter.rate_limits == 0 and engine.stats()[0]["healthy"]   # 429 is not "down"
    # one 429 is no rate limit to adapt to (a burst of them halves the replica's limit: tests/engines/test_limiter)
    assert engine.replicas[0].limiter.limit == 4


def test_errors_the_same_everywhere_are_not_failed_over(three):
    servers = three((0.0, 0.0, 0.0))
    for s in servers:
        s.add_faults(Fault.bad_request("Invalid value for 'temperature'."))
    engine = routed(servers)
    with pytest.raises(BadRequestError, match="temperature"):
        engine.generate_sync(Request.chat("a"))
    assert sum(len(s.requests) for s in servers) == 1


def test_every_replica_down_gives_one_error_naming_them(three):
    servers = three((0.0, 0.0, 0.0))
    urls = [s.openai_base_url for s in servers]
    for s in servers:
        s.stop()
    engine = RoutedEngine.from_urls(urls, "m", max_retries=1, retry_initial_wait=0.01, timeout=1.0,
                                    cooldown=0.01)
    with pytest.raises(ProviderError, match="every replica failed") as info:
        engine.generate_sync(Request.chat("a"))
    assert all(u in str(info.value) for u in urls)
    assert engine.usage.total.calls == 0


def test_a_recovered_replica_gets_calls_again_after_its_cooldown(three):
    servers = three((0.0, 0.0, 0.0))
    port = int(servers[2].openai_base_url.rsplit(":", 1)[1].split("/")[0])
    engine = routed(servers, cooldown=0.3)
    servers[2].stop()
    ask_all(engine, 12)
    assert engine.stats()[2]["failures"] >= 1 and engine.stats()[2]["served"] == 0
    servers.append(LoopbackServer(echo, port=port).start())   # the same address comes back
    time.sleep(0.35)
    ask_all(engine, 30)
    assert engine.stats()[2]["served"] > 0 and engine.stats()[2]["healthy"]


def test_bad_replica_lists_are_refused():
    with pytest.raises(EngineSpecError, match="listed twice"):
        tx.get_engine("openai:http://127.0.0.1:9/v1,http://127.0.0.1:9/v1#m")
    with pytest.raises(EngineSpecError, match="separated by commas"):
        tx.get_engine("openai:http://127.0.0.1:9/v1,h2:8000#m")
    with pytest.raises(EngineSpecError, match="one model"):
        RoutedEngine([ScriptedEngine(model="a"), ScriptedEngine(model="b")])
