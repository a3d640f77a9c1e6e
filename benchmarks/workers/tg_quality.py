"""TextGrad 0.1.8 worker of the quality benchmark: N steps of its TGD on BBH object counting, written the way
its prompt-optimization example writes a step (loop over the batch, ``tg.sum``, backward, ``step``), through the
loopback server with ``ChatExternalClient``. Its per-step validation/revert is not used (plain N steps, as for
textopt). An exception in ``step`` (e.g. the missing-tag IndexError) is recorded and the prompt left as it is."""
from __future__ import annotations

import importlib.metadata as md
import time

import openai
import textgrad as tg
from textgrad.engine.local_model_openai_api import ChatExternalClient

import quality_task as Q
from protocol import serve


def handle(job: dict) -> dict:
    client = openai.OpenAI(base_url=job["base_url"], api_key="sk-bench-not-a-key",
                           timeout=job.get("timeout", 1800.0))
    engine = ChatExternalClient(client=client, model_string="local-model")
    prompt = tg.Variable(job["initial_prompt"], requires_grad=True, role_description=Q.PROMPT_ROLE)
    model = tg.BlackboxLLM(engine, system_prompt=prompt)
    optimizer = tg.TGD(parameters=[prompt], engine=engine)
    train_set, batch = job["train"], job["batch"]
    errors, values = [], [prompt.value]
    t0 = time.perf_counter()
    for step in range(job["steps"]):
        rows = [train_set[(step * batch + i) % len(train_set)] for i in range(batch)]
        losses = []
        for row in rows:
            x = tg.Variable(row["input"], requires_grad=False, role_description="object-counting question")
            loss_fn = tg.TextLoss(Q.JUDGE_INSTRUCTION.format(question=row["input"], target=row["target"]),
                                  engine=engine)
            losses.append(loss_fn(model(x)))
        total = tg.sum(losses)
        total.backward(engine)
        try:
            optimizer.step()
        except Exception as exc:  # noqa: BLE001 - TextGrad raises bare IndexError etc.; reported, not hidden
            errors.append(f"step {step}: {type(exc).__name__}: {str(exc)[:300]}")
        optimizer.zero_grad()
        values.append(prompt.value)
    return {"final_prompt": prompt.value, "values": values, "step_errors": errors,
            "train_wall_s": time.perf_counter() - t0}


if __name__ == "__main__":
    serve(handle, {"textgrad": md.version("textgrad"), "openai": md.version("openai")})
