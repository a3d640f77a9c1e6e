"""Atomic JSON checkpoints: write a temporary file in the same folder, fsync, then ``os.replace``.

A crash at any moment leaves either the previous checkpoint or the new one, never a torn file. torch is imported
only for a state that holds tensors (or torch's RNG state): a text program never loads it (its ~150k objects
would make every garbage collection of a large graph several times slower).
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..checks import FILE_FIX, is_tensor, loading, parse_json, read_text
from ..data import rng_state_from_json, rng_state_to_json
from ..errors import CheckpointError


def to_jsonable(obj: Any) -> Any:
    """Tensors become {"__tensor__": nested list, "dtype": ...}; tuples become lists; dict keys become str."""
    if is_tensor(obj):
        return {"__tensor__": obj.detach().cpu().tolist(), "dtype": str(obj.dtype).replace("torch.", "")}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    raise CheckpointError(f"cannot store a {type(obj).__name__} in a JSON checkpoint: {obj!r:.80}")


def from_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            import torch   # the state holds a tensor
            return torch.tensor(obj["__tensor__"], dtype=getattr(torch, obj["dtype"]))
        return {k: from_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_jsonable(v) for v in obj]
    return obj


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(path: str | Path, state: dict) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(state), ensure_ascii=False, indent=1))


def load(path: str | Path) -> dict:
    """A checkpoint written by :func:`save` (or any atomic JSON state file); stale temporary files that a kill
    during a write left next to it are removed. Anything but a JSON object is a ``CheckpointError``."""
    path = Path(path)
    remove_stale_tmp(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}; start without resume or point out_dir at a previous run")
    state = parse_json(read_text(path, "checkpoint", error=CheckpointError), path, error=CheckpointError)
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a JSON {type(state).__name__}, not a textopt state "
                              f"object; it was not written by textopt: remove it or use a new output folder")
    with loading(f"checkpoint {path}", fix=FILE_FIX):
        return from_jsonable(state)


def remove_stale_tmp(path: str | Path) -> int:
    """Delete the ``.NAME.*.tmp`` files an interrupted :func:`atomic_write_text` of ``path`` left; how many."""
    path = Path(path)
    n = 0
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp") if path.parent.is_dir() else ():
        with contextlib.suppress(OSError):
            tmp.unlink()
            n += 1
    return n


def torch_loaded():
    """The torch module when the program has imported it (it then may draw from torch's RNG), else None."""
    return sys.modules.get("torch")


def rng_states() -> dict:
    """Process-wide RNG states: Python's ``random``, and torch's CPU generator when torch is loaded (a program that
    never imported torch draws nothing from it)."""
    states = {"python": rng_state_to_json(random.getstate())}
    torch = torch_loaded()
    if torch is not None:
        states["torch"] = torch.get_rng_state().tolist()
    return states


def set_rng_states(d: dict) -> None:
    """Restore :func:`rng_states`; a state that holds torch's generator loads torch to restore it exactly."""
    random.setstate(rng_state_from_json(d["python"]))
    if "torch" in d:
        import torch   # the run that saved it had torch loaded
        torch.set_rng_state(torch.tensor(d["torch"], dtype=torch.uint8))
