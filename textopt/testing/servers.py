"""A real HTTP server on 127.0.0.1 speaking the OpenAI and Anthropic wire formats, for tests, examples, benchmarks
and users' own tests of code built on textopt::

    from textopt.testing import LoopbackServer, Fault

    with LoopbackServer(lambda body: "42", faults=[Fault.rate_limit(retry_after=0.2), "500"]) as srv:
        engine = tx.get_engine(srv.openai_spec("gpt-4o-mini"))      # or anthropic: base_url=srv.url
        ...
        srv.requests[-1].body["response_format"]                   # what reached the wire
        srv.max_concurrency                                         # most requests in flight at once

Why the standard library (``ThreadingHTTPServer`` in a daemon thread) rather than aiohttp: no extra dependency,
one OS thread per connection gives unlimited parallelism and real per-request latency (``time.sleep`` in a handler
never stalls other requests), and the server runs outside every event loop, so it serves sync code, textopt's
private loop and a test's own loop alike — it cannot be blocked by the client under test.

``faults`` is a script consumed one item per incoming request (in arrival order; ``None`` = answer normally).
``capacity=N`` answers 429 to any request arriving while more than N are in flight (a provider's rate limit).
The responder receives the request JSON and returns the whole assistant answer (or a ``Fault``); see ``wire.py``
for how prefill, stop sequences and ``max_tokens`` are applied.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable

from . import wire


@dataclass(frozen=True)
class Fault:
    """One injected failure. Build with the class methods or pass a string alias (see ``Fault.parse``)."""
    kind: str
    status: int = 500
    retry_after: float | None = None
    seconds: float = 30.0
    message: str | None = None

    @classmethod
    def rate_limit(cls, retry_after: float | None = 0.05) -> "Fault":
        return cls("rate_limit", 429, retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500, message: str | None = None) -> "Fault":
        return cls("server_error", status, message=message)

    @classmethod
    def hang(cls, seconds: float = 30.0) -> "Fault":
        """Accept the request and answer nothing for ``seconds`` (past the client's timeout), then hang up."""
        return cls("hang", 0, seconds=seconds)

    @classmethod
    def malformed(cls, body: str | None = None) -> "Fault":
        """200 OK whose JSON body is cut in the middle (or ``body``: e.g. valid JSON of the wrong shape)."""
        return cls("malformed", 200, message=body)

    @classmethod
    def unauthorized(cls, message: str | None = None) -> "Fault":
        return cls("unauthorized", 401, message=message)

    @classmethod
    def forbidden(cls) -> "Fault":
        return cls("forbidden", 403)

    @classmethod
    def context_length(cls) -> "Fault":
        return cls("context_length", 400)

    @classmethod
    def bad_request(cls, message: str = "Invalid value for 'temperature'.") -> "Fault":
        return cls("bad_request", 400, message=message)

    @classmethod
    def parse(cls, item: "Fault | str | None") -> "Fault | None":
        if item is None or isinstance(item, Fault):
            return item
        aliases = {"ok": None, "429": cls.rate_limit(), "rate_limit": cls.rate_limit(), "500": cls.server_error(),
                   "502": cls.server_error(502), "503": cls.server_error(503), "hang": cls.hang(),
                   "malformed": cls.malformed(), "401": cls.unauthorized(), "403": cls.forbidden(),
                   "context_length": cls.context_length(), "400": cls.bad_request()}
        if item not in aliases:
            raise ValueError(f"unknown fault {item!r}; use one of {sorted(aliases)} or a Fault")
        return aliases[item]


@dataclass
class SeenRequest:
    """One request as it reached the server."""
    seq: int
    path: str
    headers: dict[str, str]
    body: Any
    arrived: float
    concurrency: int                 # requests in flight when it arrived, itself included
    fault: str | None = None
    status: int | None = None
    error: str | None = None


Responder = Callable[[dict], "str | Fault"]


class LoopbackServer:
    def __init__(self, responder: Responder | str | None = None, *, latency: float | Callable[[dict], float] = 0.0,
                 faults: Iterable["Fault | str | None"] = (), capacity: int | None = None,
                 capacity_retry_after: float | None = 0.05, host: str = "127.0.0.1", port: int = 0):
        if responder is None or isinstance(responder, str):
            text = "ok" if responder is None else responder
            responder = lambda body: text  # noqa: E731
        self.responder = responder
        self.latency = latency
        self.capacity = capacity
        self.capacity_retry_after = capacity_retry_after
        self._faults = [Fault.parse(f) for f in faults]
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._requests: list[SeenRequest] = []
        self._sockets: set[socket.socket] = set()
        self._stop = threading.Event()
        self.in_flight = 0
        self.max_concurrency = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> "LoopbackServer":
        handler = type("Handler", (_Handler,), {"owner": self})
        self._httpd = _Server((self._host, self._port), handler)
        self._httpd.daemon_threads = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="textopt-loopback", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut every open connection (kept-alive ones too, so nothing answers afterwards)."""
        if self._httpd is None:
            return
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL (Anthropic SDK ``base_url``)."""
        if self._httpd is None:
            raise RuntimeError("the loopback server is not running; use it as a context manager or call start()")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    def openai_spec(self, model: str = "test-model") -> str:
        return f"openai:{self.openai_base_url}#{model}"

    # -- script and records ------------------------------------------------------------------------------------
    def add_faults(self, *faults: "Fault | str | None") -> None:
        with self._lock:
            self._faults.extend(Fault.parse(f) for f in faults)

    @property
    def requests(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self.max_concurrency = 0

    # -- serving -----------------------------------------------------------------------------------------------
    def _handle(self, h: "_Handler") -> None:
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            self.in_flight += 1
            self.max_concurrency = max(self.max_concurrency, self.in_flight)
            rec = SeenRequest(len(self._requests) + 1, h.path, {k.lower(): v for k, v in h.headers.items()},
                              body, time.monotonic(), self.in_flight)
            self._requests.append(rec)
            fault = self._faults.pop(0) if self._faults else None
            if fault is None and self.capacity is not None and self.in_flight > self.capacity:
                fault = Fault.rate_limit(self.capacity_retry_after)
        try:
            delay = self.latency(body) if callable(self.latency) else self.latency
            if delay:
                self._stop.wait(delay)
            status, headers, payload = self._answer(rec, h.path, body, fault)
            rec.status = status
            if status == 0:  # hung up
                h.close_connection = True
                return
            _write(h, status, headers, payload)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, rec: SeenRequest, path: str, body: Any, fault: Fault | None) -> tuple[int, dict, bytes]:
        if path not in (wire.OPENAI_PATH, wire.ANTHROPIC_PATH):
            return 404, {}, wire.dumps(wire.error_body(path, 404, f"no route {path}"))
        if not isinstance(body, dict):
            return 400, {}, wire.dumps(wire.error_body(path, 400, "the request body is not a JSON object"))
        answers: list[str] = []
        if fault is None:
            try:
                for _ in range(int(body.get("n") or 1) if path == wire.OPENAI_PATH else 1):
                    answer = self.responder(body)
                    if isinstance(answer, Fault):
                        fault = answer
                        break
                    answers.append(str(answer))
            except Exception as exc:  # noqa: BLE001 - a broken responder is reported as a 500 and recorded
                rec.error = f"{type(exc).__name__}: {exc}"
                return 500, {}, wire.dumps(wire.error_body(path, 500, f"responder failed: {rec.error}"))
        if fault is not None:
            rec.fault = fault.kind
            return self._fault(path, body, fault)
        shaped = [wire.shape_answer(a, body, path) for a in answers]
        if path == wire.ANTHROPIC_PATH:
            return 200, {}, wire.dumps(wire.anthropic_body(shaped[0], body, rec.seq))
        return 200, {}, wire.dumps(wire.openai_body(shaped, body, rec.seq))

    def _fault(self, path: str, body: dict, fault: Fault) -> tuple[int, dict, bytes]:
        if fault.kind == "hang":
            self._stop.wait(fault.seconds)
            return 0, {}, b""
        if fault.kind == "malformed":
            if fault.message is not None:
                return 200, {}, fault.message.encode()
            return 200, {}, b'{"id": "cut", "choices": [{"index": 0, "message": {"role": "assis'
        if fault.kind == "rate_limit":
            headers = {} if fault.retry_after is None else {"Retry-After": wire.retry_after_header(fault.retry_after)}
            return 429, headers, wire.dumps(wire.error_body(path, 429, "Rate limit reached; please retry later."))
        if fault.kind == "context_length":
            message, code = wire.context_length_message(path, body)
            return 400, {}, wire.dumps(wire.error_body(path, 400, message, code))
        messages = {"unauthorized": "Incorrect API key provided.", "forbidden": "Your key may not use this model.",
                    "server_error": "The server had an error while processing your request."}
        message = fault.message or messages.get(fault.kind, fault.kind)
        return fault.status, {}, wire.dumps(wire.error_body(path, fault.status, message))

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            (self._sockets.add if add else self._sockets.discard)(sock)

    def __repr__(self) -> str:
        state = self.url if self._httpd is not None else "stopped"
        return f"LoopbackServer({state}, {len(self._requests)} requests)"


class _Server(ThreadingHTTPServer):
    # socketserver's default accept backlog is 5: a burst of new connections (a client whose pooled
    # connections expired sending 8+ requests at once) overflowed it, and the kernel's SYN retry added ~1 s.
    request_queue_size = 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as the SDKs' connection pools expect
    owner: LoopbackServer

    def setup(self):
        super().setup()
        self.owner._track(self.connection, True)

    def finish(self):
        self.owner._track(self.connection, False)
        try:
            super().finish()
        except OSError:
            pass

    def do_POST(self):  # noqa: N802 - http.server naming
        try:
            self.owner._handle(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, *args):  # keep test output quiet
        pass


def _write(h: BaseHTTPRequestHandler, status: int, headers: dict, payload: bytes) -> None:
    try:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(payload)
        h.wfile.flush()
    except OSError:
        h.close_connection = True
