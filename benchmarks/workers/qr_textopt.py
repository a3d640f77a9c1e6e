"""textopt worker of ``quality_real.py``: three configurations over the same engine spec (the proxy's URL).

- ``tgd``: what ``textopt optimize --task object_counting`` runs — the task's solver (one LLMCall with the
  learnable system prompt), the task metric as the loss (its explanation seeds backward), ``TGD`` through the
  ``Trainer`` (seeded minibatches of ``batch``, validation after every step, revert when it drops). One engine
  spec serves the forward, feedback and optimizer roles. ``record`` makes it a replayable cassette.
- ``null``: the same, with every gradient replaced by one generic sentence and no forward context in the
  optimizer's request (``max_context_chars=0``): the optimizer rewrites blind and validation alone selects. The
  control run: the gap between ``tgd`` and ``null`` is what the feedback itself brings.
- ``search:<name>``: a textopt search optimizer (``beam``, ``pareto``, ``opro``) over the same solver and metric,
  proposals from train, selection on val, bounded by ``max_metric_calls``.
Each run has its own response cache folder (a fresh one per run: nothing is shared across frameworks).
"""
from __future__ import annotations

import importlib.metadata as md
import time

import textopt as tx
from textopt.runs import TaskMetric, build_solver
from textopt.engines import Engine, Response
from textopt.optim import OPTIMIZERS, Evaluator
from textopt.tasks import Example, get_task
from textopt.train import Trainer

from protocol import serve

NULL_FEEDBACK = "The system prompt could be better."


class NullFeedback(Engine):
    """Answers every feedback request with the same generic sentence, without calling a model."""

    provider = "null"
    caches_by_default = False   # code, not a model

    async def _send(self, request) -> Response:
        return Response(text=NULL_FEEDBACK, model="null")


def job_rows(examples) -> list[dict]:
    """Examples as a job's JSON rows (``handle`` reads them back; so do the other frameworks' workers)."""
    return [{"input": e.input, "target": e.target} for e in examples]


def handle(job: dict) -> dict:
    task = get_task(job["task"], job["data"])
    task.max_tokens = job["answer_tokens"]
    train, val = ([Example.coerce(r) for r in job[name]] for name in ("train", "val"))
    if job.get("extend"):   # rerun a recorded run: its recorded calls replay, only changed ones go live
        from textopt.engines.replay import ReplayEngine
        live = tx.get_engine(job["spec"], cache=job["cache_dir"])
        engine = ReplayEngine(job["extend"], fallback=live, record=job.get("record"))
    else:
        engine = tx.get_engine(job["spec"], cache=job["cache_dir"], record=job.get("record"))
    mode = job["mode"]
    solver = build_solver(task, engine, job["initial_prompt"])
    t0 = time.perf_counter()
    if mode.startswith("search:"):
        return _search(job, task, solver, engine, train, val, t0)
    backward = NullFeedback("null") if mode == "null" else engine
    extra = {"max_context_chars": 0} if mode == "null" else {}
    extra.update(job.get("tgd_options") or {})   # e.g. a replay of a run recorded before an option existed
    optimizer = tx.optim.TGD([solver.system_prompt], engine=engine, **extra)
    trainer = Trainer(solver, TaskMetric(task), optimizer, train=train, val=val, batch_size=job["batch"],
                      steps=job["steps"],
                      out_dir=job["out_dir"], seed=job["seed"], backward_engine=backward, progress=False)
    result = trainer.fit()
    rows = [{k: r.get(k) for k in ("step", "val_score", "train_score", "reverted", "step_error", "unchanged")}
            for r in result.history]
    return {"final_prompt": solver.system_prompt.value, "best_val": result.best_val, "steps": rows,
            "usage": engine.usage.as_dict(), "train_wall_s": round(time.perf_counter() - t0, 1)}


def _search(job, task, solver, engine, train, val, t0) -> dict:
    name = job["mode"].split(":", 1)[1]
    solver.eval()
    kw = {"beam": {"minibatch_size": job["batch"]}, "pareto": {"minibatch_size": job["batch"]},
          "opro": {"score_size": job["batch"]}}.get(name, {})
    opt = OPTIMIZERS[name](dict(solver.named_parameters()), Evaluator.from_task(solver, task), engine=engine,
                           trainset=train, valset=val, max_metric_calls=job["max_metric_calls"], seed=job["seed"],
                           max_tokens=1024, **kw)
    while opt.stopped is None and opt.step_count < job["steps"]:
        opt.step()
    best = opt.store.values(opt.best) if opt.best else opt.store.values(opt.seed_hash)
    return {"final_prompt": best["system_prompt"], "best_val": opt.best_score, "metric_calls": opt.metric_calls,
            "candidates": len(opt.store.candidates), "stopped": opt.stopped, "usage": engine.usage.as_dict(),
            "train_wall_s": round(time.perf_counter() - t0, 1)}


if __name__ == "__main__":
    serve(handle, {"textopt": md.version("textopt")})
