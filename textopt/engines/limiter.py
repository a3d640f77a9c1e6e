"""Adaptive concurrency (AIMD): halve the in-flight limit on a rate-limit answer, raise it by one after a run
of successes. Loop-aware: the engine may be used from textopt's private loop and from a user's own loop."""
from __future__ import annotations

import asyncio
import threading


class AdaptiveLimiter:
    def __init__(self, limit: int = 8, *, max_limit: int | None = None, adaptive: bool = True,
                 increase_after: int = 8):
        if limit < 1:
            raise ValueError(f"concurrency limit must be >= 1, got {limit}")
        self.limit = limit
        self.max_limit = max_limit or limit
        self.adaptive = adaptive
        self.increase_after = increase_after
        self.in_flight = 0
        self.peak = 0
        self._successes = 0
        self._conds: dict[int, asyncio.Condition] = {}
        self._lock = threading.Lock()

    def _cond(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()
        with self._lock:
            cond = self._conds.get(id(loop))
            if cond is None:
                cond = self._conds[id(loop)] = asyncio.Condition()
            return cond

    async def __aenter__(self):
        cond = self._cond()
        async with cond:
            await cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        return self

    async def __aexit__(self, *exc):
        cond = self._cond()
        async with cond:
            self.in_flight -= 1
            cond.notify_all()
        return False

    def on_rate_limit(self) -> None:
        if self.adaptive:
            self.limit = max(1, self.limit // 2)
            self._successes = 0

    def on_success(self) -> None:
        if self.adaptive and self.limit < self.max_limit:
            self._successes += 1
            if self._successes >= self.increase_after:
                self.limit += 1
                self._successes = 0
