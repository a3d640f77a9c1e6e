"""Images on the wire: ``Request.images`` as content parts of the last user message, in the OpenAI and Anthropic
formats (base64 data, never a URL or a path), and the check that a text-only engine refuses them clearly."""
from __future__ import annotations

from ..errors import BadRequestError, UnsupportedInputError
from .types import ImagePart, Request


def check_supported(engine, request: Request) -> None:
    """Raise ``UnsupportedInputError`` when ``request`` carries images and ``engine`` cannot read them."""
    if request.images and not getattr(engine, "supports_images", False):
        n = len(request.images)
        raise UnsupportedInputError(
            f"{engine.name} reads text only, but this {request.role} request (node {request.node!r}) carries "
            f"{n} image{'s' if n > 1 else ''} ({request.images[0].describe()}). Send image inputs to an engine "
            f"that reads images: openai:MODEL (e.g. openai:gpt-4o-mini), anthropic:MODEL, an OpenAI-compatible "
            f"server of a vision model (openai:http://HOST/v1#MODEL), or a replay: cassette recorded with one.")


def _last_user(messages: list[dict], engine) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i]["role"] == "user":
            return i
    raise BadRequestError(f"{engine.name}: a request with images needs a user message to attach them to")


def attach_openai(messages: list[dict], images: tuple[ImagePart, ...], engine) -> list[dict]:
    """OpenAI chat format: the last user message becomes ``[text part, image_url parts...]``."""
    if not images:
        return messages
    i = _last_user(messages, engine)
    parts: list[dict] = [{"type": "text", "text": messages[i]["content"]}]
    parts += [{"type": "image_url", "image_url": {"url": im.data_url()}} for im in images]
    return messages[:i] + [{"role": "user", "content": parts}] + messages[i + 1:]


def attach_anthropic(turns: list[dict], images: tuple[ImagePart, ...], engine) -> list[dict]:
    """Anthropic messages format: the last user turn becomes ``[image blocks..., text block]`` (images first, as
    Anthropic recommends)."""
    if not images:
        return turns
    i = _last_user(turns, engine)
    blocks: list[dict] = [{"type": "image", "source": {"type": "base64", "media_type": im.media_type,
                                                       "data": im.base64()}} for im in images]
    blocks.append({"type": "text", "text": turns[i]["content"]})
    return turns[:i] + [{"role": "user", "content": blocks}] + turns[i + 1:]
