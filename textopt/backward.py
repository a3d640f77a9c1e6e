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
6. Retention (torch's contract): leaves — the parameters — keep their feedback in ``.grad``; a non-leaf keeps its
   own only after ``retain_grad()``. Other intermediate feedback is dropped as soon as its node has used it, so
   a pass holds the feedback of its frontier, not of the whole graph.
"""
from __future__ import annotations

import asyncio
from collections import deque
from operator import attrgetter

from .errors import GraphError
from .function import BackwardContext, Node
from .hybrid import output_sensitivities, tensor_backward
from .runtime import run_sync
from .variable import Feedback, Variable

DEFAULT_MAX_CONCURRENCY = 16
_KEY = attrgetter("key")  # feedback order: (consumer's index in the pass, input position)


def collect(loss: Variable) -> tuple[list[Node], dict[int, int], dict[int, int]]:
    """Nodes reachable from ``loss`` through inputs that require grad, in breadth-first discovery order; each
    one's index in that order, and how many consumers it waits for (the nodes that take its output as a target,
    see ``_targets``), both by ``id(node)`` — one walk over the graph for the three."""
    if loss.node is None:
        return [], {}, {}
    first = loss.node
    order: list[Node] = [first]
    index = {id(first): 0}
    waits = {id(first): 0}
    for node in order:   # a breadth-first walk: the list grows while it is read
        inputs = node.inputs
        hybrid = node.fn.hybrid   # hybrid nodes also target their tensor inputs
        counted = None    # inputs counted for this node (an input may appear twice: counted once)
        for var in inputs:
            producer = var.node
            if producer is None or not (var._requires_grad if var._is_text else var.requires_grad):
                continue
            pid = id(producer)
            n = waits.get(pid)
            if n is None:
                index[pid] = len(order)
                order.append(producer)
                n = waits[pid] = 0
            if hybrid or var._is_text:
                if len(inputs) > 1:
                    if counted is None:
                        counted = set()
                    elif id(var) in counted:
                        continue
                    counted.add(id(var))
                waits[pid] = n + 1
    return order, index, waits


def _targets(node: Node) -> tuple[list[Variable], list[int]]:
    """Distinct inputs of ``node`` that need feedback (text; tensors too for hybrid nodes), in first-position
    order, and the position of each in ``node.inputs``. Computed when needed, never stored for the whole graph
    (every container a pass keeps alive adds to the garbage collector's work on large graphs)."""
    inputs = node.inputs
    hybrid = node.fn.hybrid
    if len(inputs) == 1:   # a chain step
        var = inputs[0]
        return ([var], [0]) if (var._requires_grad if var._is_text else hybrid and var.requires_grad) \
            else ([], [])
    out, positions = [], []
    if len(inputs) > 4:
        seen = set()
        for pos, var in enumerate(inputs):
            if (var._requires_grad if var._is_text else hybrid and var.requires_grad) and id(var) not in seen:
                seen.add(id(var))
                out.append(var)
                positions.append(pos)
        return out, positions
    for pos, var in enumerate(inputs):   # a few inputs: compare identities, no set
        if (var._requires_grad if var._is_text else hybrid and var.requires_grad) and var not in out:
            out.append(var)
            positions.append(pos)
    return out, positions


def seed(loss: Variable) -> Feedback:
    """The feedback that starts a pass at ``loss``: its evaluation (``meta["feedback"]``, else its text)."""
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
    limit = DEFAULT_MAX_CONCURRENCY if max_concurrency is None else max_concurrency
    if type(limit) is not int or limit < 1:
        raise GraphError(f"max_concurrency must be an int >= 1 (None: {DEFAULT_MAX_CONCURRENCY}), got {limit!r}")
    nodes, index, pending_consumers = collect(loss)

    # id(variable) -> (variable, feedback delivered to it in this pass)
    incoming: dict[int, tuple[Variable, list[Feedback]]] = {}
    kept: list[tuple[Variable, list[Feedback]]] = []  # retained non-leaf feedback, stored when the pass ends

    if loss.is_text:
        incoming[id(loss)] = (loss, [seed(loss)])
    ctx = BackwardContext(engine, limit)
    ctx.output_grads, ctx.order = output_sensitivities(loss, nodes), index
    numeric: list[tuple[tuple, Variable, object]] = []  # (key, tensor variable, gradient) from hybrid nodes

    def finish(node: Node, targets: list[Variable], positions: list[int], results) -> list[Node]:
        """Deliver ``node``'s results to its inputs; return the producers that became ready."""
        if len(results) != len(targets):
            raise GraphError(f"{type(node.fn).__name__}.backward returned {len(results)} feedback entries for "
                             f"{len(targets)} inputs")
        at = index[id(node)]
        for var, pos, res in zip(targets, positions, results):
            if res is None:
                continue
            if not var._is_text:
                numeric.append(((at, pos), var, res))
                ctx.add_signal(var, numeric[-1][0], res)  # upstream bridges read it via ctx.output_grad
                continue
            if type(res) is Feedback or isinstance(res, Feedback):
                res.role = f"feedback to {var.role}"
                res.source = res.source or node.name
            else:
                res = Feedback(str(res), var, source=node.name)
            res.key = (at, pos)
            got = incoming.get(id(var))
            if got is None:
                incoming[id(var)] = (var, [res])
            else:
                got[1].append(res)
        ready = []
        for var in targets:
            producer = var.node
            if producer is not None:
                pid = id(producer)
                left = pending_consumers.get(pid)
                if left is not None:
                    pending_consumers[pid] = left - 1
                    if left == 1:
                        ready.append(producer)
        return ready

    def start(node: Node):
        """What ``node`` needs: (feedback, targets, positions, whether its backward runs)."""
        got = incoming.pop(id(node.output), None)  # complete: every consumer of this output has run
        if got is None:
            feedback = []
        else:
            feedback = got[1]
            if len(feedback) > 1:
                feedback.sort(key=_KEY)
            if node.output._retain:   # torch's retain_grad(); other intermediate feedback is dropped once used
                kept.append(got)
        targets, positions = _targets(node)
        return feedback, targets, positions, bool(targets) and (bool(feedback) or node.fn.hybrid)

    if nodes:
        await _schedule(nodes[0], start, finish, ctx, limit)

    for var, fbs in incoming.values():   # what reached leaves (parameters, inputs) and never-run outputs
        fbs.sort(key=_KEY)
        kept.append((var, fbs))
    for var, fbs in kept:
        var._extend_grad(fbs)
    tensor_backward(loss, numeric)


async def _schedule(first: Node, start, finish, ctx: BackwardContext, workers: int) -> None:
    """Run every node's backward, starting a node as soon as the last of its consumers finished.

    ``start(node)`` gives (feedback, targets, positions, call); the worker awaits ``node.fn.backward`` when
    ``call``; ``finish(node, targets, positions, results)`` delivers the results and returns the nodes that
    became ready. Up to
    ``workers`` nodes run at once, on worker coroutines: this coroutine is the first worker and more are started
    only when more nodes are ready than workers are busy, so a pass whose calls never wait (cache hits, instant
    engines) runs with no task at all, and a pass whose calls do wait overlaps up to ``workers`` of them. A node
    never moves between tasks, so ``asyncio.current_task()`` stays the same inside one node's backward.
    """
    loop = asyncio.get_running_loop()
    ready: deque[Node] = deque([first])
    idle: list[asyncio.Future] = []   # parked workers, woken when nodes become ready or the pass ends
    tasks: list[asyncio.Task] = []
    busy = 0            # nodes being run by some worker
    done = False        # the pass is complete, or a worker failed

    def wake(n: int) -> int:
        woken = 0
        while woken < n and idle:
            fut = idle.pop()
            if not fut.done():
                fut.set_result(None)
                woken += 1
        return woken

    def stop_all(task: asyncio.Task | None = None) -> None:
        nonlocal done
        if task is None or task.cancelled() or task.exception() is not None:
            done = True     # a worker failed: the others stop taking nodes, the error surfaces below
            wake(len(idle))

    async def work() -> None:
        nonlocal busy
        while not done:
            if ready:
                node = ready.popleft()
                busy += 1
                try:
                    feedback, targets, positions, call = start(node)
                    results = await node.fn.backward(ctx, node, feedback, targets) if call \
                        else (None,) * len(targets)
                    more = finish(node, targets, positions, results)
                finally:
                    busy -= 1
                ready.extend(more)
                spare = len(ready) - 1          # this worker takes the next one itself
                if spare > 0:
                    for _ in range(min(spare - wake(spare), workers - 1 - len(tasks))):
                        task = loop.create_task(work())
                        task.add_done_callback(stop_all)
                        tasks.append(task)
            elif busy == 0:
                stop_all()                      # nothing ready, nothing running: the pass is complete
            else:
                fut = loop.create_future()
                idle.append(fut)
                await fut

    try:
        await work()
        if tasks:
            await asyncio.gather(*tasks)
    except BaseException:
        stop_all()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def backward(loss: Variable, engine=None, *, max_concurrency: int | None = None) -> None:
    """Synchronous backward (runs the async pass on textopt's private loop; safe inside Jupyter)."""
    run_sync(abackward(loss, engine, max_concurrency=max_concurrency))
