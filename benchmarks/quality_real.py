"""Quality on a real model: textopt, TextGrad 0.1.8 and GEPA 0.1.4 optimizing the same prompt, side by side.

    .venv/bin/python benchmarks/quality_real.py                       # start the reference server, run all
    .venv/bin/python benchmarks/quality_real.py --engine-url http://127.0.0.1:8090/v1 --runs textgrad,gepa
    .venv/bin/python benchmarks/quality_real.py --report              # the table from the saved runs only

Everything answers from ONE model server (``reference_server.py``: Qwen2.5-Coder-1.5B-Instruct Q4_K_M under
llama.cpp's ``llama-server``) through ``real_proxy.MeteringProxy``, which meters each run identically (calls and
the server's own token counts) and caches answers on disk so a rerun costs no model time. Forward, feedback and
optimizer roles all use that model, for every framework.

Data: BBH ``object_counting`` from ``../shared/datasets/bbh``, split by textopt's seeded ``Task.splits`` (default
30 train / 30 val / 60 test, ``--seed``). Every run starts from the task's own prompt and sees train + val only.
The test split is scored by ONE evaluator for all runs (textopt's task solver and metric, 8 concurrent calls),
for the initial prompt and each run's final prompt; those calls are metered apart ("test").

Runs (``--runs``; each in its own process, results saved to ``--out/seed<S>/<run>.json`` as they finish):
- ``tx_tgd``: textopt TGD through the Trainer (validation-gated) — ``workers/qr_textopt.py``;
- ``tx_null``: the same with null gradients (control: what the feedback itself brings);
- ``tx_<search>``: a textopt search optimizer (``tx_beam``, ``tx_pareto``, ``tx_opro``), ``--max-metric-calls``;
- ``textgrad``: TextGrad's own prompt-optimization recipe (``workers/qr_textgrad.py``, its venv);
- ``gepa``: ``gepa.optimize`` with its default adapter (``workers/qr_gepa.py``, its venv).
The call cap (``--call-cap``) is what the configurations are sized to; the table reports the calls each run made.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE / "workers"), str(HERE), str(HERE.parent)]

from common import Worker, machine  # noqa: E402
from real_proxy import MeteringProxy  # noqa: E402

DATA = HERE.parents[1] / "shared" / "datasets" / "bbh"
GEPA_PY = HERE / ".venv-gepa" / "bin" / "python"
TEXTGRAD_PY = HERE / ".venv-textgrad" / "bin" / "python"
DEFAULT_RUNS = "tx_tgd,tx_null,tx_pareto,textgrad,gepa"


def splits(args):
    from qr_textopt import job_rows
    from textopt.tasks import get_task
    task = get_task(args.task, str(args.data))
    task.max_tokens = args.answer_tokens
    s = task.splits(*args.sizes, seed=args.seed)
    return task, job_rows(s.train), job_rows(s.val), s.test


def evaluate_test(task, url: str, model: str, prompt: str, test, cache_dir: Path, record: Path | None = None) -> dict:
    """The one evaluator: textopt's task solver + metric on the test split (8 concurrent calls); ``record``
    keeps its calls as a cassette (a test replays them to check the reported figure)."""
    import textopt as tx
    from textopt.runs import evaluate_prompt
    if record is not None:
        record.unlink(missing_ok=True)
    engine = tx.get_engine(f"openai:{url}#{model}", cache=str(cache_dir), record=record)
    score, rows = evaluate_prompt(task, engine, prompt, test, concurrency=8, progress=False)
    return {"accuracy": score, "correct": sum(r["score"] >= 1 for r in rows), "n": len(rows),
            "answer_line": sum("answer:" in r["response"].lower() for r in rows)}


def epoch(run_dir: Path, run: str, fresh: bool) -> str:
    """The proxy-cache namespace of ``run``: ``run.N``, N bumped by ``--fresh`` (a run that must not reuse the
    answers an earlier attempt of it got); a plain rerun reuses the latest namespace and costs nothing."""
    path = run_dir / "epochs.json"
    epochs = json.loads(path.read_text()) if path.exists() else {}
    if fresh:
        epochs[run] = epochs.get(run, 0) + 1
        path.write_text(json.dumps(epochs, indent=1))
    return f"{run}.{epochs.get(run, 0)}"


def job_for(run: str, args, proxy: MeteringProxy, task, train, val, run_dir: Path, ns: str) -> tuple[str, Path, dict]:
    base = {"train": train, "val": val, "seed": args.seed, "batch": args.batch, "model": args.model,
            "initial_prompt": task.initial_prompt, "metric": "number", "base_url": proxy.url_for(ns)}
    if run.startswith("tx_"):
        mode = {"tx_tgd": "tgd", "tx_null": "null"}.get(run, "search:" + run[3:])
        record = str(run_dir / f"{run}.cassette.jsonl") if run == "tx_tgd" else None
        if record:
            Path(record).unlink(missing_ok=True)
        job = {**base, "mode": mode, "task": args.task, "data": str(args.data), "steps": args.tx_steps,
               "spec": f"openai:{proxy.url_for(ns)}#{args.model}", "cache_dir": str(run_dir / f"cache-{ns}"),
               "out_dir": str(run_dir / f"trainer-{run}"), "record": record,
               "max_metric_calls": args.max_metric_calls, "answer_tokens": args.answer_tokens,
               "tgd_options": args.tgd_options, "extend": str(args.extend) if args.extend else None}
        return "textopt", HERE / "workers" / "qr_textopt.py", job
    if run == "textgrad":
        return "textgrad", TEXTGRAD_PY, {**base, "steps": args.steps}
    if run == "gepa":
        return "gepa", GEPA_PY, {**base, "max_metric_calls": args.max_metric_calls}
    raise SystemExit(f"unknown run {run!r}")


def run_one(run: str, args, proxy, task, train, val, test, run_dir: Path) -> dict:
    ns = epoch(run_dir, run, args.fresh)
    kind, python, job = job_for(run, args, proxy, task, train, val, run_dir, ns)
    script = HERE / "workers" / {"textopt": "qr_textopt.py", "textgrad": "qr_textgrad.py", "gepa": "qr_gepa.py"}[kind]
    if kind != "textopt" and not Path(python).exists():
        raise SystemExit(f"{python} is missing: run bash benchmarks/setup_{kind}.sh")
    print(f"[{time.strftime('%H:%M:%S')}] {run}: start", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    with Worker(kind, sys.executable if kind == "textopt" else python, script,
                env={"TEXTGRAD_LOG_DIR": str(run_dir / "tg-logs")}) as w:
        out = w.run(job)
        versions = w.versions
    wall = time.perf_counter() - t0
    meter = proxy.meter(ns).as_dict()
    test_after = evaluate_test(task, proxy.url_for("test"), args.model, out["final_prompt"], test,
                               run_dir / "cache-test", run_dir / f"{run}.test.cassette.jsonl")
    result = {"run": run, "versions": versions, "config": run_config(args), "wall_s": round(wall, 1), "calls": meter,
              "test_after": test_after, **out}
    print(f"[{time.strftime('%H:%M:%S')}] {run}: test {test_after['accuracy']:.3f}, {meter['calls']} calls, "
          f"{wall:.0f} s", file=sys.stderr, flush=True)
    return result


def run_config(args) -> dict:
    return {"sizes": args.sizes, "seed": args.seed, "batch": args.batch, "steps": args.steps, "tx_steps": args.tx_steps,
            "max_metric_calls": args.max_metric_calls, "answer_tokens": args.answer_tokens, "model": args.model,
            "tgd_options": args.tgd_options, **({"extends": args.extend.name} if args.extend else {})}


def report(run_dir: Path, args) -> dict:
    base = json.loads((run_dir / "baseline.json").read_text()) if (run_dir / "baseline.json").exists() else None
    results = {p.stem: json.loads(p.read_text()) for p in sorted(run_dir.glob("*.json"))
               if p.stem not in ("baseline", "summary", "epochs") and not p.stem.startswith("retest")}
    before = base["test"]["accuracy"] if base else None
    lines = [f"BBH {args.task}, seed {args.seed}, sizes {args.sizes} (train/val/test), model {args.model}",
             f"{'run':<11}{'test before':>12}{'test after':>11}{'gain':>7}{'val best':>9}{'calls':>7}"
             f"{'cached':>7}{'prompt tok':>11}{'compl tok':>10}{'wall s':>8}"]
    for name, r in results.items():
        acc = r["test_after"]["accuracy"]
        c = r["calls"]
        gain = f"{100 * (acc - before):+6.1f}" if before is not None else "     -"
        lines.append(f"{name:<11}{100 * before if before is not None else float('nan'):>11.1f}%{100 * acc:>10.1f}%"
                     f"{gain:>7}{100 * (r.get('best_val') or 0):>8.1f}%{c['calls']:>7}{c['cached']:>7}"
                     f"{c['prompt_tokens']:>11}{c['completion_tokens']:>10}{r['wall_s']:>8.0f}")
    summary = {"task": args.task, "seed": args.seed, "sizes": args.sizes, "model": args.model, "baseline": base,
               "runs": results, "machine": machine()}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    print("\n".join(lines))
    print("RESULT_JSON " + json.dumps({"baseline": before, "runs": {
        n: {"test_after": r["test_after"]["accuracy"], "calls": r["calls"]["calls"], "wall_s": r["wall_s"]}
        for n, r in results.items()}}))
    return summary


def retest(run_dir: Path, args, task, test) -> int:
    """One more fresh test evaluation of the start prompt and of each finished run's final prompt (the server
    answers the same request differently from one evaluation to the next, so one evaluation is not the figure)."""
    import tempfile
    if args.engine_url is None:
        raise SystemExit("--retest needs --engine-url (a running server)")
    prompts = {}
    for run in [r.strip() for r in args.runs.split(",") if r.strip()]:
        if run == "baseline":
            prompts[run] = task.initial_prompt
        elif (run_dir / f"{run}.json").exists():
            prompts[run] = json.loads((run_dir / f"{run}.json").read_text())["final_prompt"]
    out = run_dir / f"retest-{args.retest}.json"
    done = json.loads(out.read_text()) if out.exists() else {}
    for name, prompt in prompts.items():
        if name in done:
            continue
        t0 = time.time()
        with tempfile.TemporaryDirectory() as cache:
            result = evaluate_test(task, args.engine_url, args.model, prompt, test, Path(cache))
        done[name] = {**result, "wall_s": round(time.time() - t0), "note": "fresh evaluation, no cache, direct to "
                      "the server"}
        out.write_text(json.dumps(done, indent=1))   # after each: an interrupted retest keeps what it measured
        print(f"[retest {args.retest}] {name}: {100 * result['accuracy']:.1f}%", file=sys.stderr, flush=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine-url", default=None, help="a running server's /v1 URL (default: start the reference)")
    ap.add_argument("--model", default="qwen15", help="the model name the server serves (reference: qwen15)")
    ap.add_argument("--runs", default=DEFAULT_RUNS)
    ap.add_argument("--task", default="object_counting")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[30, 30, 60])
    ap.add_argument("--batch", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6, help="TextGrad's steps (its recipe validates every step)")
    ap.add_argument("--tx-steps", type=int, default=12,
                    help="textopt's TGD steps and search iterations at most (a step whose proposal fails the "
                         "minibatch screen costs ~10 calls, not the val split: more steps fit the same cap)")
    ap.add_argument("--max-metric-calls", type=int, default=240, help="GEPA's and textopt search's budget")
    ap.add_argument("--answer-tokens", type=int, default=512,
                    help="cap on a solver's answer for textopt's runs and the test evaluator (the server caps "
                         "every answer at 1024 tokens for the frameworks that send no cap)")
    ap.add_argument("--tgd-options", type=json.loads, default={},
                    help='textopt TGD options of tx_tgd/tx_null as JSON, e.g. \'{"edit": "add"}\'')
    ap.add_argument("--extend", type=Path, default=None,
                    help="tx_tgd: a cassette of an earlier run of the same seed; its recorded calls replay and only "
                         "the calls the changed code makes go to the server (reported apart: 'calls' counts those)")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "quality_real")
    ap.add_argument("--rerun", action="store_true", help="run again runs whose result file exists")
    ap.add_argument("--fresh", action="store_true",
                    help="with --rerun: a new cache namespace for the runs (no answer of an earlier attempt reused)")
    ap.add_argument("--report", action="store_true", help="print the table of the saved runs and exit")
    ap.add_argument("--retest", default=None, metavar="LABEL",
                    help="evaluate the final prompt of each run in --runs (\"baseline\": the start prompt) once more "
                         "on the test split, fresh (no cache, straight to the server: its answers vary between evaluations), "
                         "into retest-LABEL.json; then exit")
    args = ap.parse_args(argv)
    run_dir = args.out / f"{args.task}-seed{args.seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    if args.report:
        report(run_dir, args)
        return 0
    task, train, val, test = splits(args)
    if args.retest:
        return retest(run_dir, args, task, test)
    server = None
    if args.engine_url is None:
        from reference_server import ReferenceServer
        server = ReferenceServer().start()
        url = server.base_url
    else:
        url = args.engine_url
    try:
        with MeteringProxy(url, args.out / "proxy-cache") as proxy:
            base_path = run_dir / "baseline.json"
            if not base_path.exists() or args.rerun or not (run_dir / "baseline.test.cassette.jsonl").exists():
                base = {"prompt": task.initial_prompt, "test": evaluate_test(
                    task, proxy.url_for("test"), args.model, task.initial_prompt, test, run_dir / "cache-test",
                    run_dir / "baseline.test.cassette.jsonl")}
                base_path.write_text(json.dumps(base, indent=1))
                print(f"baseline test accuracy {base['test']['accuracy']:.3f}", file=sys.stderr, flush=True)
            for run in [r.strip() for r in args.runs.split(",") if r.strip()]:
                path = run_dir / f"{run}.json"
                if path.exists() and not args.rerun:
                    saved = json.loads(path.read_text())
                    if not (run_dir / f"{run}.test.cassette.jsonl").exists():   # saved before cassettes existed
                        evaluate_test(task, proxy.url_for("test"), args.model, saved["final_prompt"], test,
                                      run_dir / "cache-test", run_dir / f"{run}.test.cassette.jsonl")
                    if "config" not in saved:   # saved before configs were: the same command line is assumed
                        path.write_text(json.dumps({**saved, "config": run_config(args)}, indent=1,
                                                   ensure_ascii=False))
                    continue
                result = run_one(run, args, proxy, task, train, val, test, run_dir)
                path.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    finally:
        if server is not None:
            server.stop()
    report(run_dir, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
