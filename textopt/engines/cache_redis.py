"""``RedisCache``: the response cache on a Redis server, shared by every process and machine pointed at it.

    tx.get_engine("openai:gpt-4o-mini", cache="redis://10.0.0.5:6379/0")
    textopt optimize ... --cache redis://10.0.0.5:6379/0

The same interface as :class:`~textopt.engines.cache.ResponseCache` (``get``/``set``/``len``/``clear``) and the
same keys (``Request.key``: a SHA-256 of the canonical request, never a credential), under a ``prefix``
(``textopt:resp:``) so ``clear()`` deletes only textopt's entries. Values are ``Response.to_dict()`` as JSON —
never pickle: anyone who can write to a shared server could otherwise run code in every reader.

A server that cannot be reached when the cache is opened is one clear error; one that goes away during a run
costs calls, not correctness (a failed read is a miss, a failed write is skipped, with one warning).
A password in the URL is hidden from reprs and errors.
"""
from __future__ import annotations

import json
import logging
import re

from ..errors import EngineError

log = logging.getLogger("textopt.cache")
SCHEMES = ("redis://", "rediss://", "unix://")


def is_redis_url(spec) -> bool:
    return isinstance(spec, str) and spec.startswith(SCHEMES)


def redact(url: str) -> str:
    """``url`` without its password (``redis://user:***@host``)."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


class RedisCache:
    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "textopt:resp:",
                 ttl: int | None = None, timeout: float = 5.0):
        try:
            import redis
        except ImportError as exc:
            raise EngineError(f"cache={redact(url)!r} needs the redis client: pip install 'textopt[redis]'") from exc
        self.url, self.prefix, self.ttl, self.timeout = url, prefix, ttl, timeout
        self._errors = redis.RedisError
        self._warned = False
        try:
            self._client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
            self._client.ping()
        except (redis.RedisError, ValueError) as exc:
            raise EngineError(f"the response cache at {redact(url)} cannot be reached "
                              f"({type(exc).__name__}: {redact(str(exc))}); start the Redis server, fix the URL, "
                              f"or use a disk cache (cache=True)") from None

    def _failed(self, what: str, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning("response cache %s: %s failed (%s: %s); going on without it for that call",
                        redact(self.url), what, type(exc).__name__, redact(str(exc)))

    def get(self, key: str) -> dict | None:
        try:
            raw = self._client.get(self.prefix + key)
        except self._errors as exc:
            self._failed("a read", exc)
            return None
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: dict) -> None:
        try:
            self._client.set(self.prefix + key, json.dumps(value, ensure_ascii=False, default=str), ex=self.ttl)
        except self._errors as exc:
            self._failed("a write", exc)

    def _keys(self):
        return self._client.scan_iter(match=self.prefix + "*", count=1000)

    def __len__(self) -> int:
        return sum(1 for _ in self._keys())

    def clear(self) -> None:
        batch = []
        for k in self._keys():
            batch.append(k)
            if len(batch) >= 1000:
                self._client.delete(*batch)
                batch = []
        if batch:
            self._client.delete(*batch)

    def close(self) -> None:
        self._client.close()

    def __reduce__(self):   # a worker process (Ray) opens its own connection to the same server
        return (type(self), (self.url,), {"prefix": self.prefix, "ttl": self.ttl, "timeout": self.timeout})

    def __setstate__(self, state: dict) -> None:
        self.prefix, self.ttl, self.timeout = state["prefix"], state["ttl"], state["timeout"]

    def __repr__(self) -> str:
        return f"RedisCache({redact(self.url)!r})"
