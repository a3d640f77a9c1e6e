"""What every command reads from its flags the same way: the engines (cache, budget, record/replay), the
executor and the starting prompt. Only the commands import this module; the pieces it builds are the library's
(:mod:`textopt.runs`, :mod:`textopt.parallel`)."""
from __future__ import annotations

import sys

from ..checks import read_text
from ..parallel import get_executor
from ..runs import EngineSet
from ..tasks import Task


def engine_set(args) -> EngineSet:
    # None: the engines' default (the shared disk cache, unless TEXTOPT_CACHE=0)
    cache = False if args.no_cache else (getattr(args, "cache", None) or args.cache_dir or None)
    return EngineSet(cache=cache, budget_usd=args.budget_usd, budget_tokens=getattr(args, "budget_tokens", None),
                     record=args.record, replay=args.replay)


def executor_of(args):
    """``--executor`` / ``--ray-address`` as an executor (None: this process)."""
    return get_executor(getattr(args, "executor", None), address=getattr(args, "ray_address", None))


def load_prompt(args, task: Task) -> str:
    if getattr(args, "prompt_file", None):
        return read_text(args.prompt_file, "--prompt-file").strip()
    if getattr(args, "prompt", None) is not None:
        return args.prompt
    return task.initial_prompt


def say(text: str) -> None:
    """A progress line or a warning of a run: stderr (stdout holds the summary)."""
    print(text, file=sys.stderr)
