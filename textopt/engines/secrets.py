"""API keys in memory only: ``Secret`` hides its value from repr/str (so engine reprs, logs and error messages
built from objects never show it) and ``scrub`` removes known secrets from any text before it leaves textopt."""
from __future__ import annotations


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


def scrub(text: str, *secrets: "Secret | str | None") -> str:
    """``text`` with every occurrence of the given secrets replaced by ``***``."""
    for s in secrets:
        value = s.get() if isinstance(s, Secret) else s
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text
