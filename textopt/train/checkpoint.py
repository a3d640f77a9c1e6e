"""Atomic JSON checkpoints: write a temporary file in the same folder, fsync, then ``os.replace``.

A crash at any moment leaves either the previous checkpoint or the new one, never a torn file.
"""
from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from .data import rng_state_from_json, rng_state_to_json


def to_jsonable(obj: Any) -> Any:
    """Tensors become {"__tensor__": nested list, "dtype": ...}; tuples become lists; dict keys become str."""
    if isinstance(obj, torch.Tensor):
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
    try:
        return from_jsonable(json.loads(Path(path).read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}; start without resume or point out_dir at a previous run")
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint {path} is not valid JSON ({exc}); it was not written by textopt")


def rng_states() -> dict:
    """Process-wide RNG states (Python's ``random`` and torch's CPU generator)."""
    return {"python": rng_state_to_json(random.getstate()), "torch": torch.get_rng_state().tolist()}


def set_rng_states(d: dict) -> None:
    random.setstate(rng_state_from_json(d["python"]))
    torch.set_rng_state(torch.tensor(d["torch"], dtype=torch.uint8))
