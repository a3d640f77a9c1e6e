"""The one place bad input is checked: reading a user's file, parsing its JSON, the type and range of a value,
and a path textopt will write to. Each helper raises ONE textopt error (``DataError`` unless the caller names
another :class:`~textopt.errors.TextoptError` subclass) whose message says what was wrong and how to fix it;
no ``UnicodeDecodeError``, ``RecursionError``, ``TypeError`` or ``OSError`` escapes from a bad input.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import DataError, TextoptError

ErrorType = type[TextoptError]


def type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def expect(value: Any, types: type | tuple[type, ...], what: str, fix: str = "", *,
           error: ErrorType = DataError, allow_none: bool = False) -> Any:
    """``value`` if it is one of ``types`` (bool is never accepted as a number), else ``error``."""
    if value is None and allow_none:
        return value
    types = types if isinstance(types, tuple) else (types,)
    numeric = any(t in (int, float) for t in types) and bool not in types
    if not isinstance(value, types) or (numeric and isinstance(value, bool)):
        want = " or ".join(_NAMES.get(t, f"a {t.__name__}") for t in types)
        raise error(f"{what} must be {want}, got {type_name(value)} {_excerpt(value)}" + (f"; {fix}" if fix else ""))
    return value


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "True or False", dict: "a JSON object",
          list: "a list", tuple: "a tuple"}


def expect_int(value: Any, what: str, *, lo: int | None = None, hi: int | None = None,
               error: ErrorType = DataError, allow_none: bool = False) -> int | None:
    """An integer within [lo, hi] (either bound optional)."""
    if value is None and allow_none:
        return None
    expect(value, int, what, error=error)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if lo is not None and hi is not None else \
            f">= {lo}" if lo is not None else f"<= {hi}"
        raise error(f"{what} must be {bounds}, got {value}")
    return value


def _excerpt(value: Any, n: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__ must not hide the real error
        return ""
    return f"({text[:n - 3]}...)" if len(text) > n else f"({text})"


def read_text(path: str | os.PathLike, what: str = "file", *, error: ErrorType = DataError,
              allow_empty: bool = False) -> str:
    """A user's UTF-8 text file: missing, a folder, unreadable, not UTF-8 or empty -> ``error``."""
    path = Path(path)
    try:
        if not path.exists():
            raise error(f"{what} {path}: no such file")
        if path.is_dir():
            raise error(f"{what} {path}: is a folder, expected a file")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise error(f"{what} {path}: cannot be read ({exc.strerror or exc}); check its permissions") from None
    if not allow_empty and not text.strip():
        raise error(f"{what} {path}:1: the file is empty")
    return text


def parse_json(text: str, source: Any, *, line: int | None = None, error: ErrorType = DataError) -> Any:
    """``json.loads`` whose failures (bad syntax, nesting too deep for the parser) are ``error`` at
    ``source:line`` (``line``: the line ``text`` starts on in a JSONL file; None: the whole file)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = exc.lineno if line is None else line
        raise error(f"{source}:{at}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise error(f"{source}:{line or 1}: JSON nested too deeply to read; a data file needs only a few "
                    f"levels of nesting") from None
    except (ValueError, TypeError) as exc:   # e.g. an integer literal too long to convert
        raise error(f"{source}:{line or 1}: unreadable JSON ({exc})") from None


def writable(path: str | os.PathLike, flag: str, *, kind: str = "file", error: ErrorType = DataError) -> Path:
    """Check, before any work, that textopt can write ``path`` as a ``kind`` ("file" or "dir"); return it
    (``~`` expanded). ``flag`` names it in the message (``--out``, "record cassette").

    A file must not be a folder and its folder must be creatable/writable; a folder must not be a file."""
    path = expand_user(path, flag, error=error)
    if kind == "dir":
        if path.exists() and not path.is_dir():
            raise error(f"{flag} {path}: is a file, expected a folder; give a folder path")
        target = path
    else:
        if path.is_dir():
            raise error(f"{flag} {path}: is a folder; give a file path (e.g. {path / 'NAME'})")
        target = path.parent
    existing = next((p for p in (target, *target.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise error(f"{flag} {path}: {existing} is a file, so nothing can be written under it")
    probe = path if path.exists() else existing
    if probe is not None and not os.access(probe, os.W_OK | (os.X_OK if probe.is_dir() else 0)):
        raise error(f"{flag} {path}: {probe} is not writable; choose a place you can write to")
    return path


def expand_user(path: str | os.PathLike, what: str, *, error: ErrorType = DataError) -> Path:
    """``Path(path).expanduser()`` with an unknown ``~user`` as ``error``."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        raise error(f"{what} {str(path)!r}: the home folder in it ({str(path).split('/')[0]}) does not exist; "
                    f"give an absolute path") from None
