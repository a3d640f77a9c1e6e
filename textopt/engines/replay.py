"""``replay:PATH.jsonl`` — serve calls recorded by any engine's ``record=PATH`` option; never a network call.

A cassette line is ``{"key", "request", "response"}`` where ``request`` is the canonical request and its
``model`` is the RECORDING engine's model id (``openai:gpt-4o-mini``, ``openai:http://host/v1#m`` ...). Replay
recomputes the key of each incoming request under the recorded model ids, so the same code that recorded the
cassette replays it unchanged, whatever engine recorded it. A request with an explicit ``model`` matches the
recorded ids naming that model. Several answers recorded under one key are served in recording order (the
last one repeats). A call that is not in the cassette raises ``ReplayMissError``. Each line also carries the
recording engine's ``supports_schema``/``supports_prefill``, which replay adopts so that structured-output
helpers shape their requests exactly as they did when recording.

``ReplayEngine(path, fallback=engine)`` extends a recording instead (VCR's "new episodes"): a recorded call is
served from the cassette, any other goes to ``fallback`` (a live engine, with its own cache and retries) — how
a changed program reruns a long recorded run and pays only for the calls that changed. With ``record=`` the
replay engine writes every call it serves, replayed or live, to a new cassette that replays the whole run.
The live engine's abilities then shape structured requests (record with the same kind of engine).
"""
from __future__ import annotations

import dataclasses
import json
import os
import threading
from pathlib import Path

from ..checks import expect, parse_json, read_text
from ..errors import DataError, EngineError, EngineSpecError, ReplayMissError
from .base import CAPABILITIES, Engine
from .types import Request, Response


class ReplayEngine(Engine):
    provider = "replay"
    supports_schema = False
    supports_prefill = False
    supports_pattern = False
    supports_images = True    # images are in the key by content hash: a cassette replays image requests

    def __init__(self, path: str | os.PathLike, *, model_id: str | None = None,
                 supports_schema: bool | None = None, supports_prefill: bool | None = None,
                 supports_pattern: bool | None = None, fallback: Engine | None = None, **kw):
        self.path = Path(path)
        if fallback is not None and not isinstance(fallback, Engine):
            raise EngineSpecError(f"replay: fallback must be an Engine (a live engine for the calls the cassette "
                                  f"lacks), got {type(fallback).__name__}")
        self.fallback = fallback
        if not self.path.is_file():
            raise EngineSpecError(f"replay: no cassette at {str(self.path)!r}; record one first by running with "
                                  f"the live engine and record={str(self.path)!r}")
        self._lock = threading.Lock()
        self._stamp = None
        self._entries: dict[str, list[dict]] = {}
        self.model_ids: list[str] = []
        self._load()
        self.model_id = model_id
        if model_id is not None and model_id not in self.model_ids:
            raise EngineSpecError(f"replay: {str(self.path)!r} holds no call recorded for {model_id!r}; it holds "
                                  f"{self.model_ids}")
        # Structured output must be asked the way it was recorded: take the recording engine's abilities.
        caps = [self._caps[m] for m in self._ids() if m in self._caps]
        if fallback is not None:
            caps = [{c: bool(getattr(fallback, c, False)) for c in CAPABILITIES}]
        given = {"supports_schema": supports_schema, "supports_prefill": supports_prefill,
                 "supports_pattern": supports_pattern}
        for cap in CAPABILITIES:
            setattr(self, cap, given[cap] if given[cap] is not None else any(c.get(cap) for c in caps))
        kw.setdefault("cache", False)
        kw.setdefault("name", f"replay:{self.path}")
        super().__init__(model_id or (self.model_ids[0] if len(self.model_ids) == 1 else "replay"), **kw)

    def _ids(self) -> list[str]:
        return [self.model_id] if self.model_id else self.model_ids

    def _load(self) -> None:
        try:
            st = self.path.stat()
        except OSError as exc:
            raise DataError(f"replay cassette {self.path}: cannot be read ({exc.strerror or exc})") from None
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp == self._stamp:
                return
            entries: dict[str, list[dict]] = {}
            ids: list[str] = []
            caps: dict[str, dict] = {}
            text = read_text(self.path, "replay cassette", allow_empty=True)
            for lineno, line in enumerate(text.split("\n"), 1):   # not splitlines: U+2028 may be in a text
                if not line.strip():
                    continue
                key, model, response, engine = _cassette_line(line, self.path, lineno)
                entries.setdefault(key, []).append(response)
                if engine is not None:
                    caps.setdefault(model, {c: bool(engine.get(c)) for c in CAPABILITIES})
                if model not in ids:
                    ids.append(model)
            self._entries, self.model_ids, self._caps, self._stamp = entries, ids, caps, stamp
            self._served: dict[str, int] = {}

    def cache_model_id(self, model: str | None = None) -> str:
        return model if model not in (None, self.model) else self.model

    def _candidates(self, model: str | None) -> list[str]:
        if model is None:
            return self._ids()
        return [m for m in self._ids() if m == model or m.endswith((":" + model, "#" + model))] or [model]

    def lookup(self, request: Request) -> str | None:
        """The cassette key answering ``request``, or None."""
        self._load()
        bare = dataclasses.replace(request, model=None)
        hits = [(m, bare.key(m)) for m in self._candidates(request.model)]
        hits = [(m, k) for m, k in hits if k in self._entries]
        if len(hits) > 1:
            raise EngineError(f"{self.name}: this request was recorded for several models "
                              f"({', '.join(m for m, _ in hits)}); pass model_id=... to choose one")
        return hits[0][1] if hits else None

    async def _send(self, request: Request) -> Response:
        key = self.lookup(request)
        if key is None and self.fallback is not None:
            return await self.fallback.generate(request)
        if key is None:
            raise ReplayMissError(self._miss_message(request))
        with self._lock:
            answers = self._entries[key]
            i = self._served.get(key, 0)
            self._served[key] = i + 1
            data = answers[min(i, len(answers) - 1)]
        resp = Response.from_dict(data, f"{self.path}: the answer recorded for this call")
        resp.cached = False
        return resp

    def _miss_message(self, request: Request) -> str:
        last = request.messages[-1].content if request.messages else ""
        excerpt = last if len(last) <= 120 else last[:117] + "..."
        asked = request.model or " or ".join(self._ids()) or "(empty cassette)"
        extras = f"temperature={request.temperature}, max_tokens={request.max_tokens}"
        if request.temperature and request.temperature > 0:
            extras += f", sample_index={request.sample_index}"
        if request.images:
            extras += f", {len(request.images)} image(s) by content hash: " + \
                ", ".join(im.sha256[:12] for im in request.images)
        return (f"{self.name} has no recorded answer for this call: model {asked}, role {request.role!r}, node "
                f"{request.node!r}, {len(request.messages)} messages ending with {excerpt!r} ({extras}). The "
                f"cassette holds {sum(map(len, self._entries.values()))} calls. Re-record it by running the same "
                f"code once with the live engine and record={str(self.path)!r} (e.g. "
                f"get_engine('openai:gpt-4o-mini', record={str(self.path)!r})); a prompt, parameter or sample "
                f"count that changed since the recording also causes this.")

    def __len__(self) -> int:
        self._load()
        return sum(map(len, self._entries.values()))


def _cassette_line(line: str, path: Path, lineno: int) -> tuple[str, str, dict, dict | None]:
    """(key, recorded model id, response dict, recording engine's abilities) of one cassette line, checked:
    a line of the wrong shape is one ``DataError`` naming the file, the line and the field."""
    fix = "cassettes are written by an engine's record= option; re-record it"
    where = f"{path}:{lineno}"
    rec = parse_json(line, path, line=lineno)
    expect(rec, dict, f"{where}: a cassette line", fix)
    for field in ("key", "request", "response"):
        if field not in rec:
            raise DataError(f"{where}: not a cassette line (the field {field!r} is missing); {fix}")
    key = expect(rec["key"], str, f"{where}: 'key'", fix)
    request = expect(rec["request"], dict, f"{where}: 'request'", fix)
    model = expect(request.get("model"), str, f"{where}: 'request.model'", fix)
    response = expect(rec["response"], dict, f"{where}: 'response'", fix)
    Response.from_dict(response, f"{where}: 'response'")   # wrong field types fail here, not at the call
    engine = rec.get("engine")
    return key, model, response, engine if isinstance(engine, dict) else None


def from_spec(rest: str, **kw) -> ReplayEngine:
    if not rest.strip():
        raise EngineSpecError("'replay:' needs a cassette path, e.g. 'replay:calls.jsonl'")
    return ReplayEngine(rest.strip(), **kw)
