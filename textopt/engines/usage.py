"""Token, call and dollar accounting per role and per graph node, plus budgets.

Budgets reserve an estimate before a call is sent (so concurrent calls cannot overshoot together) and settle
the real figures after; a call that would exceed raises ``BudgetExceeded`` before anything is sent.
"""
from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass

from ..checks import expect, expect_int, loading
from ..errors import BudgetExceeded, EngineSpecError

PICO = 10 ** 12   # usage rows count dollars in integer pico-dollars (exact, whatever the order of the calls)

# USD per 1M tokens (prompt, completion). Override per engine with ``prices={...}``; unknown models cost 0.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-opus-4-1": (15.00, 75.00),
}


def price_of(model: str, prices: dict | None = None) -> tuple[float, float]:
    """USD per 1M (prompt, completion) tokens; (0, 0) for a model the table does not know (``has_price``)."""
    best = _price_key(model, prices)
    return {**DEFAULT_PRICES, **(prices or {})}[best] if best is not None else (0.0, 0.0)


def has_price(model: str, prices: dict | None = None) -> bool:
    return _price_key(model, prices) is not None


def _price_key(model: str, prices: dict | None) -> str | None:
    table = {**DEFAULT_PRICES, **(prices or {})}
    if model in table:
        return model
    # longest known prefix (dated model names such as gpt-4o-2024-08-06)
    return max((k for k in table if model.startswith(k)), key=len, default=None)


def cost_of(model: str, prompt_tokens: int, completion_tokens: int, prices: dict | None = None) -> float:
    p, c = price_of(model, prices)
    return (prompt_tokens * p + completion_tokens * c) / 1e6


@dataclass(slots=True)
class Tally:
    calls: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def count(self, calls: int, cached: int, prompt_tokens: int, completion_tokens: int, cost: float) -> None:
        self.calls += calls
        self.cached += cached
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.cost += cost

    def add(self, other: "Tally") -> None:
        self.calls += other.calls
        self.cached += other.cached
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost += other.cost

    def as_dict(self) -> dict:
        return {"calls": self.calls, "cached": self.cached, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost": round(self.cost, 6)}


class Usage:
    """Aggregated usage of one engine (thread-safe).

    Each call is counted once, in place, on its (role, node) row — this runs for every LLM call, on the hot path
    of forward and backward; ``total``, ``by_role`` and ``by_node`` are views summed from the rows when read
    (plus whatever ``load_dict`` restored from a checkpoint)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str | None], list] = {}   # (role, node) -> [calls, cached, prompt, compl, cost]
        self._base = {"total": {}, "by_role": {}, "by_node": {}}

    def record(self, role: str, node: str | None, prompt_tokens: int, completion_tokens: int, cost: float,
               cached: bool) -> None:
        key = (role, node)
        lock = self._lock
        lock.acquire()   # not ``with``: half the cost, once per LLM call
        try:
            row = self._rows.get(key)
            if row is None:
                row = self._rows[key] = [0, 0, 0, 0, 0]
            if cached:
                row[1] += 1
            else:
                row[0] += 1
                row[2] += prompt_tokens
                row[3] += completion_tokens
                if cost:
                    row[4] += round(cost * PICO)   # integer pico-dollars: a sum that no order of calls changes
        finally:
            lock.release()

    def rows(self) -> dict:
        """A copy of the counters: {(role, node): [calls, cached, prompt tokens, completion tokens, cost in
        pico-dollars]}."""
        with self._lock:
            return {k: list(r) for k, r in self._rows.items()}

    def add_rows(self, rows: dict) -> None:
        """Add counters made elsewhere (an engine's copy in another process: differences of ``rows()``)."""
        with self._lock:
            for key, r in rows.items():
                row = self._rows.setdefault(tuple(key), [0, 0, 0, 0, 0])
                for i in range(5):
                    row[i] += r[i]

    def _view(self, part: str) -> dict:
        """{name: Tally} for "by_role" / "by_node", or {None: Tally} for "total"."""
        from ..lazy import synchronize
        synchronize()   # calls launched lazily are counted once they finished
        with self._lock:
            rows = [(k, list(r)) for k, r in self._rows.items()]
            base = self._base[part]
        out: defaultdict = defaultdict(Tally)
        if part == "total":
            out[None].add(Tally(**base))
        else:
            for name, t in base.items():
                out[name].add(Tally(**t))
        for (role, node), r in rows:
            name = None if part == "total" else role if part == "by_role" else node
            if part == "by_node" and not node:
                continue
            out[name].count(r[0], r[1], r[2], r[3], r[4] / PICO)
        return out

    @property
    def total(self) -> Tally:
        return self._view("total")[None]

    @property
    def by_role(self) -> dict:
        return self._view("by_role")

    @property
    def by_node(self) -> dict:
        return self._view("by_node")

    def as_dict(self) -> dict:
        return {"total": self.total.as_dict(),
                "by_role": {k: v.as_dict() for k, v in sorted(self.by_role.items())},
                "by_node": {k: v.as_dict() for k, v in sorted(self.by_node.items())}}

    def load_dict(self, d: dict) -> None:
        base = {"total": dict(d.get("total", {})), "by_role": {k: dict(v) for k, v in d.get("by_role", {}).items()},
                "by_node": {k: dict(v) for k, v in d.get("by_node", {}).items()}}
        with self._lock:
            self._rows, self._base = {}, base

    def reset(self) -> None:
        self.load_dict({})


def merge(usages) -> Usage:
    out: defaultdict = defaultdict(lambda: defaultdict(Tally))
    for u in usages:
        d = u.as_dict()
        out["total"][None].add(Tally(**d["total"]))
        for part in ("by_role", "by_node"):
            for k, v in d[part].items():
                out[part][k].add(Tally(**v))
    merged = Usage()
    merged.load_dict({"total": out["total"][None].as_dict(),
                      **{part: {k: t.as_dict() for k, t in out[part].items()} for part in ("by_role", "by_node")}})
    return merged


def format_report(usage: Usage, max_nodes: int = 15) -> str:
    """Calls, cache hits, tokens and dollars per role, then the costliest graph nodes."""
    d = usage.as_dict()

    def row(name, t):
        return (f"{name[:24]:<24}{t['calls']:>8}{t['cached']:>8}{t['prompt_tokens']:>12}"
                f"{t['completion_tokens']:>12}{t['cost']:>11.4f}")
    header = f"{{:<24}}{'calls':>8}{'cached':>8}{'prompt tok':>12}{'compl tok':>12}{'USD':>11}"
    lines = [header.format("role")]
    lines += [row(role, t) for role, t in list(d["by_role"].items()) + [("TOTAL", d["total"])]]
    if d["by_node"]:
        nodes = sorted(d["by_node"].items(),
                       key=lambda kv: (-kv[1]["cost"], -(kv[1]["prompt_tokens"] + kv[1]["completion_tokens"]), kv[0]))
        lines += ["", header.format("node")] + [row(n, t) for n, t in nodes[:max_nodes]]
        if len(nodes) > max_nodes:
            lines.append(f"... {len(nodes) - max_nodes} more nodes")
    return "\n".join(lines)


class Budget:
    """Hard limits on calls, tokens and dollars, shared by every engine it is given to."""

    def __init__(self, max_calls: int | None = None, max_tokens: int | None = None, max_usd: float | None = None):
        expect_int(max_calls, "Budget max_calls", lo=0, error=EngineSpecError, allow_none=True)
        expect_int(max_tokens, "Budget max_tokens", lo=0, error=EngineSpecError, allow_none=True)
        if max_usd is not None and not (expect(max_usd, (int, float), "Budget max_usd", error=EngineSpecError) >= 0):
            raise EngineSpecError(f"Budget max_usd must be a number >= 0, got {max_usd}")
        self.max_calls, self.max_tokens, self.max_usd = max_calls, max_tokens, max_usd
        self.calls = 0
        self.tokens = 0
        self.usd = 0.0
        self._reserved = [0, 0, 0.0]
        self._lock = threading.Lock()

    def reserve(self, tokens: int, usd: float) -> tuple[int, int, float]:
        """Reserve an estimate for one call or raise ``BudgetExceeded`` (nothing is sent)."""
        with self._lock:
            c, t, u = self.calls + self._reserved[0] + 1, self.tokens + self._reserved[1] + tokens, \
                self.usd + self._reserved[2] + usd
            for name, value, limit in (("calls", c, self.max_calls), ("tokens", t, self.max_tokens),
                                       ("USD", u, self.max_usd)):
                if limit is not None and value > limit:
                    raise BudgetExceeded(
                        f"budget of {limit} {name} would be exceeded by this call ({value:.6g} with calls in "
                        f"flight); the call was not sent. Raise the budget or reduce steps/batch size.")
            self._reserved[0] += 1
            self._reserved[1] += tokens
            self._reserved[2] += usd
            return (1, tokens, usd)

    def settle(self, reservation: tuple[int, int, float], tokens: int | None, usd: float | None) -> None:
        """Release a reservation; count the real figures when the call was made (``tokens`` not None)."""
        with self._lock:
            self._reserved[0] -= reservation[0]
            self._reserved[1] -= reservation[1]
            self._reserved[2] -= reservation[2]
            if tokens is not None:
                self.calls += 1
                self.tokens += tokens
                self.usd += usd or 0.0

    def charge(self, calls: int, tokens: int, usd: float) -> None:
        """Count calls made elsewhere (worker processes report theirs after the fact: no reservation)."""
        with self._lock:
            self.calls += calls
            self.tokens += tokens
            self.usd += usd

    def state_dict(self) -> dict:
        return {"calls": self.calls, "tokens": self.tokens, "usd": self.usd}

    def load_state_dict(self, d: dict) -> None:
        with loading("the state_dict given to Budget.load_state_dict", d):
            calls, tokens, usd = d["calls"], d["tokens"], d["usd"]
            if not all(type(x) in (int, float) and x >= 0 for x in (calls, tokens, usd)):
                raise TypeError(f"calls, tokens and usd must be numbers >= 0, got {calls!r}, {tokens!r}, {usd!r}")
        self.calls, self.tokens, self.usd = calls, tokens, usd

    def __repr__(self) -> str:
        return (f"Budget(calls {self.calls}/{self.max_calls}, tokens {self.tokens}/{self.max_tokens}, "
                f"usd {self.usd:.4f}/{self.max_usd})")
