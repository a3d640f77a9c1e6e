"""A metering, caching pass-through in front of one OpenAI-compatible server (the reference model server).

Every framework of ``quality_real.py`` talks to ``http://127.0.0.1:PORT/r/<run>/v1`` — the same upstream server,
model and settings for all — and this proxy:

- meters each run the same way, whatever the client library: calls, answers served from this proxy's cache,
  prompt and completion tokens as the model server itself counted them (its ``usage``), and time spent upstream;
- caches every 200 answer on disk by run and exact request (path + JSON body), so rerunning the benchmark costs
  no model time; a run never reads another run's entries; a cached answer still counts as a call of the run
  that asked (the call cap compares what each framework asks for, not what the cache saved);
- holds no secret: bodies carry none, and the ``Authorization`` header is neither forwarded nor stored.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import diskcache


class RunMeter:
    def __init__(self):
        self.calls = self.cached = self.errors = self.prompt_tokens = self.completion_tokens = 0
        self.upstream_s = 0.0

    def as_dict(self) -> dict:
        return {"calls": self.calls, "cached": self.cached, "errors": self.errors,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "upstream_s": round(self.upstream_s, 1)}


class MeteringProxy:
    def __init__(self, upstream: str, cache_dir: str | Path | None, *, timeout: float = 3600.0):
        self.upstream = upstream.rstrip("/")          # e.g. http://127.0.0.1:8080/v1
        self.cache = diskcache.Cache(str(cache_dir)) if cache_dir else None
        self.timeout = timeout
        self.meters: dict[str, RunMeter] = {}
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):   # quiet
                pass

            def do_GET(self):
                run, rest = proxy._split(self.path)
                status, body = proxy._forward("GET", rest, None)
                self._send(status, body)

            def do_POST(self):
                run, rest = proxy._split(self.path)
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body = proxy.handle(run, rest, data)
                self._send(status, body)

            def _send(self, status: int, body: bytes):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- routing --------------------------------------------------------------------------------------------------
    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        """``/r/<run>/v1/chat/completions`` -> (run, ``/chat/completions``)."""
        parts = path.split("/", 4)
        if len(parts) >= 4 and parts[1] == "r":
            rest = "/" + parts[4] if len(parts) > 4 else "/"
            return parts[2], rest
        return "default", path.removeprefix("/v1")

    def url_for(self, run: str) -> str:
        return f"http://127.0.0.1:{self.port}/r/{run}/v1"

    def meter(self, run: str) -> RunMeter:
        with self._lock:
            return self.meters.setdefault(run, RunMeter())

    # -- one request ----------------------------------------------------------------------------------------------
    def handle(self, run: str, rest: str, data: bytes) -> tuple[int, bytes]:
        meter = self.meter(run)
        try:
            body = json.loads(data or b"{}")
        except ValueError:
            return 400, b'{"error": {"message": "request body is not JSON"}}'
        if body.get("stream"):
            return 400, b'{"error": {"message": "the benchmark proxy does not stream"}}'
        # one cache namespace per run: a run never gets another run's answers (wall times stay comparable);
        # rerunning a run answers from its own entries
        blob = run + "\n" + rest + "\n" + json.dumps(body, sort_keys=True, ensure_ascii=False)
        key = hashlib.sha256(blob.encode()).hexdigest()
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None:
            status, answer = 200, hit
            with self._lock:
                meter.cached += 1
        else:
            t0 = time.perf_counter()
            status, answer = self._forward("POST", rest, json.dumps(body).encode())
            with self._lock:
                meter.upstream_s += time.perf_counter() - t0
            if status == 200 and self.cache is not None:
                self.cache.set(key, answer)
        with self._lock:
            meter.calls += 1
            if status != 200:
                meter.errors += 1
            else:
                try:
                    usage = json.loads(answer).get("usage") or {}
                    meter.prompt_tokens += int(usage.get("prompt_tokens") or 0)
                    meter.completion_tokens += int(usage.get("completion_tokens") or 0)
                except (ValueError, AttributeError, TypeError):
                    pass
        return status, answer

    def _forward(self, method: str, rest: str, data: bytes | None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.upstream + rest, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError as exc:
            return 502, json.dumps({"error": {"message": f"upstream unreachable: {exc}"}}).encode()

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def __enter__(self) -> "MeteringProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.cache is not None:
            self.cache.close()
