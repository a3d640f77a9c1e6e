"""A deterministic world for search optimizers (imported by tests/optim/test_search*.py).

The "program" is scored by which phrases its prompt contains: val/train example i is solved when the prompt
contains GOOD[i % 3] and no BAD phrase. The optimum (score 1.0) holds all three GOOD phrases and no BAD one.
The scripted optimizer LLM edits blindly: it toggles one phrase of the pool chosen by a hash of the request, so
only the optimizer's selection can find the optimum.
"""
from __future__ import annotations

import hashlib
import json
import re

from textopt import Variable
from textopt.engines import ScriptedEngine

GOOD = ["think step by step", "show your work", "answer with a number"]
BAD = ["be brief", "guess quickly"]
POOL = GOOD + BAD
SEED_PROMPT = "Solve the task."

TRAIN = [{"id": f"t{i}", "question": f"training question number {i}", "kind": i % 3} for i in range(9)]
VAL = [{"id": f"v{i}", "question": f"validation question number {i}", "kind": i % 3} for i in range(6)]


def accuracy(prompt: str, examples=VAL) -> float:
    return sum(_solved(prompt, ex) for ex in examples) / len(examples)


def _solved(prompt: str, ex) -> bool:
    return GOOD[ex["kind"]] in prompt and not any(b in prompt for b in BAD)


async def evaluate(candidate, example):
    prompt = candidate["prompt"]
    ok = _solved(prompt, example)
    out = "42" if ok else "I am not sure"
    return float(ok), ("correct" if ok else f"wrong: expected 42, got {out!r}"), \
        {"input": example["question"], "output": out}


def _h(request) -> int:
    return int(hashlib.sha256(json.dumps(request.canonical("m"), sort_keys=True).encode()).hexdigest(), 16)


def _toggle(value: str, phrase: str) -> str:
    parts = [p.strip() for p in value.split(";") if p.strip()]
    parts = [p for p in parts if p != phrase] if phrase in parts else parts + [phrase]
    return "; ".join(parts) or SEED_PROMPT


def _last(text: str, tag: str) -> str | None:
    found = re.findall(rf"<{tag}[^>]*>\n?(.*?)\n?</{tag}>", text, re.S)
    return found[-1].strip() if found else None


def editor(request) -> str:
    """The blind scripted optimizer LLM."""
    text = request.messages[-1].content
    a, b = _last(text, "version_a"), _last(text, "version_b")
    if a is not None and b is not None:  # merge: keep the phrases of both
        new = a
        for p in [p.strip() for p in b.split(";")]:
            if p and p not in new:
                new = _toggle(new, p)
    else:
        value = _last(text, "current_value") or _last(text, "value") or SEED_PROMPT
        new = _toggle(value, POOL[_h(request) % len(POOL)])
    return f"<new_value>{new}</new_value>"


def make_engine(**kw) -> ScriptedEngine:
    return ScriptedEngine(editor, **kw)


def make_param() -> Variable:
    return Variable(SEED_PROMPT, role="system prompt of the solver", requires_grad=True, name="prompt")


# -- demos world: a val example is solved when the demos hold a demonstration of its kind -----------------------
DEMO_TRAIN = [{"id": f"d{i}", "question": f"[{'abc'[i % 3]}] demo source {i}", "kind": i % 3} for i in range(12)]


async def evaluate_demos(candidate, example):
    demos = candidate["demos"]
    tag = f"[{'abc'[example['kind']]}]"
    if example["id"].startswith("d"):          # training runs: every third one fails the metric
        ok = int(example["id"][1:]) % 4 != 3
    else:
        ok = tag in demos
    return float(ok), "", {"input": example["question"], "output": "42" if ok else "?"}


def make_demos_param() -> Variable:
    return Variable("", role="few-shot demonstrations", requires_grad=True, name="demos")


def demo_accuracy(demos: str) -> float:
    return sum(f"[{'abc'[ex['kind']]}]" in demos for ex in VAL) / len(VAL)
