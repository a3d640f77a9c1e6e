"""textopt worker of the overhead benchmark: build the graph with an instant engine, then backward."""
from __future__ import annotations

import gc
import tracemalloc

import textopt as tx
from textopt.engines import Engine, Response
from textopt.runtime import run_sync

import graphshape as G
from phases import PhaseClock
from protocol import serve


class InstantEngine(Engine):
    """Answers "ok" at once through the shared call path (cache off), keeping no log of requests (the test
    helper ``ScriptedEngine`` keeps every request, which would be counted as framework memory)."""

    provider = "instant"

    def __init__(self):
        super().__init__("instant", cache=False)   # the shared path itself, not the response cache

    async def _send(self, request):
        return Response(text="ok", prompt_tokens=1, completion_tokens=1, model="instant", finish_reason="stop")


async def build(engine, groups: int, chain: int, fanout: int):
    prompt = tx.Variable("You are a helpful solver.", role="system prompt", requires_grad=True)
    head = tx.nn.LLMCall(engine, system_prompt=prompt, name="head")
    step = tx.nn.LLMCall(engine, name="step")
    outs = []
    for g in range(groups):
        h = await head.acall(tx.Variable(f"question {g}", role="question"))
        for _ in range(chain - 1):
            h = await step.acall(h)
        branches = [await step.acall(h) for _ in range(fanout)]
        outs.append(tx.concat(branches))
    return prompt, tx.concat(outs, role="loss")


async def measure(job: dict, trace: bool) -> dict:
    engine = InstantEngine()
    clock = _start(job, trace)
    prompt, loss = await build(engine, job["groups"], job["chain"], job["fanout"])
    clock.lap("build")
    await loss.abackward(engine=engine)
    return _finish(clock, trace, engine, prompt)


def _start(job: dict, trace: bool) -> PhaseClock:
    gc.collect()
    if trace:
        tracemalloc.start()
    clock = PhaseClock(instructions=bool(job.get("instructions")))
    clock.start()
    return clock


def _finish(clock: PhaseClock, trace: bool, engine, prompt) -> dict:
    """The figures of one measurement: wall and CPU seconds (and instructions) of build and backward, the peak."""
    clock.lap("backward")
    clock.stop()
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    if trace:
        tracemalloc.stop()
    return {**clock.figures, "peak_bytes": peak, "engine_calls": engine.usage.total.calls,
            "param_grads": len(prompt.grad)}


def build_sync(engine, shape: str, n: int):
    """The synchronous path, written as a user writes it (plain calls; lazy calls make them concurrent).
    ``wide``: one concat over ``n`` TextLoss(LLMCall(x)) pairs; ``chain``: ``n`` LLM calls, each on the last."""
    prompt = tx.Variable("You are a helpful solver.", role="system prompt", requires_grad=True)
    call = tx.nn.LLMCall(engine, system_prompt=prompt, name="call")
    if shape == "wide":
        judge = tx.nn.TextLoss("Evaluate the answer.", engine, name="judge")
        losses = []
        for i in range(n):
            losses.append(judge(call(tx.Variable(f"question {i}", role="question"))))
        return prompt, tx.concat(losses, role="loss")
    step = tx.nn.LLMCall(engine, name="step")
    h = call(tx.Variable("question", role="question"))
    for _ in range(n - 1):
        h = step(h)
    return prompt, tx.nn.TextLoss("Evaluate the answer.", engine, name="judge")(h)


def measure_sync(job: dict, trace: bool) -> dict:
    engine = InstantEngine()
    clock = _start(job, trace)
    prompt, loss = build_sync(engine, job["shape"], job["n"])
    loss.value  # noqa: B018 - the forward is complete once the loss's text is there
    clock.lap("build")
    loss.backward(engine=engine)
    return _finish(clock, trace, engine, prompt)


def handle(job: dict) -> dict:
    if job.get("shape", "groups") != "groups":
        out = measure_sync(job, trace=False)
        if job.get("memory"):
            out["peak_bytes"] = measure_sync(job, trace=True)["peak_bytes"]
        return out
    out = run_sync(measure(job, trace=False))
    if job.get("memory"):
        out["peak_bytes"] = run_sync(measure(job, trace=True))["peak_bytes"]
    return out


if __name__ == "__main__":
    serve(handle, {"textopt": tx.__version__})
