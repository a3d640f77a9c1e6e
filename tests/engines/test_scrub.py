"""No key leaves textopt: an error echoing ANY credential in the environment (not only the engine's own) is
scrubbed, and an engine whose constructor failed still has a repr."""
from __future__ import annotations

import pytest

from textopt.engines import Request
from textopt.engines.openai_engine import OpenAIEngine
from textopt.engines.secrets import scrub
from textopt.errors import AuthenticationError, EngineSpecError, ProviderError
from textopt.testing import Fault

from .conftest import ANTHROPIC_KEY, OPENAI_KEY, make

GATEWAY_KEY = "gw-live-0123456789abcdef-gateway"


def test_a_gateway_401_naming_another_providers_key_is_scrubbed(serve, monkeypatch):
    monkeypatch.setenv("MY_GATEWAY_TOKEN", GATEWAY_KEY)
    echo = f"key {ANTHROPIC_KEY} is not valid for this route; upstream token {GATEWAY_KEY}; sent {OPENAI_KEY}"
    srv = serve("x", faults=[Fault.unauthorized(echo)])
    eng = make("openai", srv)
    with pytest.raises(AuthenticationError) as err:
        eng.generate_sync(Request.chat("q"))
    text = str(err.value) + repr(err.value) + str(err.value.__cause__) + repr(err.value.__cause__.__dict__)
    for key in (ANTHROPIC_KEY, GATEWAY_KEY, OPENAI_KEY):
        assert key not in text
    assert "is not valid for this route" in text and text.count("***") >= 3


def test_a_server_error_echoing_a_key_is_scrubbed_after_the_retries(serve, monkeypatch):
    monkeypatch.setenv("CUSTOM_API_KEY", GATEWAY_KEY)
    srv = serve("x", faults=[Fault.server_error(500, f"upstream rejected {GATEWAY_KEY}")] * 3)
    eng = make("anthropic", srv, max_retries=2)
    with pytest.raises(ProviderError) as err:
        eng.generate_sync(Request.chat("q"))
    assert GATEWAY_KEY not in str(err.value) and "***" in str(err.value)


def test_scrub_leaves_short_and_innocent_values(monkeypatch):
    monkeypatch.setenv("DEBUG_TOKEN", "1")
    monkeypatch.setenv("SOME_API_KEY", "abcdefgh12345678")
    assert scrub("1 + 1 = 2, key abcdefgh12345678") == "1 + 1 = 2, key ***"


def test_repr_of_an_engine_whose_constructor_failed(tmp_path):
    eng = OpenAIEngine.__new__(OpenAIEngine)
    assert repr(eng) == "OpenAIEngine('(not initialised)')"
    with pytest.raises(EngineSpecError, match="is a folder"):
        OpenAIEngine("m", base_url="http://127.0.0.1:9/v1", record=tmp_path)
