"""Read a run folder written by ``textopt optimize`` into one view of its steps, for :mod:`textopt.report`.

Both paths write ``config.json``, ``log.jsonl`` (one run-log schema: :mod:`textopt.train.runlog`),
``checkpoint.json`` and (once finished) ``summary.json``:

- the Trainer (``--optimizer tgd``): one log row per step with the train/val scores, the parameter values, the
  step's textual gradients (``feedback``), ``reverted`` / ``screen`` / ``skipped`` / ``step_error`` and the
  cumulative usage; a reverted step's rejected values are in ``proposed``.
- a search (``beam``, ``pareto``, ``opro``, ``demos``): the optimizer's events (``step`` rows with the best values
  and score after it, ``rejected``; a log written before the schema was shared names them ``event``,
  ``best_values`` and ``best_score``); the candidates, their parents and the scored evaluations (with the
  feedback the proposer read) are in the optimizer's ``store`` in the checkpoint (the Trainer's checkpoint:
  ``optimizer.extra.store``; a search checkpoint written before searches ran in the Trainer: ``extra.store``).
A run that stopped early (no ``summary.json``) is shown as far as it got; a ``Trainer(out_dir=...)`` folder from
the Python API (a log, no ``config.json``) is shown without the settings.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import parse_json, read_text
from ..errors import DataError
from ..train.runlog import kind_of, read_rows

MAX_FEEDBACK = 4   # feedback items shown per candidate of a search step (the log already bounds the Trainer's)


@dataclass
class Candidate:
    """A search candidate proposed in a step: its values, its parent's, its mean val score and the failing
    feedback on its parent's training examples (what the proposer read)."""
    hash: str
    origin: str
    values: dict
    parent_values: dict
    val: float | None
    feedback: list = field(default_factory=list)


@dataclass
class Step:
    step: int
    train: float | None
    val: float | None
    values: dict              # the parameter values after the step
    status: str               # initial, accepted, reverted, unchanged, skipped, error, new best, no new best
    detail: str = ""
    feedback: dict = field(default_factory=dict)    # parameter name -> the gradients that drove the step
    proposed: dict | None = None                    # the values a reverted step tried
    candidates: list = field(default_factory=list)  # search steps: Candidate


@dataclass
class Run:
    path: Path
    kind: str                 # "tgd" or "search"
    config: dict
    summary: dict | None
    steps: list
    usage: dict | None        # {"by_role": ..., "by_node": ..., "total": ...}
    result: dict | None = None   # the Trainer's result.json (best_val, test_score), when it finished (both kinds)


def _json(path: Path, what: str, *, required: bool = True) -> Any:
    if not path.exists() and not required:
        return None
    return parse_json(read_text(path, what), path)


def _object(value: Any, path: Path) -> dict:
    if not isinstance(value, dict):
        raise DataError(f"{path} holds a JSON {type(value).__name__}, not an object; it was not written by "
                        "`textopt optimize`")
    return value


def load_run(path: str | Path) -> Run:
    """The run in folder ``path``; a folder with neither ``config.json`` nor ``log.jsonl`` is a ``DataError``."""
    path = Path(path)
    if not path.is_dir():
        what = "is a file, not a run folder" if path.exists() else "no such folder"
        raise DataError(f"{path}: {what}; give the --out folder of a `textopt optimize` run")
    if (path / "config.json").exists():
        config = _object(_json(path / "config.json", "run settings"), path / "config.json")
    elif (path / "log.jsonl").exists():   # a Trainer's out_dir from the Python API: no settings, same log
        config = {"optimizer": "tgd"}
    else:
        raise DataError(f"{path} has no config.json and no log.jsonl: it is not the output folder of a "
                        f"`textopt optimize` run or of a Trainer")
    summary = _json(path / "summary.json", "run summary", required=False)
    summary = _object(summary, path / "summary.json") if summary is not None else None
    rows = read_rows(path / "log.jsonl")
    # the usage so far: the summary's, else the last row that has it (a run that stopped early)
    usage = (summary or {}).get("usage") or next((r["usage"] for r in reversed(rows) if r.get("usage")), None)
    result = _json(path / "result.json", "trainer result", required=False)
    result = result if isinstance(result, dict) else None
    if config.get("optimizer", "tgd") == "tgd":
        steps: list[Step] = []
        for r in rows:
            if isinstance(r.get("step"), int):
                steps.append(_tgd_step(r, steps[-1].values if steps else None))
        return Run(path, "tgd", config, summary, steps, usage, result)
    ckpt = _json(path / "checkpoint.json", "search checkpoint", required=False)
    return Run(path, "search", config, summary, _search_steps(config, summary, rows, ckpt), usage, result)


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _score(x: Any) -> str:
    return f"{x:.3f}" if _num(x) is not None else str(x)


def _tgd_step(row: dict, prev: dict | None) -> Step:
    values = row.get("params") if isinstance(row.get("params"), dict) else {}
    screen = row.get("screen") if isinstance(row.get("screen"), dict) else None
    if row.get("kind") == "init":
        status, detail = "initial", ""
    elif row.get("step_error"):
        status, detail = "error", str(row["step_error"])
    elif row.get("skipped"):
        status, detail = "skipped", str(row["skipped"])
    elif row.get("reverted"):
        status = "reverted"
        detail = (f"no better on its minibatch ({_score(screen.get('before'))} -> {_score(screen.get('after'))})"
                  if screen and not screen.get("accepted") else "it lowered the validation score")
    elif values == prev:
        status = "unchanged"
        detail = ("the optimizer left " + ", ".join(map(str, row["unchanged"])) + " as it was"
                  if row.get("unchanged") else "")
    else:
        status, detail = "accepted", ""
    feedback = row.get("feedback") if isinstance(row.get("feedback"), dict) else {}
    proposed = row.get("proposed") if isinstance(row.get("proposed"), dict) else None
    return Step(row["step"], _num(row.get("train_score")), _num(row.get("val_score")), values, status, detail,
                {str(k): [str(x) for x in v] for k, v in feedback.items() if isinstance(v, list)}, proposed)


def _search_steps(config: dict, summary: dict | None, rows: list[dict], ckpt: Any) -> list[Step]:
    ckpt = ckpt if isinstance(ckpt, dict) else {}
    state = ckpt.get("optimizer") if isinstance(ckpt.get("optimizer"), dict) else ckpt   # the Trainer's, or old
    extra = state.get("extra")
    store = extra.get("store") if isinstance(extra, dict) else None
    cands = dict(_pairs(store, "candidates"))
    evals = dict(_pairs(store, "evals"))
    init = next((r for r in rows if kind_of(r) == "init"), {})   # the seed, scored (a run that stopped early)
    first = (summary or {}).get("val_before", init.get("val_score"))
    seed = next((h for h, c in cands.items() if c.get("origin") == "seed"), None)
    seed_values = cands[seed]["values"] if seed else \
        init.get("params") or {"system_prompt": config.get("initial_prompt", "")}
    steps = [Step(0, None, _num(first), seed_values, "initial")]
    seen = {seed}
    best = first
    for row in rows:
        if kind_of(row) != "step" or not isinstance(row.get("step"), int):
            continue
        new = [h for h in cands if h not in seen and cands[h].get("step", 0) < row["step"]]
        seen.update(new)
        score = _num(row.get("val_score", row.get("best_score")))   # best_score: a log from before the schema
        status = "new best" if score is not None and (best is None or score > best) else "no new best"
        best = score if score is not None else best
        stopped = f"stopped: {row['stopped']}" if row.get("stopped") else ""
        values = row.get("params") or row.get("best_values") or {}
        steps.append(Step(row["step"], None, score, values, status, stopped,
                          candidates=[_candidate(h, cands, evals) for h in new]))
    return steps


def _pairs(store: Any, key: str) -> list:
    items = store.get(key) if isinstance(store, dict) else None
    return [p for p in items or [] if isinstance(p, list) and len(p) == 2 and isinstance(p[1], dict)]


def _candidate(h: str, cands: dict, evals: dict) -> Candidate:
    c = cands[h]
    parents = c.get("parents") or []
    parent = cands.get(parents[0], {}) if parents else {}
    val = [_num(e.get("scores", {}).get("score")) for k, e in evals.items() if k.startswith(f"{h}|val|")]
    val = [v for v in val if v is not None]
    feedback = []
    for k, e in evals.items():   # the failing feedback on the parent's non-validation examples
        if parents and k.startswith(f"{parents[0]}|") and "|val|" not in k and len(feedback) < MAX_FEEDBACK:
            scores = [s for s in (e.get("scores") or {}).values() if _num(s) is not None]
            if scores and min(scores) < 1.0:
                feedback.extend(str(f) for f in (e.get("feedback") or {}).values())
    return Candidate(h, str(c.get("origin", "")), c.get("values") or {}, parent.get("values") or {},
                     sum(val) / len(val) if val else None, feedback[:MAX_FEEDBACK])
