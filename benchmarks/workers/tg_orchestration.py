"""TextGrad 0.1.8 worker of the orchestration benchmark (runs in benchmarks/.venv-textgrad).

Written the way TextGrad's own prompt-optimization examples write a training step: a loop over the batch for the
forward, ``tg.sum`` of the losses, one ``backward``, one ``TGD.step``. TextGrad reaches the loopback server through
its ``ChatExternalClient`` with an ``openai.OpenAI(base_url=...)`` client. ``forward_threads > 1`` runs the forward
of the batch in a thread pool (the best case a TextGrad user can write; backward and step stay sequential).
"""
from __future__ import annotations

import importlib.metadata as md
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import textgrad as tg
from textgrad.engine.local_model_openai_api import ChatExternalClient

import workload as W
from protocol import serve

_ENGINES: dict = {}


def engine_for(base_url: str):
    if base_url not in _ENGINES:
        client = openai.OpenAI(base_url=base_url, api_key="sk-bench-not-a-key")
        _ENGINES[base_url] = ChatExternalClient(client=client, model_string="bench-model")
    return _ENGINES[base_url]


def handle(job: dict) -> dict:
    engine = engine_for(job["base_url"])
    prompt = tg.Variable(W.SYSTEM_PROMPT, requires_grad=True, role_description=W.SYSTEM_ROLE)
    model = tg.BlackboxLLM(engine, system_prompt=prompt)
    loss_fn = tg.TextLoss(W.EVAL_INSTRUCTION, engine=engine)
    optimizer = tg.TGD(parameters=[prompt], engine=engine)

    def sample(q: str):
        x = tg.Variable(q, requires_grad=False, role_description="question to the solver")
        return loss_fn(model(x))

    qs = W.questions(job["batch"], job["rep"])
    t0 = time.perf_counter()
    threads = job.get("forward_threads", 1)
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            losses = list(pool.map(sample, qs))
    else:
        losses = [sample(q) for q in qs]
    t1 = time.perf_counter()
    total = tg.sum(losses)
    total.backward(engine)
    t2 = time.perf_counter()
    optimizer.step()
    t3 = time.perf_counter()
    return {"wall_s": t3 - t0, "forward_s": t1 - t0, "backward_s": t2 - t1, "step_s": t3 - t2,
            "new_prompt_ok": prompt.value == W.NEW_PROMPT, "grads": len(prompt.gradients)}


if __name__ == "__main__":
    serve(handle, {"textgrad": md.version("textgrad"), "openai": md.version("openai")})
