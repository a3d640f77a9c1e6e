"""Scale-out figures: Ray against in-process evaluation, the replica router's cost, shared-cache latency,
checkpoint bytes per stored evaluation. The inputs of ``docs/scaling.md``.

    .venv/bin/python benchmarks/scaling.py [--n-instant 2000] [--n-code 32] [--n-gil 48] [--reps 3]
    .venv/bin/python benchmarks/scaling.py --only router,cache,checkpoint     # no Ray

Sections (each prints a table; one ``RESULT_JSON {...}`` line at the end):
- ``ray``: one evaluation (``textopt.parallel.amap``, the loop of the Trainer, the searches and ``textopt eval``)
  of N examples in-process and with ``executor="ray"`` on a local runtime (``ray.init(num_cpus=2)``), warm
  (workers started and engines built by a first run, not timed), the run with the best wall time of ``--reps``,
  with the CPU time of the whole process tree in that run (Ray's raylet, GCS and workers, sandbox processes). Three workloads: an
  instant engine + exact match (pure framework cost), the sandboxed code tests (``CodeTestsLoss``: a process
  per example, parallel in-process too), and a GIL-bound pure-Python metric (20 ms of Python per example).
  Reports wall and CPU ms per example both ways, Ray's CPU overhead per example, and one evaluation of N=1.
  On a shared machine the CPU figures are the stable ones (wall time depends on what else runs).
- ``sdk``: this process's CPU per call through the official OpenAI SDK over HTTP (three loopback servers in
  another process; one engine, then a ``RoutedEngine`` over the three) and calls per second.
- ``router``: CPU microseconds per call of a bare engine against a ``RoutedEngine`` over three such engines
  (instant answers: what routing itself costs).
- ``cache``: microseconds per cache hit through ``Engine.generate`` (this process's CPU, and wall — which for
  Redis includes the round trip to a local redis-server started here, when installed): memory, disk, Redis.
- ``checkpoint``: bytes a search checkpoint grows by per stored evaluation (score, feedback, trace).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

import textopt as tx  # noqa: E402
from textopt.engines import Request, RoutedEngine, ScriptedEngine  # noqa: E402
from textopt.parallel import amap  # noqa: E402
from textopt.runtime import run_sync  # noqa: E402
from textopt.data import Example  # noqa: E402
from textopt.train.evaluate import ScoreExample, make_scorer  # noqa: E402

from common import emit, machine  # noqa: E402  (benchmarks/common.py)


def timed(fn, reps: int, cpu: bool = False) -> float:
    """Best of ``reps`` (the machine is shared: the fastest run is the least disturbed one) — wall seconds, or
    with ``cpu`` this process's CPU seconds (what a call costs a core, whatever else runs)."""
    clock = time.process_time if cpu else time.perf_counter
    times = []
    for _ in range(reps):
        t = clock()
        fn()
        times.append(clock() - t)
    return min(times)


# -- workloads (picklable: they travel to Ray workers) -----------------------------------------------------------
class CodeJob:
    """Score candidate code with the sandboxed unit tests (a subprocess per example)."""

    def __init__(self):
        self.loss = tx.nn.CodeTestsLoss(tests="assert add(2, 3) == 5\nassert add(-1, 1) == 0\n", timeout=20)

    async def __call__(self, ex):
        return (await self.loss.acall(ex.x)).meta["score"]


class GilJob:
    """A metric written in pure Python (a simulator, a parser...): ``ms`` of CPU under the GIL per example."""

    def __init__(self, ms: float):
        self.ms = ms

    async def __call__(self, ex):
        end, n = time.process_time() + self.ms / 1000, 0
        while time.process_time() < end:
            n += 1
        return float(len(ex.x) % 2)


def tree_cpu() -> float:
    """CPU seconds used so far by this process and every live descendant (Ray's raylet, GCS and workers), each
    with the children it has reaped (sandbox processes)."""
    import psutil
    total = 0.0
    for proc in [psutil.Process()] + psutil.Process().children(recursive=True):
        try:
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def measure(fn, reps: int) -> tuple[float, float]:
    """(best wall seconds, CPU seconds of the whole process tree in that run)."""
    best = None
    for _ in range(reps):
        c, t = tree_cpu(), time.perf_counter()
        fn()
        wall, cpu = time.perf_counter() - t, tree_cpu() - c
        if best is None or wall < best[0]:
            best = (wall, cpu)
    return best


def ray_section(args) -> dict:
    import ray
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20)
    start_s = time.perf_counter() - t
    engine = ScriptedEngine("4")
    solver = tx.nn.LLMCall(engine, system_prompt=tx.Variable("Answer.", role="system prompt"))
    instant = ScoreExample(solver, make_scorer(None, tx.nn.ExactMatch()))
    workloads = {
        "instant engine + exact match": (instant, [Example(f"{i}+{i}?", "4") for i in range(args.n_instant)]),
        "sandboxed code tests": (CodeJob(), [Example("def add(a, b):\n    return a + b\n", None)] * args.n_code),
        f"pure-Python metric ({args.gil_ms:g} ms)": (GilJob(args.gil_ms), [Example(f"x{i}", None)
                                                                           for i in range(args.n_gil)]),
    }
    out = {"ray_version": ray.__version__, "ray_start_s": round(start_s, 2), "workloads": {}}
    print(f"\nRay {ray.__version__}: local runtime, 2 CPUs, started in {start_s:.1f} s")
    print(f"{'workload':<34}{'N':>6}{'wall ms/ex':>22}{'CPU ms/ex (all processes)':>30}")
    print(f"{'':<40}{'local':>10}{'ray':>10}{'local':>12}{'ray':>10}{'overhead':>10}")
    for name, (job, items) in workloads.items():
        def local():
            return run_sync(amap(job, items, concurrency=8))

        def remote():
            return run_sync(amap(job, items, concurrency=8, executor="ray"))
        assert local() == remote()                      # the same results (and warm workers)
        (w_l, c_l), (w_r, c_r) = measure(local, args.reps), measure(remote, args.reps)
        n = len(items)
        row = {"n": n, "local_wall_ms_per_ex": round(w_l / n * 1e3, 3), "ray_wall_ms_per_ex": round(w_r / n * 1e3, 3),
               "local_cpu_ms_per_ex": round(c_l / n * 1e3, 3), "ray_cpu_ms_per_ex": round(c_r / n * 1e3, 3),
               "cpu_overhead_ms_per_ex": round((c_r - c_l) / n * 1e3, 3), "wall_speedup": round(w_l / w_r, 3)}
        out["workloads"][name] = row
        print(f"{name:<34}{n:>6}{row['local_wall_ms_per_ex']:>10}{row['ray_wall_ms_per_ex']:>10}"
              f"{row['local_cpu_ms_per_ex']:>12}{row['ray_cpu_ms_per_ex']:>10}{row['cpu_overhead_ms_per_ex']:>10}")
    one, k = [Example("1+1?", "4")], 50

    def singles():   # 50 evaluations of one example each (CPU clocks tick every 10 ms: measure many)
        for _ in range(k):
            run_sync(amap(instant, one, executor="ray"))
    wall, cpu = measure(singles, args.reps)
    out["fixed_per_evaluation"] = {"wall_ms": round(wall / k * 1e3, 2), "cpu_ms": round(cpu / k * 1e3, 2)}
    print(f"one evaluation of N=1 through Ray: {wall / k * 1e3:.1f} ms wall, {cpu / k * 1e3:.1f} ms CPU")
    ray.shutdown()
    return out


def router_section(args) -> dict:
    n = args.n_calls

    def per_call(engine) -> float:
        async def batch():
            for i in range(0, n, 50):   # 50 in flight at a time, as a batch of forward calls would be
                await asyncio.gather(*(engine.generate(Request.chat(f"q{j}")) for j in range(i, i + 50)))
        return timed(lambda: asyncio.run(batch()), args.reps, cpu=True) / n * 1e6
    bare = per_call(ScriptedEngine("ok", max_concurrency=64))
    routed = per_call(RoutedEngine([ScriptedEngine("ok", model="m", max_concurrency=64, name=f"r{i}")
                                    for i in range(3)]))
    print(f"\nrouter (CPU us per call): bare engine {bare:.1f}, RoutedEngine over 3 replicas {routed:.1f} "
          f"(+{routed - bare:.1f})")
    return {"bare_cpu_us_per_call": round(bare, 2), "routed_cpu_us_per_call": round(routed, 2),
            "routing_cpu_us_per_call": round(routed - bare, 2)}


def cache_section(args) -> dict:
    from textopt.testing.redis_server import RedisServer, missing
    n, out = args.n_hits, {}
    with tempfile.TemporaryDirectory() as tmp:
        kinds = {"memory": "memory", "disk": str(Path(tmp) / "c")}
        server = None
        if missing() is None:
            server = RedisServer().start()
            kinds["redis"] = server.url
        try:
            for name, cache in kinds.items():
                engine = ScriptedEngine("ok", cache=cache)
                reqs = [Request.chat(f"q{i}") for i in range(n)]
                for r in reqs:
                    engine.generate_sync(r)                   # fill (misses)

                async def hits():
                    for r in reqs:
                        await engine.generate(r)
                out[f"{name}_cpu_us_per_hit"] = round(timed(lambda: asyncio.run(hits()), args.reps, cpu=True)
                                                      / n * 1e6, 1)
                out[f"{name}_wall_us_per_hit"] = round(timed(lambda: asyncio.run(hits()), args.reps) / n * 1e6, 1)
        finally:
            if server is not None:
                server.stop()
    if "redis_wall_us_per_hit" not in out:
        out["redis"] = "skipped: " + str(missing())
    print("\ncache hit through Engine.generate: " + ", ".join(f"{k} {v}" for k, v in out.items()))
    return out


def checkpoint_section(args) -> dict:
    from textopt.optim.store import CandidateStore, Evaluation
    store = CandidateStore()
    h = store.add({"system_prompt": "Answer the question. Give the count first."})
    for i in range(1000):
        store.put(h, "val", str(i), Evaluation({"score": 1.0}, {"score": "Correct: the count 7 comes first."},
                                               {"input": f"I have two apples and a dog ... question {i}",
                                                "output": "7. Let me count."}))
    size = len(json.dumps(store.state_dict()))
    per = size / 1000
    print(f"\ncheckpoint: {per:.0f} bytes per stored evaluation (short trace; grows with the trace)")
    return {"bytes_per_evaluation": round(per)}


SERVERS = """
import sys, time
from textopt.testing import LoopbackServer
servers = [LoopbackServer("ok").start() for _ in range(int(sys.argv[1]))]
print(",".join(s.openai_base_url for s in servers), flush=True)
sys.stdin.read()
"""


def sdk_section(args) -> dict:
    """Client CPU per HTTP call through the official OpenAI SDK (the servers live in another process)."""
    import subprocess
    proc = subprocess.Popen([sys.executable, "-c", SERVERS, "3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={"PYTHONPATH": str(Path(__file__).resolve().parents[1]),
                                            "PATH": "/usr/bin:/bin"})
    try:
        urls = proc.stdout.readline().strip().split(",")
        n, out = args.n_http, {}
        for name, engine in (("one server", tx.get_engine(f"openai:{urls[0]}#m", max_concurrency=32, cache=False)),
                             ("router over 3", RoutedEngine.from_urls(urls, "m", max_concurrency=32, cache=False))):
            async def batch():
                await asyncio.gather(*(engine.generate(Request.chat(f"q{i}")) for i in range(n)))
            asyncio.run(batch())                                  # warm: connections, clients
            cpu = timed(lambda: asyncio.run(batch()), args.reps, cpu=True) / n * 1e6
            wall = timed(lambda: asyncio.run(batch()), args.reps)
            out[name] = {"client_cpu_us_per_call": round(cpu, 1), "calls_per_s": round(n / wall, 1)}
            print(f"\nOpenAI SDK over HTTP, {name}: {cpu:.0f} us client CPU per call, {n / wall:.0f} calls/s")
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
    return out


SECTIONS = {"sdk": sdk_section, "ray": ray_section, "router": router_section, "cache": cache_section, "checkpoint": checkpoint_section}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ", ".join(SECTIONS))
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--n-instant", type=int, default=2000)
    p.add_argument("--n-code", type=int, default=32)
    p.add_argument("--n-gil", type=int, default=48)
    p.add_argument("--gil-ms", type=float, default=20.0)
    p.add_argument("--n-calls", type=int, default=5000)
    p.add_argument("--n-hits", type=int, default=2000)
    p.add_argument("--n-http", type=int, default=600)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    result = {"benchmark": "scaling", "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine()}
    for name in args.only.split(","):
        result[name] = SECTIONS[name](args)
    result["machine_after"] = machine()
    emit(result, args.json)


if __name__ == "__main__":
    main()
