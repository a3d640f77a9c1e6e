"""Sandbox cost per run: ``run_python`` of a trivial program in each mode, against a bare interpreter start.

    .venv/bin/python benchmarks/sandbox_overhead.py [--runs 30] [--json FILE]

For each mode available here ("bwrap", "namespaces", and the opt-in "weak") and for a plain
``subprocess.run([python, "-I", "-c", "pass"])`` (the floor every mode pays), the wall time of ``--runs``
sequential runs after two warm-up runs, alternating the order per repetition: median and 90th percentile in ms,
and the median overhead over the plain start. Also one ``CodeTestsLoss`` call (two tests) per mode.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from common import alternate, emit, machine, median  # noqa: E402

from textopt.nn import CodeTestsLoss  # noqa: E402
from textopt.nn.sandbox import interpreter, run_python, unavailable  # noqa: E402

TESTS = "def test_add():\n    assert add(2, 3) == 5\n\ndef test_neg():\n    assert add(-1, 1) == 0\n"


def _one(name: str) -> float:
    t0 = time.perf_counter()
    if name == "plain python":
        subprocess.run([interpreter(), "-I", "-c", "pass"], check=True)
    else:
        assert run_python("pass", mode=name).ok
    return (time.perf_counter() - t0) * 1000


def _p90(xs: list[float]) -> float:
    return sorted(xs)[min(len(xs) - 1, int(0.9 * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    names = ["plain python"] + [m for m in ("bwrap", "namespaces", "weak") if m == "weak" or unavailable(m) is None]
    skipped = {m: unavailable(m) for m in ("bwrap", "namespaces") if m not in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for name in names:
        _one(name), _one(name)  # warm-up
    for rep in range(args.runs):
        for name in alternate(names, rep):
            times[name].append(_one(name))
    floor = median(times["plain python"])
    rows = {}
    print(f"{'mode':<14}{'median ms':>10}{'p90 ms':>9}{'over plain':>12}{'CodeTestsLoss ms':>18}")
    for name in names:
        loss_ms = None
        if name != "plain python":
            t0 = time.perf_counter()
            os.environ["TEXTOPT_SANDBOX"] = name
            out = CodeTestsLoss(TESTS)("def add(a, b):\n    return a + b\n")
            loss_ms = (time.perf_counter() - t0) * 1000
            assert out.meta["score"] == 1.0 and out.meta["sandbox"] == name, out.value
        rows[name] = {"median_ms": median(times[name]), "p90_ms": _p90(times[name]),
                      "overhead_ms": median(times[name]) - floor, "code_tests_loss_ms": loss_ms}
        r = rows[name]
        loss = f"{loss_ms:.1f}" if loss_ms is not None else "-"
        print(f"{name:<14}{r['median_ms']:>10.1f}{r['p90_ms']:>9.1f}{r['overhead_ms']:>+12.1f}{loss:>18}")
    for mode, why in skipped.items():
        print(f"{mode}: not available here ({why})")
    emit({"bench": "sandbox_overhead", "runs": args.runs, "machine": machine(), "modes": rows,
          "unavailable": skipped}, args.json)


if __name__ == "__main__":
    main()
