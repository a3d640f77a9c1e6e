"""Adaptive concurrency, observed where it matters: on the server."""
from __future__ import annotations

import asyncio
import threading

import pytest

from textopt.engines.limiter import AdaptiveLimiter

from .conftest import make


def test_limit_drops_under_429s_as_the_server_sees_it(provider, serve):
    # the first wave answers slowly so that even a loaded CPU gets all 8 slots onto the wire at once
    srv = serve("x", latency=lambda body: 0.6 if len(srv.requests) <= 8 else 0.1, capacity=2,
                capacity_retry_after=0.02)
    eng = make(provider, srv, max_concurrency=8, max_retries=12)

    async def run():
        return await asyncio.gather(*(eng.complete(f"q{i}") for i in range(30)))
    assert asyncio.run(run()) == ["x"] * 30
    reqs = srv.requests
    assert max(r.concurrency for r in reqs[:8]) >= 6            # it started wide ...
    assert any(r.status == 429 for r in reqs)
    late = reqs[len(reqs) // 2:]
    assert max(r.concurrency for r in late) <= 4                 # ... and the server saw it narrow
    assert eng.limiter.limit < 8 and eng.limiter.decreases >= 1
    assert sum(r.status == 200 for r in reqs) == 30


def test_one_burst_of_429s_halves_once():
    lim = AdaptiveLimiter(8)

    async def burst():
        slots = [await lim.acquire() for _ in range(8)]
        for s in slots:
            lim.on_rate_limit(s)
            lim.release()
        assert lim.limit == 4
        slot = await lim.acquire()      # admitted under the new limit: one 429 alone changes nothing ...
        lim.on_rate_limit(slot)
        lim.release()
        assert lim.limit == 4
        for _ in range(3):              # ... a burst of them does
            slot = await lim.acquire()
            lim.on_rate_limit(slot)
            lim.release()
    asyncio.run(burst())
    assert lim.limit == 2 and lim.decreases == 2 and lim.rate_limits == 12


def test_scattered_429s_do_not_lower_the_limit():
    """5% random 429s (one in twenty answers) leave the limit where it is; a run of them halves it."""
    lim = AdaptiveLimiter(8)
    for i in range(400):
        if i % 20 == 19:
            lim.on_rate_limit(lim._epoch)
        else:
            lim.on_success()
    assert lim.limit == 8 and lim.decreases == 0 and lim.rate_limits == 20
    for _ in range(4):
        lim.on_success()
        lim.on_rate_limit(lim._epoch)
    assert lim.limit == 4 and lim.decreases == 1


def test_a_retry_queues_at_the_front():
    lim = AdaptiveLimiter(1, adaptive=False)
    order = []

    async def waiter(name, retry):
        await lim.acquire(retry=retry)
        order.append(name)
        lim.release()

    async def run():
        await lim.acquire()
        tasks = [asyncio.create_task(waiter(f"new{i}", False)) for i in range(3)]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(waiter("retry", True)))
        await asyncio.sleep(0)
        lim.release()
        await asyncio.gather(*tasks)
    asyncio.run(run())
    assert order == ["retry", "new0", "new1", "new2"]


def test_limit_recovers_slowly_and_caps():
    lim = AdaptiveLimiter(4, increase_after=3)
    lim.on_rate_limit()
    assert lim.limit == 2
    for _ in range(3):
        lim.on_success()
    assert lim.limit == 3
    for _ in range(30):
        lim.on_success()
    assert lim.limit == 4


def test_limiter_bounds_in_flight_across_two_event_loops():
    lim = AdaptiveLimiter(2, adaptive=False)
    peak = []
    lock = threading.Lock()

    async def worker():
        async with lim:
            with lock:
                peak.append(lim.in_flight)
            await asyncio.sleep(0.02)

    async def many():
        await asyncio.gather(*(worker() for _ in range(10)))
    threads = [threading.Thread(target=asyncio.run, args=(many(),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not any(t.is_alive() for t in threads)   # a release on one loop wakes waiters on the other
    assert len(peak) == 20 and max(peak) <= 2 and lim.in_flight == 0


def test_bad_limit():
    with pytest.raises(ValueError):
        AdaptiveLimiter(0)
