"""TextGrad 0.1.8 worker of ``quality_real.py``: TextGrad's own prompt-optimization recipe, through the proxy.

The recipe of TextGrad's prompt-optimization tutorial (BBH object counting): the system prompt is a Variable with
the tutorial's role description; ``BlackboxLLM`` answers; the loss is a ``StringBasedFunction`` around a
correctness check (here textopt's task metric, loaded without torch, so every framework is scored by the same
code); each step sums a batch of losses, runs ``backward`` and ``TextualGradientDescent.step``; then the
validation set is scored (8 threads, as the tutorial's ``eval_dataset``) and the prompt is reverted when the
score dropped. One engine (``ChatExternalClient`` over the official OpenAI SDK) serves the forward, backward and
optimizer roles, as the benchmark gives every framework the same model. An exception in ``step`` (TextGrad's
missing-tag ``IndexError``) is recorded and the run goes on, as a user's loop would with a try/except.
"""
from __future__ import annotations

import concurrent.futures
import importlib.metadata as md
import random
import time

import openai
import textgrad as tg
from textgrad.engine.local_model_openai_api import ChatExternalClient

import quality_task as Q
from protocol import serve

# TextGrad's tutorial names the optimized prompt this way (its words, the anchor's own recipe).
TG_ROLE = ("structured system prompt to a somewhat capable language model that specifies the behavior and "
           "strategies for the QA task")


def handle(job: dict) -> dict:
    metric = Q.textopt_metric(job.get("metric", "number"))
    client = openai.OpenAI(base_url=job["base_url"], api_key="sk-bench-not-a-key", timeout=3600.0, max_retries=0)
    engine = ChatExternalClient(client=client, model_string=job["model"])
    tg.set_backward_engine(engine, override=True)
    prompt = tg.Variable(job["initial_prompt"], requires_grad=True, role_description=TG_ROLE)
    model = tg.BlackboxLLM(engine, system_prompt=prompt)
    optimizer = tg.TextualGradientDescent(engine=engine, parameters=[prompt])

    def correct(prediction: tg.Variable, ground_truth_answer: tg.Variable):
        return int(metric(str(prediction.value), str(ground_truth_answer.value)).value >= 1.0)

    eval_fn = tg.autograd.StringBasedFunction(
        correct, function_purpose="The runtime of string-based function that checks if the prediction is correct.")

    def score(row) -> int:
        x = tg.Variable(row["input"], requires_grad=False, role_description="query to the language model")
        return int(metric(model(x).value, row["target"]).value >= 1.0)

    def validate() -> float:
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            return sum(pool.map(score, job["val"])) / len(job["val"])

    train = list(job["train"])
    rng = random.Random(job["seed"])
    t0 = time.perf_counter()
    best = validate()
    rows, errors = [{"step": 0, "val": best, "prompt": prompt.value}], []
    order: list[dict] = []
    for step in range(1, job["steps"] + 1):
        if len(order) < job["batch"]:
            more = train[:]
            rng.shuffle(more)
            order += more
        batch, order = order[:job["batch"]], order[job["batch"]:]
        optimizer.zero_grad()
        losses = []
        for row in batch:
            x = tg.Variable(row["input"], requires_grad=False, role_description="query to the language model")
            y = tg.Variable(row["target"], requires_grad=False, role_description="correct answer for the query")
            losses.append(eval_fn(inputs=dict(prediction=model(x), ground_truth_answer=y)))
        before = prompt.value
        try:
            tg.sum(losses).backward()
            optimizer.step()
        except Exception as exc:  # noqa: BLE001 - TextGrad raises bare IndexError etc.; reported, not hidden
            errors.append(f"step {step}: {type(exc).__name__}: {str(exc)[:300]}")
            prompt.set_value(before)
        changed = prompt.value != before
        val = validate()   # the recipe validates every step (TextGrad's own cache answers an unchanged prompt)
        reverted = val < best
        if reverted:
            prompt.set_value(before)
        else:
            best = val
        rows.append({"step": step, "val": val, "reverted": reverted, "changed": changed, "prompt": prompt.value})
    return {"final_prompt": prompt.value, "best_val": best, "steps": rows, "step_errors": errors,
            "train_wall_s": round(time.perf_counter() - t0, 1)}


if __name__ == "__main__":
    serve(handle, {"textgrad": md.version("textgrad"), "openai": md.version("openai")})
