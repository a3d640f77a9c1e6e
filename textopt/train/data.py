"""Training data for the trainer: examples as :class:`~textopt.data.Example` s and a seeded, resumable minibatch
``Sampler``."""
from __future__ import annotations

import random
from typing import Any, Iterable

from ..checks import loading
from ..data import Example, Split, as_split, rng_state_from_json, rng_state_to_json
from ..errors import DataError


def as_examples(data: Iterable[Any] | None, name: str) -> Split:
    """``data`` coerced to :class:`Example` s, as a :class:`Split` that keeps the name ``data`` had (a test split
    converted here is still the test split)."""
    split = as_split(data, name)
    return Split((Example.coerce(d, f"{name}[{i}]") for i, d in enumerate(split)), split.name)


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
        with loading("the state_dict given to Sampler.load_state_dict", d):
            if d["n"] != self.n or d["batch_size"] != self.batch_size:
                raise DataError(f"checkpoint sampler was for {d['n']} examples in batches of {d['batch_size']}, "
                                f"this run has {self.n} in batches of {self.batch_size}")
            rng = rng_state_from_json(d["rng"])
            perm, pos, epoch = [int(i) for i in d["perm"]], int(d["pos"]), int(d["epoch"])
            if (perm and sorted(perm) != list(range(self.n))) or not 0 <= pos <= len(perm):
                raise ValueError(f"perm must order the {self.n} examples (or be empty) and pos lie in it")
            probe = random.Random()
            probe.setstate(rng)   # a bad generator state raises here, before anything changes
        self.rng.setstate(rng)
        self.perm, self.pos, self.epoch = perm, pos, epoch

