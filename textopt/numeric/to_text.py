"""Number -> text bridges: tensors choose or weight items that are formatted into a prompt.

The text feedback that reaches the formatted text is turned into a numeric gradient on the tensor input, which the
one torch backward at the end of the pass carries to the tensor parameters (query adapter, temperature, logits):

* ``WeightedItems`` (deterministic: scores or weights of the items already chosen, e.g. the top-k passages and
  their softmax weights). Estimator: one backward LLM call judges each item "helpful" / "harmful" / "neutral"
  given the feedback (structured output); labels y in {+1, -1, 0} give d loss / d w_i = -strength * y_i, the
  gradient of the surrogate loss -strength * sum_i y_i w_i. Helpful items gain weight, harmful ones lose it.
* ``SampledItems`` (a discrete choice: k items sampled without replacement from softmax(logits / tau)).
  Score-function (REINFORCE) estimator: reward R = mean of the per-item labels, baseline b = running mean (EMA) of
  the rewards of earlier draws (as of this draw's forward, so the estimate stays unbiased and order-independent),
  d loss / d logits = -(R - b) * d log p(sample) / d logits (Plackett-Luce log-probability, computed exactly).
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
from pydantic import Field, create_model

from ..engines import Request
from ..engines.structured import agenerate_structured
from ..errors import InvalidVariableError
from ..function import Function
from ..nn.module import Module
from ..variable import Variable
from . import prompts as P

LABEL_VALUE = {"helpful": 1.0, "neutral": 0.0, "harmful": -1.0}


class _CtxEngine:
    """Lets structured-output helpers call through the backward context (limit, role/node tags)."""

    def __init__(self, ctx, node):
        self.ctx, self.node = ctx, node
        self.supports_schema = getattr(ctx.engine, "supports_schema", False)
        self.supports_prefill = getattr(ctx.engine, "supports_prefill", False)

    async def generate(self, request):
        return await self.ctx.generate(request, self.node)

    def __repr__(self) -> str:
        return repr(self.ctx.engine)


async def judge_items(ctx, node, items: Sequence[str], feedback: str, role: str) -> list[float]:
    """One backward LLM call: a label per item, mapped to +1 (helpful) / 0 (neutral) / -1 (harmful)."""
    n = len(items)
    model = create_model("ItemJudgements", labels=(list[Literal["helpful", "harmful", "neutral"]],
                                                   Field(min_length=n, max_length=n)))
    listing = "\n".join(P.ITEM_LINE.format(i=i + 1, text=t) for i, t in enumerate(items))
    req = Request.chat(P.ITEMS_USER.format(role=role, items=listing, feedback=feedback, n=n), system=P.ITEMS_SYSTEM,
                       max_tokens=96 + 12 * n)
    parsed, _ = await agenerate_structured(_CtxEngine(ctx, node), req, model)
    return [LABEL_VALUE[label] for label in parsed.labels]


def _format(items: Sequence[str], weights: torch.Tensor | None, show_weights: bool, sep: str) -> str:
    if weights is None or not show_weights:
        return sep.join(P.ITEM_LINE.format(i=i + 1, text=t) for i, t in enumerate(items))
    return sep.join(P.ITEM_LINE_WEIGHTED.format(i=i + 1, w=float(w), text=t) for i, (t, w) in
                    enumerate(zip(items, weights.detach().flatten().tolist())))


class WeightedItemsFn(Function):
    hybrid = True
    name = "weighted_items"

    def __init__(self, strength: float):
        self.strength = strength

    async def backward(self, ctx, node, feedback, targets):
        if not feedback:
            return [None] * len(targets)
        items = node.saved["items"]
        labels = await judge_items(ctx, node, items, "\n\n".join(f.value for f in feedback), node.output.role)
        node.saved["labels"] = labels
        w = node.inputs[0].value
        grad = -self.strength * torch.tensor(labels, dtype=w.dtype, device=w.device).reshape(w.shape)
        return [grad if t is node.inputs[0] else None for t in targets]


class WeightedItems(Module):
    """``WeightedItems()(weights, items)`` -> the items formatted as a numbered list (weights shown when asked).

    ``weights``: a tensor Variable with one entry per item (retrieval scores, softmax weights...)."""

    def __init__(self, *, strength: float = 1.0, show_weights: bool = True, sep: str = "\n",
                 role: str = "retrieved passages", name: str = "weighted_items"):
        super().__init__()
        self.fn = WeightedItemsFn(strength)
        self.fn.name = name
        self.show_weights, self.sep, self.role = show_weights, sep, role

    def forward(self, weights: Variable, items: Sequence[str]) -> Variable:
        if not isinstance(weights, Variable) or weights.is_text:
            raise InvalidVariableError(f"WeightedItems needs a tensor Variable of weights, got {weights!r}")
        items = [str(t) for t in items]
        if weights.value.numel() != len(items) or not items:
            raise InvalidVariableError(f"WeightedItems got {weights.value.numel()} weights for {len(items)} items; "
                                       "pass one weight per item (and at least one item)")
        text = _format(items, weights.value, self.show_weights, self.sep)
        return self.fn.attach([weights], text, self.role, name=self.fn.name, saved={"items": items})


class SampledItemsFn(Function):
    hybrid = True
    name = "sampled_items"

    def __init__(self, owner: "SampledItems"):
        self.owner = owner

    async def backward(self, ctx, node, feedback, targets):
        if not feedback:
            return [None] * len(targets)
        chosen = node.saved["chosen"]
        labels = await judge_items(ctx, node, chosen, "\n\n".join(f.value for f in feedback), node.output.role)
        reward = sum(labels) / len(labels)
        self.owner._pending[node.saved["draw"]] = reward  # folded into the baseline in draw order (deterministic)
        node.saved.update(labels=labels, reward=reward)
        grad = -(reward - node.saved["baseline"]) * node.saved["score_fn"]
        return [grad if t is node.inputs[0] else None for t in targets]


def plackett_luce_logprob(logits: torch.Tensor, order: torch.Tensor, tau: float) -> torch.Tensor:
    """log p(order) when items are drawn one by one without replacement from softmax(logits / tau)."""
    z = logits / tau
    mask = torch.zeros_like(z, dtype=torch.bool)
    total = z.new_zeros(())
    for i in order.tolist():
        total = total + z[i] - torch.logsumexp(z.masked_fill(mask, float("-inf")), 0)
        mask = mask.clone()
        mask[i] = True
    return total


class SampledItems(Module):
    """Sample ``k`` of the items from softmax(logits / tau) (a discrete choice) and format them; REINFORCE backward.

    ``seed`` makes the draws reproducible (a torch.Generator owned by the module; its state is in ``state``)."""

    def __init__(self, k: int, *, tau: float = 1.0, momentum: float = 0.2, seed: int = 0, sep: str = "\n",
                 role: str = "sampled examples", name: str = "sampled_items"):
        super().__init__()
        if k < 1 or tau <= 0:
            raise InvalidVariableError(f"SampledItems needs k >= 1 and tau > 0, got k={k}, tau={tau}")
        self.k, self.tau, self.momentum, self.sep, self.role = k, tau, momentum, sep, role
        self.baseline: float | None = None   # running mean of rewards (EMA), as of the last forward
        self._pending: dict[int, float] = {}  # draw number -> reward, from backward passes not yet folded in
        self._draws = 0
        self.generator = torch.Generator().manual_seed(seed)
        self.fn = SampledItemsFn(self)
        self.fn.name = name

    def current_baseline(self) -> float:
        """Fold the rewards seen so far (in draw order, so concurrent backward passes cannot reorder them)."""
        for draw in sorted(self._pending):
            r = self._pending.pop(draw)
            self.baseline = r if self.baseline is None else (1 - self.momentum) * self.baseline + self.momentum * r
        return 0.0 if self.baseline is None else self.baseline

    def forward(self, logits: Variable, items: Sequence[str]) -> Variable:
        if not isinstance(logits, Variable) or logits.is_text or logits.value.dim() != 1:
            raise InvalidVariableError(f"SampledItems needs a 1-D tensor Variable of logits, got {logits!r}")
        items = [str(t) for t in items]
        if logits.value.numel() != len(items):
            raise InvalidVariableError(f"SampledItems got {logits.value.numel()} logits for {len(items)} items")
        k = min(self.k, len(items))
        probs = torch.softmax(logits.value.detach().float().cpu() / self.tau, 0)
        order = torch.multinomial(probs, k, replacement=False, generator=self.generator)
        leaf = logits.value.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            (score_fn,) = torch.autograd.grad(plackett_luce_logprob(leaf, order.to(leaf.device), self.tau), leaf)
        chosen = [items[i] for i in order.tolist()]
        text = _format(chosen, None, False, self.sep)
        saved = {"chosen": chosen, "order": order.tolist(), "score_fn": score_fn, "draw": self._draws,
                 "baseline": self.current_baseline()}
        self._draws += 1
        return self.fn.attach([logits], text, self.role, name=self.fn.name, saved=saved)
