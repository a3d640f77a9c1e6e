"""A deterministic scripted world for trainer/optimizer tests: arithmetic questions, a solver whose accuracy
depends on the system prompt, a backward engine and an optimizer engine that answer from the request text."""
from __future__ import annotations

import hashlib
import re

from textopt.engines import Request, ScriptedEngine


def h(text: str, n: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def solver(req: Request) -> str:
    """Answers a+b correctly only for the operand kinds the system prompt names ('small', 'large')."""
    sys = req.system or ""
    a, b = map(int, re.findall(r"\d+", req.messages[-1].content)[:2])
    kind = "large" if a + b >= 10 else "small"
    return f"The answer is {a + b}." if kind in sys else "The answer is 0."


def backward_and_optimizer(req: Request) -> str:
    text = req.messages[-1].content
    if req.role == "optimizer":
        m = re.search(r"<CURRENT_VALUE>\n(.*?)\n</CURRENT_VALUE>", text, re.S)
        cur = m.group(1) if m else ""
        # learn one operand kind per step, deterministically from the request
        add = "small" if "small" not in cur else ("large" if "large" not in cur else f"v{h(text)}")
        return f"<NEW_VALUE>{cur} Handle {add} sums.</NEW_VALUE>"
    return "feedback-" + h(text)


def make_engines(latency=0.0, seed=0):
    fwd = ScriptedEngine(solver, latency=latency, seed=seed, name="solver")
    opt = ScriptedEngine(backward_and_optimizer, latency=latency, seed=seed + 1, name="teacher")
    return fwd, opt


def data(n: int, start: int = 1):
    out = []
    for i in range(start, start + n):
        a, b = i % 7 + 1, (i * 4) % 9 + 1   # distinct for 63 consecutive i: no split shares a question
        out.append({"x": f"What is {a} + {b}?", "y": str(a + b)})
    return out
