"""The engine contract: an immutable ``Request`` in, a ``Response`` out.

Everything that changes what a model would answer is part of the cache key (``Request.key``); metadata about
who asked (role, graph node) is not. Sampled requests (temperature > 0) include ``sample_index`` in the key so
N samples are N entries. Images (``Request.images``) enter the key by media type and content hash, never by path
or bytes, so the same picture read from two files is one entry and a cassette holds no image data.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, NamedTuple

from ..checks import expect, expect_int
from ..errors import BadRequestError, DataError

ROLES = ("forward", "loss", "backward", "optimizer", "eval", "other")


@dataclass(frozen=True)
class ImagePart:
    """An image sent with a request: its bytes and media type (``image/png``, ``image/jpeg``, ``image/gif`` or
    ``image/webp``); ``label`` (a file name) is for people only. Build one with ``textopt.image.image_part``."""
    data: bytes = field(repr=False)
    media_type: str = "image/png"
    label: str = field(default="", compare=False)
    sha256: str = field(default="", init=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.data, (bytes, bytearray)) or not self.data:
            raise TypeError("ImagePart.data must be non-empty bytes")
        object.__setattr__(self, "data", bytes(self.data))
        object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())

    def base64(self) -> str:
        import base64
        return base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{self.base64()}"

    def describe(self) -> str:
        """One line for prompts and logs: label, media type, size and the start of the hash (never the bytes)."""
        name = f"{self.label}, " if self.label else ""
        return f"{name}{self.media_type}, {len(self.data) / 1024:.1f} KB, sha256 {self.sha256[:12]}"


class Message(NamedTuple):
    role: str  # "system" | "user" | "assistant"
    content: str


_MESSAGES_FIX = 'give a str or a list of chat messages, each {"role": ..., "content": ...} or a (role, content) pair'


def as_messages(messages: Iterable[Any] | str) -> tuple[Message, ...]:
    if isinstance(messages, str):
        return (Message("user", messages),)
    if isinstance(messages, (bytes, Mapping)) or not isinstance(messages, (list, tuple)):
        raise BadRequestError(f"Request messages must be a str or a list of messages, got "
                              f"{type(messages).__name__}; {_MESSAGES_FIX}")
    out = []
    for i, m in enumerate(messages):
        if isinstance(m, Message):
            out.append(m)
        elif isinstance(m, Mapping) and "role" in m and "content" in m:
            out.append(Message(str(m["role"]), str(m["content"])))
        elif isinstance(m, (tuple, list)) and len(m) == 2:
            out.append(Message(str(m[0]), str(m[1])))
        else:
            raise BadRequestError(f"Request message #{i + 1} is not a chat message ({type(m).__name__}); "
                                  f"{_MESSAGES_FIX}")
    return tuple(out)


_new_message = tuple.__new__
_new_object, _set_attr = object.__new__, object.__setattr__
_SYSTEM_MESSAGES: dict = {}


def _system_message(text: str) -> Message:
    """One Message per distinct system prompt (the backward system prompt, a module's prompt ...): a graph sends
    the same few system prompts thousands of times. Bounded; any value works (non-str is converted)."""
    msg = _SYSTEM_MESSAGES.get(text) if type(text) is str else None
    if msg is None:
        if len(_SYSTEM_MESSAGES) > 256:
            _SYSTEM_MESSAGES.clear()
        msg = Message("system", text)
        if type(text) is str:
            _SYSTEM_MESSAGES[text] = msg
    return msg


_META_ONLY = frozenset({"role", "node", "use_cache"})  # fields that need no normalisation in __post_init__


@dataclass(frozen=True)
class Request:
    messages: tuple[Message, ...]
    model: str | None = None            # None: the engine's default model
    temperature: float = 0.0
    max_tokens: int = 512
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    n: int = 1
    schema: Mapping | None = None       # JSON schema of the wanted output (structured output)
    pattern: str | None = None          # regular expression the output must match (constrained decoding)
    prefill: str | None = None          # start of the assistant turn (the answer continues it)
    logprobs: bool = False
    images: tuple[ImagePart, ...] = ()  # shown with the last user message; keyed by content hash
    # -- metadata: not part of the cache key --
    role: str = field(default="forward", compare=False)
    node: str | None = field(default=None, compare=False)
    sample_index: int = 0               # part of the key only when temperature > 0
    use_cache: bool | None = field(default=None, compare=False)  # None: the engine's setting

    def __post_init__(self):
        object.__setattr__(self, "messages", as_messages(self.messages))
        stop = (self.stop,) if isinstance(self.stop, str) else self.stop
        if not isinstance(stop, (list, tuple)) or not all(isinstance(x, str) for x in stop):
            raise BadRequestError(f"Request stop must be a str or a list of str, got {self.stop!r:.60}")
        object.__setattr__(self, "stop", tuple(stop))
        _check_values(self.__dict__)
        if self.images:
            images = (self.images,) if isinstance(self.images, ImagePart) else tuple(self.images)
            for im in images:
                if not isinstance(im, ImagePart):
                    raise BadRequestError(f"Request.images takes ImagePart objects (textopt.image.image_part(path "
                                          f"or bytes or PIL image)), got {type(im).__name__}")
            object.__setattr__(self, "images", images)

    @classmethod
    def chat(cls, user: str, system: str | None = None, **kw) -> "Request":
        if type(user) is str and (system is None or type(system) is str) and "stop" not in kw \
                and "messages" not in kw and not kw.get("images"):
            # every field as given needs no normalisation: fill the instance directly (_build)
            d = _DEFAULTS.copy()      # one copy of the defaults' table, then the few fields given
            d.update(kw)
            if len(d) == _N_FIELDS:   # no unknown keyword (it would have added a key): the usual case
                t, m = d["temperature"], d["max_tokens"]
                if not ((type(t) is float or type(t) is int) and 0 <= t < _INF and type(m) is int and m >= 1
                        and d["n"] == 1 and d["top_p"] is None and d["seed"] is None and d["pattern"] is None
                        and d["schema"] is None):   # (the usual values need no check)
                    _check_values(d)
                return cls._build(d, user, system)
        msgs = (_system_message(system), Message("user", user)) if system else (Message("user", user),)
        _known(kw)
        return cls(messages=msgs, **kw)

    @classmethod
    def chat_fields(cls, **kw) -> dict:
        """The fields ``Request.chat(user, system, **kw)`` sets besides its messages, checked once (a bad keyword
        or value raises here, as ``chat`` would). A caller that sends many requests with the same keywords keeps
        them and makes each request with :meth:`from_fields`: no keyword parsing, copying or checking per call."""
        _known(kw)
        return dict(cls(messages=(Message("user", ""),), **kw).__dict__)   # the constructor checks every field

    @classmethod
    def from_fields(cls, fields: dict, user: str, system: str | None = None) -> "Request":
        """``Request.chat(user, system, **kw)`` for ``fields = Request.chat_fields(**kw)`` (the same request)."""
        if type(user) is str and (system is None or type(system) is str):
            return cls._build(fields.copy(), user, system)
        return cls.chat(user, system, **{k: v for k, v in fields.items() if k != "messages"})

    @classmethod
    def _build(cls, d: dict, user: str, system: str | None) -> "Request":
        """The request of the checked fields ``d`` (a new dict, taken) with the messages of ``user`` and ``system``
        (str): the instance filled directly (the frozen dataclass __init__ sets 16 fields one object.__setattr__
        at a time; this runs for every LLM call)."""
        um = _new_message(Message, ("user", user))   # Message("user", user) without its __new__
        d["messages"] = (_SYSTEM_MESSAGES.get(system) or _system_message(system), um) if system else (um,)
        new = _new_object(cls)
        _set_attr(new, "__dict__", d)
        return new

    def with_meta(self, **kw) -> "Request":
        if kw.keys() <= _META_ONLY:  # metadata only: copy without re-running __init__ (backward's hot path)
            new = object.__new__(Request)
            new.__dict__.update(self.__dict__)
            new.__dict__.update(kw)
            return new
        return dataclasses.replace(self, **kw)

    def canonical(self, model: str) -> dict:
        """The request as the cache and cassettes see it: everything that changes the answer, nothing secret."""
        body = {
            "model": self.model or model,
            "messages": [[m.role, m.content] for m in self.messages],
            "temperature": self.temperature, "max_tokens": self.max_tokens, "top_p": self.top_p,
            "seed": self.seed, "stop": list(self.stop), "n": self.n,
            "schema": self.schema, "pattern": self.pattern, "prefill": self.prefill, "logprobs": self.logprobs,
        }
        if self.temperature and self.temperature > 0:
            body["sample_index"] = self.sample_index
        if self.images:   # only then: keys of text-only requests stay what they always were
            body["images"] = [[im.media_type, im.sha256] for im in self.images]
        return body

    def key(self, model: str) -> str:
        blob = json.dumps(self.canonical(model), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def system(self) -> str | None:
        return next((m.content for m in self.messages if m.role == "system"), None)

    def prompt_chars(self) -> int:
        return sum(len(m.content) for m in self.messages)


def _known(kw: dict) -> None:
    """Request fields only (a model call's settings reach Request.chat as keywords)."""
    unknown = [k for k in kw if k not in _DEFAULTS or k == "messages"]
    if unknown:
        raise BadRequestError(f"unknown request setting(s) {unknown}; a request takes "
                              f"{', '.join(k for k in _DEFAULTS if k != 'messages')}")


def _check_values(d: dict) -> None:
    """The checks of a Request's values (``d``: its fields by name); a bad one is a ``BadRequestError``."""
    t = expect(d["temperature"], (int, float), "Request temperature", error=BadRequestError)
    if not 0 <= t < _INF:   # (NaN fails too)
        raise BadRequestError(f"Request temperature must be a finite number >= 0 (0 = greedy), got {t}")
    expect_int(d["max_tokens"], "Request max_tokens", lo=1, error=BadRequestError)
    expect_int(d["n"], "Request n", lo=1, error=BadRequestError)
    top_p = expect(d["top_p"], (int, float), "Request top_p", error=BadRequestError, allow_none=True)
    if top_p is not None and not 0 < top_p <= 1:
        raise BadRequestError(f"Request top_p must be in (0, 1] (the probability mass sampled from), got {top_p}")
    expect(d["seed"], int, "Request seed", error=BadRequestError, allow_none=True)
    expect(d["pattern"], str, "Request pattern", error=BadRequestError, allow_none=True)
    expect(d["schema"], Mapping, "Request schema", error=BadRequestError, allow_none=True)


_INF = float("inf")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Request)}
_N_FIELDS = len(_DEFAULTS)


@dataclass(slots=True)
class Response:
    text: str
    parsed: Any = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cached: bool = False
    latency: float = 0.0
    model: str = ""
    finish_reason: str | None = None
    logprobs: list[float] | None = None   # per generated token, when asked and available
    choices: list[str] | None = None      # every completion of a ``Request(n>1)`` (``text`` is the first)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if d["parsed"] is not None and hasattr(self.parsed, "model_dump"):
            d["parsed"] = self.parsed.model_dump()
        return d

    @classmethod
    def from_dict(cls, d: Mapping, where: str = "a stored response") -> "Response":
        """A Response from its ``to_dict`` form (cache entry, cassette line); a field of the wrong type is a
        ``DataError`` naming it (it would otherwise fail later, deep in usage accounting)."""
        expect(d, dict, where, "a stored response is a JSON object such as {\"text\": \"...\"}")
        kw = {k: v for k, v in d.items() if k in _RESPONSE_TYPES}
        for k, v in kw.items():
            types, lo = _RESPONSE_TYPES[k]
            if types is not None:
                expect(v, types, f"{where}: field {k!r}", allow_none=k in _NULLABLE)
                if lo is not None and v is not None and v < lo:
                    raise DataError(f"{where}: field {k!r} must be >= {lo}, got {v}")
        logprobs = kw.get("logprobs")
        if logprobs is not None and not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                            for x in logprobs):
            raise DataError(f"{where}: field 'logprobs' must be a list of numbers")
        choices = kw.get("choices")
        if choices is not None and not all(isinstance(x, str) for x in choices):
            raise DataError(f"{where}: field 'choices' must be a list of strings")
        if "text" not in kw:
            raise DataError(f"{where}: the field 'text' is missing")
        return cls(**kw)


# field -> (accepted types or None for any, lower bound); checked when a stored response is read back
_RESPONSE_TYPES = {"text": (str, None), "parsed": (None, None), "prompt_tokens": (int, 0),
                   "completion_tokens": (int, 0), "cost": ((int, float), 0), "cached": (bool, None),
                   "latency": ((int, float), None), "model": (str, None), "finish_reason": (str, None),
                   "logprobs": (list, None), "choices": (list, None)}
_NULLABLE = frozenset({"finish_reason", "logprobs", "choices"})
