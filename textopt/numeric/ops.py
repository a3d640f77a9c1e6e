"""Numeric operations in the textopt graph: torch computes, the graph only records the edge.

``apply(fn, *vars)`` runs ``fn`` on the tensors (torch autograd tracks it as usual; under ``tx.no_grad()`` torch
builds no graph either) and, when an input requires grad, records a hybrid node so the backward scheduler can walk
from a tensor loss back to the text->number bridges that feed it. The node's own backward returns nothing: torch's single backward at the end of the pass does the
differentiation, so tensor gradients are exactly those of plain torch.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..errors import InvalidVariableError
from ..function import Function
from ..grad_mode import is_grad_enabled
from ..variable import Variable


class NumericFn(Function):
    """A torch computation as a graph node (hybrid: its tensor inputs are walked, torch differentiates them)."""

    hybrid = True

    def __init__(self, fn: Callable[..., torch.Tensor], name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "numeric")

    async def backward(self, ctx, node, feedback, targets):
        # Numeric gradients that bridges produced downstream travel on to upstream bridges as *signals* (a VJP
        # through this op); they inform text feedback only: torch's final backward does the accumulation.
        sig = ctx.signal(node.output)
        tensors = [t for t in targets if not t.is_text and t.value.requires_grad]
        if sig is not None and tensors:
            vjp = torch.autograd.grad(node.output.value, [t.value for t in tensors], grad_outputs=sig,
                                      retain_graph=True, allow_unused=True)
            for t, g in zip(tensors, vjp):
                if g is not None:
                    ctx.add_signal(t, (ctx.order[id(node)], node.inputs.index(t)), g.detach())
        return [None] * len(targets)


def apply(fn: Callable[..., torch.Tensor], *inputs: "Variable | torch.Tensor | float", role: str | None = None,
          name: str | None = None) -> Variable:
    """``fn(*tensors)`` as a tensor Variable in the graph. Plain tensors and numbers are wrapped as constants."""
    variables = []
    for x in inputs:
        if isinstance(x, Variable):
            if x.is_text:
                raise InvalidVariableError(
                    f"numeric.apply computes on tensors, got the text Variable {x!r}; turn text into a number "
                    "with a bridge first (textopt.numeric.MetricScore, JudgeScore, LogProbScore, ...)")
            variables.append(x)
        else:
            variables.append(Variable(torch.as_tensor(x), role="constant"))
    with torch.set_grad_enabled(torch.is_grad_enabled() and is_grad_enabled()):  # tx.no_grad: no torch graph either
        out = fn(*(v.value for v in variables))
    if not isinstance(out, torch.Tensor):
        raise InvalidVariableError(f"numeric.apply: {fn!r} must return a torch.Tensor, got {type(out).__name__}")
    op = NumericFn(fn, name)
    return op.attach(variables, out, role or f"result of {op.name}", name=op.name)


def parameter(value, role: str, *, name: str | None = None) -> Variable:
    """A learnable tensor Variable (float32 leaf with requires_grad=True)."""
    try:
        t = torch.as_tensor(value, dtype=torch.get_default_dtype()).detach().clone().requires_grad_(True)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidVariableError(f"parameter() takes numbers (a float, a list of floats, a tensor), got "
                                   f"{type(value).__name__}: {exc}") from None
    if not bool(torch.isfinite(t).all()):
        raise InvalidVariableError(f"parameter() values must be finite, got {value!r:.60}")
    return Variable(t, role=role, requires_grad=True, name=name)
