"""Anthropic through the official SDK (``anthropic:claude-sonnet-4-5``; key from ``ANTHROPIC_API_KEY``).

Wire mapping: system messages -> the ``system`` parameter; consecutive turns of one role are merged (the API
wants alternating turns); ``Request.prefill`` -> a trailing assistant message that the model continues (sent
without trailing whitespace, which the API rejects), and the returned text INCLUDES it; ``stop`` ->
``stop_sequences``. The SDK client has ``max_retries=0`` (tenacity in ``base.py`` retries) and one client is
kept per event loop.

Sampling: the SDK installed here (2.x) speaks API version 2026-10-21, which rejects ``temperature``/``top_p``
(any value). They are therefore not sent (they still key the cache, so N samples are still N entries); pass
``legacy_sampling=True`` to send them under ``anthropic-version: 2023-06-01`` for models that honour them.
``json_schema=True`` asks for JSON through ``output_config.format`` (structured outputs) instead of a prefill;
``prefill=False`` for models that reject a trailing assistant message.
"""
from __future__ import annotations

import asyncio
import os
import threading
import weakref

import anthropic

from ..errors import BadRequestError, EngineSpecError, MissingAPIKeyError
from . import sdk_common
from .base import Engine, check_settings
from .images import attach_anthropic
from .secrets import Secret, known_key_env
from .types import Request, Response

ANTHROPIC_URL = "https://api.anthropic.com"


class AnthropicEngine(Engine):
    provider = "anthropic"
    supports_schema = False
    supports_prefill = True
    supports_images = True    # base64 image blocks before the text of the last user turn

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 api_key_env: str = "ANTHROPIC_API_KEY", timeout: float = 60.0, legacy_sampling: bool = False,
                 json_schema: bool = False, prefill: bool = True, **kw):
        if not model:
            raise EngineSpecError("an Anthropic engine needs a model name, e.g. 'anthropic:claude-sonnet-4-5'")
        key = api_key or os.environ.get(api_key_env)
        if not key:
            raise MissingAPIKeyError(f"anthropic:{model} needs an API key: set the environment variable "
                                     f"{api_key_env} (or pass api_key=...)")
        self._api_key = Secret(key)
        self.api_key_env = api_key_env
        known_key_env(api_key_env)
        self.base_url = (base_url or os.environ.get("ANTHROPIC_BASE_URL") or ANTHROPIC_URL).rstrip("/")
        self.is_official = self.base_url == ANTHROPIC_URL
        check_settings(type(self).__name__, timeout=timeout)
        self.timeout = timeout
        self.legacy_sampling = legacy_sampling
        self.supports_schema, self.supports_prefill = json_schema, prefill
        kw.setdefault("name", f"anthropic:{model}" if self.is_official else f"anthropic:{self.base_url}#{model}")
        super().__init__(model, **kw)
        self._clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anthropic.AsyncAnthropic]" = \
            weakref.WeakKeyDictionary()
        self._clients_lock = threading.Lock()

    def cache_model_id(self, model: str | None = None) -> str:
        model = model or self.model
        return f"anthropic:{model}" if self.is_official else f"anthropic:{self.base_url}#{model}"

    def _client(self) -> anthropic.AsyncAnthropic:
        loop = asyncio.get_running_loop()
        with self._clients_lock:
            client = self._clients.get(loop)
            if client is None:
                client = anthropic.AsyncAnthropic(api_key=self._api_key.get(), base_url=self.base_url,
                                                  timeout=self.timeout, max_retries=0,
                                                  http_client=sdk_common.http_client(anthropic, self.timeout))
                self._clients[loop] = client
            return client

    def _payload(self, request: Request) -> tuple[dict, str]:
        if request.n != 1:
            raise BadRequestError(f"{self.name} returns one answer per call (n={request.n} asked); for N samples "
                                  f"send N requests with temperature > 0 and sample_index=0..N-1")
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        turns: list[dict] = []
        for m in request.messages:
            if m.role == "system":
                continue
            role = "assistant" if m.role == "assistant" else "user"
            if turns and turns[-1]["role"] == role:
                turns[-1]["content"] += "\n\n" + m.content
            else:
                turns.append({"role": role, "content": m.content})
        if request.prefill and not self.supports_prefill:
            raise BadRequestError(f"{self.name} was built with prefill=False but the request has a prefill; use the "
                                  f"textopt.engines.structured helpers, which adapt to the engine")
        prefill = (request.prefill or "").rstrip()
        if prefill:
            if turns and turns[-1]["role"] == "assistant":
                turns[-1]["content"] += prefill
            else:
                turns.append({"role": "assistant", "content": prefill})
        if request.images:
            turns = attach_anthropic(turns, request.images, self)
        body: dict = {"model": request.model or self.model, "max_tokens": request.max_tokens, "messages": turns}
        if system:
            body["system"] = system
        if self.legacy_sampling:
            sampling = {"temperature": request.temperature}
            if request.top_p is not None:
                sampling["top_p"] = request.top_p
            body["extra_body"] = sampling
            body["extra_headers"] = {"anthropic-version": "2023-06-01"}
        if request.schema is not None and self.supports_schema:
            body["output_config"] = {"format": {"type": "json_schema", "schema": dict(request.schema)}}
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        return body, prefill

    async def _send(self, request: Request) -> Response:
        body, prefill = self._payload(request)
        message = await self._client().messages.create(**body)
        try:
            text = "".join(block.text for block in message.content if getattr(block, "type", "") == "text")
            return Response(text=prefill + text, prompt_tokens=int(message.usage.input_tokens),
                            completion_tokens=int(message.usage.output_tokens),
                            model=message.model or request.model or self.model, finish_reason=message.stop_reason)
        except (AttributeError, TypeError, ValueError) as exc:
            raise sdk_common.MalformedResponse(f"unexpected messages answer: {exc}") from None

    def _classify(self, exc: BaseException):
        return sdk_common.classify(self, exc, anthropic, (self._api_key,), self.api_key_env)

    def _describe_failure(self, error: BaseException) -> str:
        return sdk_common.describe_failure(self, error, anthropic, self.base_url, self.timeout, (self._api_key,))


def from_spec(rest: str, **kw) -> AnthropicEngine:
    rest = rest.strip()
    if not rest:
        raise EngineSpecError("'anthropic:' needs a model, e.g. 'anthropic:claude-sonnet-4-5'")
    return AnthropicEngine(rest, **kw)
