"""Persistent response cache (diskcache: SQLite-backed, safe across processes and threads of one machine).

Keys are ``Request.key(model)`` — a SHA-256 of the canonical request, which never includes credentials.
Values are ``Response.to_dict()``. A cache shared by machines: ``redis://HOST:PORT/DB``
(:mod:`.cache_redis`). ``open_cache(spec)`` turns an engine's ``cache=`` string into one of them.

Copied into another process (a Ray worker), a disk cache reopens the same folder and a Redis cache the same
server; a ``MemoryCache`` starts empty there (it belongs to one process).
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import diskcache

from ..checks import writable
from ..errors import EngineSpecError


def default_cache_dir() -> Path:
    """``$TEXTOPT_RESPONSE_CACHE_DIR``, else ``$TEXTOPT_CACHE_DIR/responses`` (default ~/.cache/textopt)."""
    if os.environ.get("TEXTOPT_RESPONSE_CACHE_DIR"):
        return Path(os.environ["TEXTOPT_RESPONSE_CACHE_DIR"])
    return Path(os.environ.get("TEXTOPT_CACHE_DIR", Path.home() / ".cache" / "textopt")) / "responses"


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
