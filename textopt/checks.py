"""The one place bad input is checked: reading a user's file, parsing its JSON, the type and range of a value,
a path textopt will write to, a Variable's arguments, a Feedback's conversation and saved state being loaded
(:func:`loading`: all or nothing). Each helper raises ONE
textopt error (``DataError`` unless the caller names another :class:`~textopt.errors.TextoptError` subclass)
whose message says what was wrong and how to fix it; no ``UnicodeDecodeError``, ``RecursionError``,
``TypeError`` or ``OSError`` escapes from a bad input.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping   # not typing's aliases: their isinstance costs ~10x
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import CheckpointError, DataError, InvalidVariableError, TextoptError

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
    expect(path, (str, os.PathLike), what, "give a path", error=error)
    try:
        return Path(path).expanduser()
    except RuntimeError:
        raise error(f"{what} {str(path)!r}: the home folder in it ({str(path).split('/')[0]}) does not exist; "
                    f"give an absolute path") from None


# -- a Variable's arguments and metadata, a Feedback's conversation (textopt.variable) ----------------------------
def is_tensor(x: Any) -> bool:
    """``isinstance(x, torch.Tensor)`` without importing torch: no tensor exists before torch is imported, and the
    core never imports it itself (torch's ~150k objects would make every garbage collection of a large graph
    several times slower)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def variable_args(value: Any, role: Any, requires_grad: Any) -> None:
    """Raise ``InvalidVariableError`` naming what is wrong with a Variable's arguments and how to fix it."""
    is_text = isinstance(value, str)
    if not is_text and not is_tensor(value):
        raise InvalidVariableError(
            f"Variable value must be a str or a torch.Tensor, got {type(value).__name__}: "
            f"convert it first (str(x) for text, torch.tensor(x) for numbers)")
    if role is not None and not isinstance(role, str):
        raise InvalidVariableError(
            f"Variable role must be a string describing what the value is for, got {type(role).__name__}")
    if not isinstance(requires_grad, bool):
        raise InvalidVariableError(f"requires_grad must be True or False, got {requires_grad!r}")
    if requires_grad and is_text and not (role and role.strip()):
        raise InvalidVariableError(
            "a text Variable with requires_grad=True needs a role, e.g. "
            "Variable('...', role='system prompt of the solver', requires_grad=True): "
            "the role tells the backward and optimizer LLMs what the text is for")


_CHAT_FIX = 'a conversation is a list of chat messages, each {"role": ..., "content": ...} or a (role, content) pair'


def chat_pairs(conversation: Any) -> tuple[tuple[str, str], ...]:
    """Chat messages as (role, content) string pairs; anything else is an ``InvalidVariableError``."""
    if type(conversation) is tuple:   # string pairs already (what textopt's own losses keep): taken as is
        for m in conversation:        # (a plain loop: no generator frame; this runs for every Feedback)
            if type(m) is not tuple or len(m) != 2 or type(m[0]) is not str or type(m[1]) is not str:
                break
        else:
            return conversation
    if type(conversation) is list:   # dicts of strings (a loss's meta["conversation"]): taken as they are
        pairs = []
        for m in conversation:
            if type(m) is not dict or type(m.get("role")) is not str or type(m.get("content")) is not str:
                break
            pairs.append((m["role"], m["content"]))
        else:
            return tuple(pairs)
    elif isinstance(conversation, (str, bytes, Mapping)) or not isinstance(conversation, Iterable):
        raise InvalidVariableError(f"Feedback conversation must be a list of messages, got "
                                   f"{type(conversation).__name__}; {_CHAT_FIX}")
    return tuple(chat_pair(m, i) for i, m in enumerate(conversation))


def chat_pair(message: Any, index: int = 0) -> tuple[str, str]:
    """A chat message (a {"role", "content"} mapping or a (role, content) pair) as a (role, content) tuple."""
    if type(message) is dict or isinstance(message, Mapping):
        if "role" in message and "content" in message:
            return (str(message["role"]), str(message["content"]))
    elif isinstance(message, (tuple, list)) and len(message) == 2:
        return (str(message[0]), str(message[1]))
    raise InvalidVariableError(f"Feedback conversation message #{index + 1} is not a chat message "
                               f"({type(message).__name__}); {_CHAT_FIX}")


def meta_dict(meta: Any) -> dict:
    """A Variable's metadata as a new dict; anything but a mapping is an ``InvalidVariableError``."""
    if type(meta) is not dict and not isinstance(meta, Mapping):
        raise InvalidVariableError(f"Variable meta must be a dict of metadata, got {type(meta).__name__}; e.g. "
                                   f"meta={{'score': 0.5}}")
    return dict(meta)


_ANY = object()
STATE_FIX = "pass what state_dict() returned, unchanged"
FILE_FIX = "it was written by another version or edited: remove it or use a new output folder"


@contextmanager
def loading(what: str, state: Any = _ANY, restore: Callable[[], Any] | None = None, *,
            fix: str = STATE_FIX) -> Iterator[None]:
    """Around loading saved state (a ``load_state_dict``, a checkpoint file): ``state``, when given, must be a
    dict, and a malformed one (a missing key, a value of the wrong type) is ONE ``CheckpointError`` naming
    ``what`` and saying ``fix``, raised after ``restore()`` put back the state from before the load (nothing is
    left half-loaded; a textopt error raised inside is restored after too)."""
    def malformed(detail: str) -> CheckpointError:
        err = CheckpointError(f"{what} does not hold a state this run can restore ({detail}); {fix}")
        err.detail = detail   # a load around this one names its own source and fix with the same detail
        return err

    if state is not _ANY and not isinstance(state, Mapping):
        raise malformed(f"{type_name(state)}, not a dict")
    try:
        yield
    except TextoptError as exc:
        if restore is not None:
            restore()
        if getattr(exc, "detail", None) is not None:   # a malformed part of this state: named as this load's
            raise malformed(exc.detail) from None
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
        if restore is not None:
            restore()
        raise malformed(f"missing field {exc}" if type(exc) is KeyError else f"{type(exc).__name__}: {exc}") \
            from None
