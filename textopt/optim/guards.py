"""Generalisation guards: a held-out selection split, a test split no optimizer can receive, and a copy detector.

``split_dataset(examples, val=0.3, test=0.3, seed=0)`` returns :class:`Splits`. Optimizers take
``splits.for_optimizer()`` (train + val only, an :class:`OptimizerData`); handing them a ``Splits`` object or
the ``test`` split itself raises ``DataError`` — the test split cannot reach a search by accident.

:class:`CopyDetector` rejects a candidate text that contains a training input or answer (word n-gram overlap
above a threshold, or a verbatim copy of a short field); the reason is logged and kept in the candidate store.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from ..errors import DataError

log = logging.getLogger("textopt.optim.guards")


class Split(tuple):
    """A named, immutable list of examples (``name``: "train" | "val" | "test" | ...)."""

    def __new__(cls, examples: Iterable[Any], name: str):
        obj = super().__new__(cls, examples)
        obj.name = name
        return obj

    def __repr__(self) -> str:
        return f"Split({self.name!r}, {len(self)} examples)"


@dataclass(frozen=True)
class OptimizerData:
    """What an optimizer may see: the training split (proposals, minibatches) and the held-out selection split."""
    train: Split
    val: Split


@dataclass(frozen=True)
class Splits:
    train: Split
    val: Split
    test: Split

    def for_optimizer(self) -> OptimizerData:
        return OptimizerData(self.train, self.val)


def split_dataset(examples: Sequence[Any], *, val: float = 0.3, test: float = 0.3, seed: int = 0) -> Splits:
    """Shuffle with ``seed`` and cut into train / val / test (each non-empty)."""
    items = list(examples)
    if len(items) < 3:
        raise DataError(f"split_dataset needs at least 3 examples, got {len(items)}")
    if not (0 < val < 1 and 0 < test < 1 and val + test < 1):
        raise DataError(f"val and test must be fractions with val + test < 1, got val={val}, test={test}")
    random.Random(seed).shuffle(items)
    n_test = max(1, round(len(items) * test))
    n_val = max(1, round(len(items) * val))
    if n_test + n_val >= len(items):
        raise DataError(f"{len(items)} examples leave no training data with val={val}, test={test}")
    return Splits(Split(items[n_test + n_val:], "train"), Split(items[n_test:n_test + n_val], "val"),
                  Split(items[:n_test], "test"))


def optimizer_data(data: Any = None, trainset: Sequence | None = None, valset: Sequence | None = None,
                   ) -> OptimizerData:
    """Resolve what was passed to an optimizer; refuse the test split."""
    if isinstance(data, Splits):
        raise DataError("an optimizer got a Splits object holding the test split; pass splits.for_optimizer() "
                        "(train + val only) — the test split is for the final report, never for search")
    if data is not None and hasattr(data, "test") and not isinstance(data, OptimizerData):
        raise DataError(f"an optimizer got a {type(data).__name__} holding the test split; pass "
                        f"trainset=splits.train, valset=splits.val — the test split is never for search")
    if isinstance(data, OptimizerData):
        trainset, valset = data.train, data.val
    elif data is not None:
        raise DataError(f"data must be splits.for_optimizer() (an OptimizerData), got {type(data).__name__}")
    for name, s in (("trainset", trainset), ("valset", valset)):
        if s is None or len(s) == 0:
            raise DataError(f"a search optimizer needs a non-empty {name}: pass data=splits.for_optimizer() or "
                            f"trainset=... and valset=... (a held-out split used only to select candidates)")
        if getattr(s, "name", None) == "test":
            raise DataError(f"the test split was passed as {name}; the test split must never reach an optimizer")
    train = trainset if isinstance(trainset, Split) else Split(trainset, "train")
    val = valset if isinstance(valset, Split) else Split(valset, "val")
    seen = {_canon(ex) for ex in train}
    shared = sum(_canon(ex) in seen for ex in val)
    if shared:
        raise DataError(f"{shared} of the {len(val)} val examples also appear in the trainset; the selection "
                        f"split must be held out (split_dataset(...) makes disjoint splits)")
    return OptimizerData(train, val)


def _canon(example: Any) -> str:
    return json.dumps(example, sort_keys=True, default=str, ensure_ascii=False)


# -- copy detection --------------------------------------------------------------------------------------------
_WORD = re.compile(r"\w+", re.UNICODE)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _ngrams(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def example_texts(example: Any) -> list[str]:
    """Every string inside an example (dict values, list items, attributes of simple objects)."""
    out: list[str] = []
    stack = [example]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            out.append(x)
        elif isinstance(x, Mapping):
            stack.extend(reversed([v for k, v in x.items() if k != "id"]))
        elif isinstance(x, (list, tuple)):
            stack.extend(reversed(list(x)))
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            out.append(str(x))
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):   # e.g. textopt.tasks.Example
            stack.extend(reversed([getattr(x, f.name) for f in dataclasses.fields(x) if f.name != "id"]))
    return out


class CopyDetector:
    """Flags a text that copies training examples.

    A training field of at least ``n`` words is copied when more than ``threshold`` of its word n-grams appear
    in the text; a shorter field of at least ``min_chars`` characters is copied when it appears verbatim (as
    whole words). Shorter fields (answers like "8") cannot be told apart from chance and are ignored.
    """

    def __init__(self, examples: Iterable[Any], *, n: int = 6, threshold: float = 0.5, min_chars: int = 12):
        if n < 1 or not 0 <= threshold < 1:
            raise DataError(f"CopyDetector needs n >= 1 and 0 <= threshold < 1, got n={n}, threshold={threshold}")
        self.n, self.threshold, self.min_chars = n, threshold, min_chars
        self._long: list[tuple[str, set]] = []
        self._short: list[tuple[str, str]] = []
        for ex in examples:
            for text in example_texts(ex):
                words = _words(text)
                if len(words) >= n:
                    self._long.append((text, _ngrams(words, n)))
                elif len(text.strip()) >= min_chars:
                    self._short.append((text, " ".join(words)))

    def check(self, text: str) -> str | None:
        """None when ``text`` is clean, else the reason it is rejected."""
        words = _words(text)
        grams = _ngrams(words, self.n)
        joined = f" {' '.join(words)} "
        for source, own in self._long:
            overlap = len(own & grams) / len(own)
            if overlap > self.threshold:
                return (f"copies a training example ({overlap:.0%} of its {self.n}-word sequences, threshold "
                        f"{self.threshold:.0%}): {source[:80]!r}")
        for source, norm in self._short:
            if norm and f" {norm} " in joined:
                return f"contains a training field verbatim: {source[:80]!r}"
        return None

    def check_candidate(self, values: Mapping[str, str], exempt: Iterable[str] = ()) -> str | None:
        skip = set(exempt)
        for name in sorted(values):
            if name in skip:
                continue
            reason = self.check(values[name])
            if reason:
                return f"parameter {name!r} {reason}"
        return None
