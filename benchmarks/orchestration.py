"""Orchestration benchmark: the same two-stage pipeline in textopt and in TextGrad 0.1.8, side by side.

    .venv/bin/python benchmarks/orchestration.py [--reps 5] [--latency 0.2] [--batch 8] [--only textopt]
                                                 [--shape gather|plain]

A loopback OpenAI-compatible server (``textopt.testing.LoopbackServer``: one thread per connection, so unlimited
parallelism) answers every request after ``--latency`` seconds with deterministic texts both frameworks parse
(``benchmarks/workers/workload.py``). Workload: learnable system prompt -> solver call -> judge loss, batch of
``--batch``, one backward, one optimizer step. One untimed warm-up run per framework, then
repetitions alternate the framework order. Calls and tokens are
counted by the server (one rule for both). Prints a table and a ``RESULT_JSON`` line (``--json`` writes a file).

``--shape gather`` (default): textopt's forward is ``asyncio.gather`` over ``await module.acall(...)`` and the
losses are joined by ``tx.aggregate``. ``--shape plain``: textopt runs the plain synchronous loop a new user
writes (``y = solver(x); losses.append(judge(y))``, ``tx.concat(losses).backward()``, ``opt.step()``): lazy calls
(``textopt.lazy``) make it concurrent. TextGrad runs its own plain loop in both.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent / "workers"), str(Path(__file__).resolve().parents[1])]

import workload as W  # noqa: E402
from common import Meter, alternate, emit, machine, median, metered, ratio, start_workers  # noqa: E402
from textopt.testing import LoopbackServer, wire  # noqa: E402

TARGET_WALL_RATIO = 0.2


def classify(body: dict) -> tuple[str, str]:
    return W.classify(wire.messages_of(body))


def run(args) -> dict:
    meter = Meter()
    runs: dict[str, list[dict]] = {}
    with LoopbackServer(metered(classify, meter), latency=args.latency) as srv:
        workers = start_workers(args.only, "orchestration")
        try:
            names = list(workers)
            for w in range(args.warmup):  # untimed: SDK clients, connection pools, lazy imports of both
                for name in names:
                    workers[name].run({"base_url": srv.openai_base_url, "batch": args.batch, "rep": 10_000 + w,
                                       "forward_threads": args.textgrad_forward_threads, "shape": args.shape})
            for rep in range(args.reps):
                for name in alternate(names, rep):
                    meter.reset()
                    srv.reset()
                    job = {"base_url": srv.openai_base_url, "batch": args.batch, "rep": rep,
                           "forward_threads": args.textgrad_forward_threads, "shape": args.shape}
                    t0 = time.perf_counter()
                    out = workers[name].run(job)
                    out["driver_wall_s"] = time.perf_counter() - t0
                    out.update(meter.snapshot())
                    out["peak_concurrency"] = srv.max_concurrency
                    runs.setdefault(name, []).append(out)
            versions = {n: w.versions for n, w in workers.items()}
        finally:
            for w in workers.values():
                w.close()
    summary = {}
    for name, rs in runs.items():
        last = rs[-1]
        summary[name] = {"wall_s_median": round(median([r["wall_s"] for r in rs]), 4),
                         "wall_s_min": round(min(r["wall_s"] for r in rs), 4),
                         "wall_s_all": [round(r["wall_s"], 4) for r in rs],
                         "phases_s_all": [[round(r[k], 3) for k in ("forward_s", "backward_s", "step_s")] for r in rs],
                         "forward_s": round(median([r["forward_s"] for r in rs]), 4),
                         "backward_s": round(median([r["backward_s"] for r in rs]), 4),
                         "step_s": round(median([r["step_s"] for r in rs]), 4),
                         "calls": last["calls"], "prompt_tokens": last["prompt_tokens"],
                         "completion_tokens": last["completion_tokens"], "calls_by_kind": last["by_kind"],
                         "peak_concurrency": last["peak_concurrency"],
                         "optimizer_applied": all(r["new_prompt_ok"] for r in rs),
                         "same_counts_every_rep": len({(r["calls"], r["prompt_tokens"], r["completion_tokens"])
                                                       for r in rs}) == 1}
    result = {"benchmark": "orchestration", "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
              "params": {"reps": args.reps, "warmup": args.warmup, "latency_s": args.latency, "batch": args.batch,
                         "shape": args.shape,
                         "textgrad_forward_threads": args.textgrad_forward_threads},
              "versions": versions, "frameworks": summary}
    if "textopt" in summary and "textgrad" in summary:
        a, b = summary["textopt"], summary["textgrad"]
        result["ratios_textopt_over_textgrad"] = {
            k: ratio(a[k], b[k]) for k in ("wall_s_median", "calls", "prompt_tokens", "completion_tokens")}
        r = result["ratios_textopt_over_textgrad"]
        result["target_met"] = bool(r["wall_s_median"] is not None and r["wall_s_median"] <= TARGET_WALL_RATIO
                                    and a["calls"] <= b["calls"] and a["prompt_tokens"] <= b["prompt_tokens"]
                                    and a["completion_tokens"] <= b["completion_tokens"])
    return result


def table(result: dict) -> str:
    rows = [f"{'framework':<10}{'wall s':>9}{'fwd s':>8}{'bwd s':>8}{'step s':>8}{'calls':>7}{'prompt tok':>12}"
            f"{'compl tok':>11}{'peak par':>9}"]
    for name, s in result["frameworks"].items():
        rows.append(f"{name:<10}{s['wall_s_median']:>9.3f}{s['forward_s']:>8.3f}{s['backward_s']:>8.3f}"
                    f"{s['step_s']:>8.3f}{s['calls']:>7}{s['prompt_tokens']:>12}{s['completion_tokens']:>11}"
                    f"{s['peak_concurrency']:>9}")
    if "ratios_textopt_over_textgrad" in result:
        r = result["ratios_textopt_over_textgrad"]
        rows.append(f"textopt/textgrad: wall {r['wall_s_median']}, calls {r['calls']}, prompt tokens "
                    f"{r['prompt_tokens']}, completion tokens {r['completion_tokens']} -> target "
                    f"{'MET' if result['target_met'] else 'MISSED'} (wall <= {TARGET_WALL_RATIO}x, no more calls or "
                    f"tokens)")
    return "\n".join(rows)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5, help="repetitions per framework (alternating order)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs per framework")
    ap.add_argument("--latency", type=float, default=0.2, help="server latency per request, seconds")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--shape", choices=["gather", "plain"], default="gather",
                    help="textopt's code: asyncio.gather (default) or the plain synchronous loop")
    ap.add_argument("--only", choices=["textopt", "textgrad"], help="run one framework only")
    ap.add_argument("--textgrad-forward-threads", type=int, default=1,
                    help="TextGrad forward in a thread pool of this size (1 = the loop its examples use)")
    ap.add_argument("--json", help="also write the result to this file")
    args = ap.parse_args(argv)
    result = run(args)
    print(table(result))
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
