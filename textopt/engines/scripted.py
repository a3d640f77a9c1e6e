"""``ScriptedEngine``: answers from a Python function or a list, with optional random latency — for unit tests
of the graph and optimizers. It goes through the same shared call path as real providers."""
from __future__ import annotations

import asyncio
import random
from typing import Callable, Iterable

from ..errors import EngineError
from .base import Engine
from .types import Request, Response


class ScriptedEngine(Engine):
    provider = "scripted"
    caches_by_default = False  # its answers come from code that changes between runs: no disk cache unless asked
    supports_images = True    # the responder sees Request.images

    def __init__(self, responder: Callable[[Request], str] | Iterable[str] | str = "ok", *,
                 latency: float | tuple[float, float] = 0.0, seed: int | None = None, model: str = "scripted",
                 **kw):
        super().__init__(model, **kw)
        if isinstance(responder, str):
            text = responder
            responder = lambda req: text  # noqa: E731
        elif not callable(responder):
            answers = list(responder)
            responder = lambda req: answers.pop(0) if answers else _exhausted()  # noqa: E731
        self.responder = responder
        self.latency = latency
        self._rng = random.Random(seed)
        self._requests: list[Request] = []
        self.in_flight = 0
        self.peak_in_flight = 0

    @property
    def requests(self) -> list[Request]:
        """Every request sent, in order (calls launched lazily finish first: see textopt.lazy)."""
        from ..lazy import synchronize
        synchronize()
        return self._requests

    @requests.setter
    def requests(self, value: list[Request]) -> None:
        self._requests = value

    async def _send(self, request: Request) -> Response:
        self._requests.append(request)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            delay = self._rng.uniform(*self.latency) if isinstance(self.latency, tuple) else self.latency
            if delay:
                await asyncio.sleep(delay)
            text = self.responder(request)
            if asyncio.iscoroutine(text):
                text = await text
        finally:
            self.in_flight -= 1
        text = str(text)
        return Response(text=text, prompt_tokens=request.prompt_chars() // 4 + 1,
                        completion_tokens=len(text) // 4 + 1, model=self.model, finish_reason="stop")


def _exhausted():
    raise EngineError("ScriptedEngine ran out of scripted answers")
