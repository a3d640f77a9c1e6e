"""``Scored``: a loss Variable that also carries a number (``meta["score"]``, higher is better) — ``.score``
gives it as a tensor. Its text is the explanation that seeds backward (``meta["feedback"]``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..variable import Feedback, Variable


if TYPE_CHECKING:
    import torch


class Scored(Variable):
    __slots__ = ()

    @property
    def score(self) -> "torch.Tensor":
        import torch   # on first use only: the library does not load torch until a tensor is asked for
        return torch.tensor(float(self.meta["score"]))

    def __repr__(self) -> str:
        return f"Scored({self.meta.get('score')!r}, {self.short()!r}, role={self.role!r})"


def scored(var: Variable, score: float | None = None) -> Scored:
    """Turn ``var`` (fresh from ``Function.attach``) into a :class:`Scored` in place."""
    if score is not None:
        var.meta["score"] = float(score)
    var.__class__ = Scored
    return var  # type: ignore[return-value]


def is_evaluation(feedback: list[Feedback]) -> bool:
    """True when the feedback on a loss output is the evaluation itself: the seed of the pass, or what
    ``tx.aggregate`` routes back to each loss of a batch."""
    return bool(feedback) and all(f.source == "seed" or f.meta.get("evaluation") for f in feedback)


def evaluation_for(node, feedback: list[Feedback]) -> str:
    """The text a loss passes to what it evaluated: its own explanation for a seed, the routed text otherwise."""
    own = node.output.meta.get("feedback", node.output.value)
    return "\n\n".join(str(own) if f.source == "seed" else f.value for f in feedback)
