"""Functional ops of the core: ``concat`` (text join; each input gets its feedback once, no LLM call)."""
from __future__ import annotations

from typing import Sequence

from . import lazy
from .backward import seed
from .errors import InvalidVariableError
from .function import Function
from .prompts import CONCAT_FEEDBACK, fill
from .variable import Variable


MAX_FEEDBACK_CHARS = 8000   # the feedback a concat passes to each part (head and tail kept)
MAX_ROLES_CHARS = 400       # the list of the parts' distinct roles it names


class Concat(Function):
    name = "concat"

    def __init__(self, sep: str):
        self.sep = sep

    def forward(self, parts: Sequence[Variable], role: str | None) -> Variable:
        if not parts:
            raise InvalidVariableError("concat() needs at least one Variable")
        lazy.resolve(parts)   # the text of every part: wait for pending calls together, with one hop
        for p in parts:
            if not isinstance(p, Variable) or not p.is_text:
                raise InvalidVariableError(f"concat() joins text Variables, got {p!r}")
        roles = " + ".join(p.role for p in parts)
        return self.attach(list(parts), self.sep.join(p.value for p in parts), role or f"concatenation of {roles}")

    async def backward(self, ctx, node, feedback, targets):
        """Each part gets the feedback on the whole — ONE text, the same object for every part (a fan-in of n
        parts costs n references, not n copies of a text that grows with n), bounded like every prompt that
        embeds feedback. When the concat is itself the loss, a part that is an evaluation (a loss's output)
        gets its own evaluation instead, as if it were the root: a concat of losses is evaluated loss by loss."""
        root = all(f.source == "seed" for f in feedback)
        shared = None
        out = []
        for v in targets:
            if root and v.node is not None and v.node.fn.evaluates:
                out.append(seed(v))
                continue
            if shared is None:
                roles = clip(", ".join(dict.fromkeys(p.role for p in node.inputs)), MAX_ROLES_CHARS)
                text = clip("\n\n".join(f.value for f in feedback), MAX_FEEDBACK_CHARS, sep="\n")
                shared = fill(CONCAT_FEEDBACK, roles=roles, feedback=text)
            out.append(shared)
        return out


def clip(text: str, max_chars: int, *, tail: float = 0.5, sep: str = " ", marker: str | None = None) -> str:
    """Bound ``text`` to ``max_chars``: keep its head and tail (``tail`` share of what is kept) around a marker
    saying how much was cut. Every prompt that embeds a variable, feedback or trace bounds it with this.

    ``marker`` replaces the "[... N characters cut ...]" note (``sep`` goes on both sides of it): a one-line label
    is ``clip(text, n, tail=0, sep="", marker="...")`` (the head, then "...", ``n`` characters in all)."""
    if len(text) <= max_chars:
        return text
    note = marker if marker is not None else f"[... {len(text) - max_chars} characters cut ...]"
    marker = f"{sep}{note}{sep}"
    keep = max(max_chars - len(marker), 0)
    n_tail = int(keep * tail)
    return text[: keep - n_tail] + marker + text[len(text) - n_tail:]


def one_line(text: str, max_chars: int, ellipsis: str = "...") -> str:
    """``text`` with its white space folded to single spaces, cut to ``max_chars`` (its head, then ``ellipsis``)."""
    return clip(" ".join(str(text).split()), max_chars, tail=0, sep="", marker=ellipsis)


def concat(parts: Sequence[Variable], sep: str = "\n", role: str | None = None) -> Variable:
    """Join text Variables. Each distinct input receives the downstream feedback exactly once."""
    return Concat(sep).forward(list(parts), role)
