"""Generalisation guards: a held-out selection split, a test split no optimizer can receive, and a copy detector.

``split_dataset(examples, val=0.3, test=0.3, seed=0)`` returns :class:`~textopt.data.Splits` (the one data
vocabulary of :mod:`textopt.data`, shared with ``textopt.tasks`` and the trainer). Optimizers take
``splits.for_optimizer()`` (train + val only, an :class:`OptimizerData`); handing them a ``Splits`` object or
the ``test`` split itself raises ``DataError`` — the test split cannot reach a search by accident.

:class:`CopyDetector` rejects a candidate text that contains a training input or answer (word n-gram overlap
above a threshold, or a verbatim copy of a short field); the reason is logged and kept in the candidate store.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any, Iterable, Mapping, Sequence

from ..data import (OptimizerData, Split, Splits, example_key, examples_of, refuse_test_split,  # noqa: F401
                    split_dataset)  # (re-exported)
from ..errors import DataError

log = logging.getLogger("textopt.optim.guards")


def optimizer_data(data: Any = None, trainset: Sequence | None = None, valset: Sequence | None = None,
                   ) -> OptimizerData:
    """Resolve what was passed to an optimizer; refuse the test split."""
    refuse_test_split(data, "an optimizer's data=", "pass data=splits.for_optimizer() (train + val only)")
    if data is not None and hasattr(data, "test") and not isinstance(data, OptimizerData):
        raise DataError(f"an optimizer got a {type(data).__name__} holding the test split; pass "
                        f"trainset=splits.train, valset=splits.val — the test split is never for search")
    if isinstance(data, OptimizerData):
        trainset, valset = data.train, data.val
    elif data is not None:
        raise DataError(f"data must be splits.for_optimizer() (an OptimizerData), got {type(data).__name__}")
    for name, s in (("trainset", trainset), ("valset", valset)):
        if s is not None:
            examples_of(s, f"a search optimizer's {name}")
        if s is None or len(s) == 0:
            raise DataError(f"a search optimizer needs a non-empty {name}: pass data=splits.for_optimizer() or "
                            f"trainset=... and valset=... (a held-out split used only to select candidates)")
        refuse_test_split(s, name, "pass data=splits.for_optimizer(), or trainset=splits.train and "
                          "valset=splits.val")
    train = trainset if isinstance(trainset, Split) else Split(trainset, "train")
    val = valset if isinstance(valset, Split) else Split(valset, "val")
    seen = {example_key(ex) for ex in train}
    shared = sum(example_key(ex) in seen for ex in val)
    if shared:
        raise DataError(f"{shared} of the {len(val)} val examples also appear in the trainset; the selection "
                        f"split must be held out (split_dataset(...) makes disjoint splits)")
    return OptimizerData(train, val)


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
