"""``LocalEngine``: the embedded model (``local``) or any GGUF / Hugging Face folder (``local:PATH``), in-process.

- One worker thread owns the model; callers on any thread or event loop submit jobs and await a future, so
  generation never blocks an event loop and the model is never used from two threads at once.
- Micro-batching: the worker takes every generate request queued within ``batch_window`` seconds (and all that
  arrived while it was busy), up to ``max_batch``, and decodes them in ONE batched loop (left padding). Every
  generate request is compatible with every other: each row keeps its own budget, sampling generator, stop
  strings and constraint. Constrained rows run in the same batch with their own token masks: the forward pass
  dominates the cost on a 135M model and is shared, while a mask is a few vector operations per row.
- Output shape: ``prefill`` (the returned ``.text`` includes it), ``stop`` (cut before the first stop string,
  decoding ends there), and constrained decoding for ``pattern`` (the generated text after the prefill fullmatches
  it) and ``schema`` (``constrain_json.py``), both budget-aware so ``max_tokens`` never truncates the answer.
- Greedy at temperature 0; otherwise sampling from a generator seeded by ``(seed, sample_index)``, so a request's
  sample does not depend on what else is in its batch.
- ``score(messages, continuation)``: per-token log-probabilities of a given continuation.
- CUDA when available, else CPU with ``threads`` intra-op threads set in the worker thread only.
The model loads lazily on the first call (or ``engine.load()``); see ``model.py`` for the converted cache.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import threading
import time
from typing import Any

from ...errors import EngineError, TextoptError
from ..base import Engine
from .model import ModelSource, load, resolve_source
from ..types import Request, Response, as_messages


def from_spec(rest: str, **kwargs) -> "LocalEngine":
    """``local`` -> the bundled SmolLM2-135M-Instruct; ``local:PATH`` -> a GGUF file or model folder."""
    return LocalEngine(rest.strip(), **kwargs)


def _default_threads() -> int:
    """CPU threads for the worker's matmuls: ``TEXTOPT_LOCAL_THREADS``, else 1 on small machines (measured on 2
    shared cores: one thread ran a decode step in 0.14 s, two threads fighting other processes in 1.4 s), else
    half the cores (at most 8)."""
    env = os.environ.get("TEXTOPT_LOCAL_THREADS")
    if env:
        return max(1, int(env))
    cores = os.cpu_count() or 1
    return 1 if cores <= 4 else min(8, cores // 2)


class LocalEngine(Engine):
    provider = "local"
    supports_prefill = True
    supports_schema = True
    supports_pattern = True   # honours Request.pattern (constrained decoding); TGD uses it automatically

    def __init__(self, path: str = "", *, device: str | None = None, max_batch: int = 32,
                 batch_window: float = 0.01, model_cache: bool = True, max_concurrency: int = 64,
                 threads: int | None = None, **kw):
        self.source: ModelSource = resolve_source(path)
        kw.setdefault("name", "local" if not path else f"local:{self.source.path}")
        super().__init__(self.source.name, max_concurrency=max_concurrency, adaptive_concurrency=False,
                         max_retries=0, **kw)
        self.device, self.max_batch, self.batch_window = device, max_batch, batch_window
        self.model_cache = model_cache
        self.threads = threads or _default_threads()
        self.stats = {"generate_calls": 0, "rows": 0, "score_calls": 0, "tokens": 0, "decode_s": 0.0}
        self.load_info: dict[str, Any] = {}
        self._model = self._tok = self._constraints = None
        self._eos: set[int] = set()
        self._jobs: "queue.Queue[tuple[str, Any, concurrent.futures.Future]]" = queue.Queue()
        self._worker: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def cache_model_id(self) -> str:
        return f"local:{self.source.path.name}"

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def load(self) -> dict:
        """Load the model now (in the worker) and return the load info (seconds, device, cache hit)."""
        return self._submit("load", None).result()

    def _ensure_loaded(self) -> None:
        if self._model is not None:
            return
        model, tok, info = load(self.source, self.device, self.model_cache)
        eos = {tok.eos_token_id}
        gen_eos = getattr(model.generation_config, "eos_token_id", None)
        eos |= set(gen_eos) if isinstance(gen_eos, (list, tuple)) else ({gen_eos} if gen_eos is not None else set())
        self._eos = {e for e in eos if e is not None}
        self._model, self._tok, self.load_info = model, tok, info

    @property
    def constraints(self):
        """The constraint factory (vocabulary tables; built on the first constrained request, ~1 s)."""
        with self._start_lock:
            if self._constraints is None:
                from .constrain import ConstraintFactory

                self._constraints = ConstraintFactory(self._tok, self._model.get_input_embeddings().weight.shape[0])
            return self._constraints

    def _submit(self, kind: str, payload: Any) -> concurrent.futures.Future:
        with self._start_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name=f"textopt-{self.name}", daemon=True)
                self._worker.start()
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((kind, payload, fut))
        return fut

    # -- engine hooks --------------------------------------------------------------------------------------------
    async def _send(self, request: Request) -> Response:
        return await asyncio.wrap_future(self._submit("generate", request))

    async def score(self, messages, continuation: str) -> list[float]:
        """Per-token log-probabilities of ``continuation`` (tokenized on its own) after the chat-templated
        ``messages`` with the assistant turn opened."""
        return await asyncio.wrap_future(self._submit("score", (as_messages(messages), str(continuation))))

    # -- the worker ----------------------------------------------------------------------------------------------
    def _run(self) -> None:
        import torch

        torch.set_num_threads(self.threads)  # per OS thread: only this worker's matmuls are affected
        while True:
            job = self._jobs.get()
            batch = [job]
            if job[0] == "generate":
                time.sleep(self.batch_window)
                held = []
                while len(batch) < self.max_batch:
                    try:
                        nxt = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    (batch if nxt[0] == "generate" else held).append(nxt)
                for h in held:  # keep other jobs in arrival order after this batch
                    self._jobs.put(h)
            live = [j for j in batch if j[2].set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                self._ensure_loaded()
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                err = exc if isinstance(exc, TextoptError) else EngineError(
                    f"{self.name}: could not load the model from {self.source.path}: {type(exc).__name__}: {exc}")
                for j in live:
                    j[2].set_exception(err)
                continue
            kind = live[0][0]
            if kind == "load":
                for j in live:
                    j[2].set_result(dict(self.load_info))
            elif kind == "score":
                self._do_score(live[0])
            else:
                self._do_generate(live)

    def _do_score(self, job) -> None:
        from .generate import score

        try:
            self.stats["score_calls"] += 1
            job[2].set_result(score(self._model, self._tok, *job[1]))
        except BaseException as exc:  # noqa: BLE001
            job[2].set_exception(exc)

    def _do_generate(self, jobs) -> None:
        from .generate import make_row, run_batch, to_response

        rows, ready = [], []
        for job in jobs:  # a bad request fails alone, before the batch starts
            try:
                req = job[1]
                constraint = None if req.schema is None and req.pattern is None else \
                    self.constraints.for_request(req)
                rows.append(make_row(self._tok, req, constraint,
                                     getattr(self._model.config, "max_position_embeddings", None)))
                ready.append(job)
            except BaseException as exc:  # noqa: BLE001
                job[2].set_exception(exc)
        if not rows:
            return
        t0 = time.perf_counter()
        try:
            run_batch(self._model, self._tok, rows, self._eos)
        except BaseException as exc:  # noqa: BLE001
            for job in ready:
                job[2].set_exception(exc)
            return
        self.stats["generate_calls"] += 1
        self.stats["rows"] += len(rows)
        self.stats["tokens"] += sum(len(r.out_ids) for r in rows)
        self.stats["decode_s"] += time.perf_counter() - t0
        for row, job in zip(rows, ready):
            try:
                job[2].set_result(to_response(row, self._tok, self.model))
            except BaseException as exc:  # noqa: BLE001
                job[2].set_exception(exc)
