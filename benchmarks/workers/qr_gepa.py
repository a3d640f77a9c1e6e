"""GEPA 0.1.4 worker of ``quality_real.py``: ``gepa.optimize`` with its default adapter, through the proxy.

GEPA's documented use: ``task_lm`` and ``reflection_lm`` are LiteLLM model strings (here ``openai/<alias>``
with ``OPENAI_BASE_URL`` pointing at the benchmark proxy: the same server and model as every framework), the
default adapter puts the candidate's one component in the system prompt, and an evaluator scores each answer
with feedback. The evaluator is textopt's task metric (loaded without torch), whose explanation ("Wrong answer:
expected 16, got 15 ...") is exactly the text textopt's runs start from — GEPA's default ``ContainsAnswer``
evaluator would credit any response that contains the digit anywhere. Budget: ``max_metric_calls``, GEPA's own
unit (one rollout of one example); reflection calls come on top, and the proxy counts every call.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import time

import quality_task as Q
from protocol import serve


def handle(job: dict) -> dict:
    os.environ["OPENAI_BASE_URL"] = os.environ["OPENAI_API_BASE"] = job["base_url"]
    os.environ["OPENAI_API_KEY"] = "sk-bench-not-a-key"
    import gepa
    from gepa.adapters.default_adapter.default_adapter import EvaluationResult

    metric = Q.textopt_metric(job.get("metric", "number"))

    def evaluator(data, response: str):
        s = metric(response, data["answer"])
        return EvaluationResult(score=float(s.value), feedback=s.explanation)

    def as_inst(row):
        return {"input": row["input"], "additional_context": {}, "answer": row["target"]}

    t0 = time.perf_counter()
    result = gepa.optimize(
        seed_candidate={"system_prompt": job["initial_prompt"]},
        trainset=[as_inst(r) for r in job["train"]], valset=[as_inst(r) for r in job["val"]],
        task_lm=f"openai/{job['model']}", evaluator=evaluator, reflection_lm=f"openai/{job['model']}",
        max_metric_calls=job["max_metric_calls"], seed=job["seed"], display_progress_bar=False)
    best = result.best_candidate
    return {"final_prompt": best["system_prompt"], "best_val": result.val_aggregate_scores[result.best_idx],
            "candidates": len(result.candidates), "total_metric_calls": result.total_metric_calls,
            "val_scores": list(result.val_aggregate_scores), "train_wall_s": round(time.perf_counter() - t0, 1)}


if __name__ == "__main__":
    serve(handle, {"gepa": md.version("gepa"), "litellm": md.version("litellm")})
