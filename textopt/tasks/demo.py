"""The demo task ``format_count``: generated counting questions whose metric demands a strict answer format.

Why this task: the embedded SmolLM2-135M-Instruct is far too weak for an optimizer to make it REASON better, and
it cannot even keep a rigid format such as a final ``Answer: N`` line (measured: 0 of 16 replies, whatever the
prompt says). What its prompt does change is how it starts and how long it rambles. So the metric credits a reply
only when the count comes FIRST: the first number in the reply (digits or a word such as "two") must be the
right count. The starting prompt says nothing about that; the metric's explanation says exactly what was
required, which is what the feedback and optimizer LLMs work from.
"""
from __future__ import annotations

import random
import re

from ..data import Example
from . import prompts as P
from .base import Score, Task
from .generated import CATEGORIES, _join, _phrase
from .metrics import NUMBER_WORDS, WORD_VALUES, _quote

MAX_WORD = 10   # a reply's first number may be spelled up to "ten" (the counts asked are 1 to 4)
_FIRST = re.compile(r"-?\d+|\b(?:" + "|".join(NUMBER_WORDS[:MAX_WORD + 1]) + r")\b", re.I)


def first_count(response: str) -> str | None:
    """The first number of the reply, digits or a number word ("two" -> "2")."""
    m = _FIRST.search(response)
    if not m:
        return None
    word = m.group(0).lower()
    return str(WORD_VALUES.get(word, word))


def format_count_example(rng: random.Random) -> Example:
    """"I have two apples and a dog. How many fruits do I have?" (small counts the 135M model can manage)."""
    cats = sorted(CATEGORIES)
    asked = rng.choice(cats)
    other = rng.choice([c for c in cats if c != asked])
    parts, answer = [], 0
    for word in rng.sample(CATEGORIES[asked], rng.randint(1, 2)):
        k = rng.randint(1, 2)
        answer += k
        parts.append(_phrase(word, k))
    for word in rng.sample(CATEGORIES[other], rng.randint(0, 1)):
        parts.append(_phrase(word, 1))
    rng.shuffle(parts)
    return Example(f"I have {_join(parts)}. How many {asked} do I have?", str(answer), meta={"category": asked})


def format_metric(response: str, target: str) -> Score:
    got = first_count(response)
    if got is None:
        return Score(0.0, None, P.DEMO_MISSING.format(target=target, response=_quote(response)))
    if int(got) == int(target):
        return Score(1.0, got, P.DEMO_OK.format(target=target))
    return Score(0.0, got, P.DEMO_BAD.format(target=target, got=got, response=_quote(response)))


def format_count_task() -> Task:
    return Task("format_count", generator=format_count_example, metric=format_metric,
                initial_prompt=P.DEMO_PROMPT,
                description="count the items of one category; the reply must start with the count",
                source="generated", max_tokens=32)
