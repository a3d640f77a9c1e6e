"""The datasets that ship inside the package (``textopt/tasks/data``): the 27 BIG-Bench Hard tasks and the GSM8K
test split, gzipped, with their MIT licence texts. ``get_task`` falls back to them when no ``data=`` is given."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import DataError

LICENCES = {"bbh": "LICENSE-bbh.txt", "gsm8k": "LICENSE-gsm8k.txt"}


def data_dir() -> Path:
    """The folder holding the shipped data files (a real folder: setuptools installs package data unzipped)."""
    return Path(str(resources.files("textopt.tasks") / "data"))


def _shipped(filename: str, what: str) -> Path:
    path = data_dir() / filename
    if not path.is_file():
        raise DataError(f"the shipped data file for {what} is missing from this install ({path}); reinstall textopt "
                        f"(pip install --force-reinstall textopt) or pass a path with data=PATH (CLI: --data PATH)")
    return path


def bbh_path(name: str) -> Path:
    """The shipped JSON (gzipped) of the BBH task ``name``."""
    return _shipped(f"bbh-{name}.json.gz", f"BIG-Bench Hard task {name!r}")


def gsm8k_path() -> Path:
    """The shipped GSM8K test split (JSONL, gzipped)."""
    return _shipped("gsm8k-test.jsonl.gz", "GSM8K")


def licence_text(dataset: str) -> str:
    """The licence text of a shipped dataset: ``"bbh"`` or ``"gsm8k"``."""
    if dataset not in LICENCES:
        raise DataError(f"no shipped dataset {dataset!r}; shipped: {', '.join(LICENCES)}")
    return _shipped(LICENCES[dataset], dataset).read_text(encoding="utf-8")
