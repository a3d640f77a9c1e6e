"""Worker side of the benchmark protocol (standard library only: it runs in both virtual environments).

The worker prints ``{"ready": true, "versions": {...}}``, then answers each JSON line read on stdin with one JSON
line. Anything the framework prints goes to stderr so it cannot corrupt the protocol.
"""
from __future__ import annotations

import json
import sys
import traceback


def serve(handler, versions: dict) -> None:
    out = sys.stdout
    sys.stdout = sys.stderr
    out.write(json.dumps({"ready": True, "versions": versions}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            result = handler(json.loads(line))
        except BaseException:  # noqa: BLE001 - reported to the driver, which stops the run
            result = {"error": traceback.format_exc()}
        out.write(json.dumps(result) + "\n")
        out.flush()
