"""TextGrad 0.1.8 worker of the overhead benchmark: the same graph with an instant engine, then backward.

TextGrad runs as shipped (its import-time JSON log handler included: it logs every call, which is part of its
per-node cost). Its engine calls are synchronous, so the instant engine is a plain ``EngineLM`` returning "ok".
"""
from __future__ import annotations

import gc
import importlib.metadata as md
import sys
import tracemalloc

import textgrad as tg
from textgrad.autograd import LLMCall
from textgrad.engine import EngineLM

import graphshape as G
from phases import PhaseClock
from protocol import serve

sys.setrecursionlimit(100_000)  # TextGrad's topological sort is recursive


class InstantEngine(EngineLM):
    model_string = "instant"

    def __init__(self):
        self.calls = 0

    def generate(self, prompt, system_prompt=None, **kwargs):
        self.calls += 1
        return "ok"

    def __call__(self, prompt, **kwargs):
        return self.generate(prompt, **kwargs)


def build(engine, groups: int, chain: int, fanout: int):
    prompt = tg.Variable("You are a helpful solver.", requires_grad=True, role_description="system prompt")
    head = LLMCall(engine, system_prompt=prompt)
    step = LLMCall(engine)
    outs = []
    for g in range(groups):
        h = head(tg.Variable(f"question {g}", requires_grad=False, role_description="question"))
        for _ in range(chain - 1):
            h = step(h)
        branches = [step(h) for _ in range(fanout)]
        outs.append(tg.sum(branches))
    return prompt, tg.sum(outs)


def build_sync(engine, shape: str, n: int):
    """``wide``: one sum over ``n`` TextLoss(LLMCall(x)) pairs; ``chain``: ``n`` LLM calls, each on the last."""
    prompt = tg.Variable("You are a helpful solver.", requires_grad=True, role_description="system prompt")
    call = LLMCall(engine, system_prompt=prompt)
    judge = tg.TextLoss("Evaluate the answer.", engine=engine)
    if shape == "wide":
        losses = []
        for i in range(n):
            losses.append(judge(call(tg.Variable(f"question {i}", requires_grad=False, role_description="question"))))
        return prompt, tg.sum(losses)
    step = LLMCall(engine)
    h = call(tg.Variable("question", requires_grad=False, role_description="question"))
    for _ in range(n - 1):
        h = step(h)
    return prompt, judge(h)


def measure(job: dict, trace: bool) -> dict:
    engine = InstantEngine()
    gc.collect()
    if trace:
        tracemalloc.start()
    clock = PhaseClock(instructions=bool(job.get("instructions")))
    clock.start()
    if job.get("shape", "groups") == "groups":
        prompt, loss = build(engine, job["groups"], job["chain"], job["fanout"])
    else:
        prompt, loss = build_sync(engine, job["shape"], job["n"])
    clock.lap("build")
    loss.backward(engine)
    clock.lap("backward")
    clock.stop()
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    if trace:
        tracemalloc.stop()
    return {**clock.figures, "peak_bytes": peak, "engine_calls": engine.calls, "param_grads": len(prompt.gradients)}


def handle(job: dict) -> dict:
    out = measure(job, trace=False)
    if job.get("memory"):
        out["peak_bytes"] = measure(job, trace=True)["peak_bytes"]
    return out


if __name__ == "__main__":
    serve(handle, {"textgrad": md.version("textgrad")})
