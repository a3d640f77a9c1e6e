"""``Engine``: the ONE call path every provider shares.

    canonical request -> cache lookup -> budget reservation -> [retry: limiter -> provider] -> usage and cost
    -> cache store -> recording

A provider subclass implements only ``_send(request) -> Response`` (one attempt) and ``_classify(exc)`` (is this
error a rate limit, retryable, or final — and which textopt error to raise). Retries use tenacity with
exponential backoff and jitter, honouring a ``retry_after`` the provider extracts; SDK clients are built with
their own retries off, so there is exactly one retry layer.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from ..errors import EngineError, ProviderError, TextoptError
from ..runtime import run_sync
from .cache import MemoryCache, ResponseCache
from .limiter import AdaptiveLimiter
from .types import Request, Response
from .usage import Budget, Usage, cost_of

_LIVE_ENGINES: "weakref.WeakSet[Engine]" = weakref.WeakSet()


class Retryable(Exception):
    """Raised by ``_classify`` wrappers: the attempt may be retried (``retry_after`` in seconds, if known)."""

    def __init__(self, error: BaseException, retry_after: float | None = None, rate_limited: bool = False):
        super().__init__(str(error))
        self.error, self.retry_after, self.rate_limited = error, retry_after, rate_limited


class Engine:
    """Base engine. ``cache``: True (default disk cache), False, "memory", a path, or a cache object."""

    provider = "base"

    def __init__(self, model: str, *, cache: Any = False, budget: Budget | None = None, max_concurrency: int = 8,
                 adaptive_concurrency: bool = True, max_retries: int = 4, retry_max_wait: float = 30.0,
                 record: str | Path | None = None, prices: dict | None = None, dry_run: bool = False,
                 name: str | None = None):
        self.model = model
        self.name = name or f"{self.provider}:{model}"
        self.cache = _make_cache(cache)
        self.budget = budget
        self.limiter = AdaptiveLimiter(max_concurrency, adaptive=adaptive_concurrency)
        self.max_retries = max_retries
        self.retry_max_wait = retry_max_wait
        self.prices = prices
        self.dry_run = dry_run
        self.usage = Usage()
        self.record_path = Path(record) if record else None
        self._record_lock = threading.Lock()
        _LIVE_ENGINES.add(self)

    # -- provider hooks ------------------------------------------------------------------------------------
    async def _send(self, request: Request) -> Response:
        raise NotImplementedError

    def _classify(self, exc: BaseException) -> BaseException | Retryable:
        """Map a provider exception to ``Retryable`` or to the textopt error to raise (default: timeouts and
        connection errors are retryable, anything else is a ProviderError)."""
        if isinstance(exc, TextoptError):
            return exc
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError, ConnectionError)):
            return Retryable(exc)
        return ProviderError(f"{self.name}: {type(exc).__name__}: {exc}")

    def cache_model_id(self) -> str:
        """What identifies the model in cache keys (a server URL + model for OpenAI-compatible servers)."""
        return self.name

    # -- the shared path -----------------------------------------------------------------------------------
    async def generate(self, request: Request) -> Response:
        key = request.key(self.cache_model_id())
        use_cache = self.cache is not None and request.use_cache is not False
        if use_cache:
            hit = self.cache.get(key)
            if hit is not None:
                resp = Response.from_dict(hit)
                resp.cached = True
                self.usage.record(request.role, request.node, resp.prompt_tokens, resp.completion_tokens,
                                  resp.cost, cached=True)
                return resp
        est_prompt = request.prompt_chars() // 4 + 8
        est_cost = cost_of(request.model or self.model, est_prompt, request.max_tokens, self.prices)
        reservation = self.budget.reserve(est_prompt + request.max_tokens, est_cost) if self.budget else None
        resp = None
        try:
            if self.dry_run:
                resp = Response(text="", prompt_tokens=est_prompt, completion_tokens=request.max_tokens,
                                model=request.model or self.model, finish_reason="dry_run")
            else:
                resp = await self._send_with_retries(request)
            resp.cost = cost_of(resp.model or request.model or self.model, resp.prompt_tokens,
                                resp.completion_tokens, self.prices)
        finally:
            if reservation is not None:
                self.budget.settle(reservation, resp.total_tokens if resp else None, resp.cost if resp else None)
        self.usage.record(request.role, request.node, resp.prompt_tokens, resp.completion_tokens, resp.cost,
                          cached=False)
        if not self.dry_run:
            if use_cache:
                self.cache.set(key, resp.to_dict())
            if self.record_path is not None:
                self._record(key, request, resp)
        return resp

    async def _send_with_retries(self, request: Request) -> Response:
        def wait(state: RetryCallState) -> float:
            err = state.outcome.exception()
            if isinstance(err, Retryable) and err.retry_after is not None:
                return min(err.retry_after, self.retry_max_wait)
            return wait_exponential_jitter(initial=0.2, max=self.retry_max_wait)(state)

        retrying = AsyncRetrying(stop=stop_after_attempt(self.max_retries + 1), wait=wait,
                                 retry=retry_if_exception(lambda e: isinstance(e, Retryable)), reraise=True)
        try:
            async for attempt in retrying:
                with attempt:
                    async with self.limiter:
                        t0 = time.perf_counter()
                        try:
                            resp = await self._send(request)
                        except Exception as exc:  # noqa: BLE001 - classified below
                            verdict = self._classify(exc)
                            if isinstance(verdict, Retryable) and verdict.rate_limited:
                                self.limiter.on_rate_limit()
                            raise verdict from exc
                        self.limiter.on_success()
                        resp.latency = time.perf_counter() - t0
                        return resp
        except Retryable as final:
            err = self._classify(final.error)
            if isinstance(err, Retryable):
                from ..errors import RateLimitError
                cls = RateLimitError if final.rate_limited else ProviderError
                raise cls(f"{self.name}: gave up after {self.max_retries + 1} attempts: "
                          f"{type(final.error).__name__}: {final.error}") from final.error
            raise err from final.error
        raise EngineError("unreachable")  # pragma: no cover

    def _record(self, key: str, request: Request, resp: Response) -> None:
        line = json.dumps({"key": key, "request": request.canonical(self.cache_model_id()),
                           "response": resp.to_dict()}, ensure_ascii=False)
        with self._record_lock:
            self.record_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.record_path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    # -- conveniences --------------------------------------------------------------------------------------
    async def complete(self, prompt: str, *, system: str | None = None, **kw) -> str:
        return (await self.generate(Request.chat(prompt, system=system, **kw))).text

    def generate_sync(self, request: Request) -> Response:
        return run_sync(self.generate(request))

    async def score(self, messages, continuation: str) -> list[float]:
        """Per-token log-probabilities of ``continuation`` after ``messages`` (engines that can)."""
        raise EngineError(f"{self.name} cannot score continuations; use the local engine")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _make_cache(cache: Any):
    if cache is None or cache is False:
        return None
    if cache is True:
        return ResponseCache()
    if cache == "memory":
        return MemoryCache()
    if isinstance(cache, (str, Path)):
        return ResponseCache(cache)
    return cache


def live_engines() -> list[Engine]:
    return list(_LIVE_ENGINES)
