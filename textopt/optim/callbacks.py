"""Ready-made callbacks and hooks for search runs: a JSONL event log and an atomic checkpoint after each step.

    opt = ParetoEvolution(..., callbacks=[JsonlLog("run/events.jsonl")])
    opt.register_step_post_hook(Checkpoint("run/search.json"))
    ...                                            # the process dies
    opt = ParetoEvolution(...same arguments...)
    load_checkpoint(opt, "run/search.json")        # continues exactly where the last step ended
"""
from __future__ import annotations

import math
import os
from pathlib import Path


class JsonlLog:
    """``callback(event, info)`` appending one row per event to a run log — the Trainer's format, one writer
    (:class:`textopt.train.runlog.RunLog`; the schema is in :mod:`textopt.train.runlog`): ``kind`` is the event,
    ``step`` the steps finished; the "init" (the seed, scored) and "step" rows carry ``val_score`` and
    ``best_val`` (the best candidate's val score: the parameters hold it) and ``params`` (its values)."""

    def __init__(self, path: str | os.PathLike):
        from ..train.runlog import RunLog   # the one run-log writer (lazy: no cycle)
        self.log = RunLog(path)
        self.path = self.log.path
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, event: str, info: dict) -> None:
        self.log.append(search_row(event, info))


def search_row(event: str, info: dict) -> dict:
    """A search optimizer's event as a run-log row (see :class:`JsonlLog`)."""
    row = {"kind": event, **info}
    if event in ("init", "step"):
        score = row.pop("best_score", None)
        score = score if isinstance(score, (int, float)) and math.isfinite(score) else None
        row.update(val_score=score, best_val=score, params=row.pop("best_values", None), train_score=None)
    return row


class Checkpoint:
    """Step post-hook: write ``optimizer.state_dict()`` to ``path`` atomically (temp file + rename)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __call__(self, optimizer, result=None) -> None:
        save_checkpoint(optimizer, self.path)


def save_checkpoint(optimizer, path: str | os.PathLike) -> None:
    from ..train.checkpoint import save   # one writer for every checkpoint, the Trainer's (lazy: no cycle)
    save(path, optimizer.state_dict())


def load_checkpoint(optimizer, path: str | os.PathLike) -> None:
    from ..train.checkpoint import load, restoring   # one reader for every checkpoint (lazy: no cycle)
    with restoring(path):
        optimizer.load_state_dict(load(path))
