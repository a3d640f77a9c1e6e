"""Task registry by name (what ``textopt --task NAME`` resolves).

- Generated (no files): ``counting``, ``arithmetic``, ``sorting`` and the demo task ``format_count``.
- From a file the user gives with ``data=``: ``gsm8k`` (JSONL), ``bbh:NAME`` or a bare BBH task name such as
  ``object_counting`` (``data`` is the task's JSON file or the BBH folder), and ``bbh`` with ``data`` pointing
  at any BBH-format JSON file.
"""
from __future__ import annotations

import os
from typing import Callable

from ..errors import DataError
from .base import Task
from .demo import format_count_task
from .generated import arithmetic_task, counting_task, sorting_task
from .loaders import BBH_TASKS, bbh_file, load_bbh, load_gsm8k

GENERATED: dict[str, Callable[[], Task]] = {
    "format_count": format_count_task,
    "counting": counting_task,
    "arithmetic": arithmetic_task,
    "sorting": sorting_task,
}
_CUSTOM: dict[str, Callable[..., Task]] = {}


def register_task(name: str, factory: Callable[..., Task]) -> None:
    """Add a task: ``factory(data=None) -> Task``."""
    _CUSTOM[name] = factory


def list_tasks() -> list[str]:
    return sorted(GENERATED) + sorted(_CUSTOM) + ["gsm8k", "bbh:<task>"] + list(BBH_TASKS)


def get_task(name: str, data: str | os.PathLike | None = None) -> Task:
    """Resolve a task by name; file-based tasks need ``data`` (a path) and say so clearly when it is missing."""
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"a task name is required; known tasks: {', '.join(list_tasks())}")
    name = name.strip()
    if name in _CUSTOM:
        return _CUSTOM[name](data=data)
    if name in GENERATED:
        return GENERATED[name]()
    if name == "gsm8k":
        if data is None:
            raise DataError("task 'gsm8k' reads a JSONL file: pass data=PATH (CLI: --data PATH/test.jsonl)")
        return load_gsm8k(data)
    bbh_name = name.split(":", 1)[1] if name.startswith("bbh:") else name
    if name == "bbh" or name.startswith("bbh:") or name in BBH_TASKS:
        if data is None:
            raise DataError(f"task {name!r} is a BIG-Bench Hard task and reads its JSON file: pass data=PATH "
                            f"(CLI: --data PATH/TO/bbh or --data {bbh_name}.json); without files, try the "
                            f"generated tasks {', '.join(sorted(GENERATED))}")
        if name == "bbh":
            return load_bbh(data)
        return load_bbh(bbh_file(data, bbh_name), name=bbh_name)
    raise DataError(f"unknown task {name!r}; known tasks: {', '.join(list_tasks())}")
