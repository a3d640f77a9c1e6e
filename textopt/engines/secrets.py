"""API keys in memory only: ``Secret`` hides its value from repr/str (so engine reprs, logs and error messages
built from objects never show it) and ``scrub`` removes known secrets from any text before it leaves textopt."""
from __future__ import annotations

import os
import re


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str | None):
        self._value = value or None

    def get(self) -> str | None:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret(None)"

    __str__ = __repr__


# Environment variables whose values are credentials: the providers' own, those engines were told to read
# (``api_key_env=``, added by ``known_key_env``), and any name that says it holds a key, token or secret — a
# gateway's 401 may echo ANOTHER provider's key than the one the engine sent.
KEY_ENVS = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}
_KEY_NAME = re.compile(r"(API_?KEY|_KEY|TOKEN|SECRET|PASSWORD)$", re.I)


def known_key_env(name: str | None) -> None:
    """Remember that ``name`` holds a credential (an engine's ``api_key_env``): ``scrub`` removes its value."""
    if name:
        KEY_ENVS.add(name)


def environment_secrets() -> list[str]:
    """Values of every credential-like variable in the environment (8+ characters: a short value such as
    "1" or "true" would blank out innocent text)."""
    return [v for k, v in os.environ.items() if (k in KEY_ENVS or _KEY_NAME.search(k)) and len(v) >= 8]


def scrub(text: str, *secrets: "Secret | str | None") -> str:
    """``text`` with every occurrence of the given secrets, and of every credential in the environment
    (``environment_secrets``), replaced by ``***``. Longest first, so a key containing another goes whole."""
    values = {s.get() if isinstance(s, Secret) else s for s in secrets} | set(environment_secrets())
    for value in sorted((v for v in values if v and len(v) >= 4), key=len, reverse=True):
        text = text.replace(value, "***")
    return text
