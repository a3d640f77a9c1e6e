"""The loopback server itself: wire shapes, fault script, records, stop."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from textopt.testing import Fault, LoopbackServer


def post(url: str, body: dict, timeout: float = 5.0) -> tuple[int, dict, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def test_openai_and_anthropic_shapes():
    with LoopbackServer(lambda body: "one two three four") as srv:
        status, _, out = post(srv.url + "/v1/chat/completions",
                              {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stop": ["three"]})
        assert status == 200 and out["choices"][0]["message"]["content"] == "one two "
        assert out["usage"]["completion_tokens"] == 2
        status, _, out = post(srv.url + "/v1/messages", {"model": "m", "max_tokens": 2, "messages": [
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": "one"}]})
        assert out["content"][0]["text"] == " two" and out["stop_reason"] == "max_tokens"


def test_fault_script_and_records():
    with LoopbackServer("ok", faults=[Fault.rate_limit(0.5), "401", "context_length", None, "500"]) as srv:
        url = srv.url + "/v1/chat/completions"
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        status, headers, out = post(url, body)
        assert status == 429 and headers["Retry-After"] == "0.5"
        assert post(url, body)[0] == 401
        status, _, out = post(url, body)
        assert status == 400 and out["error"]["code"] == "context_length_exceeded"
        assert post(url, body)[0] == 200 and post(url, body)[0] == 500 and post(url, body)[0] == 200
        assert [r.fault for r in srv.requests] == ["rate_limit", "unauthorized", "context_length", None,
                                                   "server_error", None]
        assert srv.requests[0].body == body and srv.max_concurrency == 1
    with pytest.raises(ValueError, match="unknown fault"):
        Fault.parse("418")


def test_stop_releases_hangs_and_refuses_connections():
    srv = LoopbackServer("ok", faults=["hang"]).start()
    url = srv.url + "/v1/messages"
    with pytest.raises(OSError):
        post(url, {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, timeout=0.3)
    srv.stop()
    with pytest.raises(OSError):
        post(url, {"model": "m", "max_tokens": 5, "messages": []}, timeout=2)
    assert "stopped" in repr(srv)
