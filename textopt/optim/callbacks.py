"""Ready-made callbacks and hooks for a search optimizer run on its own (``opt.run()``): a JSONL event log and an
atomic checkpoint after each step. A :class:`textopt.train.Trainer` run needs neither: it logs the search's events
and checkpoints itself (its own layout, with usage and RNG).

    opt = ParetoEvolution(..., callbacks=[JsonlLog("run/events.jsonl")])
    opt.register_step_post_hook(Checkpoint("run/search.json"))
    ...                                            # the process dies
    opt = ParetoEvolution(...same arguments...)
    load_checkpoint(opt, "run/search.json")        # continues exactly where the last step ended
"""
from __future__ import annotations

import os
from pathlib import Path

from ..checks import FILE_FIX, loading


class JsonlLog:
    """``callback(event, info)`` appending one row per event to a run log — the Trainer's format, one writer
    (:class:`textopt.train.runlog.RunLog`; the schema is in :mod:`textopt.train.runlog`): ``kind`` is the event,
    ``step`` the steps finished; the "init" (the seed, scored) and "step" rows carry ``val_score`` and
    ``best_val`` (the best candidate's val score: the parameters hold it) and ``params`` (its values)."""

    def __init__(self, path: str | os.PathLike):
        from ..train.runlog import RunLog, search_row   # the one run-log writer and row (lazy: no cycle)
        self.log, self.row = RunLog(path), search_row
        self.path = self.log.path
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, event: str, info: dict) -> None:
        self.log.append(self.row(event, info))


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
    from ..train.checkpoint import load   # one reader for every checkpoint (lazy: no cycle)
    with loading(f"checkpoint {path}", fix=FILE_FIX):
        optimizer.load_state_dict(load(path))
