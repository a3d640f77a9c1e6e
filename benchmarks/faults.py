"""What faults cost: wall time of N calls through the real OpenAI SDK against the loopback server, under
(a) 5% random 429s with a 1 s Retry-After (a provider's background refusals, unrelated to load), and
(b) a real rate limit (the server refuses whatever is in flight past ``--capacity``), for the adaptive limiter
and for a fixed concurrency limit.

    .venv/bin/python benchmarks/faults.py [--requests 200] [--latency 0.2] [--concurrency 8] [--capacity 4]

Goals (issue 15): under random 429s adaptive within 1.3x of fixed; under a real rate limit adaptive still backs
off (fewer refused requests than fixed); a retried call is sent again about Retry-After after its 429, not after
waiting behind every queued call. ``rule=burst1`` replays the previous halving rule (halve on any 429 of the
current epoch) with today's retry priority, for reference.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time

from textopt.engines import Request
from textopt.engines.limiter import AdaptiveLimiter
from textopt.engines.openai_engine import OpenAIEngine
from textopt.testing import Fault, LoopbackServer


def run(requests: int, latency: float, concurrency: int, *, adaptive: bool, faults=(), capacity=None,
        burst: int | None = None) -> dict:
    with LoopbackServer(lambda body: "ok", latency=latency, faults=faults, capacity=capacity,
                        capacity_retry_after=0.05) as srv:
        eng = OpenAIEngine("m", base_url=srv.openai_base_url, api_key="bench-key", max_concurrency=concurrency,
                           adaptive_concurrency=adaptive, max_retries=12, retry_max_wait=5.0, cache=False)
        if burst is not None:
            eng.limiter = AdaptiveLimiter(concurrency, adaptive=adaptive, rate_limit_burst=burst)
        reqs = [Request.chat(f"question {i}") for i in range(requests)]

        async def go():
            return await asyncio.gather(*(eng.generate(r) for r in reqs), return_exceptions=True)
        t0 = time.perf_counter()
        failed = sum(isinstance(x, BaseException) for x in asyncio.run(go()))
        wall = time.perf_counter() - t0
        seen = srv.requests
    first_429: dict[str, float] = {}
    delays = []
    for r in seen:   # per question: from its first 429 to the next time it reached the server
        q = r.body["messages"][-1]["content"]
        if r.status == 429 and q not in first_429:
            first_429[q] = r.arrived
        elif q in first_429 and r.status != 429:
            delays.append(r.arrived - first_429.pop(q))
    return {"wall_s": round(wall, 2), "failed": failed, "sent": len(seen),
            "refused_429": sum(r.status == 429 for r in seen),
            "decreases": eng.limiter.decreases, "final_limit": eng.limiter.limit,
            "retry_delay_s": {"median": round(statistics.median(delays), 2), "max": round(max(delays), 2)}
            if delays else None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--capacity", type=int, default=4, help="the real rate limit: requests in flight at once")
    ap.add_argument("--rate", type=float, default=0.05, help="share of random 429s")
    ap.add_argument("--retry-after", type=float, default=1.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "bench-key")
    rng = random.Random(15)
    random_faults = [Fault.rate_limit(retry_after=args.retry_after) if rng.random() < args.rate else None
                     for _ in range(args.requests * 2)]
    n, lat, c = args.requests, args.latency, args.concurrency
    rows = {
        "random429/fixed": run(n, lat, c, adaptive=False, faults=random_faults),
        "random429/adaptive": run(n, lat, c, adaptive=True, faults=random_faults),
        "random429/adaptive rule=burst1": run(n, lat, c, adaptive=True, faults=random_faults, burst=1),
        "ratelimit/fixed": run(n, lat, c, adaptive=False, capacity=args.capacity),
        "ratelimit/adaptive": run(n, lat, c, adaptive=True, capacity=args.capacity),
    }
    print(f"{n} calls, {lat} s server latency, concurrency {c}; random 429s: {args.rate:.0%} with Retry-After "
          f"{args.retry_after} s; real rate limit: {args.capacity} in flight")
    print(f"{'scenario':<34}{'wall s':>8}{'failed':>7}{'sent':>6}{'429s':>6}{'halved':>8}{'limit':>7}  "
          f"retry delay (median/max)")
    for name, r in rows.items():
        d = r["retry_delay_s"]
        print(f"{name:<34}{r['wall_s']:>8.2f}{r['failed']:>7}{r['sent']:>6}{r['refused_429']:>6}{r['decreases']:>8}"
              f"{r['final_limit']:>7}  " + (f"{d['median']:.2f} / {d['max']:.2f} s" if d else "-"))
    ratio = rows["random429/adaptive"]["wall_s"] / rows["random429/fixed"]["wall_s"]
    print(f"random 429s: adaptive / fixed wall time = {ratio:.2f}x (goal <= 1.3x)")
    print(f"real rate limit: 429s adaptive {rows['ratelimit/adaptive']['refused_429']} vs fixed "
          f"{rows['ratelimit/fixed']['refused_429']} (adaptive must back off)")
    result = {"config": vars(args), "rows": rows, "random_ratio": round(ratio, 3)}
    print("RESULT_JSON " + json.dumps(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
