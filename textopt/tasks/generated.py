"""Generated tasks that need no files: seeded, unlimited, exact answers.

- ``counting``: sentences listing items of several categories; "how many <category> do I have?" (integer).
- ``arithmetic``: multi-step integer expressions such as ``((4 - -3) * 2 + 5) =`` (integer).
- ``sorting``: sort a list of words alphabetically (the sorted words separated by spaces).
"""
from __future__ import annotations

import random

from ..data import Example
from . import prompts as P
from .base import Score, Task
from .metrics import NUMBER_WORDS, _norm, _quote, answer_span, number_match

CATEGORIES = {
    "fruits": ["apple", "banana", "pear", "orange", "plum", "peach", "grape", "strawberry", "raspberry",
               "blackberry", "nectarine"],
    "vegetables": ["carrot", "potato", "onion", "cabbage", "yam", "garlic", "celery", "lettuce", "cauliflower",
                   "broccoli"],
    "animals": ["dog", "cat", "cow", "horse", "goat", "duck", "pig", "rabbit", "snake", "mouse", "frog", "donkey"],
    "musical instruments": ["piano", "flute", "violin", "drum", "guitar", "trumpet", "clarinet", "trombone",
                            "accordion"],
    "objects": ["chair", "table", "lamp", "bed", "couch", "oven", "microwave", "stove", "toaster", "fridge"],
}
PLURAL = {"peach": "peaches", "strawberry": "strawberries", "raspberry": "raspberries",
          "blackberry": "blackberries", "potato": "potatoes", "mouse": "mice", "couch": "couches",
          "accordion": "accordions", "celery": "stalks of celery", "lettuce": "heads of lettuce",
          "garlic": "heads of garlic", "cauliflower": "heads of cauliflower", "broccoli": "heads of broccoli"}


def _article(word: str) -> str:
    if word in ("celery", "lettuce", "garlic", "cauliflower", "broccoli"):
        return {"celery": "a stalk of celery"}.get(word, f"a head of {word}")
    return ("an " if word[0] in "aeiou" else "a ") + word


def _phrase(word: str, k: int) -> str:
    return _article(word) if k == 1 else f"{NUMBER_WORDS[k]} {PLURAL.get(word, word + 's')}"


def _join(parts: list[str]) -> str:
    if len(parts) <= 2:
        return " and ".join(parts)
    return ", ".join(parts[:-1]) + ", and " + parts[-1]


def counting_example(rng: random.Random, *, max_items: int = 4, max_each: int = 3) -> Example:
    """"I have a piano, two pears, and a goat. How many fruits do I have?" -> "2"."""
    cats = sorted(CATEGORIES)
    asked = rng.choice(cats)
    others = rng.sample([c for c in cats if c != asked], 2)
    parts, answer = [], 0
    for word in rng.sample(CATEGORIES[asked], rng.randint(1, max_items)):
        k = rng.randint(1, max_each)
        answer += k
        parts.append(_phrase(word, k))
    for cat in others:
        for word in rng.sample(CATEGORIES[cat], rng.randint(0, 2)):
            parts.append(_phrase(word, rng.randint(1, 2)))
    rng.shuffle(parts)
    return Example(f"I have {_join(parts)}. How many {asked} do I have?", str(answer),
                   meta={"category": asked})


def arithmetic_example(rng: random.Random, *, depth: int = 2, low: int = -9, high: int = 9) -> Example:
    """A nested expression of ``depth`` levels over small integers, e.g. ``((3 * -2) + (7 - 4)) =``."""
    def build(d: int) -> tuple[str, int]:
        if d == 0:
            v = rng.randint(low, high)
            return str(v), v
        (ls, lv), (rs, rv) = build(d - 1), build(rng.randint(0, d - 1))
        op = rng.choice("+-*")
        value = lv + rv if op == "+" else lv - rv if op == "-" else lv * rv
        return f"({ls} {op} {rs})", value
    text, value = build(depth)
    return Example(f"{text[1:-1]} =", str(value))


WORDS = ("amber anchor arrow badge basket beacon candle canyon castle cedar cobalt comet copper dagger delta ember "
         "falcon fable feather garnet glacier harbor hazel island ivory jasper jungle kettle lantern lemon marble "
         "meadow nectar nickel oasis orbit pebble pepper quartz quiver raven ribbon saddle salmon timber tulip "
         "umber velvet violet walnut willow yarrow zephyr").split()


def sorting_example(rng: random.Random, *, low: int = 4, high: int = 8) -> Example:
    words = rng.sample(WORDS, rng.randint(low, high))
    return Example(f"Sort the following words alphabetically: List: {' '.join(words)}", " ".join(sorted(words)))


def sorting_match(response: str, target: str) -> Score:
    span = answer_span(response)
    if span is response:
        lines = [l for l in response.strip().splitlines() if l.strip()]
        span = lines[-1] if lines else ""
    got = " ".join(w.strip(".,;:") for w in span.replace(",", " ").split())
    if _norm(got) == _norm(target):
        return Score(1.0, got, P.SORT_OK)
    return Score(0.0, got, P.SORT_BAD.format(target=target, got=_quote(got)))


def counting_task() -> Task:
    return Task("counting", generator=counting_example, metric=number_match,
                initial_prompt=P.COUNTING_PROMPT,
                description="count the items of one category in a sentence (generated; integer answer)",
                source="generated", max_tokens=128)


def arithmetic_task() -> Task:
    return Task("arithmetic", generator=arithmetic_example, metric=number_match,
                initial_prompt=P.ARITHMETIC_PROMPT,
                description="multi-step integer arithmetic (generated)", source="generated", max_tokens=256)


def sorting_task() -> Task:
    return Task("sorting", generator=sorting_example, metric=sorting_match,
                initial_prompt=P.SORTING_PROMPT, description="sort words alphabetically (generated)",
                source="generated", max_tokens=96)
