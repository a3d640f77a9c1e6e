"""Persistent response cache (diskcache: SQLite-backed, safe across processes and threads of one machine).

On by default: an engine built without ``cache=`` uses :func:`default_cache` — the disk cache in
:func:`default_cache_dir`, one per folder and process, shared by every engine (entries of different models never
meet: the key holds the model id). Off for one engine with ``cache=False``, for one call with
``Request(use_cache=False)`` (``LLMCall(..., use_cache=False)``, ``engine.complete(..., use_cache=False)``), for the
whole process with ``TEXTOPT_CACHE=0``. Test doubles (``ScriptedEngine``) and cassettes (``replay:``) have none by
default. Sampling keeps its meaning: with temperature > 0 the key holds ``Request.sample_index``, so N samples
are N entries (the same index asked again is the same answer, as in DSPy's ``rollout_id``); an ``n>1`` request is
one entry holding all n choices.

Keys are ``Request.key(model)`` — a SHA-256 of the canonical request, which never includes credentials.
Values are ``Response.to_dict()``. A cache shared by machines: ``redis://HOST:PORT/DB``
(:mod:`.cache_redis`). ``open_cache(spec)`` turns an engine's ``cache=`` string into one of them.

Copied into another process (a Ray worker), a disk cache reopens the same folder and a Redis cache the same
server; a ``MemoryCache`` starts empty there (it belongs to one process).
"""
from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import diskcache

from ..checks import writable
from ..errors import EngineSpecError


def default_cache_dir() -> Path:
    """``$TEXTOPT_RESPONSE_CACHE_DIR``, else ``$TEXTOPT_CACHE_DIR/responses`` (default ~/.cache/textopt)."""
    if os.environ.get("TEXTOPT_RESPONSE_CACHE_DIR"):
        return Path(os.environ["TEXTOPT_RESPONSE_CACHE_DIR"])
    return Path(os.environ.get("TEXTOPT_CACHE_DIR", Path.home() / ".cache" / "textopt")) / "responses"


CACHE_ENV = "TEXTOPT_CACHE"
_OFF, _ON = {"0", "false", "off", "no"}, {"", "1", "true", "on", "yes"}
_DEFAULTS: dict[tuple[int, str], "ResponseCache"] = {}
_DEFAULTS_LOCK = threading.Lock()


def cache_enabled_by_env() -> bool:
    """False when ``TEXTOPT_CACHE`` turns the default cache off (0, false, off, no)."""
    value = os.environ.get(CACHE_ENV, "").strip().lower()
    if value in _OFF:
        return False
    if value in _ON:
        return True
    raise EngineSpecError(f"{CACHE_ENV}={os.environ[CACHE_ENV]!r} is not understood: set it to 0 (no response "
                          f"cache by default) or 1 (the default); move the cache with TEXTOPT_CACHE_DIR")


def default_cache() -> "ResponseCache | None":
    """The cache of an engine built without ``cache=``: None when ``TEXTOPT_CACHE=0``, else the disk cache in
    :func:`default_cache_dir`, opened once per folder and process."""
    if not cache_enabled_by_env():
        return None
    key = (os.getpid(), str(default_cache_dir()))   # a forked child opens its own (SQLite handles stay put)
    with _DEFAULTS_LOCK:
        cache = _DEFAULTS.get(key)
        if cache is None:
            for old in [k for k in _DEFAULTS if k != key]:   # the folder moved (tests): release the old one's
                stale = _DEFAULTS.pop(old)                     # files (an engine using it reopens them); a
                if old[0] == key[0]:                           # parent's handles are never touched in a child
                    stale.close()
            cache = _DEFAULTS[key] = ResponseCache(key[1])
        return cache


class ResponseCache:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = writable(path if path is not None else default_cache_dir(), "response cache folder",
                             kind="dir", error=EngineSpecError)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._store = diskcache.Cache(str(self.path))
        except (OSError, sqlite3.Error) as exc:
            raise EngineSpecError(f"response cache folder {self.path}: cannot be opened ({exc}); pass another "
                                  f"folder (cache=PATH, --cache-dir) or turn the cache off (--no-cache)") from None

    def get(self, key: str) -> dict | None:
        return self._store.get(key)

    def set(self, key: str, value: dict) -> None:
        self._store.set(key, value)

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        self._store.clear()

    def close(self) -> None:
        self._store.close()

    def __reduce__(self):   # another process opens the same folder
        return (type(self), (str(self.path),))

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"


class MemoryCache:
    """In-process cache (tests, or ``cache="memory"``)."""

    def __init__(self):
        self._store: dict[str, dict] = {}

    def get(self, key: str) -> dict | None:
        return self._store.get(key)

    def set(self, key: str, value: dict) -> None:
        self._store[key] = value

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        self._store.clear()

    def close(self) -> None:
        pass

    def __reduce__(self):   # per process: another process starts with an empty one
        return (type(self), ())


def open_cache(spec: "str | os.PathLike"):
    """``"memory"``, a ``redis://`` / ``rediss://`` / ``unix://`` URL, or a folder."""
    if spec == "memory":
        return MemoryCache()
    from .cache_redis import RedisCache, is_redis_url
    if is_redis_url(spec):
        return RedisCache(spec)
    return ResponseCache(spec)
