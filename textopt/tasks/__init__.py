"""textopt.tasks: datasets with answer extraction and metrics, seeded splits, generated tasks, a registry.

    task = tx.tasks.get_task("counting")                   # generated, no files
    task = tx.tasks.get_task("object_counting")            # shipped BBH data (data=PATH overrides)
    task = tx.tasks.load_gsm8k("gsm8k/test.jsonl")
    splits = task.splits(50, 100, 100, seed=0)               # train / val / test
    task.score(response, example.target)                     # Score(value, extracted, explanation)
"""
from ..data import Example, Splits
from .base import DEFAULT_SIZES, Score, Task
from .demo import format_count_task
from .generated import arithmetic_task, counting_task, sorting_task
from .loaders import BBH_TASKS, gsm8k_target, load_bbh, load_gsm8k
from .packaged import licence_text
from .metrics import (METRICS, choice_match, extract_choice, extract_number, infer_kind, label_match,
                      number_match, text_match)
from .registry import GENERATED, get_task, list_tasks, register_task

__all__ = ["Example", "Score", "Splits", "Task", "DEFAULT_SIZES", "load_bbh", "load_gsm8k", "gsm8k_target",
           "BBH_TASKS", "licence_text", "get_task", "list_tasks", "register_task", "GENERATED", "counting_task",
           "arithmetic_task", "sorting_task", "format_count_task", "METRICS", "number_match", "choice_match",
           "text_match", "label_match", "extract_number", "extract_choice", "infer_kind"]
