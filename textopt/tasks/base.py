"""``Task`` and ``Score``: a dataset with its answer extraction and metric.

A task is a list of examples (or a seeded generator of them), a starting prompt, and a metric that scores one
model response against one target and EXPLAINS the score in words — the explanation seeds the backward pass
("expected 7, got 9"), so the feedback LLM starts from a precise diagnosis instead of a bare 0.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from ..data import Example, Splits
from ..errors import DataError

DEFAULT_SIZES = (50, 100, 100)  # BBH convention: train / val / test
MAX_GENERATED = 100_000         # examples per split of a generated task (more would take minutes to draw)


@dataclass(frozen=True)
class Score:
    """One scored response: ``value`` in [0, 1], ``extracted`` answer, ``explanation`` (the backward seed)."""
    value: float
    extracted: str | None
    explanation: str

    @property
    def correct(self) -> bool:
        return self.value >= 1.0


# A metric maps (response, target) -> Score.
Metric = Callable[[str, str], Score]


class Task:
    """A named task.

    ``examples``: a fixed list (a loaded file) — or ``generator(rng) -> Example`` for an unlimited seeded task.
    ``metric``: scores a response. ``initial_prompt``: the system prompt optimization starts from.
    ``instruction``: an optional line describing the task for the LLMs that write feedback.
    """

    def __init__(self, name: str, *, metric: Metric, examples: Sequence[Example] | None = None,
                 generator: Callable[[random.Random], Example] | None = None, initial_prompt: str,
                 description: str = "", source: str = "", max_tokens: int = 256, licence: str = ""):
        if (examples is None) == (generator is None):
            raise ValueError("a Task needs exactly one of examples= or generator=")
        self.name = name
        self.metric = metric
        self.examples = list(examples) if examples is not None else None
        self.generator = generator
        self.initial_prompt = initial_prompt
        self.description = description
        self.source = source
        self.max_tokens = max_tokens
        self.licence = licence

    @property
    def generated(self) -> bool:
        return self.generator is not None

    def score(self, response: str, target: str) -> Score:
        return self.metric(response, target)

    # -- examples --------------------------------------------------------------------------------------------
    def generate(self, n: int, seed: int = 0, *, stream: str = "all") -> list[Example]:
        """``n`` distinct examples; the same (seed, stream) always gives the same list."""
        if self.generator is None:
            raise DataError(f"task {self.name!r} is loaded from a file; use .examples or .splits()")
        return _distinct(self.generator, n, f"{self.name}:{seed}:{stream}", set())

    def splits(self, train: int | None = None, val: int | None = None, test: int | None = None, *,
               seed: int = 0) -> Splits:
        """Seeded, disjoint train/val/test splits (default 50/100/100).

        A loaded task is shuffled with ``seed`` and cut in order; when it has fewer examples than asked, every
        split shrinks in proportion (a small file still gives three non-empty splits when it has >= 3 examples).
        A generated task draws each split from its own stream, never repeating an input across splits.
        """
        sizes = [DEFAULT_SIZES[i] if s is None else s for i, s in enumerate((train, val, test))]
        for name, s in zip(("train", "val", "test"), sizes):
            if not isinstance(s, int) or s < 0:
                raise DataError(f"{name} size must be a non-negative integer, got {s!r}")
        if self.generator is not None:
            if max(sizes) > MAX_GENERATED:
                raise DataError(f"task {self.name!r} generates its examples: ask for at most {MAX_GENERATED} per "
                                f"split, got {max(sizes)}")
            seen: set[str] = set()
            # val and test first: they define what "unseen" means for the training stream.
            val_ex = _distinct(self.generator, sizes[1], f"{self.name}:{seed}:val", seen)
            test_ex = _distinct(self.generator, sizes[2], f"{self.name}:{seed}:test", seen)
            train_ex = _distinct(self.generator, sizes[0], f"{self.name}:{seed}:train", seen)
            return Splits(train_ex, val_ex, test_ex)
        pool = list(self.examples)
        random.Random(f"{self.name}:{seed}").shuffle(pool)
        sizes = _fit(sizes, len(pool))
        a, b = sizes[0], sizes[0] + sizes[1]
        return Splits(pool[:a], pool[a:b], pool[b:b + sizes[2]])

    def __len__(self) -> int:
        if self.examples is None:
            raise TypeError(f"task {self.name!r} is generated and unlimited")
        return len(self.examples)

    def __iter__(self) -> Iterator[Example]:
        if self.examples is None:
            raise TypeError(f"task {self.name!r} is generated and unlimited; use .generate(n, seed)")
        return iter(self.examples)

    def __repr__(self) -> str:
        size = "generated" if self.generated else f"{len(self.examples)} examples"
        return f"Task({self.name!r}, {size})"


def _distinct(generator, n: int, stream: str, seen: set[str], max_tries: int = 50) -> list[Example]:
    rng = random.Random(stream)
    out: list[Example] = []
    misses = 0
    while len(out) < n:
        ex = generator(rng)
        if ex.input in seen:
            misses += 1
            if misses > max_tries * max(n, 1):
                raise DataError(f"the generator of stream {stream!r} ran out of distinct examples after {len(out)}; "
                                "ask for fewer examples")
            continue
        seen.add(ex.input)
        out.append(ex)
    return out


def _fit(sizes: list[int], available: int) -> list[int]:
    total = sum(sizes)
    if total <= available:
        return sizes
    if available == 0:
        raise DataError("the task has no examples")
    scaled = [s * available // total for s in sizes]
    for i in range(3):  # keep every requested split non-empty when possible
        if sizes[i] > 0 and scaled[i] == 0 and sum(scaled) < available:
            scaled[i] = 1
    while sum(scaled) > available:
        scaled[scaled.index(max(scaled))] -= 1
    for i in (2, 1, 0):  # what rounding left over goes to the last requested split
        if sizes[i] > 0:
            scaled[i] += available - sum(scaled)
            break
    return scaled
