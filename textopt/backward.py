"""The backward pass: collect, schedule (Kahn on the reversed graph), run concurrently, order deterministically.

1. Collect: an iterative breadth-first walk from the loss through node inputs (no recursion limit). Only
   inputs that require grad are followed, so branches that lead to no parameter cost nothing.
2. Schedule: a node becomes ready when every consumer of its output (inside the collected graph) has delivered
   its feedback. Ready nodes run concurrently; LLM calls are bounded by ``max_concurrency``.
3. Order: each feedback carries the key (consumer's index in the walk, input position). Grad lists are sorted by
   key, so results never depend on completion order or memory addresses.
4. Seed: the loss's own text (an evaluation) — or ``loss.meta["feedback"]`` (a metric's explanation) — starts
   the pass. A tensor loss then runs one torch backward for the numeric part.
5. Hybrid graphs (``Function.hybrid``, see :mod:`textopt.numeric`): before the text pass, one ``autograd.grad``
   gives each text->number bridge d loss / d its output (``ctx.output_grad``); bridges turn it into text feedback
   and number->text bridges turn text feedback into numeric gradients on their tensor inputs (also recorded as
   signals that upstream bridges see); the pass ends with ONE torch backward over the tensor loss and those gradients.
"""
from __future__ import annotations

import asyncio
from collections import deque

from .errors import GraphError
from .function import BackwardContext, Node
from .numeric.hybrid import output_sensitivities, tensor_backward
from .runtime import run_sync
from .variable import Feedback, Variable

DEFAULT_MAX_CONCURRENCY = 16


def collect(loss: Variable) -> list[Node]:
    """Nodes reachable from ``loss`` through inputs that require grad, in breadth-first discovery order."""
    if loss.node is None:
        return []
    order: list[Node] = [loss.node]
    seen = {id(loss.node)}
    queue = deque(order)
    while queue:
        node = queue.popleft()
        for var in node.inputs:
            producer = var.node
            if producer is not None and var.requires_grad and id(producer) not in seen:
                seen.add(id(producer))
                order.append(producer)
                queue.append(producer)
    return order


def _targets(node: Node) -> list[Variable]:
    """Distinct inputs of ``node`` that need feedback (text; tensors too for hybrid nodes), in first-position order."""
    out, seen = [], set()
    for var in node.inputs:
        if var.requires_grad and (var.is_text or getattr(node.fn, "hybrid", False)) and id(var) not in seen:
            seen.add(id(var))
            out.append(var)
    return out


def _seed(loss: Variable) -> Feedback:
    text = loss.meta.get("feedback", loss.value if loss.is_text else None)
    if text is None:
        text = f"the numeric loss {loss.role!r} should decrease"
    return Feedback(str(text), loss, conversation=loss.meta.get("conversation", ()), source="seed", key=(-1, 0))


async def abackward(loss: Variable, engine=None, *, max_concurrency: int | None = None) -> None:
    """Async backward from ``loss``. ``engine`` is an Engine, a spec string, or None (use ``backward_engine``)."""
    if not isinstance(loss, Variable):
        raise GraphError(f"backward() needs a textopt Variable, got {type(loss).__name__}")
    if not loss.requires_grad:
        raise GraphError(f"{loss!r} does not require grad: it was built under no_grad or from inputs that do not "
                         "require grad; set requires_grad=True on the parameters you want to optimize")
    limit = max_concurrency or DEFAULT_MAX_CONCURRENCY
    if limit < 1:
        raise GraphError(f"max_concurrency must be >= 1, got {limit}")
    nodes = collect(loss)
    index = {id(n): i for i, n in enumerate(nodes)}
    pending_consumers = {id(n): 0 for n in nodes}
    targets_of = {id(n): _targets(n) for n in nodes}
    for node in nodes:
        producers = {id(v.node) for v in targets_of[id(node)] if v.node is not None and id(v.node) in index}
        for pid in producers:
            pending_consumers[pid] += 1

    incoming: dict[int, list[Feedback]] = {}  # id(variable) -> feedback delivered in this pass
    holders: dict[int, Variable] = {}

    def deliver(var: Variable, fb: Feedback) -> None:
        incoming.setdefault(id(var), []).append(fb)
        holders[id(var)] = var

    if loss.is_text:
        deliver(loss, _seed(loss))
    ctx = BackwardContext(engine, limit)
    ctx.output_grads, ctx.order = output_sensitivities(loss, nodes), index
    numeric: list[tuple[tuple, Variable, object]] = []  # (key, tensor variable, gradient) from hybrid nodes

    async def run(node: Node) -> list[Node]:
        feedback = sorted(incoming.get(id(node.output), []), key=lambda f: f.key)
        targets = targets_of[id(node)]
        call = bool(targets) and (bool(feedback) or getattr(node.fn, "hybrid", False))
        results = await node.fn.backward(ctx, node, feedback, targets) if call else []
        if call and len(results) != len(targets):
            raise GraphError(f"{type(node.fn).__name__}.backward returned {len(results)} feedback entries for "
                             f"{len(targets)} inputs")
        ready = []
        for var, res in zip(targets, results):
            if res is not None and not var.is_text:
                numeric.append(((index[id(node)], node.inputs.index(var)), var, res))
                ctx.add_signal(var, numeric[-1][0], res)  # upstream bridges read it via ctx.output_grad
            elif res is not None:
                fb = res if isinstance(res, Feedback) else Feedback(str(res), var, source=node.name)
                fb.role = f"feedback to {var.role}"
                fb.source = fb.source or node.name
                fb.key = (index[id(node)], node.inputs.index(var))
                deliver(var, fb)
        for var in targets:
            producer = var.node
            if producer is not None and id(producer) in index:
                pending_consumers[id(producer)] -= 1
                if pending_consumers[id(producer)] == 0:
                    ready.append(producer)
        return ready

    if nodes:
        running: set[asyncio.Task] = {asyncio.ensure_future(run(nodes[0]))}
        try:
            while running:
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    for nxt in task.result():
                        running.add(asyncio.ensure_future(run(nxt)))
        except BaseException:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise

    for vid, fbs in incoming.items():
        holders[vid]._extend_grad(sorted(fbs, key=lambda f: f.key))
    tensor_backward(loss, numeric)


def backward(loss: Variable, engine=None, *, max_concurrency: int | None = None) -> None:
    """Synchronous backward (runs the async pass on textopt's private loop; safe inside Jupyter)."""
    run_sync(abackward(loss, engine, max_concurrency=max_concurrency))
