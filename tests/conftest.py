import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def _sandbox_or_weak():
    """Where no sandbox can be built (no bwrap, user namespaces blocked), the tests that run code through
    CodeTestsLoss use the opt-in weak mode; the sandbox's own tests skip there, saying why."""
    from textopt.errors import SandboxError
    from textopt.nn.sandbox import resolve_mode
    if not os.environ.get("TEXTOPT_SANDBOX"):
        try:
            resolve_mode()
        except SandboxError as exc:
            sys.stderr.write(f"\nNOTE: tests run candidate code with TEXTOPT_SANDBOX=weak: {exc}\n")
            os.environ["TEXTOPT_SANDBOX"] = "weak"
    yield


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
