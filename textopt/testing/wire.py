"""Wire formats of the loopback server: OpenAI ``/v1/chat/completions`` and Anthropic ``/v1/messages`` bodies.

The server is provider-agnostic: a responder returns the *whole* assistant answer; this module turns it into what
the provider would send — continuing an assistant prefill (the prefill is not repeated, as Anthropic does),
cutting at the first stop sequence, truncating at ``max_tokens`` words, and counting tokens (characters / 4 for
the prompt, words for the completion).
"""
from __future__ import annotations

import json
import time
from typing import Any

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"


def text_of(content: Any) -> str:
    """Message content as text (a string, or Anthropic/OpenAI content blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return "" if content is None else str(content)


def messages_of(body: dict) -> list[tuple[str, str]]:
    """``[(role, text), ...]`` of an OpenAI or Anthropic request body (Anthropic ``system`` comes first)."""
    out = []
    system = body.get("system")
    if system:
        out.append(("system", text_of(system)))
    for m in body.get("messages") or []:
        out.append((m.get("role", ""), text_of(m.get("content"))))
    return out


def images_of(body: dict) -> list[tuple[str, bytes]]:
    """``[(media type, bytes), ...]`` of the images in an OpenAI (``image_url`` data URLs) or Anthropic (base64
    ``image`` blocks) request body, in message order."""
    import base64
    out = []
    for m in body.get("messages") or []:
        content = m.get("content")
        for b in content if isinstance(content, list) else ():
            if not isinstance(b, dict):
                continue
            if b.get("type") == "image_url":
                url = str((b.get("image_url") or {}).get("url", ""))
                head, _, data = url.partition(";base64,")
                if head.startswith("data:") and data:
                    out.append((head[len("data:"):], base64.b64decode(data)))
            elif b.get("type") == "image" and (b.get("source") or {}).get("type") == "base64":
                out.append((b["source"].get("media_type", ""), base64.b64decode(b["source"].get("data", ""))))
    return out


def last_user_text(body: dict) -> str:
    return next((t for r, t in reversed(messages_of(body)) if r == "user"), "")


def prefill_of(body: dict) -> str:
    """The trailing assistant message of the request (a prefill), or ''."""
    msgs = messages_of(body)
    return msgs[-1][1] if msgs and msgs[-1][0] == "assistant" else ""


def stops_of(body: dict, path: str) -> list[str]:
    stop = body.get("stop_sequences") if path == ANTHROPIC_PATH else body.get("stop")
    if stop is None:
        return []
    return [stop] if isinstance(stop, str) else list(stop)


def shape_answer(answer: str, body: dict, path: str) -> tuple[str, str, str | None]:
    """(generated text, finish reason, matched stop) as the provider would return them."""
    prefill = prefill_of(body)
    if prefill and answer.startswith(prefill):
        answer = answer[len(prefill):]
    finish, matched = "stop", None
    cut = [(answer.find(s), s) for s in stops_of(body, path) if s and s in answer]
    if cut:
        pos, matched = min(cut)
        answer = answer[:pos]
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    words = answer.split(" ")
    if limit and len(words) > limit:
        answer, finish, matched = " ".join(words[:limit]), "length", None
    return answer, finish, matched


def prompt_tokens(body: dict) -> int:
    return sum(len(t) for _, t in messages_of(body)) // 4 + 1


def completion_tokens(text: str) -> int:
    return max(1, len(text.split()))


def openai_body(answers: list[tuple[str, str, str | None]], body: dict, seq: int) -> dict:
    choices = []
    for i, (text, finish, _) in enumerate(answers):
        logprobs = None
        if body.get("logprobs"):
            logprobs = {"content": [{"token": w, "logprob": -0.1 * (k + 1), "bytes": None, "top_logprobs": []}
                                    for k, w in enumerate(text.split())]}
        choices.append({"index": i, "message": {"role": "assistant", "content": text},
                        "finish_reason": finish, "logprobs": logprobs})
    p, c = prompt_tokens(body), sum(completion_tokens(a[0]) for a in answers)
    return {"id": f"chatcmpl-{seq}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", ""), "choices": choices,
            "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}}


def anthropic_body(answer: tuple[str, str, str | None], body: dict, seq: int) -> dict:
    text, finish, matched = answer
    reason = {"stop": "stop_sequence" if matched else "end_turn", "length": "max_tokens"}[finish]
    return {"id": f"msg_{seq}", "type": "message", "role": "assistant", "model": body.get("model", ""),
            "content": [{"type": "text", "text": text}], "stop_reason": reason, "stop_sequence": matched,
            "usage": {"input_tokens": prompt_tokens(body), "output_tokens": completion_tokens(text)}}


# -- errors ----------------------------------------------------------------------------------------------------
_KINDS = {  # status -> (OpenAI type, OpenAI code, Anthropic type)
    400: ("invalid_request_error", None, "invalid_request_error"),
    401: ("invalid_request_error", "invalid_api_key", "authentication_error"),
    403: ("permission_error", None, "permission_error"),
    404: ("invalid_request_error", "model_not_found", "not_found_error"),
    429: ("requests", "rate_limit_exceeded", "rate_limit_error"),
    500: ("server_error", None, "api_error"),
    503: ("server_error", None, "overloaded_error"),
}


def error_body(path: str, status: int, message: str, code: str | None = None) -> dict:
    otype, ocode, atype = _KINDS.get(status, ("server_error", None, "api_error"))
    if path == ANTHROPIC_PATH:
        return {"type": "error", "error": {"type": atype, "message": message}}
    return {"error": {"message": message, "type": otype, "param": None, "code": code or ocode}}


def context_length_message(path: str, body: dict) -> tuple[str, str | None]:
    n = prompt_tokens(body)
    if path == ANTHROPIC_PATH:
        return f"prompt is too long: {n + 200000} tokens > 200000 maximum", None
    return (f"This model's maximum context length is 128000 tokens. However, your messages resulted in "
            f"{n + 128000} tokens. Please reduce the length of the messages.", "context_length_exceeded")


def dumps(obj: dict) -> bytes:
    return json.dumps(obj).encode()


def retry_after_header(seconds: float) -> str:
    """Seconds as the ``Retry-After`` header carries them (fractions kept: OpenAI-compatible servers send them)."""
    return f"{seconds:g}"
