"""OpenAI and any OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp server) through the official SDK.

Specs: ``openai:gpt-4o-mini`` (key from ``OPENAI_API_KEY``; ``OPENAI_BASE_URL`` honoured) and
``openai:http://127.0.0.1:8000/v1#MODEL`` (key optional: ``api_key=`` or ``api_key_env=``; your OpenAI key is
deliberately NOT sent to third-party servers unless you name it).

The SDK client is built with ``max_retries=0`` (tenacity in ``base.py`` is the only retry layer) and one client
is kept per event loop (an httpx pool belongs to the loop that opened it).

A server (``base_url`` given) gets defaults that fit self-hosted ones: a 600 s timeout (a local server answering
one request at a time took 169 s for one 300-token answer under load) and at most one resend after a timeout
(the server goes on generating an answer its client abandoned). Structured output asks for ``response_format:
json_schema``; a server that rejects that format (llama-cpp-python answers HTTP 500 "Input should be 'text' or
'json_object'") is detected on the first such answer, and the engine falls back — to ``json_object`` with the
schema written into the prompt, then to the prompt alone — and remembers it (``schema_mode``), with one warning.
The request (hence its cache key) is the same whatever the wire format.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import weakref

import openai

from ..errors import BadRequestError, EngineSpecError, MissingAPIKeyError
from . import sdk_common
from .base import Engine, check_settings
from .images import attach_openai
from .router import from_spec_urls
from .secrets import Secret, known_key_env
from .structured import SCHEMA_INSTRUCTION, append_to_last_user
from .types import Request, Response

OPENAI_URL = "https://api.openai.com/v1"
SERVER_TIMEOUT = 600.0      # default timeout for a server given by URL (self-hosted: long queues, slow CPUs)
SCHEMA_MODES = ("json_schema", "json_object", "prompt")   # how a schema reaches the wire, best first
# An answer that rejects the response_format itself (not the request's content): the fallback's trigger.
_FORMAT_REJECTED = re.compile(r"response[_ ]?format|json[_ ]?schema|json_object|'text' or 'json", re.I)
log = logging.getLogger("textopt.engines.openai")


class OpenAIEngine(Engine):
    provider = "openai"
    supports_schema = True
    supports_prefill = False
    supports_images = True    # image_url content parts (data URLs); a text-only server answers 400

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 api_key_env: str | None = None, timeout: float | None = None, json_schema: bool = True,
                 organization: str | None = None, **kw):
        if not model:
            raise EngineSpecError("an OpenAI engine needs a model name, e.g. 'openai:gpt-4o-mini'")
        server = base_url is not None
        base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        self.base_url = base_url
        self.is_official = base_url == OPENAI_URL
        if api_key_env is None and not server:
            api_key_env = "OPENAI_API_KEY"
        key = api_key or (os.environ.get(api_key_env) if api_key_env else None)
        if not key and not server:
            raise MissingAPIKeyError(f"openai:{model} needs an API key: set the environment variable {api_key_env} "
                                     f"(or pass api_key=...). For a local OpenAI-compatible server use "
                                     f"'openai:http://HOST:PORT/v1#MODEL'.")
        self._api_key = Secret(key)
        self.api_key_env = api_key_env
        known_key_env(api_key_env)
        check_settings(type(self).__name__, timeout=timeout)
        self.timeout = timeout if timeout is not None else (SERVER_TIMEOUT if server else 60.0)
        if server:
            kw.setdefault("timeout_retries", 1)
        self.organization = organization
        self.supports_schema = json_schema
        self.schema_mode = SCHEMA_MODES[0]
        name = f"openai:{model}" if self.is_official else f"openai:{base_url}#{model}"
        kw.setdefault("name", name)
        super().__init__(model, **kw)
        self._clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI]" = \
            weakref.WeakKeyDictionary()
        self._clients_lock = threading.Lock()

    def cache_model_id(self, model: str | None = None) -> str:
        model = model or self.model
        return f"openai:{model}" if self.is_official else f"openai:{self.base_url}#{model}"

    def _client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        with self._clients_lock:
            client = self._clients.get(loop)
            if client is None:
                client = openai.AsyncOpenAI(api_key=self._api_key.get() or "none", base_url=self.base_url,
                                            organization=self.organization, timeout=self.timeout, max_retries=0,
                                            http_client=sdk_common.http_client(openai, self.timeout))
                self._clients[loop] = client
            return client

    def _payload(self, request: Request) -> dict:
        if request.prefill:
            raise BadRequestError(f"{self.name} cannot continue an assistant prefill (supports_prefill is False); "
                                  f"use textopt.engines.structured helpers, which adapt to the engine, or drop "
                                  f"Request.prefill")
        body: dict = {"model": request.model or self.model,
                      "messages": [{"role": m.role, "content": m.content} for m in request.messages],
                      "temperature": request.temperature}
        body["max_completion_tokens" if self.is_official else "max_tokens"] = request.max_tokens
        if request.n != 1:
            body["n"] = request.n
        for name in ("top_p", "seed"):
            if getattr(request, name) is not None:
                body[name] = getattr(request, name)
        if request.stop:
            body["stop"] = list(request.stop)
        if request.logprobs:
            body["logprobs"] = True
        if request.schema is not None and self.supports_schema:
            mode = self.schema_mode
            if mode == "json_schema":
                title = re.sub(r"[^a-zA-Z0-9_-]", "_", str(request.schema.get("title") or "output"))[:64]
                body["response_format"] = {"type": "json_schema",
                                           "json_schema": {"name": title, "schema": dict(request.schema)}}
            else:   # the fallbacks: the schema travels in the prompt (json_object also constrains the syntax)
                msgs = append_to_last_user(request.messages,
                                           SCHEMA_INSTRUCTION.format(schema=json.dumps(dict(request.schema))))
                body["messages"] = [{"role": m.role, "content": m.content} for m in msgs]
                if mode == "json_object":
                    body["response_format"] = {"type": "json_object"}
        if request.images:
            body["messages"] = attach_openai(body["messages"], request.images, self)
        return body

    def _format_rejected(self, exc: BaseException, body: dict) -> bool:
        """Did the server refuse the ``response_format`` we sent (rather than the request)? Then step down to
        the next schema mode, once per engine (a concurrent request may already have stepped down)."""
        if "response_format" not in body or self.is_official or not isinstance(exc, openai.APIStatusError):
            return False
        if exc.status_code not in (400, 404, 422, 500, 501) or \
                not _FORMAT_REJECTED.search(sdk_common.provider_message(exc)):
            return False
        sent = body["response_format"]["type"]
        if sent == self.schema_mode:
            self.schema_mode = SCHEMA_MODES[SCHEMA_MODES.index(sent) + 1]
            log.warning("%s rejected response_format %r (HTTP %s: %s); this engine now sends %s", self.name,
                        sent, exc.status_code, sdk_common.provider_message(exc)[:200],
                        "json_object with the schema in the prompt" if self.schema_mode == "json_object"
                        else "the schema in the prompt only")
        return True

    async def _send(self, request: Request) -> Response:
        while True:
            body = self._payload(request)
            try:
                completion = await self._client().chat.completions.create(**body)
                break
            except openai.APIStatusError as exc:
                if not self._format_rejected(exc, body):
                    raise
        try:
            choice = completion.choices[0]
            text = choice.message.content or ""
            logprobs = None
            if request.logprobs and choice.logprobs is not None and choice.logprobs.content is not None:
                logprobs = [float(t.logprob) for t in choice.logprobs.content]
            usage = completion.usage
            return Response(text=text, prompt_tokens=int(usage.prompt_tokens if usage else 0),
                            completion_tokens=int(usage.completion_tokens if usage else 0),
                            model=completion.model or request.model or self.model,
                            finish_reason=choice.finish_reason, logprobs=logprobs,
                            choices=[c.message.content or "" for c in completion.choices] if request.n > 1 else None)
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            raise sdk_common.MalformedResponse(f"unexpected chat.completions answer: {exc}") from None

    def _classify(self, exc: BaseException):
        return sdk_common.classify(self, exc, openai, (self._api_key,), self.api_key_env)

    def _describe_failure(self, error: BaseException) -> str:
        return sdk_common.describe_failure(self, error, openai, self.base_url, self.timeout, (self._api_key,))


def from_spec(rest: str, **kw) -> Engine:
    rest = rest.strip()
    if rest.startswith(("http://", "https://")):
        url, sep, model = rest.rpartition("#")
        if not sep or not model or not url:
            raise EngineSpecError(f"'openai:{rest}' names a server but no model: write "
                                  f"'openai:{rest.split('#')[0]}#MODEL' (the model name the server serves)")
        if "," in url:   # replicas of one model: openai:URL1,URL2#MODEL
            return from_spec_urls(OpenAIEngine, url, model, **kw)
        return OpenAIEngine(model, base_url=url, **kw)
    if not rest:
        raise EngineSpecError("'openai:' needs a model, e.g. 'openai:gpt-4o-mini' or "
                              "'openai:http://127.0.0.1:8000/v1#MODEL'")
    return OpenAIEngine(rest, **kw)
