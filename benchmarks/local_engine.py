"""Local engine figures: cold load (GGUF conversion + cache write), warm load (from the converted cache), decode
speed for one row, a micro-batch of 8, and 8 JSON-constrained rows.

    .venv/bin/python benchmarks/local_engine.py            # cold load uses a fresh temporary cache folder

Each load runs in its own fresh process, so imports are counted the same way in both and nothing is shared.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import asyncio, json, sys, time
t0 = time.perf_counter()
from textopt.engines.local import LocalEngine
from textopt.engines import Request
eng = LocalEngine(cache=False)
info = eng.load()
out = {"load_s": round(time.perf_counter() - t0, 2), "weights_s": info["load_s"], "from_cache": info["from_cache"], "device": info["device"],
       "threads": eng.threads}
if sys.argv[1] == "speed":
    async def timed(reqs):
        t = time.perf_counter()
        rs = await asyncio.gather(*(eng.generate(r) for r in reqs))
        return sum(r.completion_tokens for r in rs) / (time.perf_counter() - t)
    one = [Request.chat("Write a short poem about the sea.", max_tokens=32)]
    eight = [Request.chat(f"Write a short poem about topic number {i}.", max_tokens=32) for i in range(8)]
    schema = {"type": "object", "properties": {"title": {"type": "string", "maxLength": 40},
              "lines": {"type": "integer"}, "sad": {"type": "boolean"}}, "required": ["title", "lines", "sad"]}
    js = [Request.chat(f"Describe poem number {i} as JSON.", max_tokens=32, schema=schema) for i in range(8)]
    asyncio.run(timed([Request.chat("warm up", max_tokens=2)]))
    out["tok_s_1_row"] = round(asyncio.run(timed(one)), 1)
    out["tok_s_8_rows"] = round(asyncio.run(timed(eight)), 1)
    out["tok_s_8_json_rows"] = round(asyncio.run(timed(js)), 1)
print(json.dumps(out))
"""


def child(mode: str, cache_dir: str) -> dict:
    env = {**os.environ, "TEXTOPT_CACHE_DIR": cache_dir, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", CHILD, mode], env=env, capture_output=True, text=True, cwd=ROOT)
    if res.returncode:
        raise SystemExit(res.stderr[-3000:])
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["process_s"] = round(time.perf_counter() - t, 2)
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cold = child("load", tmp)
        warm = child("speed", tmp)
    print(json.dumps({"cold": cold, "warm": warm, "load_avg": os.getloadavg()[0], "cpus": os.cpu_count()}, indent=1))


if __name__ == "__main__":
    main()
