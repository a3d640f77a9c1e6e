"""The figures of a run estimate (``RunEstimate``, ``Phase``) and how texts are sized; see ``textopt.estimate``."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..engines.usage import has_price, price_of
from ..errors import DataError

CHARS_PER_TOKEN = 4
LOCAL_PROVIDERS = ("local", "scripted", "replay")   # run here or answered from a file: $0


def tokens(chars: float) -> int:
    return int(math.ceil(chars / CHARS_PER_TOKEN))


@dataclass
class Phase:
    """One kind of call of the run: ``role`` is the engine role its usage is recorded under."""
    name: str
    role: str
    engine: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    bound: str = "exact"      # "exact" or "at most" (calls); tokens: see the module docstring
    repairs: int = 0          # extra calls if every optimizer answer needed its repair request
    note: str = ""


@dataclass
class EngineInfo:
    spec: str
    provider: str
    model: str

    def price(self, prices: dict | None = None) -> tuple[float, float] | None:
        """USD per 1M (prompt, completion) tokens; (0, 0) for local / replayed answers; None when unknown."""
        if self.provider in LOCAL_PROVIDERS:
            return (0.0, 0.0)
        return price_of(self.model, prices) if has_price(self.model, prices) else None


def engine_info(spec: str) -> EngineInfo:
    """Provider and model of an engine spec, read without building the engine."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"an engine spec such as 'openai:gpt-4o-mini' or 'local' is needed, got {spec!r}")
    spec = spec.strip()
    provider, _, rest = spec.partition(":")
    model = rest.rpartition("#")[2] if "#" in rest else rest
    return EngineInfo(spec, provider, model or provider)


@dataclass
class RunEstimate:
    """Phases of a run; ``engines``: spec -> EngineInfo; ``notes``: what the figures assume."""
    phases: list[Phase]
    engines: dict
    prices: dict | None = None
    notes: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def by_role(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for p in self.phases:
            r = out.setdefault(p.role, {"calls": 0, "calls_with_repairs": 0, "prompt_tokens": 0,
                                        "completion_tokens": 0})
            r["calls"] += p.calls
            r["calls_with_repairs"] += p.calls + p.repairs
            r["prompt_tokens"] += p.prompt_tokens
            r["completion_tokens"] += p.completion_tokens
        return out

    def total(self) -> dict:
        calls = sum(p.calls for p in self.phases)
        return {"calls": calls, "calls_with_repairs": calls + sum(p.repairs for p in self.phases),
                "prompt_tokens": sum(p.prompt_tokens for p in self.phases),
                "completion_tokens": sum(p.completion_tokens for p in self.phases), "usd": self.usd()}

    def phase_usd(self, p: Phase) -> float | None:
        price = self.engines[p.engine].price(self.prices)
        if price is None:
            return None
        return (p.prompt_tokens * price[0] + p.completion_tokens * price[1]) / 1e6

    def usd(self) -> float | None:
        """Dollars of the whole run; None when a phase's model has no known price."""
        costs = [self.phase_usd(p) for p in self.phases]
        return None if any(c is None for c in costs) else sum(costs)

    def unpriced(self) -> list[str]:
        return sorted({p.engine for p in self.phases if self.engines[p.engine].price(self.prices) is None})

    def as_dict(self) -> dict:
        return {"settings": self.settings, "phases": [{**asdict(p), "usd": self.phase_usd(p)} for p in self.phases],
                "by_role": self.by_role(), "total": self.total(), "unpriced_engines": self.unpriced(),
                "notes": list(self.notes)}

    def table(self) -> str:
        head = f"{'phase':<34}{'role':<10}{'calls':>12}{'prompt tok':>12}{'compl. tok':>12}{'USD':>11}  engine"
        lines = [head, "-" * len(head)]
        for p in self.phases:
            usd = self.phase_usd(p)
            calls = f"{'<=' if p.bound != 'exact' else ''}{p.calls}"
            lines.append(f"{p.name:<34}{p.role:<10}{calls:>12}{p.prompt_tokens:>12,}{p.completion_tokens:>12,}"
                         f"{'unknown' if usd is None else f'{usd:.4f}':>11}  {p.engine}")
        t = self.total()
        usd = "unknown" if t["usd"] is None else f"{t['usd']:.4f}"
        lines += ["-" * len(head), f"{'total':<44}{t['calls']:>12}{t['prompt_tokens']:>12,}"
                                   f"{t['completion_tokens']:>12,}{usd:>11}"]
        if t["calls_with_repairs"] != t["calls"]:
            lines.append(f"with a repair request for every optimizer answer: {t['calls_with_repairs']} calls")
        for spec in self.unpriced():
            lines.append(f"unknown price: {spec} (no entry in the price table; pass prices or budget in tokens "
                         f"with --budget-tokens)")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)
