"""The run log, ``log.jsonl``: ONE writer and ONE row schema for every run loop — the :class:`~.trainer.Trainer`
(every optimizer: a search's events are rows too, :func:`search_row`; a search run alone logs them through
:class:`textopt.optim.JsonlLog`) — read by
``textopt report`` and drawn by :func:`~.curve.plot_curve`.

Each line is one JSON object (keys sorted, UTF-8; a value JSON cannot hold is written as its ``str``)::

    kind         "init"   the starting point (step 0: the parameters before any step, scored on val)
                 "step"   one optimizer step finished
                 or an event inside a step of a search: "proposed", "rejected", "accepted", "new_best", "stop"
    step         int: steps finished when the row was written
    -- rows of kind "init" and "step" (the points of the curve) --
    val_score    the validation score of the parameters as they are after the row (None: no val split, or not
                 scored); a search keeps the best candidate, so this is its best score so far
    best_val     the best validation score so far
    train_score  the step's minibatch score (Trainer; None when unknown, e.g. a search)
    params       {parameter name: value} after the row
    reverted     the step's update was undone (Trainer; the curve marks it)
    usage        the run's usage by role so far (the Trainer's engines' usage, restored on resume)
    -- Trainer step rows also: batch, step_error, unchanged, skipped, screen, feedback, proposed (see trainer) --
    -- search step rows also: best (candidate hash), metric_calls, candidates, rejected, stopped, objective_front --

On resume a run rewinds its log to its checkpoint (:meth:`RunLog.rewind` or :meth:`RunLog.rewrite`), so a step
that was interrupted is logged once.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from ..checks import parse_json, read_text
from ..errors import DataError
from .checkpoint import atomic_write_text

CURVE_KINDS = ("init", "step")


def row_text(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False, sort_keys=True, default=str) + "\n"


class RunLog:
    """Appends rows to ``path`` (see the module docstring for the schema) and keeps them in ``rows`` (a list of
    the caller's, when given: the Trainer's ``history``)."""

    def __init__(self, path: str | os.PathLike | None, rows: list[dict] | None = None):
        self.path = Path(path) if path is not None else None
        self.rows: list[dict] = rows if rows is not None else []

    def append(self, row: dict) -> None:
        self.rows.append(row)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(row_text(row))

    def clear(self) -> None:
        """A fresh run: no row (the file is removed)."""
        self.rows = []
        if self.path is not None and self.path.exists():
            self.path.unlink()

    def rewrite(self, rows: list[dict]) -> None:
        """The log becomes exactly ``rows`` (atomically): a checkpoint that keeps its rows restores them."""
        self.rows = list(rows)
        if self.path is not None:
            atomic_write_text(self.path, "".join(row_text(r) for r in self.rows))

    def rewind(self, step: int) -> None:
        """Keep the rows up to the last ``step`` row at or before ``step``; drop the rest (a step interrupted
        after its checkpoint is run, and logged, again)."""
        rows = read_rows(self.path) if self.path is not None else self.rows
        keep = 0
        for i, row in enumerate(rows):
            if kind_of(row) == "step" and isinstance(row.get("step"), int) and row["step"] <= step:
                keep = i + 1
        self.rewrite(rows[:keep])


def search_row(event: str, info: dict) -> dict:
    """A search optimizer's event (``callback(event, info)``) as a row: ``kind`` is the event; the "init" and
    "step" rows carry ``val_score`` and ``best_val`` (the best candidate's val score: the parameters hold it)
    and ``params`` (its values)."""
    row = {"kind": event, **info}
    if event in CURVE_KINDS:
        score = row.pop("best_score", None)
        score = score if isinstance(score, (int, float)) and math.isfinite(score) else None
        row.update(val_score=score, best_val=score, params=row.pop("best_values", None), train_score=None)
    return row


def kind_of(row: dict):
    """A row's kind (``event``: the key of a search log written before the schema was shared)."""
    return row.get("kind", row.get("event"))


def read_rows(path: str | os.PathLike) -> list[dict]:
    """The rows of a log file (none if it does not exist); a line that is not a JSON object is a
    ``DataError`` naming the file and line."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for i, line in enumerate(read_text(path, "run log", allow_empty=True).splitlines()):
        if line.strip():
            row = parse_json(line, path, line=i + 1)
            if not isinstance(row, dict):
                raise DataError(f"{path}:{i + 1}: a log row must be a JSON object; this is not a textopt run log")
            rows.append(row)
    return rows


def curve_points(rows: list[dict]) -> list[dict]:
    """The rows that are points of the curve (kinds "init" and "step"), in order."""
    return [r for r in rows if kind_of(r) in CURVE_KINDS and isinstance(r.get("step"), int)]
