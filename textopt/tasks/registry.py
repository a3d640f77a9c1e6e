"""Task registry by name (what ``textopt --task NAME`` resolves).

- Generated (no files): ``counting``, ``arithmetic``, ``sorting`` and the demo task ``format_count``.
- Shipped with the package (``textopt/tasks/data``), or from a file the user gives with ``data=`` (which overrides
  the shipped copy): ``gsm8k`` (the test split; ``data`` is a JSONL file), ``bbh:NAME`` or a bare BBH task name
  such as ``object_counting`` (``data`` is the task's JSON file or the BBH folder).
- ``bbh`` with ``data`` pointing at any BBH-format JSON file (nothing shipped: the file is yours).
"""
from __future__ import annotations

import os
from typing import Callable

from ..errors import DataError
from .base import Task
from .demo import format_count_task
from .generated import arithmetic_task, counting_task, sorting_task
from .loaders import BBH_TASKS, bbh_file, load_bbh, load_gsm8k
from .packaged import bbh_path, gsm8k_path

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
    """Resolve a task by name; BBH tasks and GSM8K read the shipped data unless ``data`` (a path) is given."""
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"a task name is required; known tasks: {', '.join(list_tasks())}")
    name = name.strip()
    if name in _CUSTOM:
        return _CUSTOM[name](data=data)
    if name in GENERATED:
        return GENERATED[name]()
    if name == "gsm8k":
        return load_gsm8k(gsm8k_path() if data is None else data)
    bbh_name = name.split(":", 1)[1] if name.startswith("bbh:") else name
    if name == "bbh" or name.startswith("bbh:") or name in BBH_TASKS:
        if name == "bbh":
            if data is None:
                raise DataError("task 'bbh' reads a BBH-format JSON file of yours: pass data=PATH (CLI: --data "
                                "my_task.json); the 27 shipped tasks go by name, e.g. --task object_counting")
            return load_bbh(data)
        if bbh_name not in BBH_TASKS and data is None:
            raise DataError(f"unknown BIG-Bench Hard task {bbh_name!r}; shipped tasks: {', '.join(BBH_TASKS)} "
                            f"(or pass data=PATH to a BBH-format file)")
        return load_bbh(bbh_path(bbh_name) if data is None else bbh_file(data, bbh_name), name=bbh_name)
    raise DataError(f"unknown task {name!r}; known tasks: {', '.join(list_tasks())}")
