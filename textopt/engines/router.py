"""``RoutedEngine``: one engine over several replicas that serve the same model (vLLM / SGLang / llama.cpp
servers behind no load balancer of their own).

    tx.get_engine("openai:http://h1:8000/v1,http://h2:8000/v1#Qwen2.5-7B-Instruct")
    RoutedEngine.from_urls(["http://h1:8000/v1", "http://h2:8000/v1"], "Qwen2.5-7B-Instruct")
    RoutedEngine([engine_a, engine_b])                      # any engines answering for the same model

A thin layer over the one call path: the router IS an ``Engine`` (its cache, budget, usage, cassette and
retries are the ordinary ones, so a call is cached under one key and counted once, whichever replica answered);
only its ``_send`` differs — it picks a replica and runs that replica's own ``_send``:

- **least outstanding requests**: a replica with a free slot and the fewest requests in flight (ties in
  turn), so a slow replica, which holds its requests longer, gets fewer new ones;
- **per-replica adaptive limits**: each replica keeps its own ``AdaptiveLimiter`` (halved on its 429s, raised
  after successes); the router's own limiter is the sum of the replicas' ceilings and does not adapt;
- **health**: a replica that fails with a connection error, a timeout or a 5xx is left out for ``cooldown``
  seconds (doubling on each further failure, up to ``max_cooldown``); then one request probes it;
- **failover**: a call whose replica failed that way is sent at once to another replica (no backoff, no second
  count); when every replica failed, the router's ordinary retry backs off and tries them again. Errors that
  would be the same on every replica (bad request, auth, context length) are raised as they are.

The replicas' own cache, budget and retries are not used (the router's are); build them with the defaults.
"""
from __future__ import annotations

import importlib
import itertools
import time
from typing import Any, Sequence

from ..errors import EngineSpecError
from .base import Engine, Retryable
from .types import Request, Response

# keyword arguments of ``from_urls`` that configure the router; every other one goes to each replica
ROUTER_KW = frozenset({"cache", "budget", "record", "prices", "dry_run", "max_retries", "retry_max_wait",
                       "retry_initial_wait", "timeout_retries", "name", "cache_id", "cooldown", "max_cooldown"})


class ReplicaFailure(Exception):
    """Every replica tried for one call failed retryably (what each said is in ``failures``)."""

    def __init__(self, failures: list[tuple["Replica", Retryable]]):
        self.failures = failures
        super().__init__("; ".join(f"{r.location}: {f.error}" for r, f in failures))


class Replica:
    """One endpoint of a router: its engine (and limiter), health and counters."""

    def __init__(self, engine: Engine):
        self.engine, self.limiter = engine, engine.limiter
        self.location = str(getattr(engine, "base_url", None) or engine.name)
        self.served = 0          # calls this replica answered
        self.failures = 0        # retryable failures (each one moved its call elsewhere or to a retry)
        self.streak = 0          # consecutive failures (sets the cooldown)
        self.down_until = 0.0    # monotonic time before which it gets no call (0: healthy)
        self.epoch = 0           # +1 each time it is marked down

    @property
    def healthy(self) -> bool:
        return self.down_until <= time.monotonic()

    def stats(self) -> dict:
        return {"replica": self.location, "served": self.served, "failures": self.failures,
                "in_flight": self.limiter.in_flight, "limit": self.limiter.limit, "healthy": self.healthy}


class RoutedEngine(Engine):
    """See the module docstring. ``cache_id``: what names the model in cache keys (default: the provider, the
    sorted replica URLs and the model — set it to keep cache entries when replicas are added or removed)."""

    def __init__(self, replicas: Sequence[Engine], *, cache_id: str | None = None, cooldown: float = 1.0,
                 max_cooldown: float = 30.0, **kw: Any):
        replicas = list(replicas)
        if not replicas or not all(isinstance(r, Engine) for r in replicas):
            raise EngineSpecError(f"RoutedEngine needs a non-empty list of engines, got {replicas!r}")
        models = {r.model for r in replicas}
        if len(models) != 1:
            raise EngineSpecError(f"the replicas of a RoutedEngine must serve one model, got {sorted(models)}")
        self.replicas = [Replica(r) for r in replicas]
        locations = [r.location for r in self.replicas]
        if len(set(locations)) != len(locations):
            raise EngineSpecError(f"a replica is listed twice: {locations}")
        self.provider = replicas[0].provider
        model = replicas[0].model
        self.cooldown, self.max_cooldown = cooldown, max_cooldown
        self._cache_id = cache_id or f"{self.provider}:{','.join(sorted(locations))}"
        self._turn = itertools.count()
        kw.setdefault("name", f"{self.provider}:{','.join(locations)}#{model}")
        kw.setdefault("max_concurrency", sum(r.limiter.max_limit for r in self.replicas))
        kw.setdefault("adaptive_concurrency", False)   # the replicas' limiters adapt, each to its own 429s
        kw.setdefault("timeout_retries", replicas[0].timeout_retries)   # a server's rule: resend a timeout once
        super().__init__(model, **kw)

    @classmethod
    def from_urls(cls, urls: Sequence[str], model: str, *, engine_cls: type | None = None,
                  **kw: Any) -> "RoutedEngine":
        """One replica engine (``engine_cls``, default ``OpenAIEngine``) per base URL. ``max_concurrency`` and
        the other engine options (``api_key_env``, ``timeout`` ...) apply to each replica; ``cache``,
        ``budget``, ``record``, retries, ``cache_id`` and the cooldowns to the router."""
        if engine_cls is None:   # loaded by name, as the engine registry loads providers: the router itself
            # depends on no provider (openai_engine imports the router for its 'openai:URL1,URL2#MODEL' spec)
            engine_cls = importlib.import_module("textopt.engines.openai_engine").OpenAIEngine
        urls = [u.strip().rstrip("/") for u in urls]
        if len(urls) < 1 or not all(urls):
            raise EngineSpecError(f"a replica list needs URLs separated by commas, got {urls!r}")
        own = {k: v for k, v in kw.items() if k in ROUTER_KW}
        each = {k: v for k, v in kw.items() if k not in ROUTER_KW}
        each["cache"] = False   # the router's cache is the one used (replicas only send)
        return cls([engine_cls(model, base_url=u, **each) for u in urls], **own)

    # -- what identifies the model -------------------------------------------------------------------------
    def cache_model_id(self, model: str | None = None) -> str:
        return f"{self._cache_id}#{model or self.model}"

    # capabilities: what every replica honours (read live: an engine may turn one off after a refusal)
    supports_schema = property(lambda self: self._capable("supports_schema"))
    supports_prefill = property(lambda self: self._capable("supports_prefill"))
    supports_pattern = property(lambda self: self._capable("supports_pattern"))
    supports_images = property(lambda self: self._capable("supports_images"))

    def _capable(self, name: str) -> bool:
        return all(getattr(r.engine, name, False) for r in self.replicas)

    # -- routing -------------------------------------------------------------------------------------------
    def _pick(self, tried: list[Replica]) -> Replica | None:
        """A replica not tried yet: healthy ones first, by (no free slot, requests in flight, turn); when none
        is healthy, the one whose cooldown ends first (it probes)."""
        now = time.monotonic()
        left = [r for r in self.replicas if all(r is not t for t in tried)]
        if not left:
            return None
        healthy = [r for r in left if r.down_until <= now]
        if not healthy:
            probe = min(left, key=lambda r: r.down_until)
            probe.down_until = now + self._cooldown(probe)   # one probe at a time
            return probe
        turn, n = next(self._turn), len(self.replicas)

        def load(ir):
            i, r = ir
            lim = r.limiter
            full = lim.in_flight >= lim.limit
            # a full replica: how long its queue is per slot; a free one: plain outstanding count
            return (full, (lim.in_flight + len(lim._queue)) / lim.limit if full else lim.in_flight,
                    (i - turn) % n)
        return min(((self.replicas.index(r), r) for r in healthy), key=load)[1]

    def _cooldown(self, r: Replica) -> float:
        return min(self.cooldown * 2 ** max(0, r.streak - 1), self.max_cooldown)

    async def _send(self, request: Request) -> Response:
        tried: list[Replica] = []
        failures: list[tuple[Replica, Retryable]] = []
        while True:
            r = self._pick(tried)
            if r is None:
                break
            tried.append(r)
            limiter, epoch = r.limiter, r.epoch
            slot = limiter._try_acquire()
            if slot is None:
                slot = await limiter.acquire()
            try:
                resp = await r.engine._send(request)
            except Exception as exc:  # noqa: BLE001 - classified by the replica
                limiter.release()
                verdict = r.engine._classify(exc)
                if not isinstance(verdict, Retryable):
                    raise verdict from exc   # the same answer on every replica: no failover
                r.failures += 1
                if verdict.rate_limited:
                    limiter.on_rate_limit(slot)
                elif epoch == r.epoch:   # failures of calls sent before it was marked down count once
                    r.streak += 1
                    r.epoch += 1
                    r.down_until = time.monotonic() + self._cooldown(r)
                failures.append((r, verdict))
                continue
            except BaseException:   # cancelled
                limiter.release()
                raise
            limiter.on_success()
            limiter.release()
            r.served += 1
            r.streak, r.down_until = 0, 0.0
            return resp
        limited = all(f.rate_limited for _, f in failures)
        waits = [f.retry_after for _, f in failures if f.retry_after is not None]
        raise Retryable(ReplicaFailure(failures), retry_after=min(waits) if waits and limited else None,
                        rate_limited=limited, timed_out=all(f.timed_out for _, f in failures))

    def _classify(self, exc: BaseException):
        if isinstance(exc, Retryable):
            return exc
        if isinstance(exc, ReplicaFailure):
            return Retryable(exc, rate_limited=all(f.rate_limited for _, f in exc.failures),
                             timed_out=all(f.timed_out for _, f in exc.failures))
        return super()._classify(exc)

    def _describe_failure(self, error: BaseException) -> str:
        if isinstance(error, ReplicaFailure):
            return "every replica failed: " + "; ".join(
                f"{r.location}: {r.engine._describe_failure(f.error)}" for r, f in error.failures)
        return super()._describe_failure(error)

    def stats(self) -> list[dict]:
        """Per replica: calls answered, failures, in flight, current limit, healthy."""
        return [r.stats() for r in self.replicas]

    def __repr__(self) -> str:
        return f"RoutedEngine({self.name!r}, {len(self.replicas)} replicas)"


def from_spec_urls(engine_cls: type, urls: str, model: str, **kw: Any) -> RoutedEngine:
    """``openai:URL1,URL2,...#MODEL`` (called by the provider's ``from_spec``)."""
    parts = [u.strip() for u in urls.split(",")]
    if not all(p.startswith(("http://", "https://")) for p in parts):
        raise EngineSpecError(f"a replica list must be URLs separated by commas, e.g. "
                              f"'openai:http://h1:8000/v1,http://h2:8000/v1#MODEL'; got {urls!r}")
    return RoutedEngine.from_urls(parts, model, engine_cls=engine_cls, **kw)


__all__ = ["RoutedEngine", "ReplicaFailure", "from_spec_urls"]
