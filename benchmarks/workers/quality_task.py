"""BBH object counting for the quality benchmark: the fixed split, our prompts, answer parsing (stdlib only)."""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "bbh" / "object_counting.json"

INITIAL_PROMPT = ("Count the items the question asks about, step by step, then give the final line as "
                  "'Answer: <number>'.")
PROMPT_ROLE = "system prompt of a model that answers object-counting questions"
JUDGE_INSTRUCTION = ("Question: {question}\nCorrect answer: {target}\n"
                     "You check a response to the question above against the correct answer. Say whether its "
                     "final number is right; if not, name the items it miscounted or forgot. Be brief.")

_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}


def load(path: str | None = None) -> list[dict]:
    data = json.loads(Path(path or DATA).read_text())
    return data["examples"] if isinstance(data, dict) else data


def split(examples: list[dict], seed: int, n_train: int, n_test: int) -> tuple[list[dict], list[dict]]:
    """Shuffle with ``random.Random(seed)``; train = the first ``n_train``, test = the next ``n_test``."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    train = [examples[i] for i in order[:n_train]]
    test = [examples[i] for i in order[n_train:n_train + n_test]]
    return train, test


def parse_answer(text: str) -> str | None:
    """The number after the last 'Answer:' if any, else the last number (digits or a word up to twenty)."""
    tail = text.rsplit("Answer:", 1)[-1] if "Answer:" in text else text
    tokens = re.findall(r"\d+|[A-Za-z]+", tail)
    nums = [t if t.isdigit() else str(_WORDS[t.lower()]) for t in tokens if t.isdigit() or t.lower() in _WORDS]
    if not nums and tail is not text:
        return parse_answer(text.rsplit("Answer:", 1)[0])
    if not nums:
        return None
    return nums[0] if "Answer:" in text and tail is not text else nums[-1]


def is_correct(text: str, target: str) -> bool:
    return parse_answer(text) == str(target).strip()


def textopt_metric(kind: str = "number"):
    """textopt's own task metric (``textopt.tasks.metrics.METRICS[kind]``: ``(response, target) -> Score`` with
    ``.value`` and ``.explanation``) loaded from the repository WITHOUT importing the ``textopt`` package (whose
    ``__init__`` needs torch): the TextGrad and GEPA workers score with exactly the code the textopt runs use."""
    import importlib
    import sys
    import types
    root = Path(__file__).resolve().parents[2] / "textopt"
    for name, path in (("textopt", root), ("textopt.tasks", root / "tasks")):
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [str(path)]
            sys.modules[name] = pkg
    return importlib.import_module("textopt.tasks.metrics").METRICS[kind]
