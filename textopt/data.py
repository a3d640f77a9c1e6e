"""The data vocabulary every layer shares: :class:`Example`, a named :class:`Split`, :class:`Splits` (train / val /
test) with the guard that keeps the test split away from optimizers, :func:`split_dataset`, and the JSON form of a
``random.Random`` state (:func:`rng_state_to_json`, used by every checkpoint).

It imports only the core's errors, so tasks, train, optim and the command line all speak it:
``textopt.tasks.Example is textopt.train.Example`` and ``textopt.tasks.Splits is textopt.optim.Splits``.

The guard: a split remembers its name ("train", "val", "test") through slicing and through the trainer's
conversion of its examples; an optimizer (a search's ``trainset``/``valset``, the ``Trainer``'s ``train``/``val``)
handed the test split, a slice of it, or a ``Splits`` object raises one ``DataError`` saying so and what to pass
instead (:func:`refuse_test_split`). Optimizers take ``splits.for_optimizer()`` (train + val only).
"""
from __future__ import annotations

import json
import random
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import CheckpointError, DataError

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True, init=False)
class Example:
    """One example: ``input`` goes to the model, ``target`` to the metric or loss (an answer, a reference, unit
    tests...); ``x`` and ``y`` are the same two fields under the trainer's names. ``meta`` holds anything else (a
    source line, a category); it takes no part in equality or hashing.

    ``Example(input, target)``, ``Example(x=..., y=...)``; :meth:`coerce` also accepts dicts with "x"/"y" (or
    "input"/"target", "question"/"answer") keys and ``(x, y)`` pairs.
    """

    input: Any
    target: Any = None
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __init__(self, input: Any = None, target: Any = None, meta: dict | None = None, *, x: Any = None,
                 y: Any = None):
        if x is not None:
            if input is not None:
                raise DataError("Example got both input= and x= (the same field); pass one of them")
            input = x
        if y is not None:
            if target is not None:
                raise DataError("Example got both target= and y= (the same field); pass one of them")
            target = y
        object.__setattr__(self, "input", input)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "meta", meta if meta is not None else {})

    @property
    def x(self) -> Any:
        return self.input

    @property
    def y(self) -> Any:
        return self.target

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


class Split(tuple):
    """A named, immutable list of examples (``name``: "train" | "val" | "test" | ...). A slice keeps the name; so
    does ``+``, except that anything joined with the test split is named "test"."""

    def __new__(cls, examples: Iterable[Any], name: str):
        obj = super().__new__(cls, examples)
        obj.name = name
        return obj

    def __getitem__(self, index):
        got = super().__getitem__(index)
        return Split(got, self.name) if isinstance(index, slice) else got

    def __add__(self, other):   # anything joined with the test split is the test split
        names = {self.name, getattr(other, "name", None)}
        return Split(tuple.__add__(self, tuple(other)), "test" if "test" in names else self.name)

    def __reduce__(self):
        return Split, (tuple(self), self.name)

    def __repr__(self) -> str:
        return f"Split({self.name!r}, {len(self)} examples)"


def as_split(examples: Iterable[Any] | None, name: str) -> Split:
    """``examples`` as a :class:`Split`: a Split keeps its own name (so the test split stays recognisable)."""
    if isinstance(examples, Split):
        return examples
    return Split(examples_of(examples, name) if examples is not None else (), name)


def examples_of(examples: Any, what: str) -> Iterable[Any]:
    """``examples`` if it is a collection of examples (a list, a tuple, a generator ...); a str, a dict or a
    number is one ``DataError`` saying what to pass."""
    if isinstance(examples, (str, bytes, Mapping, Example)) or not isinstance(examples, Iterable):
        raise DataError(f"{what} must be a list of examples (Example, {{'x': ..., 'y': ...}} or (x, y) pairs), got "
                        f"{type(examples).__name__}")
    return examples


@dataclass(frozen=True)
class OptimizerData:
    """What an optimizer may see: the training split (proposals, minibatches) and the held-out selection split."""
    train: Split
    val: Split


@dataclass(frozen=True)
class Splits:
    """Disjoint train / val / test splits (each a :class:`Split`; lists given here are named for their field)."""
    train: Split
    val: Split
    test: Split

    def __post_init__(self):
        for name in SPLIT_NAMES:
            value = getattr(self, name)
            if name != "test":   # a test split cannot become train or val by being put there
                refuse_test_split(value, f"Splits({name}=...)", f"pass the {name} examples as {name}")
            if not (isinstance(value, Split) and value.name == name):
                object.__setattr__(self, name, Split(value, name))

    def __getitem__(self, name: str) -> Split:
        if name not in SPLIT_NAMES:
            raise DataError(f"unknown split {name!r}: use 'train', 'val' or 'test'")
        return getattr(self, name)

    def sizes(self) -> tuple[int, int, int]:
        return len(self.train), len(self.val), len(self.test)

    def for_optimizer(self) -> OptimizerData:
        return OptimizerData(self.train, self.val)


def refuse_test_split(data: Any, as_what: str, fix: str) -> None:
    """Raise ``DataError`` when ``data`` is the test split (or a slice of it) or a :class:`Splits` holding it —
    about to become ``as_what`` of an optimizer. ``fix`` says what to pass instead."""
    if isinstance(data, Splits):
        raise DataError(f"{as_what} got a Splits object, which holds the test split; {fix} — the test split is for "
                        f"the final report, never for optimization")
    if getattr(data, "name", None) == "test":
        raise DataError(f"the test split was passed as {as_what}; the test split must never reach an optimizer: "
                        f"{fix}")


def refuse_test_examples(test: Sequence[Any], parts: Mapping[str, Sequence[Any]], fix: str) -> None:
    """The guard on contents, for a run that holds its test split next to the data it optimizes on (the
    ``Trainer``): names are lost by ``list(splits.test)``, examples are not. ``DataError`` when every example of
    a part (``{"train": [...], "val": [...]}``) is a test example — the test split under another name; a warning
    naming how many when only some are (a dataset with repeated items leaks them across splits)."""
    if not test:
        return
    held = {example_key(e) for e in test}
    for name, part in parts.items():
        shared = sum(example_key(e) in held for e in part)
        if part and shared == len(part):
            raise DataError(f"every example of {name}= ({shared}) is also in the test split: the test split must "
                            f"never reach an optimizer; {fix}")
        if shared:
            warnings.warn(f"{shared} of the {len(part)} {name} examples are also test examples (repeated items "
                          "in the dataset?): the test score overstates how the result generalizes", stacklevel=3)


def example_key(example: Any) -> str:
    """What makes two examples the same one, for the guards that keep splits apart: an Example's input and
    target (not its meta), anything else as it is, in canonical JSON (its text where JSON cannot hold it)."""
    if isinstance(example, Example):
        example = [example.input, example.target]
    try:
        return json.dumps(example, sort_keys=True, default=str, ensure_ascii=False)
    except (TypeError, ValueError):   # keys that do not sort, a circular structure
        return repr(example)


def split_dataset(examples: Sequence[Any], *, val: float = 0.3, test: float = 0.3, seed: int = 0) -> Splits:
    """Shuffle with ``seed`` and cut into train / val / test (each non-empty)."""
    items = list(examples_of(examples, "split_dataset's examples"))
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


# -- the JSON form of a random.Random state ---------------------------------------------------------------------
def rng_state_to_json(state: tuple) -> list:
    """``random.Random().getstate()`` as JSON data: ``[version, [625 ints], gauss_next]``."""
    version, internal, gauss = state
    return [version, list(internal), gauss]


def rng_state_from_json(d: Sequence) -> tuple:
    """The inverse of :func:`rng_state_to_json`, for ``random.Random().setstate``."""
    if not (isinstance(d, (list, tuple)) and len(d) == 3 and isinstance(d[1], (list, tuple))):
        raise CheckpointError(f"a random-generator state is [version, [internal state], gauss], got "
                              f"{type(d).__name__} {str(d)[:60]!r}; it was not written by rng_state_to_json")
    return (d[0], tuple(d[1]), d[2])
