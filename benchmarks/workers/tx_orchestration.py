"""textopt worker of the orchestration benchmark (runs in the project's venv)."""
from __future__ import annotations

import asyncio
import importlib.metadata as md
import time

import textopt as tx
from textopt.runtime import run_sync

import workload as W
from protocol import serve


_ENGINES: dict = {}


def engine_for(base_url: str):
    """One engine per server for the whole worker (as a user keeps one), like the TextGrad worker."""
    if base_url not in _ENGINES:
        _ENGINES[base_url] = tx.get_engine(f"openai:{base_url}#bench-model", cache=False, max_concurrency=64)
    return _ENGINES[base_url]


async def pipeline(job: dict) -> dict:
    engine = engine_for(job["base_url"])
    prompt = tx.Variable(W.SYSTEM_PROMPT, role=W.SYSTEM_ROLE, requires_grad=True)
    solver = tx.nn.LLMCall(engine, system_prompt=prompt, name="solver")
    judge = tx.nn.TextLoss(W.EVAL_INSTRUCTION, engine=engine, name="judge")
    optimizer = tx.optim.TGD([prompt], engine=engine)

    async def sample(q: str):
        return await judge.acall(await solver.acall(tx.Variable(q, role="question to the solver")))

    t0 = time.perf_counter()
    losses = await asyncio.gather(*(sample(q) for q in W.questions(job["batch"], job["rep"])))
    t1 = time.perf_counter()
    total = tx.aggregate(list(losses))
    await total.abackward(engine=engine)
    t2 = time.perf_counter()
    await optimizer.astep()
    t3 = time.perf_counter()
    return {"wall_s": t3 - t0, "forward_s": t1 - t0, "backward_s": t2 - t1, "step_s": t3 - t2,
            "new_prompt_ok": prompt.value == W.NEW_PROMPT, "grads": len(prompt.grad) if prompt.grad else 0}


def plain_loop(job: dict) -> dict:
    """The loop a PyTorch user writes (no asyncio): calls launch lazily, so the batch still runs concurrently."""
    engine = engine_for(job["base_url"])
    prompt = tx.Variable(W.SYSTEM_PROMPT, role=W.SYSTEM_ROLE, requires_grad=True)
    solver = tx.nn.LLMCall(engine, system_prompt=prompt, name="solver")
    judge = tx.nn.TextLoss(W.EVAL_INSTRUCTION, engine=engine, name="judge")
    optimizer = tx.optim.TGD([prompt], engine=engine)
    t0 = time.perf_counter()
    losses = []
    for q in W.questions(job["batch"], job["rep"]):
        y = solver(tx.Variable(q, role="question to the solver"))
        losses.append(judge(y))
    total = tx.concat(losses)     # needs every loss's text: the forward ends here
    t1 = time.perf_counter()
    total.backward(engine=engine)
    t2 = time.perf_counter()
    optimizer.step()
    t3 = time.perf_counter()
    return {"wall_s": t3 - t0, "forward_s": t1 - t0, "backward_s": t2 - t1, "step_s": t3 - t2,
            "new_prompt_ok": prompt.value == W.NEW_PROMPT, "grads": len(prompt.grad) if prompt.grad else 0}


def handle(job: dict) -> dict:
    if job.get("shape") == "plain":
        return plain_loop(job)
    return run_sync(pipeline(job))   # textopt's private loop, as the sync API uses it


if __name__ == "__main__":
    serve(handle, {"textopt": tx.__version__, "openai": md.version("openai")})
