"""Ready-made callbacks and hooks for search runs: a JSONL event log and an atomic checkpoint after each step.

    opt = ParetoEvolution(..., callbacks=[JsonlLog("run/events.jsonl")])
    opt.register_step_post_hook(Checkpoint("run/search.json"))
    ...                                            # the process dies
    opt = ParetoEvolution(...same arguments...)
    load_checkpoint(opt, "run/search.json")        # continues exactly where the last step ended
"""
from __future__ import annotations

import json
import os
from pathlib import Path



class JsonlLog:
    """``callback(event, info)`` appending one JSON line per event (non-JSON values become strings)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, event: str, info: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"event": event, **info}, default=str, ensure_ascii=False) + "\n")


class Checkpoint:
    """Step post-hook: write ``optimizer.state_dict()`` to ``path`` atomically (temp file + rename)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __call__(self, optimizer, result=None) -> None:
        save_checkpoint(optimizer, self.path)


def save_checkpoint(optimizer, path: str | os.PathLike) -> None:
    from ..train.checkpoint import atomic_write_text   # one atomic writer for every checkpoint (lazy: no cycle)
    atomic_write_text(path, json.dumps(optimizer.state_dict(), ensure_ascii=False))


def load_checkpoint(optimizer, path: str | os.PathLike) -> None:
    from ..train.checkpoint import load, restoring   # one reader for every checkpoint (lazy: no cycle)
    with restoring(path):
        optimizer.load_state_dict(load(path))
