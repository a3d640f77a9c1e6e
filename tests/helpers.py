"""Test helpers: a generic graph op whose backward makes one LLM call per target, recording timings."""
from __future__ import annotations

import asyncio
import hashlib
import time

import textopt as tx
from textopt.engines import Request, ScriptedEngine
from textopt.function import Function


def digest_responder(req: Request) -> str:
    return "fb-" + hashlib.sha256(req.messages[-1].content.encode()).hexdigest()[:10]


class Mix(Function):
    """out = name(inputs...); backward: one LLM call per target, prompt built from the sorted feedback."""

    def __init__(self, name: str, log: list):
        self.name = name
        self.log = log

    def forward(self, inputs):
        return self.attach(inputs, f"{self.name}(" + ",".join(v.value for v in inputs) + ")", f"out {self.name}",
                           name=self.name)

    async def backward(self, ctx, node, feedback, targets):
        self.log.append(("start", self.name, time.perf_counter()))
        fb = " | ".join(f.value for f in feedback)

        async def one(t):
            req = Request.chat(f"node {self.name} -> {t.role}: {fb}")
            return (await ctx.generate(req, node)).text

        out = await asyncio.gather(*(one(t) for t in targets))
        self.log.append(("end", self.name, time.perf_counter()))
        return list(out)


def engine(latency=0.0, seed=0, limit=64):
    return ScriptedEngine(digest_responder, latency=latency, seed=seed, max_concurrency=limit)
