"""Adaptive concurrency (AIMD): halve the in-flight limit on a rate-limit answer, raise it by one after a run
of successes. Loop-aware: the engine may be used from textopt's private loop and from a user's own loop.

A burst of 429s answering requests that were all sent under the same limit halves the limit ONCE (each slot
carries the epoch of the limit it was admitted under; only answers to slots admitted since the last decrease
count), as TCP does once per round trip — otherwise eight simultaneous 429s would collapse the limit to 1.

A lone 429 does not lower the limit: some providers answer a few percent of requests with 429 whatever the
load, and halving on each (then regaining one slot per eight successes) cost 2.6x the wall time of a fixed
limit under 5% random 429s (issue 15; ``benchmarks/faults.py``). The limit halves when ``rate_limit_burst``
429s of the current epoch arrive within ``rate_limit_window`` answers — what a real rate limit produces, as
the requests over it are all refused. The retried request itself waits its Retry-After, then goes to the
FRONT of the queue (``acquire(retry=True)``): it keeps its place instead of waiting behind every new call.
"""
from __future__ import annotations

import asyncio
import threading
from collections import deque


class AdaptiveLimiter:
    def __init__(self, limit: int = 8, *, max_limit: int | None = None, adaptive: bool = True,
                 increase_after: int = 8, rate_limit_burst: int = 4, rate_limit_window: int = 16):
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
        self.burst, self.window = max(1, rate_limit_burst), max(rate_limit_burst, rate_limit_window)
        self._answers = 0              # successes so far (a position in the stream of answers)
        self._recent: deque = deque(maxlen=self.burst)   # answer positions of this epoch's latest 429s
        self.rate_limits = 0           # 429s seen (all epochs)
        self._queue: deque = deque()   # (loop, future) of tasks waiting for a slot, first come first served
        self._lock = threading.Lock()

    def _try_acquire(self) -> int | None:
        # acquire()/release() rather than ``with``: half the cost, and this runs twice per LLM call
        lock = self._lock
        lock.acquire()
        try:
            n = self.in_flight
            if n >= self.limit or self._queue:
                return None
            self.in_flight = n = n + 1
            if n > self.peak:
                self.peak = n
            return self._epoch
        finally:
            lock.release()

    async def acquire(self, *, retry: bool = False) -> int:
        """Wait for a slot; returns the epoch it was admitted under (pass it to ``on_rate_limit``).

        Waiters queue in FIFO order; a release hands its slot straight to the first waiter (on whatever loop
        it waits), so nobody is woken just to find the slot gone. A ``retry`` (a call that already waited its
        turn once) queues at the front."""
        epoch = self._try_acquire()
        if epoch is not None:
            return epoch
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            (self._queue.appendleft if retry else self._queue.append)((loop, fut))
        self._grant()   # a slot may have freed between the try and the enqueue
        try:
            return await fut
        except asyncio.CancelledError:
            with self._lock:
                try:
                    self._queue.remove((loop, fut))
                    granted = False
                except ValueError:
                    granted = True
            if granted and fut.done() and not fut.cancelled():
                self.release()          # the slot was handed to us as we were cancelled: pass it on
            raise

    def release(self, success: bool = False) -> None:
        """Free a slot; ``success``: the call that held it succeeded (``on_success()`` first, in the same call: the
        shared call path frees its slot so once per LLM call)."""
        if success:
            if self.adaptive and self.limit < self.max_limit:
                self.on_success()
            else:
                self._answers += 1   # on_success's count (unlocked there too)
        lock = self._lock
        lock.acquire()
        try:
            self.in_flight -= 1
        finally:
            lock.release()
        if self._queue:   # an empty queue needs no grant: a waiter enqueuing meanwhile runs _grant itself
            self._grant()

    def _grant(self) -> None:
        """Hand free slots to the first waiters."""
        while True:
            with self._lock:
                if not self._queue or self.in_flight >= self.limit:
                    return
                loop, fut = self._queue.popleft()
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
                epoch = self._epoch
            try:
                current = asyncio.get_running_loop()
            except RuntimeError:
                current = None
            if loop is current:
                self._resolve(fut, epoch)
            else:
                try:
                    loop.call_soon_threadsafe(self._resolve, fut, epoch)
                except RuntimeError:        # that loop is closed: its waiter is gone, free the slot
                    with self._lock:
                        self.in_flight -= 1

    def _resolve(self, fut: asyncio.Future, epoch: int) -> None:
        if fut.done():                      # cancelled meanwhile: give the slot to the next waiter
            self.release()
        else:
            fut.set_result(epoch)

    async def __aenter__(self) -> int:
        return await self.acquire()

    async def __aexit__(self, *exc):
        self.release()
        return False

    def on_rate_limit(self, epoch: int | None = None) -> None:
        """A slot admitted under ``epoch`` was rate limited (None: lower the limit now, whatever came before).
        The limit halves once ``burst`` such answers of this epoch came within ``window`` answers."""
        self.rate_limits += 1
        if not self.adaptive:
            return
        with self._lock:
            if epoch is not None:
                if epoch != self._epoch:
                    return   # sent before the last decrease: already accounted for
                self._recent.append(self._answers)
                if len(self._recent) < self.burst or \
                        self._answers - self._recent[0] > self.window - self.burst:
                    return   # scattered 429s: not a rate limit this concurrency causes
            self.limit = max(1, self.limit // 2)
            self._epoch += 1
            self.decreases += 1
            self._successes = 0
            self._recent.clear()

    def on_success(self) -> None:
        self._answers += 1   # unlocked: a lost increment under a race only blurs the window by one
        if not self.adaptive or self.limit >= self.max_limit:   # re-checked under the lock below
            return
        with self._lock:
            if self.limit >= self.max_limit:
                return
            self._successes += 1
            if self._successes < self.increase_after:
                return
            self.limit += 1
            self._successes = 0
        self._grant()

    def __repr__(self) -> str:
        return f"AdaptiveLimiter(limit={self.limit}/{self.max_limit}, in_flight={self.in_flight})"

