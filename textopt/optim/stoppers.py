"""Stoppers of the search optimizers: ``stopper(optimizer) -> reason to stop, or None``, checked before each step."""
from __future__ import annotations

import time
from pathlib import Path


class MaxSteps:
    def __init__(self, n: int):
        self.n = n

    def __call__(self, opt) -> str | None:
        return f"reached {self.n} steps" if opt.step_count >= self.n else None


class NoImprovement:
    """Stop after ``patience`` steps without a new best val score."""

    def __init__(self, patience: int):
        self.patience = patience

    def __call__(self, opt) -> str | None:
        h = opt.best_history
        if len(h) > self.patience and max(h[-self.patience:]) <= h[-self.patience - 1]:
            return f"no improvement in {self.patience} steps"
        return None


class Timeout:
    def __init__(self, seconds: float):
        self.seconds, self._t0 = seconds, None

    def __call__(self, opt) -> str | None:
        self._t0 = self._t0 or time.monotonic()
        return f"timeout after {self.seconds:g} s" if time.monotonic() - self._t0 > self.seconds else None


class StopFile:
    """Stop when ``path`` exists (touch it to end a long run gracefully)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __call__(self, opt) -> str | None:
        return f"stop file {self.path} exists" if self.path.exists() else None
