"""Both official SDKs against the loopback server: success, retries, error classification, timeouts."""
from __future__ import annotations

import asyncio
import time

import pytest

from textopt.engines import Request, get_engine
from textopt.errors import AuthenticationError, BadRequestError, ContextLengthError, ProviderError, RateLimitError
from textopt.testing import Fault

from .conftest import KEYS, make


def test_success_reaches_the_wire(provider, serve):
    srv = serve(lambda body: "Paris is the capital")
    eng = make(provider, srv)
    resp = eng.generate_sync(Request.chat("Capital of France?", system="Be brief.", temperature=0.3,
                                          max_tokens=50, top_p=0.9))
    assert resp.text == "Paris is the capital"
    assert resp.completion_tokens == 4 and resp.prompt_tokens > 0
    assert resp.finish_reason in ("stop", "end_turn") and not resp.cached
    (seen,) = srv.requests
    body = seen.body
    assert body["max_tokens"] == 50
    if provider == "openai":
        assert body["temperature"] == 0.3 and body["top_p"] == 0.9
        assert seen.path == "/v1/chat/completions" and body["model"] == "gpt-4o-mini"
        assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "Capital of France?"}]
        assert seen.headers["authorization"] == f"Bearer {KEYS[provider]}"
    else:
        assert seen.path == "/v1/messages" and body["model"] == "claude-haiku-4-5"
        assert body["system"] == "Be brief."
        assert body["messages"] == [{"role": "user", "content": "Capital of France?"}]
        # SDK 2.x speaks API 2026-10-21: Bearer auth, and sampling parameters are rejected so never sent
        assert seen.headers["authorization"] == f"Bearer {KEYS[provider]}"
        assert "temperature" not in body and "top_p" not in body
    assert eng.usage.as_dict()["total"]["calls"] == 1


def test_openai_sends_seed_stop_n_logprobs(serve):
    srv = serve("alpha beta gamma")
    eng = make("openai", srv)
    resp = eng.generate_sync(Request.chat("hi", seed=7, stop=["gamma"], n=2, logprobs=True))
    body = srv.requests[0].body
    assert body["seed"] == 7 and body["stop"] == ["gamma"] and body["n"] == 2 and body["logprobs"] is True
    assert resp.text == "alpha beta " and resp.logprobs == pytest.approx([-0.1, -0.2])


def test_rate_limit_honours_retry_after(provider, serve):
    srv = serve("done", faults=[Fault.rate_limit(retry_after=0.4)])
    eng = make(provider, srv, retry_max_wait=5.0)
    assert eng.generate_sync(Request.chat("x")).text == "done"
    first, second = srv.requests
    assert first.status == 429 and second.status == 200
    assert 0.4 <= second.arrived - first.arrived < 2.0   # waited what the server asked, not the 0.01 s backoff
    assert eng.limiter.rate_limits == 1 and eng.limiter.decreases == 0   # a lone 429 is no rate limit to adapt to


def test_two_server_errors_then_success(provider, serve):
    srv = serve("fine", faults=["500", "503"])
    eng = make(provider, srv)
    assert eng.generate_sync(Request.chat("x")).text == "fine"
    assert [r.status for r in srv.requests] == [500, 503, 200]


def test_rate_limit_exhausted_is_a_rate_limit_error(provider, serve):
    srv = serve("never", faults=[Fault.rate_limit(0.01)] * 3)
    eng = make(provider, srv, max_retries=2)
    with pytest.raises(RateLimitError, match="gave up after 3 attempts"):
        eng.generate_sync(Request.chat("x"))
    assert len(srv.requests) == 3


def test_unauthorized_is_not_retried_and_hides_the_key(provider, serve):
    key = KEYS[provider]
    srv = serve("never", faults=[Fault.unauthorized(f"Incorrect API key provided: {key}")])
    eng = make(provider, srv)
    with pytest.raises(AuthenticationError) as info:
        eng.generate_sync(Request.chat("x"))
    assert len(srv.requests) == 1
    text = str(info.value)
    assert "Incorrect API key provided" in text and "HTTP 401" in text and "_API_KEY" in text
    assert key not in text and key not in str(info.value.__cause__) and key not in repr(info.value.__cause__)


def test_forbidden_is_an_authentication_error(provider, serve):
    srv = serve("never", faults=["403"])
    with pytest.raises(AuthenticationError, match="HTTP 403"):
        make(provider, srv).generate_sync(Request.chat("x"))
    assert len(srv.requests) == 1


def test_context_length_is_not_retried(provider, serve):
    srv = serve("never", faults=["context_length"])
    with pytest.raises(ContextLengthError) as info:
        make(provider, srv).generate_sync(Request.chat("a very long prompt"))
    assert len(srv.requests) == 1
    assert ("maximum context length" in str(info.value)) or ("prompt is too long" in str(info.value))


def test_other_bad_request_is_not_retried(provider, serve):
    srv = serve("never", faults=[Fault.bad_request("temperature must be at most 2")])
    with pytest.raises(BadRequestError, match="temperature must be at most 2"):
        make(provider, srv).generate_sync(Request.chat("x"))
    assert len(srv.requests) == 1


def test_timeout_is_retried(provider, serve):
    srv = serve("after the hang", faults=[Fault.hang(10)])
    eng = make(provider, srv, timeout=0.3)
    t0 = time.monotonic()
    assert eng.generate_sync(Request.chat("x")).text == "after the hang"
    assert len(srv.requests) == 2 and srv.requests[0].status is None   # the first one never answered
    assert time.monotonic() - t0 < 5


def test_persistent_timeout_gives_one_clear_error(provider, serve):
    srv = serve("never", faults=[Fault.hang(10)] * 2)
    eng = make(provider, srv, timeout=0.2, max_retries=1)
    with pytest.raises(ProviderError, match=r"gave up after 2 attempts: no answer from .* within the 0.2 s timeout"):
        eng.generate_sync(Request.chat("x"))
    assert len(srv.requests) == 2


def test_malformed_json_is_retried(provider, serve):
    srv = serve("readable", faults=["malformed"])
    assert make(provider, srv).generate_sync(Request.chat("x")).text == "readable"
    assert len(srv.requests) == 2


def test_wrong_shaped_json_is_retried(provider, serve):
    srv = serve("readable", faults=[Fault.malformed('{"id": "x", "type": "message"}')])
    assert make(provider, srv).generate_sync(Request.chat("x")).text == "readable"
    assert len(srv.requests) == 2


def test_persistent_malformed_json_gives_one_clear_error(provider, serve):
    srv = serve("never", faults=["malformed"] * 2)
    with pytest.raises(ProviderError, match="unreadable body"):
        make(provider, srv, max_retries=1).generate_sync(Request.chat("x"))


def test_unreachable_server_gives_one_clear_error(provider, serve):
    srv = serve("x")
    eng = make(provider, srv, max_retries=2)
    srv.stop()
    with pytest.raises(ProviderError, match=r"gave up after 3 attempts: cannot connect to http://127\.0\.0\.1.*"
                                            r"is the server running"):
        eng.generate_sync(Request.chat("x"))


def test_one_client_per_event_loop(provider, serve):
    srv = serve("hello")
    eng = make(provider, srv)
    assert eng.generate_sync(Request.chat("a")).text == "hello"          # textopt's private loop
    assert asyncio.run(eng.complete("b")) == "hello"                      # a user's own loop
    assert asyncio.run(eng.complete("c")) == "hello"                      # a new loop: a new client
    assert len(srv.requests) == 3


def test_openai_server_spec_and_model_override(serve):
    srv = serve(lambda body: body["model"])
    eng = get_engine(srv.openai_spec("served-model"), retry_initial_wait=0.01)
    assert eng.generate_sync(Request.chat("x")).text == "served-model"
    assert eng.generate_sync(Request.chat("x", model="other-model")).text == "other-model"
    # the server URL is part of the key: the same model on another server never shares a cache entry
    assert srv.openai_base_url in eng.cache_model_id()
    key_here, canon = eng.request_key(Request.chat("x"))
    assert canon["model"] == f"openai:{srv.openai_base_url}#served-model"
    other = get_engine("openai:http://127.0.0.1:9/v1#served-model", retry_initial_wait=0.01)
    assert other.request_key(Request.chat("x"))[0] != key_here


def test_server_spec_does_not_send_openai_key_unless_asked(serve):
    srv = serve("x")
    eng = get_engine(srv.openai_spec("m"))
    eng.generate_sync(Request.chat("x"))
    assert KEYS["openai"] not in srv.requests[0].headers.get("authorization", "")


def test_anthropic_rejects_n_samples_clearly(serve):
    srv = serve("x")
    with pytest.raises(BadRequestError, match="sample_index"):
        make("anthropic", srv).generate_sync(Request.chat("x", n=3))
    assert srv.requests == []


def test_anthropic_legacy_sampling_sends_temperature_under_the_old_version(serve):
    srv = serve("x")
    make("anthropic", srv, legacy_sampling=True).generate_sync(Request.chat("x", temperature=0.7, top_p=0.5))
    seen = srv.requests[0]
    assert seen.body["temperature"] == 0.7 and seen.body["top_p"] == 0.5
    assert seen.headers["anthropic-version"] == "2023-06-01"
