"""``textopt optimize --config FILE``: every optimize flag from a TOML file (stdlib ``tomllib``) or a run
folder's ``config.json``; flags on the command line override the file.

    # run.toml                         # keys are the flag names, with - or _
    task = "object_counting"
    engine = "openai:gpt-4o-mini"
    steps = 6
    batch-size = 3
    no-cache = true

A run folder's ``config.json`` records the flags the run was made with in its ``flags`` table (all but
``--out``, ``--resume``, ``--config`` and ``--record``; the starting prompt as ``prompt`` text), so
``textopt optimize --config runs/a/config.json --out runs/b`` repeats run ``a``'s settings.

The file is checked before anything runs: an unknown key, a value of the wrong type (``steps = "3"``,
``no-cache = 1``) or out of range is one :class:`~textopt.errors.DataError` naming the file and the key. The
file's values become command-line tokens placed before the user's own, so argparse's last-one-wins rule gives
the command line precedence. A ``true`` switch (``no-cache = true``) cannot be turned off from the command line
(argparse switches have no negative form): leave it out of the file instead.
"""
from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import Any

from ..checks import parse_json, read_text
from ..errors import DataError

OPTION = "--config"
NOT_IN_FILE = ("config", "resume", "help")    # a config cannot name another config or resume a run
# not repeated from a run's config.json: its folder, its cassette (a second run must not overwrite it)
NOT_RECORDED = ("config", "resume", "out", "record", "prompt_file", "func", "command")


def _options(sub: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The subcommand's flags by dest (``batch_size``), without those a file may not set."""
    return {a.dest: a for a in sub._actions if a.option_strings and a.dest not in NOT_IN_FILE}


def _kind(action: argparse.Action) -> type:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return bool
    name = getattr(action.type, "__name__", "")
    return int if name == "integer" else float if name == "usd" else str


def config_path(argv: list[str]) -> str | None:
    """The value of ``--config`` in ``argv`` (``--config X`` or ``--config=X``), or None."""
    for i, tok in enumerate(argv):
        if tok == "--":
            break
        if tok == OPTION:
            if i + 1 >= len(argv):
                raise DataError("--config needs a file: --config run.toml (or a run folder's config.json)")
            return argv[i + 1]
        if tok.startswith(OPTION + "="):
            return tok[len(OPTION) + 1:]
    return None


def load_config(path: str | Path) -> dict[str, Any]:
    """The table of settings in a ``.toml`` file or a JSON file (a run's ``config.json``: its ``flags``)."""
    path = Path(path)
    text = read_text(path, "--config")
    if path.suffix.lower() == ".json":
        data = parse_json(text, path)
        if isinstance(data, dict) and "flags" in data:   # a run folder's config.json
            data = data["flags"]
        elif isinstance(data, dict) and "initial_prompt" in data:
            raise DataError(f"--config {path}: this run's config.json has no 'flags' table (it was written by an "
                            f"older textopt); write a run.toml with the flags instead")
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise DataError(f"--config {path}: invalid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"--config {path}: must hold a table of settings (key = value), got a JSON "
                        f"{type(data).__name__}")
    return data


def to_tokens(data: dict[str, Any], sub: argparse.ArgumentParser, source: str) -> list[str]:
    """Command-line tokens for the settings in ``data`` (checked against ``sub``'s flags)."""
    options = _options(sub)
    tokens: list[str] = []
    for key, value in data.items():
        dest = str(key).replace("-", "_")
        action = options.get(dest)
        if action is None:
            known = ", ".join(sorted(d.replace("_", "-") for d in options))
            raise DataError(f"--config {source}: unknown key {key!r}; the known keys are the flags of "
                            f"`textopt {sub.prog.split()[-1]}`: {known}")
        if value is None:   # JSON null (a flag that was not given): the default
            continue
        kind, flag = _kind(action), action.option_strings[-1]
        if kind is bool:
            if not isinstance(value, bool):
                raise DataError(f"--config {source}: {key} must be true or false, got {value!r}")
            tokens += [flag] if value else []
            continue
        ok = isinstance(value, str) if kind is str else \
            isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
        if not ok:
            want = {str: "a string", int: "an integer", float: "a number"}[kind]
            raise DataError(f"--config {source}: {key} must be {want}, got {type(value).__name__} {value!r:.60}")
        text = str(value)
        if action.choices is not None and text not in action.choices:
            raise DataError(f"--config {source}: {key} must be one of {', '.join(map(str, action.choices))}, "
                            f"got {text!r}")
        if callable(action.type):
            try:
                action.type(text)
            except (argparse.ArgumentTypeError, ValueError) as exc:
                raise DataError(f"--config {source}: {key}: {exc}") from None
        tokens += [flag, text]
    return tokens


def expand(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``argv`` with the settings of its ``--config`` file inserted after the subcommand (so the user's own
    flags, which follow, win); unchanged without ``--config``."""
    path = config_path(argv)
    if path is None or not argv:
        return argv
    subs = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})
    sub = subs.get(argv[0])
    if sub is None or not any(OPTION in a.option_strings for a in sub._actions):
        return argv   # argparse reports --config where the subcommand has none
    return [argv[0], *to_tokens(load_config(path), sub, path), *argv[1:]]


def recorded_flags(args: argparse.Namespace, prompt: str) -> dict[str, Any]:
    """The flags of a run, for its ``config.json`` (``flags``): what ``--config`` needs to repeat it. The
    starting prompt is recorded as text; ``--out``, ``--resume``, ``--config`` and ``--record`` are left out."""
    flags = {k: v for k, v in vars(args).items() if k not in NOT_RECORDED and not callable(v)}
    flags["prompt"] = prompt
    return json.loads(json.dumps(flags, default=str))
