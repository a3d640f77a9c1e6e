"""Fixtures for engine tests: loopback servers and both SDK engines built against them."""
from __future__ import annotations

import pytest

from textopt.engines.anthropic_engine import AnthropicEngine
from textopt.engines.openai_engine import OpenAIEngine
from textopt.testing import LoopbackServer

OPENAI_KEY = "sk-test-OPENAI-5ecr3t-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-test-ANTHROPIC-5ecr3t-0123456789"
FAST = dict(retry_initial_wait=0.01, retry_max_wait=1.0, timeout=5.0)


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


def make_openai(server: LoopbackServer, model: str = "gpt-4o-mini", **kw) -> OpenAIEngine:
    return OpenAIEngine(model, base_url=server.openai_base_url, api_key_env="OPENAI_API_KEY", **{**FAST, **kw})


def make_anthropic(server: LoopbackServer, model: str = "claude-haiku-4-5", **kw) -> AnthropicEngine:
    return AnthropicEngine(model, base_url=server.url, **{**FAST, **kw})


MAKERS = {"openai": make_openai, "anthropic": make_anthropic}
KEYS = {"openai": OPENAI_KEY, "anthropic": ANTHROPIC_KEY}


@pytest.fixture(params=sorted(MAKERS))
def provider(request) -> str:
    return request.param


@pytest.fixture
def serve():
    """``serve(responder, **kw)`` starts a LoopbackServer stopped at the end of the test."""
    started = []

    def start(responder=None, **kw) -> LoopbackServer:
        srv = LoopbackServer(responder, **kw).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


def make(provider: str, server: LoopbackServer, **kw):
    return MAKERS[provider](server, **kw)
