"""Throughput and per-call overhead of the shared engine path with the real SDKs against the loopback server.

    .venv/bin/python benchmarks/engine_loopback.py [--requests 200] [--latency 0.1] [--concurrency 16]

Prints, per SDK: wall time for N requests at the given server latency and engine concurrency (ideal:
N / concurrency * latency), the peak concurrency the server saw, and the mean time of a cache hit.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time

from textopt.engines import Request
from textopt.engines.anthropic_engine import AnthropicEngine
from textopt.engines.openai_engine import OpenAIEngine
from textopt.testing import LoopbackServer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    os.environ.setdefault("ANTHROPIC_API_KEY", "bench-key")
    ideal = args.requests / args.concurrency * args.latency
    for name in ("openai", "anthropic"):
        with LoopbackServer("a short answer", latency=args.latency) as srv, tempfile.TemporaryDirectory() as tmp:
            kw = dict(max_concurrency=args.concurrency, cache=tmp)
            eng = OpenAIEngine("m", base_url=srv.openai_base_url, **kw) if name == "openai" else \
                AnthropicEngine("m", base_url=srv.url, **kw)
            reqs = [Request.chat(f"question {i}") for i in range(args.requests)]

            async def run():
                return await asyncio.gather(*(eng.generate(r) for r in reqs))
            t0 = time.perf_counter()
            asyncio.run(run())
            wall = time.perf_counter() - t0
            t0 = time.perf_counter()
            hits = asyncio.run(run())
            hit = (time.perf_counter() - t0) / args.requests
            assert all(h.cached for h in hits)
            print(f"{name:<10} {args.requests} calls in {wall:.2f} s (ideal {ideal:.2f} s, overhead "
                  f"{(wall - ideal) / args.requests * 1000:.1f} ms/call), server peak concurrency "
                  f"{srv.max_concurrency}, cache hit {hit * 1000:.2f} ms")


if __name__ == "__main__":
    main()
