import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Each test gets its own response-cache folder (the converted local model cache stays shared)."""
    monkeypatch.setenv("TEXTOPT_RESPONSE_CACHE_DIR", str(tmp_path / "responses"))
    yield


@pytest.fixture(scope="session")
def redis_server():
    """A redis-server started for this test session (skipped, with the reason, when it cannot run here)."""
    from textopt.testing.redis_server import RedisServer, missing
    why = missing()
    if why:
        pytest.skip(why)
    with RedisServer() as srv:
        yield srv


@pytest.fixture
def redis_url(redis_server):
    """The session's Redis server, emptied for this test."""
    import redis
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    return redis_server.url
