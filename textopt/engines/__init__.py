"""Engines: one protocol, one shared call path (see ``base.py``), one spec registry.

Specs: ``openai:MODEL``, ``openai:http://HOST:PORT/v1#MODEL`` (``openai:URL1,URL2#MODEL``: replicas of one
model behind a ``RoutedEngine``), ``anthropic:MODEL``, ``local``, ``local:PATH``,
``replay:PATH.jsonl``, ``scripted`` (answers "ok"; tests). Resolving the same spec twice returns the same engine
object, so the embedded model is loaded once and usage is counted in one place.
"""
from __future__ import annotations

import contextlib
import contextvars
import importlib
import threading

from ..errors import EngineSpecError, GraphError
from ..function import plug_engines
from .base import Engine, Retryable, live_engines
from .limiter import AdaptiveLimiter
from .router import RoutedEngine
from .scripted import ScriptedEngine
from .types import ImagePart, Message, Request, Response
from .usage import Budget, Usage, format_report, merge

# prefix -> "module:function" building an engine from the rest of the spec
_FACTORIES = {
    "openai": "textopt.engines.openai_engine:from_spec",
    "anthropic": "textopt.engines.anthropic_engine:from_spec",
    "local": "textopt.engines.local:from_spec",
    "replay": "textopt.engines.replay:from_spec",
    "scripted": "textopt.engines.scripted_spec:from_spec",
}
_BY_SPEC: dict[str, Engine] = {}
_SPEC_LOCK = threading.Lock()


def register(prefix: str, factory: str) -> None:
    """Add a spec prefix (``factory`` is "module:function" taking the text after ``prefix:``)."""
    _FACTORIES[prefix] = factory


def get_engine(spec: "Engine | str", **kwargs) -> Engine:
    """Resolve an Engine or a spec string. Keyword arguments go to the engine's constructor (and bypass reuse)."""
    if isinstance(spec, Engine):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise EngineSpecError(f"an engine must be an Engine object or a spec string such as 'openai:gpt-4o-mini', "
                              f"'anthropic:claude-sonnet-4-5', 'local' or 'replay:calls.jsonl'; got {spec!r}")
    spec = spec.strip()
    prefix, _, rest = spec.partition(":")
    if prefix not in _FACTORIES:
        raise EngineSpecError(f"unknown engine spec {spec!r}: it must start with one of "
                              f"{', '.join(p + ':' for p in sorted(_FACTORIES))}")
    with _SPEC_LOCK:
        if not kwargs and spec in _BY_SPEC:
            return _BY_SPEC[spec]
        module, _, func = _FACTORIES[prefix].partition(":")
        engine = getattr(importlib.import_module(module), func)(rest, **kwargs)
        if not kwargs:
            _BY_SPEC[spec] = engine
        return engine


_BACKWARD_ENGINE: contextvars.ContextVar["Engine | str | None"] = contextvars.ContextVar(
    "textopt_backward_engine", default=None)


@contextlib.contextmanager
def backward_engine(engine: "Engine | str"):
    """Use ``engine`` for every backward pass in this block (per task/thread; never a global)."""
    token = _BACKWARD_ENGINE.set(engine)
    try:
        yield get_engine(engine)
    finally:
        _BACKWARD_ENGINE.reset(token)


def current_backward_engine() -> "Engine | str | None":
    """The engine (or spec) a ``with backward_engine(...)`` block around this code set, else None."""
    return _BACKWARD_ENGINE.get()


def resolve_backward_engine(engine: "Engine | str | None") -> Engine:
    engine = engine if engine is not None else _BACKWARD_ENGINE.get()
    if engine is None:
        raise GraphError("this backward pass needs an LLM but no engine was given: call loss.backward(engine=...) "
                         "or wrap it in `with tx.backward_engine(engine):`")
    return get_engine(engine)


# backward passes resolve their engine here and limit their calls with the engines' FIFO limiter (not adaptive:
# a slot is taken without awaiting when free)
plug_engines(resolve_backward_engine, lambda limit: AdaptiveLimiter(limit, adaptive=False))


def usage(*engines: Engine) -> str:
    """A readable usage report (calls, tokens, dollars per role) over ``engines`` or every live engine."""
    return format_report(merge(e.usage for e in (engines or live_engines())))


__all__ = ["Engine", "RoutedEngine", "Request", "Response", "Message", "ImagePart", "Budget", "Usage", "ScriptedEngine", "Retryable",
           "get_engine", "register", "backward_engine", "current_backward_engine", "resolve_backward_engine", "usage"]
