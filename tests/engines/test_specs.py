"""Engine spec strings: each bad spec or missing key is one clear error."""
from __future__ import annotations

import pytest

from textopt.engines import get_engine
from textopt.engines.anthropic_engine import AnthropicEngine
from textopt.engines.openai_engine import OpenAIEngine
from textopt.errors import EngineSpecError, MissingAPIKeyError

from .conftest import KEYS


def test_unknown_spec_lists_the_known_prefixes():
    with pytest.raises(EngineSpecError, match=r"unknown engine spec 'gemini:pro'.*anthropic:.*openai:.*replay:"):
        get_engine("gemini:pro")
    with pytest.raises(EngineSpecError):
        get_engine("")


@pytest.mark.parametrize("spec, var", [("openai:gpt-4o-mini", "OPENAI_API_KEY"),
                                       ("anthropic:claude-haiku-4-5", "ANTHROPIC_API_KEY")])
def test_missing_key_names_the_variable(spec, var, monkeypatch):
    monkeypatch.delenv(var)
    with pytest.raises(MissingAPIKeyError, match=var):
        get_engine(spec, cache=False)


def test_openai_specs_resolve():
    eng = get_engine("openai:gpt-4o-mini", cache=False)
    assert isinstance(eng, OpenAIEngine) and eng.is_official and eng.cache_model_id() == "openai:gpt-4o-mini"
    srv = get_engine("openai:http://127.0.0.1:8000/v1#qwen2.5-7b", cache=False)
    assert srv.base_url == "http://127.0.0.1:8000/v1" and srv.model == "qwen2.5-7b"
    assert srv.cache_model_id() == "openai:http://127.0.0.1:8000/v1#qwen2.5-7b"
    assert get_engine("openai:gpt-4o-mini") is get_engine("openai:gpt-4o-mini")   # one engine per spec
    assert isinstance(get_engine("anthropic:claude-haiku-4-5", cache=False), AnthropicEngine)


@pytest.mark.parametrize("spec, match", [("openai:", "needs a model"),
                                         ("openai:http://127.0.0.1:8000/v1", "#MODEL"),
                                         ("openai:http://127.0.0.1:8000/v1#", "#MODEL"),
                                         ("anthropic:", "needs a model")])
def test_incomplete_specs(spec, match):
    with pytest.raises(EngineSpecError, match=match):
        get_engine(spec)


def test_openai_base_url_env_changes_the_key(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://10.0.0.1:9000/v1")
    eng = get_engine("openai:gpt-4o-mini", cache=False)
    assert eng.cache_model_id() == "openai:http://10.0.0.1:9000/v1#gpt-4o-mini"


def test_reprs_hold_no_secret():
    for eng in (get_engine("openai:gpt-4o-mini", cache=False), get_engine("anthropic:claude-haiku-4-5", cache=False)):
        text = repr(eng) + repr(vars(eng))
        assert KEYS["openai"] not in text and KEYS["anthropic"] not in text and "Secret('***')" in text


def test_official_openai_payload():
    from textopt.engines import Request
    eng = get_engine("openai:gpt-4o-mini", cache=False)
    body = eng._payload(Request.chat("q", max_tokens=33, schema={"title": "My Answer!", "type": "object"}))
    assert body["max_completion_tokens"] == 33 and "max_tokens" not in body       # what current models require
    assert body["response_format"]["json_schema"]["name"] == "My_Answer_"
    assert "seed" not in body and "stop" not in body and "n" not in body
