"""The Redis response cache: same interface and keys as the disk cache, shared across processes (a real
redis-server started by the test session; skipped with the reason when it is not installed)."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import textopt as tx
from textopt.engines import Request
from textopt.engines.cache import open_cache
from textopt.errors import EngineError
from textopt.testing import LoopbackServer

from .conftest import OPENAI_KEY, make_openai

ROOT = Path(__file__).resolve().parents[2]


def raw_client(url):
    import redis
    return redis.Redis.from_url(url)


def test_interface_and_prefix(redis_url):
    from textopt.engines.cache_redis import RedisCache
    cache = open_cache(redis_url)
    assert isinstance(cache, RedisCache) and cache.get("k") is None and len(cache) == 0
    cache.set("k", {"text": "é", "parsed": {"a": [1, 2]}, "cost": 0.5})
    assert cache.get("k") == {"text": "é", "parsed": {"a": [1, 2]}, "cost": 0.5} and len(cache) == 1
    client = raw_client(redis_url)
    client.set("someone-else", b"x")
    assert json.loads(client.get("textopt:resp:k")) == cache.get("k")    # JSON on the wire, never pickle
    cache.clear()
    assert len(cache) == 0 and client.get("someone-else") == b"x"         # clear() leaves other keys alone
    other = pickle.loads(pickle.dumps(cache))                             # a worker reconnects by URL
    other.set("k2", {"text": "x"})
    assert cache.get("k2") == {"text": "x"}


def test_engine_hits_with_the_same_keys_and_no_secret(redis_url):
    with LoopbackServer(lambda body: "42") as srv:
        engine = make_openai(srv, cache=redis_url)
        req = Request.chat("What is 6*7?")
        first, second = engine.generate_sync(req), engine.generate_sync(req)
        assert (first.cached, second.cached, second.text) == (False, True, "42")
        assert len(srv.requests) == 1 and engine.usage.total.calls == 1
        key, _ = engine.request_key(req)
        client = raw_client(redis_url)
        assert client.keys("*") == [f"textopt:resp:{key}".encode()]       # the disk cache's key
        assert OPENAI_KEY.encode() not in client.get(f"textopt:resp:{key}")
        assert srv.requests[0].headers["authorization"] == f"Bearer {OPENAI_KEY}"   # the key was in use


CHILD = """
import json, sys
import textopt as tx
from textopt.engines import Request
engine = tx.get_engine(sys.argv[1], cache=sys.argv[2], api_key_env="OPENAI_API_KEY")
r = engine.generate_sync(Request.chat("shared question"))
print(json.dumps({"text": r.text, "cached": r.cached}))
"""


def test_two_processes_share_entries(redis_url, tmp_path):
    with LoopbackServer(lambda body: "shared answer") as srv:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TEXTOPT_RESPONSE_CACHE_DIR": str(tmp_path / "unused")}
        outs = []
        for _ in range(2):   # two processes, as two machines would be: nothing in common but the Redis server
            p = subprocess.run([sys.executable, "-c", CHILD, srv.openai_spec("m"), redis_url], env=env,
                               capture_output=True, text=True, timeout=600)
            assert p.returncode == 0, p.stderr
            outs.append(json.loads(p.stdout.strip().splitlines()[-1]))
        assert outs == [{"text": "shared answer", "cached": False}, {"text": "shared answer", "cached": True}]
        assert len(srv.requests) == 1


def test_unreachable_server_is_one_clear_error_without_the_password():
    from textopt.testing.redis_server import free_port, missing
    if missing():
        pytest.skip(missing())
    url = f"redis://user:hunter2-secret@127.0.0.1:{free_port()}/0"
    with pytest.raises(EngineError, match="cannot be reached") as info:
        tx.get_engine("scripted:x", cache=url)
    assert "hunter2" not in str(info.value) and "user:***@127.0.0.1" in str(info.value)


def test_a_server_lost_mid_run_costs_calls_not_answers():
    from textopt.testing.redis_server import RedisServer, missing
    if missing():
        pytest.skip(missing())
    srv = RedisServer().start()
    try:
        engine = tx.get_engine("scripted:fine", cache=srv.url)
        assert engine.generate_sync(Request.chat("a")).text == "fine"
    finally:
        srv.stop()
    resp = engine.generate_sync(Request.chat("a"))     # was cached; the server is gone: a miss, a real call
    assert resp.text == "fine" and not resp.cached and engine.usage.total.calls == 2
    assert "hunter2" not in repr(engine.cache)


def test_cli_cache_flag_shares_runs(redis_url, capsys):
    from textopt.cli import main
    from tests.cli import test_search_cli  # noqa: F401  (registers the "clisearch" engine spec)
    args = ["eval", "--task", "format_count", "--engine", "clisearch", "--split", "test", "--test-size", "4",
            "--quiet", "--cache", redis_url]
    assert main(args) == 0 and main(args) == 0
    second = capsys.readouterr().out.split("task format_count")[-1]
    total = next(line for line in second.splitlines() if line.startswith("TOTAL")).split()
    assert total[1:3] == ["0", "4"]                       # the second run: 0 calls, 4 cached
    assert len(raw_client(redis_url).keys("textopt:resp:*")) == 4
