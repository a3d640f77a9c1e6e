"""Timing of a worker's phases: wall and CPU seconds, and optionally CPU instructions (standard library only: it
runs in both virtual environments).

Wall and CPU time depend on what else the machine runs; the number of instructions a phase executes does not. When
the worker runs under ``valgrind --tool=callgrind --instr-atstart=no`` (``overhead.py --instructions`` starts it
so), ``PhaseClock(instructions=True)`` switches callgrind's instrumentation on at ``start()``, dumps the count of
every phase at ``lap(name)`` (callgrind's ``CALLGRIND_DUMP_STATS_AT``, which zeroes it), and switches it off at
``stop()``: imports and the protocol run at valgrind's uninstrumented speed and are not counted. Every thread of
the process is counted (callgrind's counts are per process), so a framework's background threads are included.

The requests are valgrind's client requests (``valgrind/valgrind.h``, amd64): a magic instruction sequence that is
a no-op on a real CPU and that valgrind recognises when it translates it. Python cannot emit it, so ``_Requests``
puts the ten instructions of the macro in an executable page and calls them through ctypes.
"""
from __future__ import annotations

import ctypes
import glob
import mmap
import os
import platform
import time

_RUNNING_ON_VALGRIND = 0x1001
_CALLGRIND = (ord("C") << 24) | (ord("T") << 16)   # VG_USERREQ_TOOL_BASE('C','T'), callgrind.h
_ZERO_STATS, _DUMP_STATS_AT, _START_INSTRUMENTATION, _STOP_INSTRUMENTATION = (
    _CALLGRIND + 1, _CALLGRIND + 3, _CALLGRIND + 4, _CALLGRIND + 5)
# size_t request(size_t *block): VALGRIND_DO_CLIENT_REQUEST_EXPR for amd64 (rax = block, rdx = default/result)
_AMD64_REQUEST = bytes.fromhex(
    "4889f8"                                        # mov  %rdi,%rax      (the 6-word request block)
    "31d2"                                          # xor  %edx,%edx      (result when not under valgrind: 0)
    "48c1c703" "48c1c70d" "48c1c73d" "48c1c733"     # rol  $3,$13,$61,$51,%rdi  (the preamble; rdi unchanged)
    "4887db"                                        # xchg %rbx,%rbx      (the request itself)
    "4889d0"                                        # mov  %rdx,%rax
    "c3")                                           # ret
DUMP_FILE = "callgrind.out"                         # --callgrind-out-file, relative to the worker's directory


class _Requests:
    def __init__(self):
        if platform.machine() not in ("x86_64", "AMD64"):
            raise RuntimeError(f"instruction counts need valgrind on x86_64 (this is {platform.machine()})")
        self._page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self._page.write(_AMD64_REQUEST)
        address = ctypes.addressof(ctypes.c_char.from_buffer(self._page))
        self._call = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p)(address)
        if not self(_RUNNING_ON_VALGRIND):
            raise RuntimeError("instruction counts need the worker to run under valgrind --tool=callgrind "
                               "(overhead.py --instructions starts it so)")

    def __call__(self, request: int, arg: int = 0) -> int:
        block = (ctypes.c_size_t * 6)(request, arg, 0, 0, 0, 0)
        return self._call(ctypes.addressof(block))

    def dump(self, name: str) -> int:
        """Dump callgrind's counts since the last dump or zeroing (and zero them); return the instructions."""
        before = set(glob.glob(DUMP_FILE + ".*"))
        label = ctypes.c_char_p(name.encode())
        self(_DUMP_STATS_AT, ctypes.cast(label, ctypes.c_void_p).value)
        (path,) = set(glob.glob(DUMP_FILE + ".*")) - before
        with open(path) as f:
            totals = [line.split()[1] for line in f if line.startswith("totals:")]
        os.remove(path)
        self(_ZERO_STATS)                                   # reading the dump is not the next phase's cost
        return int(totals[0])


_requests: _Requests | None = None


class PhaseClock:
    """``start()``, then ``lap(name)`` at the end of each phase, then ``stop()``; ``figures`` holds, per phase,
    ``{name}_s`` (wall), ``{name}_cpu_s`` (process CPU) and, with ``instructions=True``, ``{name}_instructions``."""

    def __init__(self, instructions: bool = False):
        global _requests
        if instructions and _requests is None:
            _requests = _Requests()
        self._requests = _requests if instructions else None
        self.figures: dict[str, float | int] = {}

    def start(self) -> None:
        if self._requests:
            self._requests(_START_INSTRUMENTATION)
            self._requests(_ZERO_STATS)
        self._last = (time.perf_counter(), time.process_time())

    def lap(self, name: str) -> None:
        now = (time.perf_counter(), time.process_time())
        if self._requests:
            self.figures[f"{name}_instructions"] = self._requests.dump(name)
        self.figures[f"{name}_s"] = now[0] - self._last[0]
        self.figures[f"{name}_cpu_s"] = now[1] - self._last[1]
        self._last = (time.perf_counter(), time.process_time())

    def stop(self) -> None:
        if self._requests:
            self._requests(_STOP_INSTRUMENTATION)
