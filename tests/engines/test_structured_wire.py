"""Structured output through the real SDKs: what reaches the wire, and repair-once then ParseError."""
from __future__ import annotations

import asyncio
import re

import pytest
from pydantic import BaseModel

from textopt.engines import Request
from textopt.engines.structured import agenerate_structured, agenerate_tagged
from textopt.errors import ParseError
from textopt.testing.wire import last_user_text, messages_of

from .conftest import make


class Answer(BaseModel):
    value: int


def json_or_tag_responder(body: dict) -> str:
    """A well-behaved model: JSON when JSON is asked (schema or instructions), else the number in tags."""
    first_user = next(t for r, t in messages_of(body) if r == "user")
    n = int(re.search(r"give (\d+)", first_user).group(1))
    if "response_format" in body or "output_config" in body or "JSON" in last_user_text(body):
        return f'{{"value": {n}}}'
    return f"<answer>{n}</answer> and some chatter after the tag"


def test_openai_schema_goes_out_as_response_format(serve):
    srv = serve(json_or_tag_responder)
    value, resp = asyncio.run(agenerate_structured(make("openai", srv), Request.chat("give 4"), Answer))
    assert value == Answer(value=4) and resp.parsed == value
    body = srv.requests[0].body
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "Answer", "schema": Answer.model_json_schema()}}
    assert [m["role"] for m in body["messages"]] == ["user"] and "JSON" not in body["messages"][0]["content"]


def test_anthropic_schema_goes_out_as_instructions_and_prefill(serve):
    srv = serve(json_or_tag_responder)
    value, resp = asyncio.run(agenerate_structured(make("anthropic", srv), Request.chat("give 4"), Answer))
    assert value.value == 4 and resp.text.startswith("{")     # the text includes the prefill
    body = srv.requests[0].body
    assert body["messages"][-1] == {"role": "assistant", "content": "{"}
    assert '"value"' in body["messages"][0]["content"] and "output_config" not in body


def test_anthropic_native_json_schema_option(serve):
    srv = serve(json_or_tag_responder)
    eng = make("anthropic", srv, json_schema=True)
    value, _ = asyncio.run(agenerate_structured(eng, Request.chat("give 6"), Answer))
    assert value.value == 6
    body = srv.requests[0].body
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": Answer.model_json_schema()}}
    assert body["messages"][-1]["role"] == "user"


def test_anthropic_tag_prefill_and_stop_sequences_reach_the_wire(serve):
    srv = serve(json_or_tag_responder)
    value, resp = asyncio.run(agenerate_tagged(make("anthropic", srv), Request.chat("give 5", stop=["END"]),
                                               "answer"))
    assert value == "5"
    assert resp.text == "<answer>5" and resp.finish_reason == "stop_sequence"
    body = srv.requests[0].body
    assert body["messages"][-1] == {"role": "assistant", "content": "<answer>"}
    assert body["stop_sequences"] == ["END", "</answer>"]


def test_openai_tags_are_asked_in_the_prompt(serve):
    srv = serve(json_or_tag_responder)
    value, _ = asyncio.run(agenerate_tagged(make("openai", srv), Request.chat("give 5"), "answer"))
    assert value == "5"
    body = srv.requests[0].body
    assert body["messages"][-1]["role"] == "user" and "<answer>" in body["messages"][-1]["content"]
    assert "stop" not in body


def test_prefill_on_openai_is_a_clear_error(serve):
    srv = serve("x")
    with pytest.raises(Exception, match="cannot continue an assistant prefill"):
        make("openai", srv).generate_sync(Request.chat("q", prefill="<a>"))
    assert srv.requests == []


def test_repair_once_then_parse_error(provider, serve):
    srv = serve("I would rather not answer in JSON")
    with pytest.raises(ParseError, match="did not produce a valid Answer after a repair attempt"):
        asyncio.run(agenerate_structured(make(provider, srv), Request.chat("give 4"), Answer))
    assert len(srv.requests) == 2
    repair = messages_of(srv.requests[1].body)
    roles = [r for r, _ in repair]
    assert roles[-2:] == ["user", "assistant"] if provider == "anthropic" else roles[-1] == "user"
    repair_text = next(t for r, t in reversed(repair) if r == "user")
    assert "could not be used" in repair_text and ("Expecting" in repair_text or "JSON" in repair_text)


def test_repair_succeeds_on_the_second_answer(provider, serve):
    answers = iter(["not json at all", '{"value": 9}'])
    srv = serve(lambda body: next(answers))
    value, _ = asyncio.run(agenerate_structured(make(provider, srv), Request.chat("give 9"), Answer))
    assert value.value == 9 and len(srv.requests) == 2
