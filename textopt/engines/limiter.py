"""Adaptive concurrency (AIMD): halve the in-flight limit on a rate-limit answer, raise it by one after a run
of successes. Loop-aware: the engine may be used from textopt's private loop and from a user's own loop.

A burst of 429s answering requests that were all sent under the same limit halves the limit ONCE (each slot
carries the epoch of the limit it was admitted under; only answers to slots admitted since the last decrease
count), as TCP does once per round trip — otherwise eight simultaneous 429s would collapse the limit to 1.
"""
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
        self.decreases = 0          # how many times a rate limit lowered the limit
        self._epoch = 0
        self._successes = 0
        self._waiting = 0           # tasks parked in acquire(): only then does a release wake anyone
        self._waiters: dict[asyncio.AbstractEventLoop, asyncio.Condition] = {}
        self._lock = threading.Lock()

    def _cond(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()
        with self._lock:
            for other in [lp for lp in self._waiters if lp.is_closed()]:
                del self._waiters[other]
            cond = self._waiters.get(loop)
            if cond is None:
                cond = self._waiters[loop] = asyncio.Condition()
            return cond

    def _try_acquire(self) -> int | None:
        with self._lock:
            if self.in_flight >= self.limit:
                return None
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return self._epoch

    async def acquire(self) -> int:
        """Wait for a slot; returns the epoch it was admitted under (pass it to ``on_rate_limit``)."""
        epoch = self._try_acquire()
        if epoch is not None:
            return epoch
        cond = self._cond()
        with self._lock:
            self._waiting += 1
        try:
            async with cond:
                while True:
                    epoch = self._try_acquire()
                    if epoch is not None:
                        return epoch
                    await cond.wait()
        finally:
            with self._lock:
                self._waiting -= 1

    def release(self) -> None:
        with self._lock:
            self.in_flight -= 1
            if not self._waiting:
                return
            waiters = list(self._waiters.items())
        self._wake(waiters)

    @staticmethod
    def _wake(waiters) -> None:
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, cond in waiters:
            if loop is current:
                asyncio.ensure_future(_notify(cond))
            elif not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(lambda c=cond: asyncio.ensure_future(_notify(c)))
                except RuntimeError:  # loop closed meanwhile
                    pass

    async def __aenter__(self) -> int:
        return await self.acquire()

    async def __aexit__(self, *exc):
        self.release()
        return False

    def on_rate_limit(self, epoch: int | None = None) -> None:
        """A slot admitted under ``epoch`` was rate limited (None: always lower the limit)."""
        if not self.adaptive:
            return
        with self._lock:
            if epoch is not None and epoch != self._epoch:
                return   # sent before the last decrease: already accounted for
            self.limit = max(1, self.limit // 2)
            self._epoch += 1
            self.decreases += 1
            self._successes = 0

    def on_success(self) -> None:
        if not self.adaptive:
            return
        with self._lock:
            if self.limit >= self.max_limit:
                return
            self._successes += 1
            if self._successes < self.increase_after:
                return
            self.limit += 1
            self._successes = 0
            if not self._waiting:
                return
            waiters = list(self._waiters.items())
        self._wake(waiters)

    def __repr__(self) -> str:
        return f"AdaptiveLimiter(limit={self.limit}/{self.max_limit}, in_flight={self.in_flight})"


async def _notify(cond: asyncio.Condition) -> None:
    async with cond:
        cond.notify_all()
