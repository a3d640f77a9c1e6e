"""``tx.aggregate(losses, max_tokens=...)``: one loss over a batch, with bounded feedback.

Forward joins the evaluations of the batch (each loss's ``meta["feedback"]`` or its text) and averages the
scores the losses carry. Backward builds ONE batch view: the evaluations verbatim when they fit ``max_tokens``
(estimated at 4 characters a token), else one LLM call (the backward engine) summarises them within the cap.
Each DISTINCT input then receives exactly one feedback: its own evaluation plus the batch view, both bounded
(TextGrad's aggregate gives everything to one input and its sum doubles every gradient; neither happens here).
The routed feedback is marked as an evaluation, so losses pass it straight to what they evaluated.
"""
from __future__ import annotations

from functools import partial
from typing import Sequence

from .. import lazy
from ..engines import Request
from ..errors import InvalidVariableError
from ..function import Function
from ..functional import clip
from ..variable import Feedback, Variable
from .scored import scored
from .prompts import AGGREGATE_ITEM, AGGREGATE_ROUTE, AGGREGATE_SUMMARY, AGGREGATE_SYSTEM

CHARS_PER_TOKEN = 4


def evaluation_text(v: Variable) -> str:
    fb = v.meta.get("feedback")
    return str(fb) if fb is not None else str(v.value)


# Head and tail of an over-long evaluation or trace (two thirds head), with the cut marker on its own line.
clip_evaluation = partial(clip, tail=1 / 3, sep="\n")


class Aggregate(Function):
    name = "aggregate"
    evaluates = True

    def __init__(self, max_tokens: int):
        self.max_tokens = max_tokens

    def forward(self, losses: Sequence[Variable], role: str | None) -> Variable:
        if not losses:
            raise InvalidVariableError("aggregate() needs at least one loss Variable")
        lazy.resolve(losses)   # pending losses (lazy calls) finish together
        for v in losses:
            if not isinstance(v, Variable) or not v.is_text:
                raise InvalidVariableError(f"aggregate() takes text loss Variables, got {v!r}")
        items = [AGGREGATE_ITEM.format(i=i + 1, text=evaluation_text(v)) for i, v in enumerate(losses)]
        scores = [v.meta.get("score") for v in losses]
        meta = {}
        if scores and all(s is not None for s in scores):
            meta["score"] = float(sum(float(s) for s in scores) / len(scores))
        return self.attach(list(losses), "\n".join(items), role or f"evaluation of a batch of {len(losses)}",
                           meta=meta)

    async def batch_view(self, ctx, node, feedback: list[Feedback]) -> str:
        cap = self.max_tokens * CHARS_PER_TOKEN
        if all(f.source == "seed" for f in feedback):
            items = [AGGREGATE_ITEM.format(i=i + 1, text=evaluation_text(v)) for i, v in enumerate(node.inputs)]
        else:  # aggregate is not the root: its own downstream feedback is what to spread
            items = [f.value for f in feedback]
        text = "\n".join(items)
        if len(text) <= cap:
            return text
        user = AGGREGATE_SUMMARY.format(n=len(items), items=text, words=max(self.max_tokens * 3 // 4, 10))
        resp = await ctx.generate(Request.chat(user, system=AGGREGATE_SYSTEM, max_tokens=self.max_tokens), node)
        return clip_evaluation(resp.text.strip(), cap)

    async def backward(self, ctx, node, feedback, targets):
        cap = self.max_tokens * CHARS_PER_TOKEN
        batch = await self.batch_view(ctx, node, feedback)
        n = len(node.inputs)
        first: dict[int, int] = {}   # id(input) -> its first position (list.index per target: quadratic)
        for i, v in enumerate(node.inputs, 1):
            first.setdefault(id(v), i)
        out = []
        for t in targets:
            i = first[id(t)]
            own = clip_evaluation(evaluation_text(t), cap)
            text = AGGREGATE_ROUTE.format(i=i, n=n, own=own, batch=batch) if n > 1 else own
            fb = Feedback(text, t, source=node.name, conversation=[{"role": "user", "content": batch}])
            fb.meta["evaluation"] = True
            out.append(fb)
        return out


def aggregate(losses: Sequence[Variable], max_tokens: int = 1024, role: str | None = None) -> Variable:
    """Combine a batch of losses into one (see the module docstring). ``max_tokens`` caps the batch view."""
    if not isinstance(max_tokens, int) or max_tokens < 16:
        raise InvalidVariableError(f"aggregate(max_tokens=...) must be an int >= 16, got {max_tokens!r}")
    out = Aggregate(max_tokens).forward(list(losses), role)
    return scored(out) if "score" in out.meta else out


async def aaggregate(losses: Sequence[Variable], max_tokens: int = 1024, role: str | None = None) -> Variable:
    """Async twin (forward makes no LLM call; it exists so async code reads uniformly)."""
    return aggregate(losses, max_tokens=max_tokens, role=role)


__all__ = ["aggregate", "aaggregate", "Aggregate", "clip_evaluation"]
