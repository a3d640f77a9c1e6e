"""The engines of one run, by spec: one object per distinct spec (shared usage, one model load), with the run's
cache, budget and recording options."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..engines import Engine, get_engine
from ..engines.usage import Budget, merge
from ..optim.local_defaults import LOCAL_OPTIMIZER_TOKENS


class EngineSet:
    """Engines by spec for one run: one object per distinct spec (shared usage, one model load), with the
    run's cache, budget and recording options. ``replay`` routes every role to one cassette."""

    def __init__(self, *, cache: Any = None, budget_usd: float | None = None, record: str | Path | None = None,
                 replay: str | Path | None = None, budget_tokens: int | None = None):
        self.cache = cache
        self.budget = Budget(max_usd=budget_usd, max_tokens=budget_tokens) \
            if budget_usd is not None or budget_tokens is not None else None
        self.record = record
        self.replay = replay
        self._made: dict[str, Engine] = {}

    def get(self, spec: "str | Engine") -> Engine:
        if isinstance(spec, Engine):
            return spec
        if self.replay is not None:
            spec = f"replay:{self.replay}"
        if spec not in self._made:
            kw: dict[str, Any] = {}
            if not spec.startswith("replay:"):
                # a recording run sends every call (a cache hit would leave a hole in the cassette)
                kw["cache"] = False if self.record else self.cache
                if self.record:
                    kw["record"] = self.record
            if self.budget is not None:
                kw["budget"] = self.budget
            self._made[spec] = get_engine(spec, **kw)
        return self._made[spec]

    def engines(self) -> list[Engine]:
        return list(self._made.values())

    def usage(self) -> dict:
        return merge(e.usage for e in self._made.values()).as_dict()


def optimizer_tokens(engine: Engine, max_new_tokens: int | None) -> int:
    """The longest new value an optimizer engine may write: ``max_new_tokens``, else a default by provider
    (the embedded model rambles to its cap)."""
    return max_new_tokens or (LOCAL_OPTIMIZER_TOKENS if engine.provider == "local" else 1024)
