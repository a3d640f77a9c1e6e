"""Images as graph inputs: ``ImageVariable`` (from a path, bytes or a PIL image) and ``image_part``.

An image is read by the model, shown again to the backward and optimizer calls (so feedback can say how it was
read), and keyed in caches and cassettes by its content hash — never trainable, never text::

    chart = tx.ImageVariable("chart.png", role="bar chart of monthly sales")
    answer = tx.nn.LLMCall("openai:gpt-4o-mini", system_prompt=prompt)(question, images=chart)

Engines that read images: ``openai:...`` and ``anthropic:...`` (image content parts through the official SDKs),
``replay:...`` and scripted engines; a text-only engine (``local``) raises ``UnsupportedInputError``.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Iterable

from .engines.types import ImagePart
from .errors import InvalidVariableError
from .variable import Variable

MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")   # what both providers accept


def sniff_media_type(data: bytes) -> str | None:
    """The media type from the file's first bytes (PNG, JPEG, GIF, WebP), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _is_pil(obj: Any) -> bool:
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "save") and hasattr(obj, "mode")


def image_part(source: Any, *, media_type: str | None = None, label: str | None = None) -> ImagePart:
    """An ``ImagePart`` from a path (str or PathLike), bytes, a PIL image, an ImagePart or an ImageVariable."""
    if isinstance(source, ImageVariable):
        return source.image
    if isinstance(source, ImagePart):
        return source
    if _is_pil(source):
        buf = io.BytesIO()
        img = source if source.mode in ("RGB", "RGBA", "L", "LA", "P") else source.convert("RGBA")
        img.save(buf, format="PNG")
        return ImagePart(buf.getvalue(), "image/png", label or "")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), label or ""
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InvalidVariableError(f"no image file at {str(path)!r}: pass an existing PNG/JPEG/GIF/WebP file, "
                                       f"the image's bytes, or a PIL image")
        data, name = path.read_bytes(), label or path.name
    else:
        raise InvalidVariableError(f"an image is a path, bytes or a PIL image, got {type(source).__name__}")
    if not data:
        raise InvalidVariableError(f"the image {name or '(bytes)'} is empty")
    sniffed = sniff_media_type(data)
    kind = media_type or sniffed
    if kind not in MEDIA_TYPES or (sniffed is not None and media_type and sniffed != media_type):
        raise InvalidVariableError(
            f"the image {name or '(bytes)'} is not PNG, JPEG, GIF or WebP (first bytes {data[:8]!r}"
            f"{', declared ' + media_type if media_type else ''}); convert it first, e.g. with PIL: "
            f"Image.open(path).save('out.png')")
    return ImagePart(data, kind, name)


class ImageVariable(Variable):
    """An image input of the graph (never trainable): ``ImageVariable(path | bytes | PIL image, role=...)``.

    ``value`` is an :class:`ImagePart` (bytes, media type, content hash); assigning a new path/bytes/PIL image
    replaces it. ``requires_grad`` is always False: feedback is about the text that reads the image.
    """

    __slots__ = ()

    def __init__(self, source: Any, role: str = "image input", *, name: str | None = None,
                 media_type: str | None = None, label: str | None = None, meta: dict | None = None,
                 requires_grad: bool = False):
        _refuse_grad(requires_grad, role)
        super().__init__("", role=role, name=name, meta=meta)
        self._value = image_part(source, media_type=media_type, label=label)
        self._is_text = False

    @property
    def image(self) -> ImagePart:
        return self._value

    @property
    def value(self) -> ImagePart:
        return self._value

    @value.setter
    def value(self, new: Any) -> None:
        self._value = image_part(new)

    @property
    def requires_grad(self) -> bool:
        return False

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        _refuse_grad(flag, self.role)

    @property
    def grad(self):
        return None

    def zero_grad(self) -> None:
        pass

    def detach(self) -> "ImageVariable":
        return ImageVariable(self._value, role=self.role, name=self.name, meta=self.meta)

    def short(self, n: int = 60) -> str:
        text = f"image({self._value.describe()})"
        return text if len(text) <= n else text[: n - 3] + "..."

    def __repr__(self) -> str:
        return f"ImageVariable({self._value.describe()!r}, role={self.role!r})"

    def __str__(self) -> str:
        return self.short(200)


def _refuse_grad(flag: Any, role: str) -> None:
    if flag:
        raise InvalidVariableError(f"the image {role!r} cannot require grad: images are inputs that the model "
                                   f"reads, never trainable text; make the prompt or instruction that reads it a "
                                   f"parameter instead (Variable(..., requires_grad=True))")


def as_images(images: Any) -> tuple[ImageVariable, ...]:
    """None, one image (any source ``image_part`` takes) or an iterable of them, as ImageVariables."""
    if images is None:
        return ()
    if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview, ImagePart, ImageVariable)) \
            or _is_pil(images):
        images = (images,)
    if not isinstance(images, Iterable):
        raise InvalidVariableError(f"images= takes an image or a list of images, got {type(images).__name__}")
    return tuple(im if isinstance(im, ImageVariable) else ImageVariable(im) for im in images)
