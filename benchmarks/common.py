"""Shared pieces of the benchmarks: a metered loopback server, persistent framework workers, small stats.

Every LLM call of BOTH frameworks reaches the same ``textopt.testing.LoopbackServer`` (a real HTTP server speaking
the OpenAI wire format), so calls and tokens are counted server-side with one rule (the server's own: prompt =
characters of all messages / 4, completion = words of the answer as sent).

Each framework runs in its own persistent worker process (textopt in the project's venv, TextGrad 0.1.8 in
``benchmarks/.venv-textgrad``): the main process sends one JSON line per repetition on the worker's stdin and
reads one JSON line back. Imports and process start are paid once and never timed; the server lives in the main
process, outside both workers.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TEXTGRAD_VENV = Path(os.environ.get("TEXTGRAD_VENV", HERE / ".venv-textgrad"))
TEXTGRAD_PY = TEXTGRAD_VENV / "bin" / "python"
WORKERS = HERE / "workers"


def textgrad_available() -> bool:
    return TEXTGRAD_PY.exists()


# -- metering ---------------------------------------------------------------------------------------------------
class Meter:
    """Counts what the server answered: calls, prompt and completion tokens (server-side, one rule for all)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.calls = 0
            self.prompt_tokens = 0
            self.completion_tokens = 0
            self.kinds: dict[str, int] = {}

    def add(self, kind: str, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            self.calls += 1
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def snapshot(self) -> dict:
        with self._lock:
            return {"calls": self.calls, "prompt_tokens": self.prompt_tokens,
                    "completion_tokens": self.completion_tokens, "by_kind": dict(sorted(self.kinds.items()))}


def metered(classify: Callable[[dict], tuple[str, str]], meter: Meter) -> Callable[[dict], str]:
    """Wrap ``classify(body) -> (kind, answer)`` into a LoopbackServer responder that meters every answer as the
    server will send it (prefill removed, cut at stop sequences and max_tokens)."""
    from textopt.testing import wire

    def responder(body: dict) -> str:
        kind, answer = classify(body)
        sent, _, _ = wire.shape_answer(answer, body, wire.OPENAI_PATH)
        meter.add(kind, wire.prompt_tokens(body), wire.completion_tokens(sent))
        return answer
    return responder


# -- workers ----------------------------------------------------------------------------------------------------
class Worker:
    """A persistent worker process: ``run(job) -> dict`` (one JSON line out, one JSON line back)."""

    def __init__(self, name: str, python: str | Path, script: Path, env: dict | None = None,
                 prefix: list[str] | None = None):
        self.name = name
        self.tmp = tempfile.TemporaryDirectory(prefix=f"bench-{name}-")
        full_env = {**os.environ, **(env or {})}
        full_env.setdefault("XDG_CACHE_HOME", self.tmp.name)      # TextGrad's always-on cache: fresh, private
        full_env.setdefault("TEXTGRAD_LOG_DIR", os.path.join(self.tmp.name, "logs"))  # its import-time log dir
        full_env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full_env.get("PYTHONPATH", "")) if p) \
            if name == "textopt" else str(WORKERS)
        self.proc = subprocess.Popen([*(prefix or []), str(python), "-u", str(script)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.tmp.name,
                                     env=full_env)
        self._stderr: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        hello = self._read()
        if hello.get("ready") is not True:
            raise RuntimeError(f"{name} worker did not start: {hello}")
        self.versions = hello.get("versions", {})

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self._stderr.append(line)
            del self._stderr[:-200]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            raise RuntimeError(f"{self.name} worker exited ({self.proc.returncode}):\n" + "".join(self._stderr[-40:]))
        return json.loads(line)

    def run(self, job: dict) -> dict:
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        out = self._read()
        if "error" in out:
            raise RuntimeError(f"{self.name} worker failed: {out['error']}\n" + "".join(self._stderr[-40:]))
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001
                self.proc.kill()
        self.tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start_workers(only: str | None, bench: str, env: dict | None = None,
                  prefix: list[str] | None = None) -> dict[str, Worker]:
    """Workers for ``bench`` (orchestration | overhead | quality): textopt always unless ``only == 'textgrad'``;
    ``env`` is added to both workers' environment, ``prefix`` put before both workers' command (a valgrind run)."""
    workers: dict[str, Worker] = {}
    if only in (None, "textopt"):
        workers["textopt"] = Worker("textopt", sys.executable, WORKERS / f"tx_{bench}.py", env, prefix)
    if only in (None, "textgrad"):
        if not textgrad_available():
            if only == "textgrad":
                raise SystemExit(f"TextGrad venv missing at {TEXTGRAD_VENV}: run bash benchmarks/setup_textgrad.sh")
            print(f"[note] TextGrad venv missing at {TEXTGRAD_VENV}: running textopt only "
                  "(bash benchmarks/setup_textgrad.sh installs it)", file=sys.stderr)
        else:
            workers["textgrad"] = Worker("textgrad", TEXTGRAD_PY, WORKERS / f"tg_{bench}.py", env, prefix)
    return workers


# -- reporting --------------------------------------------------------------------------------------------------
def machine() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0, 0, 0)
    return {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "load_avg_1m": round(load[0], 2)}


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def alternate(names: list[str], rep: int) -> list[str]:
    """Framework order for repetition ``rep``: A B, then B A, ... (so drift and warm-up hit both alike)."""
    return names if rep % 2 == 0 else list(reversed(names))


def emit(result: dict, json_path: str | None) -> None:
    text = json.dumps(result, indent=2, sort_keys=False)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(text + "\n")
    print("RESULT_JSON " + json.dumps(result, sort_keys=False))
