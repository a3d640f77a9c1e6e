"""``scripted`` spec: a ScriptedEngine answering a fixed text (``scripted:TEXT``, default "ok")."""
from .scripted import ScriptedEngine


def from_spec(rest: str, **kw) -> ScriptedEngine:
    return ScriptedEngine(rest or "ok", **kw)
