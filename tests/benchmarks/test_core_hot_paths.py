"""The hot-path changes the overhead benchmark led to in ``engines/base.py`` keep the call path's contract:
no request key is built when neither a cache nor a cassette needs it, and the first attempt outside tenacity
still gives exactly ``max_retries + 1`` attempts with the same backoff numbering."""
import asyncio

import pytest

from textopt.engines import Request, ScriptedEngine
from textopt.engines.base import Engine
from textopt.errors import ProviderError


def test_no_key_is_built_without_cache_or_cassette(monkeypatch):
    def boom(self, request):
        raise AssertionError("request_key called on the hot path")
    monkeypatch.setattr(Engine, "request_key", boom)
    engine = ScriptedEngine("ok")
    assert asyncio.run(engine.generate(Request.chat("hi"))).text == "ok"


def test_key_is_still_built_for_the_cache():
    engine = ScriptedEngine(lambda r: str(len(engine.requests)), cache="memory")
    first = asyncio.run(engine.generate(Request.chat("hi")))
    second = asyncio.run(engine.generate(Request.chat("hi")))
    assert (first.text, second.text, second.cached) == ("1", "1", True)
    assert len(engine.requests) == 1


class Flaky(ScriptedEngine):
    """Fails with a retryable error ``fails`` times, then answers."""

    def __init__(self, fails: int, **kw):
        super().__init__("ok", **kw)
        self.fails = fails
        self.attempts = 0

    async def _send(self, request):
        self.attempts += 1
        if self.attempts <= self.fails:
            raise TimeoutError("slow")
        return await super()._send(request)


@pytest.mark.parametrize("fails,max_retries,ok", [(0, 2, True), (1, 2, True), (2, 2, True), (3, 2, False),
                                                  (1, 0, False)])
def test_attempt_count_is_max_retries_plus_one(fails, max_retries, ok, monkeypatch):
    waits = []

    async def no_sleep(s):
        waits.append(s)
    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    engine = Flaky(fails, max_retries=max_retries, retry_initial_wait=1.0, retry_max_wait=100.0)
    if ok:
        assert asyncio.run(engine.generate(Request.chat("hi"))).text == "ok"
        assert engine.attempts == fails + 1
    else:
        with pytest.raises(ProviderError, match=f"after {max_retries + 1} attempts"):
            asyncio.run(engine.generate(Request.chat("hi")))
        assert engine.attempts == max_retries + 1
    # equal-jitter backoff: wait k lies in [step/2, step] with step = initial * 2**(k-1)
    assert len(waits) == min(fails, max_retries)
    for k, w in enumerate(waits, 1):
        assert 2 ** (k - 1) / 2 <= w <= 2 ** (k - 1)


def test_with_meta_fast_copy_keeps_fields_key_and_immutability():
    import dataclasses
    req = Request.chat("hi", system="sys", max_tokens=7, stop="END", role="forward")
    tagged = req.with_meta(role="backward", node="n1")
    assert (tagged.role, tagged.node, req.role, req.node) == ("backward", "n1", "forward", None)
    assert tagged.messages == req.messages and tagged.stop == ("END",) and tagged.max_tokens == 7
    assert tagged.key("m") == req.key("m") and tagged == req
    with pytest.raises(dataclasses.FrozenInstanceError):
        tagged.role = "x"
    other = req.with_meta(max_tokens=9, stop="X")  # a non-metadata field still goes through __post_init__
    assert other.max_tokens == 9 and other.stop == ("X",) and other.key("m") != req.key("m")


def test_llm_backward_one_and_two_targets_each_get_feedback():
    import textopt as tx
    engine = ScriptedEngine(lambda r: "fb " + r.node)
    p = tx.Variable("be brief", role="system prompt", requires_grad=True)
    x = tx.Variable("question", role="question", requires_grad=True)
    y = tx.nn.LLMCall(engine, system_prompt=p, name="call")(x)
    y.backward(engine=engine)
    assert [f.value for f in p.grad] == ["fb call"] and [f.value for f in x.grad] == ["fb call"]
    q = tx.Variable("be brief", role="system prompt", requires_grad=True)
    z = tx.nn.LLMCall(engine, system_prompt=q, name="solo")(tx.Variable("question", role="question"))
    z.backward(engine=engine)
    assert [f.value for f in q.grad] == ["fb solo"]
    assert [r.role for r in engine.requests[-1:]] == ["backward"]


def test_loopback_server_accepts_a_burst_of_new_connections_without_syn_retries():
    """A burst of 32 fresh connections is answered without the ~1 s TCP SYN retry a 5-deep backlog caused."""
    import socket
    import threading
    import time

    from textopt.testing import LoopbackServer
    from textopt.testing.servers import _Server
    assert _Server.request_queue_size >= 128
    with LoopbackServer("ok", latency=0.05) as srv:
        host, port = srv.url.split("//")[1].split(":")
        times = []

        def one():
            t0 = time.perf_counter()
            with socket.create_connection((host, int(port)), timeout=5) as s:
                body = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
                assert s.recv(65536).startswith(b"HTTP/1.1 200")
            times.append(time.perf_counter() - t0)
        threads = [threading.Thread(target=one) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(times) == 32 and max(times) < 0.9, sorted(times)[-3:]
