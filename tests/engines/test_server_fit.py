"""OpenAI-compatible servers as users run them (llama.cpp, vLLM, Ollama): an unsupported ``response_format`` is
detected once and replaced, and timeouts fit a self-hosted server that answers one request at a time."""
from __future__ import annotations

import json
import logging

import pytest
from pydantic import BaseModel

from textopt.engines import Request
from textopt.engines.openai_engine import OpenAIEngine
from textopt.engines.structured import agenerate_structured
from textopt.errors import ProviderError
from textopt.runtime import run_sync
from textopt.testing import Fault

from .conftest import make_openai

# what llama-cpp-python's server answers to response_format json_schema (seen with 0.3.36)
LLAMA_CPP_PYTHON_500 = ("[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
                        "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}]")


class Answer(BaseModel):
    answer: str


def _refusing(*formats: str):
    def responder(body: dict):
        kind = (body.get("response_format") or {}).get("type")
        if kind in formats:
            return Fault.server_error(500, LLAMA_CPP_PYTHON_500 if kind == "json_schema"
                                      else f"response_format {kind} is not supported")
        return '{"answer": "4"}'
    return responder


def _ask(engine, q: str = "2+2?"):
    return run_sync(agenerate_structured(engine, Request.chat(q), Answer))[0]


def test_json_schema_rejected_falls_back_to_json_object_once(serve, caplog):
    srv = serve(_refusing("json_schema"))
    eng = make_openai(srv)
    with caplog.at_level(logging.WARNING, logger="textopt.engines.openai"):
        assert _ask(eng).answer == "4"
        assert _ask(eng, "3+1?").answer == "4"
    kinds = [(r.body.get("response_format") or {}).get("type") for r in srv.requests]
    assert kinds == ["json_schema", "json_object", "json_object"]      # detected once, remembered
    assert eng.schema_mode == "json_object"
    schema_text = json.dumps(Answer.model_json_schema())
    assert schema_text in srv.requests[1].body["messages"][-1]["content"]   # the schema now travels in the prompt
    assert sum("rejected response_format" in r.message for r in caplog.records) == 1
    assert eng.usage.total.calls == 2                               # the refused format is not a call


def test_both_formats_rejected_fall_back_to_the_prompt(serve):
    srv = serve(_refusing("json_schema", "json_object"))
    eng = make_openai(srv)
    assert _ask(eng).answer == "4"
    kinds = [(r.body.get("response_format") or {}).get("type") for r in srv.requests]
    assert kinds == ["json_schema", "json_object", None]
    assert eng.schema_mode == "prompt"


def test_fallback_keeps_the_cache_key(serve, tmp_path):
    srv = serve(_refusing("json_schema"))
    eng = make_openai(srv, cache=str(tmp_path))
    _ask(eng)
    fresh = make_openai(srv, cache=str(tmp_path))        # a new engine, still on json_schema: a cache hit
    _ask(fresh)
    assert len(srv.requests) == 2 and fresh.usage.total.cached == 1


def test_an_unrelated_server_error_is_retried_not_a_fallback(serve):
    srv = serve('{"answer": "4"}', faults=[Fault.server_error(500, "CUDA out of memory")])
    eng = make_openai(srv)
    assert _ask(eng).answer == "4"
    assert eng.schema_mode == "json_schema"
    assert [(r.body.get("response_format") or {}).get("type") for r in srv.requests] == ["json_schema"] * 2


def test_server_defaults_fit_self_hosted_servers(serve):
    srv = serve("ok")
    eng = OpenAIEngine("m", base_url=srv.openai_base_url)
    assert eng.timeout == 600.0 and eng.timeout_retries == 1
    official = OpenAIEngine("gpt-4o-mini", api_key="sk-x")
    assert official.timeout == 60.0 and official.timeout_retries is None


def test_a_timed_out_request_is_resent_at_most_timeout_retries_times(serve):
    srv = serve("never", faults=[Fault.hang(10)] * 3)
    eng = make_openai(srv, timeout=0.2, max_retries=4, timeout_retries=1)
    with pytest.raises(ProviderError, match=r"gave up after 2 attempts: no answer .* within the 0.2 s timeout"):
        eng.generate_sync(Request.chat("x"))
    assert len(srv.requests) == 2


def test_no_resend_after_a_timeout_when_timeout_retries_is_zero(serve):
    srv = serve("never", faults=[Fault.hang(10)])
    eng = make_openai(srv, timeout=0.2, timeout_retries=0)
    with pytest.raises(ProviderError, match="gave up after 1 attempt:"):
        eng.generate_sync(Request.chat("x"))
    assert len(srv.requests) == 1


def test_other_failures_still_use_every_retry(serve):
    srv = serve("fine", faults=["500", "502", "503"])
    eng = make_openai(srv, timeout_retries=0, max_retries=4)
    assert eng.generate_sync(Request.chat("x")).text == "fine"
    assert len(srv.requests) == 4
