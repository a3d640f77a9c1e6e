"""``Engine``: the ONE call path every provider shares.

    canonical request -> cache lookup -> budget reservation -> [retry: limiter -> provider] -> usage and cost
    -> cache store -> recording

(``generate`` runs the bracketed call and the accounting; the steps around it run only when the engine has a
cache, a cassette, a budget or a dry run — the per-call cost of a bare engine stays a few microseconds.)

A provider subclass implements only ``_send(request) -> Response`` (one attempt) and ``_classify(exc)`` (is this
error a rate limit, retryable, or final — and which textopt error to raise). Retries use tenacity with
exponential backoff and jitter, honouring a ``retry_after`` the provider extracts; SDK clients are built with
their own retries off, so there is exactly one retry layer.
"""
from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import random
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ..checks import expect, expect_int, writable
from ..errors import EngineError, EngineSpecError, ProviderError, TextoptError
from ..runtime import run_sync
from .cache import ResponseCache, default_cache, open_cache
from .images import check_supported
from .limiter import AdaptiveLimiter
from .portable import record_init, reduce_engine
from .secrets import scrub
from .types import Request, Response
from .usage import Budget, Usage, has_price, price_of

_LIVE_ENGINES: "weakref.WeakSet[Engine]" = weakref.WeakSet()
# What an engine honours natively (class attributes, default False); structured requests are shaped by them.
CAPABILITIES = ("supports_schema", "supports_prefill", "supports_pattern")


class UnpricedModelWarning(UserWarning):
    """A USD budget is set but the model has no price: its calls count $0 (see ``Engine(prices=...)``)."""


class Retryable(Exception):
    """Raised by ``_classify`` wrappers: the attempt may be retried (``retry_after`` in seconds, if known)."""

    def __init__(self, error: BaseException, retry_after: float | None = None, rate_limited: bool = False,
                 timed_out: bool = False):
        super().__init__(str(error))
        self.error, self.retry_after, self.rate_limited = error, retry_after, rate_limited
        self.timed_out = timed_out   # no answer in time: the server may still be generating it


def check_settings(owner: str, **settings: Any) -> None:
    """An engine's numeric settings: counts (``max_concurrency`` >= 1; ``max_retries``, ``timeout_retries`` >= 0)
    are ints, waits and ``timeout`` finite numbers (``timeout`` > 0); None leaves a setting to its default."""
    for key, value in settings.items():
        if value is None:
            continue
        if key in ("max_concurrency", "max_retries", "timeout_retries"):
            expect_int(value, f"{owner} {key}", lo=1 if key == "max_concurrency" else 0, error=EngineSpecError)
        else:
            expect(value, (int, float), f"{owner} {key}", error=EngineSpecError)
            if not (0 < value if key == "timeout" else 0 <= value) or value == float("inf"):
                raise EngineSpecError(f"{owner} {key} must be a finite number of seconds "
                                      f"{'> 0' if key == 'timeout' else '>= 0'}, got {value}")


class Engine:
    """Base engine. ``cache``: None (the default: the shared disk cache, ``cache.default_cache``; none when
    ``TEXTOPT_CACHE=0`` or ``caches_by_default`` is False), True (the default folder's disk cache), False,
    "memory", a path, a ``redis://`` URL, or a cache object (``Request.use_cache=False`` skips it for one call). ``budget``: a shared ``Budget``. ``max_concurrency``:
    the in-flight ceiling (AIMD below it when ``adaptive_concurrency``). ``max_retries``, ``retry_initial_wait``,
    ``retry_max_wait``: the tenacity backoff (a provider's Retry-After wins, capped at ``retry_max_wait``).
    ``timeout_retries``: how many of those retries may follow a timeout (None: all of them) — a self-hosted server
    goes on generating an answer its client gave up on, so each resent request queues one more generation.
    ``record``: append every answered call to this JSONL cassette (``replay:PATH``). ``prices``: USD per 1M
    (prompt, completion) tokens by model, over ``usage.DEFAULT_PRICES``. ``dry_run``: count and estimate only."""

    provider = "base"
    caches_by_default = True  # test doubles that answer from code (ScriptedEngine) set False
    supports_images = False   # reads Request.images (image content parts); text-only engines refuse them

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        record_init(cls)   # keep the constructor's arguments: how another process (a Ray worker) rebuilds it

    def __reduce__(self):  # pickled as a recipe, never as a live object or a key (see portable.py)
        return reduce_engine(self)

    def __init__(self, model: str, *, cache: Any = None, budget: Budget | None = None, max_concurrency: int = 8,
                 adaptive_concurrency: bool = True, max_retries: int = 4, retry_max_wait: float = 30.0,
                 retry_initial_wait: float = 0.2, record: str | Path | None = None, prices: dict | None = None,
                 dry_run: bool = False, name: str | None = None, timeout_retries: int | None = None):
        check_settings(type(self).__name__, max_concurrency=max_concurrency, max_retries=max_retries,
                       retry_max_wait=retry_max_wait, retry_initial_wait=retry_initial_wait,
                       timeout_retries=timeout_retries)
        expect(budget, Budget, f"{type(self).__name__} budget", "pass a textopt.engines.Budget shared by the "
               "engines it limits", error=EngineSpecError, allow_none=True)
        self.model = model
        self.name = name or f"{self.provider}:{model}"
        self.cache = _make_cache(cache) if cache is not None else (default_cache() if self.caches_by_default
                                                                   else None)
        self.budget = budget
        self.limiter = AdaptiveLimiter(max_concurrency, adaptive=adaptive_concurrency)
        self.max_retries = max_retries
        self.timeout_retries = timeout_retries
        self.retry_max_wait = retry_max_wait
        self.retry_initial_wait = retry_initial_wait
        self.prices = prices  # property: resets the per-model price memo
        self.dry_run = dry_run
        self.usage = Usage()
        self.record_path = writable(record, "record cassette", error=EngineSpecError) if record else None
        self._record_lock = threading.Lock()
        _LIVE_ENGINES.add(self)

    @property
    def prices(self) -> dict | None:
        return self._prices

    @prices.setter
    def prices(self, table: dict | None) -> None:
        self._prices = table
        self._price_memo: dict[str, tuple[float, float]] = {}   # model -> (prompt, completion) USD per 1M

    def _cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        try:
            p, c = self._price_memo[model]
        except KeyError:  # the table lookup (merge + longest prefix) once per model, not once per call
            p, c = self._price_memo[model] = price_of(model, self._prices)
            if self.budget is not None and self.budget.max_usd is not None and not has_price(model, self._prices):
                warnings.warn(f"{self.name}: no price is known for model {model!r}, so its calls count $0 against "
                              f"the USD budget and it will never stop them; pass prices={{{model!r}: (prompt, "
                              f"completion) USD per 1M tokens}} or use a token budget (Budget(max_tokens=...), "
                              f"--budget-tokens)", UnpricedModelWarning, stacklevel=2)
        return (prompt_tokens * p + completion_tokens * c) / 1e6 if p or c else 0.0

    # -- provider hooks ------------------------------------------------------------------------------------
    async def _send(self, request: Request) -> Response:
        raise NotImplementedError

    def _classify(self, exc: BaseException) -> BaseException | Retryable:
        """Map a provider exception to ``Retryable`` or to the textopt error to raise (default: timeouts and
        connection errors are retryable, anything else is a ProviderError)."""
        if isinstance(exc, TextoptError):
            return exc
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            return Retryable(exc, timed_out=True)
        if isinstance(exc, ConnectionError):
            return Retryable(exc)
        return ProviderError(scrub(f"{self.name}: {type(exc).__name__}: {exc}"))

    def cache_model_id(self, model: str | None = None) -> str:
        """What identifies the model in cache keys and cassettes (a server URL + model for OpenAI-compatible
        servers); ``model`` is a per-request model override (None: the engine's model). Never a credential."""
        return self.name if model in (None, self.model) else f"{self.provider}:{model}"

    def _describe_failure(self, error: BaseException) -> str:
        """The end of the message raised when the retries ran out on ``error``."""
        return scrub(f"{type(error).__name__}: {error}")

    def request_key(self, request: Request) -> tuple[str, dict]:
        """(cache/cassette key, canonical request) — ``request.model`` is folded into the engine's model id, so
        the same model asked through two engines (two servers) never shares an entry."""
        if request.model in (None, self.model):
            model_id, request = self.cache_model_id(), (request if request.model is None
                                                        else dataclasses.replace(request, model=None))
        else:
            if inspect.signature(self.cache_model_id).parameters:
                model_id = self.cache_model_id(request.model)
            else:  # an engine overriding the older no-argument form
                model_id = f"{self.cache_model_id()}>{request.model}"
            request = dataclasses.replace(request, model=None)
        return request.key(model_id), request.canonical(model_id)

    # -- the shared path -----------------------------------------------------------------------------------
    async def generate(self, request: Request, *, _raw: bool = False) -> Response:
        if request.images and not self.supports_images:
            check_supported(self, request)
        if not _raw and (self.cache is not None or self.record_path is not None or self.budget is not None
                         or self.dry_run):
            return await self._managed(request)   # cache, cassette, budget or dry run around the call below
        # The call: a limiter slot, the provider, retries; then cost and usage. Nothing else on this path —
        # it runs for every LLM call of a graph.
        limiter = self.limiter
        slot = limiter._try_acquire()
        if slot is not None:
            # A free slot (the usual case): ``_attempt``'s body inlined, one coroutine frame less per call;
            # a retryable failure goes on in ``_retry``, as from ``_attempt``.
            t0 = time.perf_counter()
            try:
                resp = await self._send(request)
            except Exception as exc:  # noqa: BLE001 - classified
                verdict = self._classify(exc)
                if isinstance(verdict, Retryable) and verdict.rate_limited:
                    limiter.on_rate_limit(slot)
                limiter.release()
                if not isinstance(verdict, Retryable):
                    raise verdict from exc
                resp = await self._retry(request, verdict)
            except BaseException:   # cancelled while waiting for the provider
                limiter.release()
                raise
            else:
                limiter.release(True)
                resp.latency = time.perf_counter() - t0
        else:
            try:   # wait for a slot inside the attempt
                resp = await self._attempt(request)
            except Retryable as first:
                resp = await self._retry(request, first)
        resp.cost = self._cost(resp.model or request.model or self.model, resp.prompt_tokens,
                               resp.completion_tokens)
        self.usage.record(request.role, request.node, resp.prompt_tokens, resp.completion_tokens, resp.cost,
                          False)   # cached=False, positionally (once per LLM call)
        return resp

    async def _managed(self, request: Request) -> Response:
        """The call wrapped in what the engine was configured with: cache lookup, budget reservation (or a dry
        run's estimate), then the call (``generate(_raw=True)``), settlement, cache store and cassette."""
        use_cache = self.cache is not None and request.use_cache is not False
        # the key (JSON + SHA-256 of the whole request) only when a cache or a cassette needs it
        key, canonical = self.request_key(request) if use_cache or self.record_path is not None else (None, None)
        if use_cache:
            hit = self.cache.get(key)
            if hit is not None:
                resp = Response.from_dict(hit)
                resp.cached = True
                self.usage.record(request.role, request.node, resp.prompt_tokens, resp.completion_tokens,
                                  resp.cost, cached=True)
                if self.record_path is not None:  # a cassette must replay the whole run, cache hits included
                    self._record(key, canonical, Response.from_dict(hit))
                return resp
        model = request.model or self.model
        reservation = None
        if self.budget or self.dry_run:
            est_prompt = request.prompt_chars() // 4 + 8
            if self.budget:
                reservation = self.budget.reserve(est_prompt + request.max_tokens,
                                                  self._cost(model, est_prompt, request.max_tokens))
        resp = None
        try:
            if self.dry_run:
                resp = Response(text="", prompt_tokens=est_prompt, completion_tokens=request.max_tokens,
                                model=model, finish_reason="dry_run")
                resp.cost = self._cost(model, resp.prompt_tokens, resp.completion_tokens)
                self.usage.record(request.role, request.node, resp.prompt_tokens, resp.completion_tokens,
                                  resp.cost, cached=False)
            else:
                resp = await Engine.generate(self, request, _raw=True)
        finally:
            if reservation is not None:
                self.budget.settle(reservation, resp.total_tokens if resp else None, resp.cost if resp else None)
        if not self.dry_run:
            if use_cache:
                self.cache.set(key, resp.to_dict())
            if self.record_path is not None:
                self._record(key, canonical, resp)
        return resp

    async def _attempt(self, request: Request, retry: bool = False) -> Response:
        """One attempt inside a limiter slot (taken without awaiting when one is free: the hot path); a
        ``retry`` waits at the front of the limiter's queue (it keeps the place it had)."""
        limiter = self.limiter
        slot = limiter._try_acquire()
        if slot is None:
            slot = await limiter.acquire(retry=retry)
        try:
            t0 = time.perf_counter()
            try:
                resp = await self._send(request)
            except Exception as exc:  # noqa: BLE001 - classified below
                verdict = self._classify(exc)
                if isinstance(verdict, Retryable) and verdict.rate_limited:
                    limiter.on_rate_limit(slot)
                raise verdict from exc
            limiter.on_success()
            resp.latency = time.perf_counter() - t0
            return resp
        finally:
            limiter.release()

    def _retry_wait(self, state: RetryCallState) -> float:
        err = state.outcome.exception()
        if isinstance(err, Retryable) and err.retry_after is not None:
            return min(err.retry_after, self.retry_max_wait)
        # exponential backoff with "equal jitter": half the step fixed, half random (scales with the step)
        step = min(self.retry_initial_wait * 2 ** (state.attempt_number - 1), self.retry_max_wait)
        return step / 2 + random.uniform(0, step / 2)

    async def _retry(self, request: Request, first: Retryable) -> Response:
        """After a retryable first attempt: back off (tenacity, Retry-After honoured) and try again, up to
        ``max_retries`` more attempts; then raise the provider's textopt error."""
        timeouts = self.max_retries if self.timeout_retries is None else self.timeout_retries
        attempts = 1

        def retryable(e: BaseException) -> bool:   # a timeout is resent at most ``timeout_retries`` times
            nonlocal timeouts
            if not isinstance(e, Retryable):
                return False
            if e.timed_out:
                timeouts -= 1
                return timeouts >= 0
            return True

        def count(state) -> None:
            nonlocal attempts
            attempts += 1
        try:
            if self.max_retries < 1 or not retryable(first):
                raise first
            first_state = RetryCallState(None, None, (), {})
            first_state.set_exception((type(first), first, first.__traceback__))
            await asyncio.sleep(self._retry_wait(first_state))
            retrying = AsyncRetrying(stop=stop_after_attempt(self.max_retries), reraise=True, before=count,
                                     wait=lambda state: self._retry_wait(_shifted(state)),
                                     retry=retry_if_exception(retryable))
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(request, retry=True)
        except Retryable as final:
            err = self._classify(final.error)
            if isinstance(err, Retryable):
                from ..errors import RateLimitError
                cls = RateLimitError if final.rate_limited else ProviderError
                raise cls(f"{self.name}: gave up after {attempts} attempt{'s' if attempts > 1 else ''}: "
                          f"{self._describe_failure(final.error)}") from final.error
            raise err from final.error
        raise EngineError("unreachable")  # pragma: no cover

    def _record(self, key: str, canonical: dict, resp: Response) -> None:
        # the engine's abilities decide how structured requests are shaped: replay must shape them the same way
        caps = {c: bool(getattr(self, c, False)) for c in CAPABILITIES}
        line = json.dumps({"key": key, "request": canonical, "response": resp.to_dict(), "engine": caps},
                          ensure_ascii=False)
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

    def __repr__(self) -> str:   # also for an engine whose constructor failed before setting its name
        return f"{type(self).__name__}({getattr(self, 'name', '(not initialised)')!r})"


def _shifted(state: RetryCallState) -> RetryCallState:
    """The retry loop starts at the second attempt (the first ran on the hot path): number waits accordingly."""
    shifted = RetryCallState(state.retry_object, state.fn, state.args, state.kwargs)
    shifted.attempt_number = state.attempt_number + 1
    shifted.outcome = state.outcome
    return shifted


def _make_cache(cache: Any):
    if cache is None or cache is False:
        return None
    if cache is True:
        return ResponseCache()   # the default folder, even where TEXTOPT_CACHE=0 (asked for by name)
    if isinstance(cache, (str, Path)):
        return open_cache(cache)   # "memory", a folder, or a redis:// URL
    return cache


def live_engines() -> list[Engine]:
    return list(_LIVE_ENGINES)
