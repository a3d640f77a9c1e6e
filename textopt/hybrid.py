"""The numeric half of a hybrid backward pass (called by :mod:`textopt.backward`; the bridges: :mod:`textopt.numeric`).

Order of one ``loss.backward()`` over a graph holding text and tensor Variables:

1. ``output_sensitivities``: if the loss is a tensor, ONE ``torch.autograd.grad`` gives d loss / d output for every
   text->number bridge (a hybrid node whose ``fn.needs_output_grad`` is True). Nothing is accumulated into
   ``.grad`` here; the bridges read the result through ``ctx.output_grad(node.output)`` and turn its sign and size
   into text feedback on their text inputs ("raise this score: d loss / d score = -0.5").
2. The text pass runs as usual. Number->text bridges return a ``torch.Tensor`` for their tensor inputs (a numeric
   gradient derived from the text feedback on their output); the scheduler collects them with their order key and
   records them as signals (``ctx.add_signal``); ``NumericFn`` forwards signals upstream by a VJP, and
   ``ctx.output_grad`` = pre-pass + signals, so upstream text->number bridges see them too (even with a text loss).
3. ``tensor_backward``: ONE ``torch.autograd.backward`` over the tensor loss (seeded with ones) and every collected
   (tensor, gradient) pair, in key order, so torch sums them deterministically into the leaf parameters' ``.grad``
   exactly as plain autograd would.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from .errors import GraphError
from .variable import Variable, is_tensor

if TYPE_CHECKING:
    import torch


def output_sensitivities(loss: Variable, nodes: Iterable[Any]) -> dict[int, torch.Tensor]:
    """id(output Variable) -> d loss / d output for bridge outputs that ask for it (empty when the loss is text)."""
    lv = loss.value
    if not is_tensor(lv) or not lv.requires_grad:
        return {}
    import torch   # loaded: the loss is a tensor
    outs = [n.output for n in nodes if getattr(n.fn, "needs_output_grad", False) and not n.output.is_text
            and n.output.value.requires_grad]
    if not outs:
        return {}
    grads: dict[int, torch.Tensor] = {}
    rest = []
    for o in outs:
        if o.value is lv:
            grads[id(o)] = torch.ones_like(lv)
        else:
            rest.append(o)
    if rest and lv.grad_fn is not None:
        got = torch.autograd.grad(lv, [o.value for o in rest], grad_outputs=torch.ones_like(lv),
                                  retain_graph=True, allow_unused=True)
        for o, g in zip(rest, got):
            if g is not None:
                grads[id(o)] = g.detach()
    return grads


def tensor_backward(loss: Variable, numeric: list[tuple[tuple, Variable, Any]]) -> None:
    """One torch backward over the tensor loss and the numeric gradients that bridges produced."""
    lv = loss.value
    if not numeric and not is_tensor(lv):
        return   # a text pass: nothing numeric (and torch need not be loaded)
    import torch   # loaded: a tensor exists
    roots: list[torch.Tensor] = []
    seeds: list[torch.Tensor] = []
    if isinstance(lv, torch.Tensor) and lv.grad_fn is not None:
        roots.append(lv)
        seeds.append(torch.ones_like(lv))
    for _, var, grad in sorted(numeric, key=lambda item: item[0]):
        value = var.value
        grad = torch.as_tensor(grad, dtype=value.dtype, device=value.device)
        if grad.shape != value.shape:
            raise GraphError(f"a bridge returned a numeric gradient of shape {tuple(grad.shape)} for the tensor "
                             f"{var.role!r} of shape {tuple(value.shape)}; they must match")
        if value.requires_grad:
            roots.append(value)
            seeds.append(grad)
    if roots:
        torch.autograd.backward(roots, seeds, retain_graph=True)

