"""Structured output on every engine: ask, validate, repair once, then raise ``ParseError``.

Engines declare what they do natively:
- ``supports_schema``: the engine honours ``Request.schema`` itself (OpenAI ``response_format`` JSON schema,
  constrained decoding in the local engine). Otherwise the schema is written into the prompt.
- ``supports_prefill``: the engine honours ``Request.prefill`` (Anthropic assistant prefill, the local engine).
  Otherwise the prefill is dropped and the model is asked to open the tag itself.
Engines return ``Response.text`` INCLUDING the prefill (the whole assistant turn).
"""
from __future__ import annotations

import dataclasses
import json
import re
from typing import TYPE_CHECKING, TypeVar

from ..errors import ParseError
from .types import Message, Request, Response

if TYPE_CHECKING:   # pydantic is read only by callers that pass a model (its import costs ~25 ms)
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")

SCHEMA_INSTRUCTION = ("\n\nAnswer with a single JSON object and nothing else. It must match this JSON schema:\n"
                      "{schema}")
TAG_INSTRUCTION = "\n\nWrite your answer between <{tag}> and </{tag}> and nothing after the closing tag."
REPAIR_INSTRUCTION = ("Your previous answer could not be used: {error}\n"
                      "Answer again, following the required format exactly.")


def append_to_last_user(messages: tuple[Message, ...], extra: str) -> tuple[Message, ...]:
    msgs = list(messages)
    for i in range(len(msgs) - 1, -1, -1):
        if msgs[i].role == "user":
            msgs[i] = Message("user", msgs[i].content + extra)
            return tuple(msgs)
    return tuple(msgs) + (Message("user", extra.strip()),)


def extract_json(text: str) -> object:
    """The first JSON object in ``text`` (tolerates code fences and chatter around it)."""
    text = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fence:
        text = fence.group(1).strip()
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object found in the answer")
    obj, _ = json.JSONDecoder().raw_decode(text[start:])
    return obj


def extract_tag(text: str, tag: str) -> str:
    """Text inside ``<tag>...</tag>``; a missing closing tag (eaten by a stop sequence) is accepted."""
    m = re.search(rf"<{re.escape(tag)}>(.*?)(?:</{re.escape(tag)}>|$)", text, re.S)
    if not m:
        raise ValueError(f"the answer has no <{tag}> tag")
    value = m.group(1).strip()
    if not value:
        raise ValueError(f"the <{tag}> tag is empty")
    return value


def _schema_request(engine, request: Request, model: type[BaseModel]) -> Request:
    schema = model.model_json_schema()
    if getattr(engine, "supports_schema", False):
        return dataclasses.replace(request, schema=schema)
    msgs = append_to_last_user(request.messages, SCHEMA_INSTRUCTION.format(schema=json.dumps(schema)))
    prefill = "{" if getattr(engine, "supports_prefill", False) else None
    return dataclasses.replace(request, messages=msgs, schema=schema, prefill=prefill)


def _repair(request: Request, resp: Response, error: str) -> Request:
    msgs = request.messages + (Message("assistant", resp.text), Message("user", REPAIR_INSTRUCTION.format(
        error=error[:500])))
    return dataclasses.replace(request, messages=msgs)


async def agenerate_structured(engine, request: Request, model: type[M], *, repair: bool = True,
                               ) -> tuple[M, Response]:
    """Ask for an instance of the pydantic ``model``; validate; on failure repair once; else ``ParseError``."""
    req = _schema_request(engine, request, model)
    last_error = ""
    for attempt in range(2 if repair else 1):
        resp = await engine.generate(req)
        try:
            data = resp.parsed if isinstance(resp.parsed, dict) else extract_json(resp.text)
            value = model.model_validate(data)
            resp.parsed = value
            return value, resp
        except ValueError as exc:   # (pydantic's ValidationError is a ValueError)
            last_error = str(exc)
            req = _repair(req, resp, last_error)
    raise ParseError(f"{engine!r} did not produce a valid {model.__name__} after a repair attempt: {last_error}")


async def agenerate_tagged(engine, request: Request, tag: str, *, validate=None, repair: bool = True,
                           repair_temperature: float | None = None) -> tuple[str, Response]:
    """Ask for text between ``<tag>`` and ``</tag>``: prefill the opening tag and stop at the closing one where
    the engine allows; ``validate(value)`` may raise ``ValueError`` to trigger the repair, sent with
    ``repair_temperature`` when given (a greedy model asked again tends to repeat its answer)."""
    close = f"</{tag}>"
    if getattr(engine, "supports_prefill", False):
        req = dataclasses.replace(request, prefill=f"<{tag}>", stop=tuple(request.stop) + (close,))
    else:
        req = dataclasses.replace(request, messages=append_to_last_user(
            request.messages, TAG_INSTRUCTION.format(tag=tag)))
    last_error = ""
    for attempt in range(2 if repair else 1):
        resp = await engine.generate(req)
        try:
            value = extract_tag(resp.text, tag)
            if validate is not None:
                validate(value)
            return value, resp
        except ValueError as exc:
            last_error = str(exc)
            req = _repair(req, resp, last_error)
            if repair_temperature is not None:
                req = dataclasses.replace(req, temperature=repair_temperature)
    raise ParseError(f"{engine!r} did not produce a valid <{tag}> answer after a repair attempt: {last_error}")
