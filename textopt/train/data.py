"""Training data for the trainer: ``Example`` and a seeded, resumable minibatch ``Sampler``."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from ..errors import DataError


@dataclass
class Example:
    """One example: ``x`` goes to the model, ``y`` to the loss (a target, reference, unit tests...).

    ``meta`` holds anything else (an id, the source line). Dicts with "x"/"y" keys (or "input"/"target",
    "question"/"answer") and ``(x, y)`` pairs are accepted wherever an Example is.
    """

    x: Any
    y: Any = None
    meta: dict = field(default_factory=dict)

    @classmethod
    def coerce(cls, obj: Any, where: str = "example") -> "Example":
        if isinstance(obj, Example):
            return obj
        if isinstance(obj, Mapping):
            for kx, ky in (("x", "y"), ("input", "target"), ("question", "answer")):
                if kx in obj:
                    meta = {k: v for k, v in obj.items() if k not in (kx, ky)}
                    return cls(obj[kx], obj.get(ky), meta)
            raise DataError(f"{where} is a dict without an 'x' key (got keys {sorted(obj)}); "
                            "give examples as {'x': input, 'y': target} or Example(x, y)")
        if isinstance(obj, (tuple, list)) and len(obj) == 2:
            return cls(obj[0], obj[1])
        raise DataError(f"{where} must be an Example, a dict with 'x'/'y' or an (x, y) pair; got {type(obj).__name__}")


def as_examples(data: Iterable[Any] | None, name: str) -> list[Example]:
    if data is None:
        return []
    return [Example.coerce(d, f"{name}[{i}]") for i, d in enumerate(data)]


class Sampler:
    """Shuffled minibatches over epochs from its own ``random.Random(seed)``; ``state_dict`` resumes exactly.

    Batches never straddle an epoch boundary unevenly: when fewer than ``batch_size`` indices remain, the epoch
    ends and a fresh permutation starts (so every batch has ``batch_size`` examples when the set is that large).
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0):
        if n < 1:
            raise DataError("the training set is empty")
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        self.n, self.batch_size = n, min(batch_size, n)
        self.rng = random.Random(seed)
        self.perm: list[int] = []
        self.pos = 0
        self.epoch = -1

    def next_batch(self) -> list[int]:
        if self.epoch < 0 or self.pos + self.batch_size > len(self.perm):
            self.perm = list(range(self.n))
            self.rng.shuffle(self.perm)
            self.pos = 0
            self.epoch += 1
        batch = self.perm[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return batch

    def state_dict(self) -> dict:
        return {"rng": rng_state_to_json(self.rng.getstate()), "perm": list(self.perm), "pos": self.pos,
                "epoch": self.epoch, "n": self.n, "batch_size": self.batch_size}

    def load_state_dict(self, d: dict) -> None:
        if d["n"] != self.n or d["batch_size"] != self.batch_size:
            raise DataError(f"checkpoint sampler was for {d['n']} examples in batches of {d['batch_size']}, "
                            f"this run has {self.n} in batches of {self.batch_size}")
        self.rng.setstate(rng_state_from_json(d["rng"]))
        self.perm, self.pos, self.epoch = list(d["perm"]), d["pos"], d["epoch"]


def rng_state_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def rng_state_from_json(d: Sequence) -> tuple:
    return (d[0], tuple(d[1]), d[2])
