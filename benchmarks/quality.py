"""Quality benchmark: TGD in textopt and in TextGrad 0.1.8 on BBH object counting, on the same embedded model.

    .venv/bin/python benchmarks/quality.py [--seed 0] [--batch 3] [--steps 1] [--test 8] [--max-tokens 64]
                                           [--only textopt]

The embedded local model (``get_engine("local")``, SmolLM2-135M-Instruct on CPU) answers BOTH frameworks through
one ``textopt.testing.LoopbackServer`` (OpenAI wire format); every answer is greedy (temperature 0) and capped at
``--max-tokens`` new tokens whatever the client asks, so the run stays bounded. Split: ``random.Random(seed)``
shuffles the 250 examples; the first ``--batch * --steps`` are training rows, the next ``--test`` the test set.
Both frameworks start from the same system prompt and do ``--steps`` TGD steps (solver -> judge that knows the
correct answer -> backward -> step). Accuracy before/after is measured by one evaluator (the same engine, same
cap) on the test set; calls and tokens of each framework's training are counted by the server.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent / "workers"), str(Path(__file__).resolve().parents[1])]

import quality_task as Q  # noqa: E402
from common import Meter, emit, machine, metered, start_workers  # noqa: E402
from textopt.engines import Request, get_engine  # noqa: E402
from textopt.runtime import run_sync  # noqa: E402
from textopt.testing import LoopbackServer, wire  # noqa: E402


def make_responder(engine, cap: int, meter: Meter):
    lock = threading.Lock()
    log: list[str] = []

    def classify(body: dict) -> tuple[str, str]:
        msgs = wire.messages_of(body)
        asked = body.get("max_tokens") or body.get("max_completion_tokens") or cap
        req = Request(messages=tuple(msgs), max_tokens=min(int(asked), cap), temperature=0.0,
                      stop=tuple(wire.stops_of(body, wire.OPENAI_PATH)), role="other")
        text = engine.generate_sync(req).text
        everything = "\n".join(t for _, t in msgs)
        kind = "optimizer" if ("<IMPROVED_VARIABLE>" in everything or "<NEW_VALUE>" in everything) else "other"
        with lock:
            log.append(kind)
        return kind, text
    return metered(classify, meter)


async def evaluate(engine, prompts: dict[str, str], test: list[dict], cap: int) -> dict[str, dict]:
    """Accuracy of each distinct system prompt on ``test`` (all requests at once: the engine batches them)."""
    distinct = list(dict.fromkeys(prompts.values()))
    reqs = [(p, row) for p in distinct for row in test]
    resps = await asyncio.gather(*(engine.generate(Request.chat(row["input"], system=p, max_tokens=cap,
                                                                temperature=0.0, role="eval"))
                                   for p, row in reqs))
    by_prompt: dict[str, list[bool]] = {}
    for (p, row), r in zip(reqs, resps):
        by_prompt.setdefault(p, []).append(Q.is_correct(r.text, row["target"]))
    return {name: {"correct": sum(by_prompt[p]), "n": len(test), "accuracy": round(sum(by_prompt[p]) / len(test), 4)}
            for name, p in prompts.items()}


def run(args) -> dict:
    examples = Q.load(args.data)
    train, test = Q.split(examples, args.seed, args.batch * args.steps, args.test)
    t0 = time.perf_counter()
    engine = get_engine(args.model, cache=False)   # both frameworks answered by the model, every call
    load_info = engine.load()
    load_s = time.perf_counter() - t0
    meter = Meter()
    frameworks: dict[str, dict] = {}
    with LoopbackServer(make_responder(engine, args.max_tokens, meter)) as srv:
        workers = start_workers(args.only, "quality")
        try:
            versions = {n: w.versions for n, w in workers.items()}
            for name, worker in workers.items():
                meter.reset()
                job = {"base_url": srv.openai_base_url, "train": train, "batch": args.batch, "steps": args.steps,
                       "initial_prompt": Q.INITIAL_PROMPT}
                out = worker.run(job)
                out.update(meter.snapshot())
                frameworks[name] = out
            if args.textopt_native and "textopt" in workers:
                # textopt's own embedded engine, not through the server: prefill and stop reach the model.
                # Calls and tokens come from the engine's usage (the model's tokenizer), not the server's rule.
                out = workers["textopt"].run({"train": train, "batch": args.batch, "steps": args.steps,
                                              "initial_prompt": Q.INITIAL_PROMPT, "native": True,
                                              "max_tokens": args.max_tokens, "model": args.model})
                u = out["engine_usage"]
                out.update({"calls": u["calls"], "prompt_tokens": u["prompt_tokens"],
                            "completion_tokens": u["completion_tokens"],
                            "by_kind": {"optimizer": out["optimizer_calls"]}})
                frameworks["textopt-native"] = out
        finally:
            for w in workers.values():
                w.close()
    t1 = time.perf_counter()
    prompts = {"initial": Q.INITIAL_PROMPT, **{n: f["final_prompt"] for n, f in frameworks.items()}}
    acc = run_sync(evaluate(engine, prompts, test, args.max_tokens))
    eval_s = time.perf_counter() - t1
    summary = {}
    for name, f in frameworks.items():
        summary[name] = {"accuracy_before": acc["initial"]["accuracy"], "accuracy_after": acc[name]["accuracy"],
                         "correct_after": acc[name]["correct"], "n_test": len(test),
                         "train_calls": f["calls"], "train_prompt_tokens": f["prompt_tokens"],
                         "train_completion_tokens": f["completion_tokens"], "optimizer_calls": f["by_kind"].get(
                             "optimizer", 0), "train_wall_s": round(f["train_wall_s"], 2),
                         "step_errors": f["step_errors"], "prompt_changed": f["final_prompt"] != Q.INITIAL_PROMPT,
                         "final_prompt": f["final_prompt"]}
    return {"benchmark": "quality", "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
            "params": {"task": "bbh/object_counting", "seed": args.seed, "textopt_native": args.textopt_native, "batch": args.batch, "steps": args.steps,
                       "n_train": len(train), "n_test": len(test), "max_tokens": args.max_tokens,
                       "model": str(load_info.get("source", args.model)).rsplit("/", 1)[-1], "temperature": 0.0},
            "versions": versions, "initial_prompt": Q.INITIAL_PROMPT,
            "accuracy_before": acc["initial"], "frameworks": summary,
            "seconds": {"model_load": round(load_s, 1), "eval": round(eval_s, 1)}}


def table(result: dict) -> str:
    p = result["params"]
    rows = [f"BBH object counting, seed {p['seed']}, {p['n_train']} train rows (batch {p['batch']} x {p['steps']} "
            f"steps), {p['n_test']} test rows, {p['model']}, max {p['max_tokens']} new tokens",
            f"{'framework':<10}{'acc before':>11}{'acc after':>10}{'calls':>7}{'prompt tok':>12}{'compl tok':>11}"
            f"{'train s':>9}  step errors"]
    for name, s in result["frameworks"].items():
        rows.append(f"{name:<10}{s['accuracy_before']:>11.3f}{s['accuracy_after']:>10.3f}{s['train_calls']:>7}"
                    f"{s['train_prompt_tokens']:>12}{s['train_completion_tokens']:>11}{s['train_wall_s']:>9.1f}  "
                    f"{len(s['step_errors'])}")
    return "\n".join(rows)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--test", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64, help="cap on new tokens per answer (both frameworks)")
    ap.add_argument("--textopt-native", action="store_true",
                    help="also run textopt on its in-process local engine (prefill + stop), outside the server")
    ap.add_argument("--model", default="local", help="local engine spec: 'local' (bundled) or 'local:PATH'")
    ap.add_argument("--data", help="object_counting.json (default: shared/datasets/bbh/)")
    ap.add_argument("--only", choices=["textopt", "textgrad"])
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    result = run(args)
    print(table(result))
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
