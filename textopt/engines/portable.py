"""Engines that travel to other processes (Ray workers) as a recipe, never as a live object or a key.

Every engine remembers how it was constructed (the arguments of its outermost ``__init__``; an ``api_key``
argument is kept only as a hidden ``Secret``). Pickled, an engine becomes ``rebuild(token, class, arguments)``:

- the worker builds its own engine from the recipe, once per process (a per-process memo by ``token``), with
  its own limiter, HTTP clients and — for the local engine — its own model;
- API keys are read from the worker's environment by the engine itself (``api_key_env``); an engine given
  ``api_key=...`` directly refuses to travel, with the fix (set the variable in the workers' environment);
- the cache travels as what it is: a disk cache reopens the same folder, a Redis cache the same server, a
  memory cache starts empty; a ``Budget`` stays with the driver (it is charged there with what the workers
  report, see ``usage_rows``/``charge``); a cassette (``record=``) refuses to travel (one file, one writer);
- unpickled in the process that owns the engine (``copy.deepcopy``, a local executor), the token gives the
  same engine object back: engines are shared, never copied.
"""
from __future__ import annotations

import functools
import uuid
import weakref

from ..errors import EngineError
from .secrets import Secret
from .usage import PICO

_OWNED: "weakref.WeakValueDictionary[str, object]" = weakref.WeakValueDictionary()   # token -> live engine
_REBUILT: dict[str, object] = {}      # token -> engine rebuilt in this (worker) process, kept alive


def record_init(cls: type) -> None:
    """Wrap ``cls.__init__`` so an instance keeps the arguments of its outermost constructor call."""
    init = cls.__dict__.get("__init__")
    if init is None or getattr(init, "_textopt_records", False):
        return

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        # never ``self.__dict__``: an instance whose __dict__ was ever read gets none of the interpreter's fast
        # paths for its attributes (CPython 3.11), and an engine's are read on every call
        if getattr(self, "_ctor", None) is None:   # the most derived class's call: its arguments are the recipe
            object.__setattr__(self, "_ctor", (args, {k: Secret(v) if k == "api_key" and isinstance(v, str)
                                                      else v for k, v in kwargs.items()}))
        init(self, *args, **kwargs)
    __init__._textopt_records = True
    cls.__init__ = __init__


def token_of(engine) -> str:
    token = getattr(engine, "_wire_token", None)
    if token is None:
        token = uuid.uuid4().hex
        object.__setattr__(engine, "_wire_token", token)
    _OWNED[token] = engine
    return token


def reduce_engine(engine):
    """``(rebuild, args)`` for pickle (see the module docstring)."""
    ctor = getattr(engine, "_ctor", None)
    if ctor is None:
        raise EngineError(f"{engine.name} cannot be sent to another process: it was not built through its "
                          f"constructor; build it with tx.get_engine(spec) or its class")
    args, kwargs = ctor
    key = kwargs.get("api_key")
    if isinstance(key, Secret) and key:
        env = getattr(engine, "api_key_env", None) or "OPENAI_API_KEY / ANTHROPIC_API_KEY"
        raise EngineError(f"{engine.name} was given api_key=... directly; keys never travel to worker processes. "
                          f"Set the key in the workers' environment and build the engine with "
                          f"api_key_env=NAME (here: {env}) instead")
    if kwargs.get("record"):
        raise EngineError(f"{engine.name} records a cassette (record=...), which one process writes; run the "
                          f"recording in-process (no executor)")
    kwargs = {k: v for k, v in kwargs.items() if k not in ("budget", "api_key", "record")}
    kwargs["cache"] = engine.cache if engine.cache is not None else False
    return rebuild, (token_of(engine), type(engine), args, kwargs)


def rebuild(token: str, cls: type, args: tuple, kwargs: dict):
    engine = _OWNED.get(token) or _REBUILT.get(token)
    if engine is None:
        engine = cls(*args, **kwargs)
        object.__setattr__(engine, "_wire_token", token)
        _REBUILT[token] = engine
    return engine


# -- usage made in a worker, charged in the driver -----------------------------------------------------------
def usage_rows() -> dict[str, dict]:
    """{token: usage rows} of the engines rebuilt in this process (take it before and after some work)."""
    return {t: e.usage.rows() for t, e in list(_REBUILT.items())}


def usage_delta(before: dict, after: dict) -> dict[str, dict]:
    out = {}
    for token, rows in after.items():
        old = before.get(token, {})
        diff = {}
        for key, row in rows.items():
            prev = old.get(key, [0, 0, 0, 0, 0])
            d = [a - b for a, b in zip(row, prev)]
            if any(d):
                diff[key] = d
        if diff:
            out[token] = diff
    return out


def charge(delta: dict[str, dict]) -> None:
    """Add a worker's usage to the driver's engines (and their budgets), by token."""
    for token, rows in delta.items():
        engine = _OWNED.get(token)
        if engine is None:
            continue
        engine.usage.add_rows(rows)
        if engine.budget is not None:
            calls = sum(r[0] for r in rows.values())
            engine.budget.charge(calls, sum(r[2] + r[3] for r in rows.values()),
                                 sum(r[4] for r in rows.values()) / PICO)
