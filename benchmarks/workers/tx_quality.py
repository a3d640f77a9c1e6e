"""textopt worker of the quality benchmark: N steps of TGD on BBH object counting, through the loopback server."""
from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata as md
import time

import textopt as tx
from textopt.engines import Engine
from textopt.errors import TextoptError
from textopt.runtime import run_sync

import quality_task as Q
from protocol import serve


class Capped(Engine):
    """The in-process local engine with the same cap on new tokens as the server applies to both frameworks."""

    provider = "capped"
    supports_prefill = True
    supports_schema = True
    supports_pattern = True

    def __init__(self, inner: Engine, cap: int):
        super().__init__(inner.model, max_concurrency=64, max_retries=0, cache=False)
        self.inner, self.cap = inner, cap

    async def _send(self, request):
        return await self.inner.generate(dataclasses.replace(request, max_tokens=min(request.max_tokens, self.cap)))


async def train(job: dict) -> dict:
    if job.get("native"):  # the embedded engine in-process: prefill + stop sequences reach the model
        engine = Capped(tx.get_engine(job.get("model", "local"), cache=False), job["max_tokens"])
    else:
        engine = tx.get_engine(f"openai:{job['base_url']}#local-model", cache=False, max_concurrency=64,
                               timeout=job.get("timeout", 1800.0))
    prompt = tx.Variable(job["initial_prompt"], role=Q.PROMPT_ROLE, requires_grad=True)
    solver = tx.nn.LLMCall(engine, system_prompt=prompt, name="solver")
    optimizer = tx.optim.TGD([prompt], engine=engine)
    train_set, batch = job["train"], job["batch"]
    errors, values = [], [prompt.value]
    t0 = time.perf_counter()
    for step in range(job["steps"]):
        rows = [train_set[(step * batch + i) % len(train_set)] for i in range(batch)]

        async def sample(row):
            pred = await solver.acall(tx.Variable(row["input"], role="object-counting question"))
            judge = tx.nn.TextLoss(Q.JUDGE_INSTRUCTION.format(question=row["input"], target=row["target"]),
                                   engine=engine, name="judge")
            return await judge.acall(pred)

        losses = await asyncio.gather(*(sample(r) for r in rows))
        total = tx.aggregate(list(losses)) if len(losses) > 1 else losses[0]
        await total.abackward(engine=engine)
        try:
            await optimizer.astep()
        except TextoptError as exc:   # reported, not hidden: the parameter is left unchanged
            errors.append(f"step {step}: {type(exc).__name__}: {str(exc)[:300]}")
        optimizer.zero_grad()
        values.append(prompt.value)
    usage = engine.usage.as_dict()["total"]
    return {"final_prompt": prompt.value, "values": values, "step_errors": errors,
            "train_wall_s": time.perf_counter() - t0, "engine_usage": usage,
            "optimizer_calls": engine.usage.as_dict()["by_role"].get("optimizer", {}).get("calls", 0)}


def handle(job: dict) -> dict:
    return run_sync(train(job))


if __name__ == "__main__":
    serve(handle, {"textopt": tx.__version__, "openai": md.version("openai")})
