"""A run's output folder: its settings (``config.json``, checked on resume), its end (``best_prompt.txt``,
``summary.json``, ``usage.json`` / ``usage.txt`` and the printed summary) — one format for a TGD run and a
search run. The run log and the curve are :mod:`textopt.train.runlog` and :mod:`textopt.train.curve`.

``summary.json``: task, engine, optimizer, val_before/val_after, test_before/test_after, steps,
accepted_steps, initial_prompt, optimized_prompt, sizes, wall_s, usage (a search adds stopped, candidates,
rejected, metric_calls and optimized_values; TGD adds unchanged_steps). Both runs also leave the Trainer's
``checkpoint.json`` and ``result.json``."""
from __future__ import annotations

import json
from pathlib import Path

from ..checks import expect, parse_json, read_text
from ..engines.usage import Usage, format_report
from ..errors import CheckpointError, DataError
from ..train.checkpoint import atomic_write_text
from ..train.runlog import curve_points

FILES = "summary.json, best_prompt.txt, log.jsonl, checkpoint.json, result.json, curve.png, usage.txt"
RESUMABLE = ("patience", "steps", "flags")   # settings a resumed run may change


def check_resume(out: Path, config: dict, resume: bool) -> None:
    """``resume``: the run saved in ``out`` must have the same settings (but :data:`RESUMABLE`)."""
    cfg = Path(out) / "config.json"
    if resume and cfg.exists():
        old = parse_json(read_text(cfg, "run settings", error=CheckpointError), cfg, error=CheckpointError)
        expect(old, dict, f"--resume: {cfg}", "it was not written by textopt; use a new --out",
               error=CheckpointError)
        diff = [k for k in config if k not in RESUMABLE and old.get(k) != config[k]]
        if diff:
            raise CheckpointError(f"--resume: {out} holds a run with different settings ({', '.join(diff)}); "
                                  "use the same command, or a new --out")


def start_run(out: str | Path, config: dict, resume: bool) -> Path:
    """Create ``out``, check a resumed run's settings, write ``config.json``; the folder."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"--out {out}: the folder cannot be created ({exc.strerror or exc}); choose a place you "
                        f"can write to") from None
    check_resume(out, config, resume)
    atomic_write_text(out / "config.json", json.dumps(config, indent=1, ensure_ascii=False))
    return out


def accepted_steps(history: list[dict]) -> list[int]:
    """Steps whose update was kept: the prompt changed, no step error, not reverted (a search: a new best)."""
    out, prev = [], None
    for row in curve_points(history):
        params = row.get("params")
        if row.get("kind") == "step" and not row.get("reverted") and not row.get("step_error") \
                and prev is not None and params != prev:
            out.append(row["step"])
        if not row.get("reverted"):
            prev = params
    return out


def unchanged_steps(history: list[dict]) -> list[int]:
    """Steps whose optimizer returned the parameters as they were (even when asked again)."""
    return [row["step"] for row in history if row.get("kind") == "step" and row.get("unchanged")]


def finish(out: Path, summary: dict, files: str = FILES) -> str:
    """Write best_prompt.txt, summary.json, usage.json/.txt; the end-of-run summary to print (every optimizer)."""
    out = Path(out)
    atomic_write_text(out / "best_prompt.txt", summary["optimized_prompt"] + "\n")
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1, ensure_ascii=False))
    usage = Usage()
    usage.load_dict(summary["usage"])
    report = format_report(usage)
    atomic_write_text(out / "usage.json", json.dumps(summary["usage"], indent=1))
    atomic_write_text(out / "usage.txt", report + "\n")
    return render_summary(summary, report, out, files)


def _pct(x) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def render_summary(s: dict, report: str, out: Path, files: str = FILES) -> str:
    n_train, n_val, n_test = s["sizes"]
    acc = s["accepted_steps"]
    lines = [
        "",
        f"textopt optimize: task {s['task']} on {s['engine']} ({s['steps']} steps"
        + (f" of {s['optimizer']}" if s.get("optimizer", "tgd") != "tgd" else "") + ")",
        f"{'':14}{'before':>8}{'after':>9}",
        f"{'val':<4}(n={n_val:<4}) {_pct(s['val_before']):>8}{_pct(s['val_after']):>9}",
        f"{'test':<4}(n={n_test:<4}) {_pct(s['test_before']):>8}{_pct(s['test_after']):>9}",
        f"updates accepted on validation: {len(acc)} of {s['steps']}"
        + (f" (step {', '.join(map(str, acc))})" if acc else "")
        + (f"; left unchanged by the optimizer: step {', '.join(map(str, s['unchanged_steps']))}"
           if s.get("unchanged_steps") else ""),
        "initial prompt:   " + s["initial_prompt"].replace("\n", "\n                  "),
        "optimized prompt: " + s["optimized_prompt"].replace("\n", "\n                  "),
        "calls and tokens by role (cached calls cost nothing):",
        report,
        f"wall time: {s['wall_s']:.1f} s",
        *([f"stopped: {s['stopped']}"] if s.get("stopped") else []),
        f"output: {out}/ ({files})",
    ]
    return "\n".join(lines)
