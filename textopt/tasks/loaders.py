"""Loaders for BBH task JSON and GSM8K JSONL (plain or ``.gz``) from a path. Bad data raises ONE ``DataError`` naming
the file and the line of the offending record."""
from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path

from ..checks import parse_json, read_text
from ..data import Example
from ..errors import DataError
from .base import Task
from .prompts import BBH_PROMPTS, GSM8K_PROMPT
from .metrics import METRICS, infer_kind

BBH_TASKS = (
    "boolean_expressions", "causal_judgement", "date_understanding", "disambiguation_qa", "dyck_languages",
    "formal_fallacies", "geometric_shapes", "hyperbaton", "logical_deduction_five_objects",
    "logical_deduction_seven_objects", "logical_deduction_three_objects", "movie_recommendation",
    "multistep_arithmetic_two", "navigate", "object_counting", "penguins_in_a_table",
    "reasoning_about_colored_objects", "ruin_names", "salient_translation_error_detection", "snarks",
    "sports_understanding", "temporal_sequences", "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects", "tracking_shuffled_objects_three_objects", "web_of_lies",
    "word_sorting",
)

def _read(path: Path) -> str:
    if path.suffix != ".gz":
        return read_text(path, "data file")
    if not path.is_file():
        raise DataError(f"{path}: no such file" if not path.exists() else f"{path}: is a folder, expected a file")
    try:
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: not a readable gzip file ({exc}); gzip it again or pass the plain file") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise DataError(f"{path}:1: the file is empty")
    return text


def _record(path: Path, line: int, obj, fields: tuple[str, ...], what: str) -> dict:
    """Check that ``obj`` is an object with non-empty string ``fields``; else DataError at ``line``."""
    where = f"{path}:{line}"
    if not isinstance(obj, dict):
        raise DataError(f"{where}: each {what} must be a JSON object with {_fields(fields)}, got "
                        f"{type(obj).__name__}")
    for f in fields:
        if f not in obj:
            raise DataError(f"{where}: the {what} is missing the field {f!r} (expected {_fields(fields)})")
        v = obj[f]
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise DataError(f"{where}: in the {what}, the field {f!r} must be a string, got {type(v).__name__}")
        if not str(v).strip():
            raise DataError(f"{where}: in the {what}, the field {f!r} is empty")
    return obj


def _fields(fields) -> str:
    return " and ".join(repr(f) for f in fields)


def _element_lines(text: str, key: str) -> list[int]:
    """Line numbers where each element of the top-level array ``key`` starts (only computed on error)."""
    m = re.search(r'"%s"\s*:\s*\[' % re.escape(key), text)
    if not m:
        return []
    dec, pos, lines = json.JSONDecoder(), m.end(), []
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return lines
        lines.append(text.count("\n", 0, pos) + 1)
        try:
            _, pos = dec.raw_decode(text, pos)
        except json.JSONDecodeError:
            return lines


def load_bbh(path: str | os.PathLike, name: str | None = None) -> Task:
    """A BBH task file (``{"examples": [{"input", "target"}, ...]}``) as a Task; the metric fits the targets."""
    path = Path(path)
    text = _read(path)
    data = parse_json(text, path)
    if not isinstance(data, dict) or "examples" not in data:
        raise DataError(f"{path}:1: expected a JSON object with an 'examples' list "
                        '({"examples": [{"input": ..., "target": ...}]})')
    items = data["examples"]
    if not isinstance(items, list):
        raise DataError(f"{path}:1: 'examples' must be a list, got {type(items).__name__}")
    if not items:
        raise DataError(f"{path}:1: 'examples' is empty")
    examples = []
    for i, item in enumerate(items):
        try:
            rec = _record(path, 0, item, ("input", "target"), "example")
        except DataError:
            lines = _element_lines(text, "examples")
            line = lines[i] if i < len(lines) else 1
            _record(path, line, item, ("input", "target"), f"example (#{i + 1})")
            raise
        examples.append(Example(str(rec["input"]), str(rec["target"]), meta={"line": i + 1}))
    kind = infer_kind([e.target for e in examples])
    task_name = name or path.name.split(".")[0]
    return Task(task_name, examples=examples, metric=METRICS[kind], initial_prompt=BBH_PROMPTS[kind],
                description=f"BIG-Bench Hard {task_name} ({kind} answers)", source=str(path),
                max_tokens=384, licence="MIT (BIG-Bench Hard)")


def gsm8k_target(answer: str) -> str:
    m = re.search(r"####\s*(-?[\d,]*\.?\d+)\s*$", answer.strip())
    return m.group(1).replace(",", "") if m else ""


def load_gsm8k(path: str | os.PathLike, name: str = "gsm8k") -> Task:
    """GSM8K JSONL (``question``, ``answer`` ending in ``#### N``) as a Task with a number metric."""
    path = Path(path)
    text = _read(path)
    examples = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        obj = parse_json(line, path, line=lineno)
        _record(path, lineno, obj, ("question", "answer"), "record")
        target = gsm8k_target(str(obj["answer"]))
        if not target:
            raise DataError(f"{path}:{lineno}: the 'answer' must end with '#### N' (the final number), got "
                            f"...{str(obj['answer'])[-40:]!r}")
        examples.append(Example(str(obj["question"]), target, meta={"line": lineno,
                                                                    "solution": str(obj["answer"])}))
    return Task(name, examples=examples, metric=METRICS["number"], initial_prompt=GSM8K_PROMPT,
                description="GSM8K grade-school math word problems", source=str(path), max_tokens=384,
                licence="MIT (GSM8K)")


def bbh_file(data: str | os.PathLike, name: str) -> Path:
    """Resolve a BBH task: ``data`` is the task's JSON file or a folder holding ``<name>.json``."""
    p = Path(data)
    if p.is_dir():
        plain = p / f"{name}.json"
        gz = p / f"{name}.json.gz"
        p = gz if not plain.exists() and gz.exists() else plain
    return p
