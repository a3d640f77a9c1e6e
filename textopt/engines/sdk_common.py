"""What the SDK engines share: the HTTP client they give the SDK, and error classification (OpenAI and
Anthropic raise the same shapes of exceptions).

- 429 -> ``Retryable(rate_limited=True, retry_after=...)`` (``retry-after-ms``, then ``Retry-After`` seconds or
  HTTP date)
- 5xx (529 overloaded included), 408, 409, timeouts, connection errors, unreadable bodies -> ``Retryable``
- 401/403 -> ``AuthenticationError``; 413 or a 400 about the context window -> ``ContextLengthError``; other 4xx
  -> ``BadRequestError``; each with the provider's own message.
Secrets are scrubbed from the SDK exception itself (it becomes the ``__cause__`` of what textopt raises).
"""
from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time

from ..errors import AuthenticationError, BadRequestError, ContextLengthError, ProviderError, TextoptError
from .base import Retryable
from .secrets import scrub

_CONTEXT = re.compile(r"context[ _]length|maximum context|context window|prompt is too long|too many tokens|"
                      r"reduce the length|exceeds the model", re.I)


class MalformedResponse(ValueError):
    """A 2xx answer whose body is not the provider's format (missing fields, wrong types)."""


def provider_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return str(getattr(exc, "message", None) or exc)


def retry_after(headers) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date), if present."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _scrub_exception(exc: BaseException, secrets) -> None:
    try:
        exc.args = tuple(scrub(a, *secrets) if isinstance(a, str) else a for a in exc.args)
        if isinstance(getattr(exc, "message", None), str):
            exc.message = scrub(exc.message, *secrets)
        body = getattr(exc, "body", None)
        if body is not None:
            exc.body = json.loads(scrub(json.dumps(body), *secrets))
    except (AttributeError, TypeError, ValueError):
        pass


def classify(engine, exc: BaseException, sdk, secrets=(), key_env: str | None = None) -> BaseException | Retryable:
    """Map an exception of ``sdk`` (the ``openai`` or ``anthropic`` module) to Retryable or a textopt error."""
    if isinstance(exc, (TextoptError, Retryable)):
        return exc
    _scrub_exception(exc, secrets)
    if isinstance(exc, (sdk.APITimeoutError, asyncio.TimeoutError, TimeoutError)):
        return Retryable(exc, timed_out=True)
    if isinstance(exc, (sdk.APIConnectionError, ConnectionError)):
        return Retryable(exc)
    if isinstance(exc, (json.JSONDecodeError, MalformedResponse, sdk.APIResponseValidationError)):
        return Retryable(exc)
    if isinstance(exc, sdk.APIStatusError):
        status, msg = exc.status_code, scrub(provider_message(exc), *secrets)
        headers = getattr(getattr(exc, "response", None), "headers", None)
        if status == 429:
            return Retryable(exc, retry_after=retry_after(headers), rate_limited=True)
        if status >= 500 or status in (408, 409):
            return Retryable(exc)
        if status in (401, 403):
            hint = f" Check the key in {key_env}." if key_env else " Check the api_key given to the engine."
            return AuthenticationError(f"{engine.name}: the provider rejected the credentials (HTTP {status}): "
                                       f"{msg}.{hint}")
        if status == 413 or _CONTEXT.search(msg) or getattr(exc, "code", None) == "context_length_exceeded":
            return ContextLengthError(f"{engine.name}: the request does not fit the model's context window "
                                      f"(HTTP {status}): {msg}. Shorten the prompt or lower max_tokens.")
        return BadRequestError(f"{engine.name}: the provider rejected the request (HTTP {status}): {msg}")
    return ProviderError(f"{engine.name}: {type(exc).__name__}: {scrub(str(exc), *secrets)}")


def describe_failure(engine, exc: BaseException, sdk, where: str, timeout: float, secrets=()) -> str:
    """What the final error says after the retries ran out."""
    if isinstance(exc, sdk.APITimeoutError):
        return (f"no answer from {where} within the {timeout:g} s timeout (raise timeout= or check the server; "
                f"a server that answers one request at a time needs a timeout above its longest queue)")
    if isinstance(exc, sdk.APIConnectionError):
        return f"cannot connect to {where}: {exc}; is the server running and the URL right?"
    if isinstance(exc, (json.JSONDecodeError, MalformedResponse, sdk.APIResponseValidationError)):
        return f"{where} answered with an unreadable body ({type(exc).__name__}: {exc})"
    if isinstance(exc, sdk.APIStatusError):
        return f"{where} answered HTTP {exc.status_code}: {scrub(provider_message(exc), *secrets)}"
    return f"{type(exc).__name__}: {scrub(str(exc), *secrets)}"


def http_client(sdk, timeout: float):
    """The httpx client handed to an SDK client (one per event loop).

    The SDK's own default client closes itself in ``__del__`` by scheduling ``aclose()`` on whatever loop is
    running at garbage-collection time — for a client of a loop that ``asyncio.run`` already closed that is the
    wrong loop and logs "Event loop is closed". This plain client (same defaults) leaves its sockets to be closed
    with their dead loop instead.
    """
    return sdk.DefaultAsyncHttpxClient(timeout=timeout)
