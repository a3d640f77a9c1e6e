"""Backward pass properties over random DAGs (hypothesis) and unit tests of its contract."""
import asyncio
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import textopt as tx
from textopt.errors import GraphError
from tests.helpers import Mix, engine


@st.composite
def dags(draw):
    """Leaves (some require grad) + ops over earlier variables; the loss is the last op."""
    n_leaves = draw(st.integers(1, 5))
    grads = draw(st.lists(st.booleans(), min_size=n_leaves, max_size=n_leaves))
    n_ops = draw(st.integers(1, 12))
    ops = []
    for i in range(n_ops):
        avail = n_leaves + i
        k = draw(st.integers(1, min(3, avail)))
        ops.append(draw(st.lists(st.integers(0, avail - 1), min_size=k, max_size=k)))
    return grads, ops


def build(spec, log, retain=lambda j: True):
    """``retain(j)``: whether op j's output keeps its feedback (``retain_grad()``)."""
    grads, ops = spec
    vs = [tx.Variable(f"leaf{i}", role=f"leaf {i}", requires_grad=g) for i, g in enumerate(grads)]
    for j, idxs in enumerate(ops):
        vs.append(Mix(f"op{j}", log).forward([vs[i] for i in idxs]))
        if retain(j):
            vs[-1].retain_grad()
    return vs


def expected_grads(vs, loss):
    """Reference: consumer edges (distinct consumer node, distinct input) inside the differentiated graph."""
    counts = {id(v): 0 for v in vs}
    if loss.node is None:
        return counts
    stack, seen = [loss.node], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for v in {id(v): v for v in node.inputs if v.requires_grad}.values():
            counts[id(v)] += 1
            if v.node is not None:
                stack.append(v.node)
    return counts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags())
def test_one_gradient_per_consumer_edge_and_nothing_else(spec):
    log = []
    vs = build(spec, log, retain=lambda j: j % 2 == 0)   # half the intermediates keep their feedback
    loss = vs[-1]
    if not loss.requires_grad:
        with pytest.raises(GraphError):
            loss.backward(engine=engine())
        return
    e = engine()
    loss.backward(engine=e)
    exp = expected_grads(vs, loss)
    for v in vs[:-1]:
        kept = v.is_leaf or v.retains_grad   # torch's contract: leaves, and non-leaves after retain_grad()
        assert len(v.grad) == (exp[id(v)] if kept else 0), (v.role, kept, exp[id(v)], v.grad)
        if not v.requires_grad:
            assert v.grad == []
    # one LLM call per (node, distinct input requiring grad) — none for branches without parameters
    assert len(e.requests) == sum(exp[id(v)] for v in vs[:-1])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags(), st.integers(0, 10_000))
def test_schedule_order_and_determinism(spec, seed):
    runs = []
    for latency_seed in (seed, seed + 1):
        log = []
        vs = build(spec, log)
        if not vs[-1].requires_grad:
            return
        e = engine(latency=(0.0, 0.003), seed=latency_seed)
        vs[-1].backward(engine=e)
        # no node starts before all of its consumers finished
        start = {name: t for kind, name, t in log if kind == "start"}
        end = {name: t for kind, name, t in log if kind == "end"}
        for v in vs:
            if v.node is None or v.node.name not in start:
                continue
            for c in vs:
                if c.node is not None and c.node.name in end and any(i is v for i in c.node.inputs):
                    assert end[c.node.name] <= start[v.node.name]
        runs.append((sorted(r.messages[-1].content for r in e.requests),
                     [[f.value for f in v.grad] for v in vs], [[f.key for f in v.grad] for v in vs]))
    assert runs[0] == runs[1]  # byte-identical prompts and identically ordered grads despite random latency


def _wide(n, log):
    p = tx.Variable("p", role="prompt", requires_grad=True)
    branches = [Mix(f"b{i}", log).forward([p]) for i in range(n)]
    return p, Mix("top", log).forward(branches)


@pytest.mark.parametrize("limit", [1, 3, 8])
def test_concurrency_limit_respected_and_reached(limit):
    p, loss = _wide(8, [])
    e = engine(latency=0.02, limit=64)
    loss.backward(engine=e, max_concurrency=limit)
    assert e.peak_in_flight == limit
    assert len(p.grad) == 8


def test_gradient_order_is_by_consumer_position_not_completion():
    p = tx.Variable("p", role="prompt", requires_grad=True)
    outs = [Mix(f"b{i}", []).forward([p]) for i in range(6)]
    loss = Mix("top", []).forward(outs)
    # branch 0 answers slowest: completion order is reversed, stored order must not be
    slow = {f"b{i}": 0.01 * (6 - i) for i in range(6)}

    async def responder(req):
        name = req.messages[-1].content.split()[1]
        await asyncio.sleep(slow.get(name, 0))
        return f"from {name}"

    from textopt.engines import ScriptedEngine
    loss.backward(engine=ScriptedEngine(responder, max_concurrency=16))
    assert [f.value for f in p.grad] == [f"from b{i}" for i in range(6)]


def test_deep_chain_no_recursion_limit():
    v = tx.Variable("p", role="prompt", requires_grad=True)
    p = v
    for i in range(5000):
        v = tx.concat([v], role=f"step {i}")
    v.backward()  # concat needs no engine
    assert len(p.grad) == 1


def test_concat_gives_each_input_its_feedback_once_without_llm():
    a = tx.Variable("A", role="part a", requires_grad=True)
    b = tx.Variable("B", role="part b", requires_grad=True)
    c = tx.concat([a, b, a])
    log = []
    loss = Mix("judge", log).forward([c])
    e = engine()
    loss.backward(engine=e)
    assert len(a.grad) == 1 and len(b.grad) == 1
    assert len(e.requests) == 1  # only the judge's call; concat routes without an LLM
    assert e.requests[0].messages[-1].content.split(":")[0] == "node judge -> concatenation of part a + part b + part a"


def test_branch_without_parameters_is_pruned():
    p = tx.Variable("p", role="prompt", requires_grad=True)
    x = tx.Variable("x", role="question")
    side = Mix("side", []).forward([x])            # no parameter upstream: no node at all
    loss = Mix("top", []).forward([Mix("main", []).forward([p]), side])
    e = engine()
    loss.backward(engine=e)
    assert side.node is None and x.grad == []
    assert len(e.requests) == 2  # top -> main output, main -> p


def test_backward_engine_context_and_missing_engine():
    p = tx.Variable("p", role="prompt", requires_grad=True)
    loss = Mix("top", []).forward([p])
    with pytest.raises(GraphError, match="no engine was given"):
        loss.backward()
    with tx.backward_engine(engine()):
        loss.backward()
    assert len(p.grad) == 1
    assert p.grad[0].key and p.grad[0].source == "top"


def test_backward_errors():
    x = tx.Variable("x", role="question")
    with pytest.raises(GraphError, match="does not require grad"):
        x.backward(engine=engine())
    with pytest.raises(GraphError, match="needs a textopt Variable"):
        tx.backward("loss", engine=engine())


def test_sync_backward_inside_running_loop_and_async_twin():
    p = tx.Variable("p", role="prompt", requires_grad=True)
    loss = Mix("top", []).forward([p])

    async def main():
        loss.backward(engine=engine())          # sync API from inside a running loop (Jupyter)
        await loss.abackward(engine=engine())   # async twin on the caller's loop
    asyncio.run(main())
    assert len(p.grad) == 2  # grads accumulate across passes, like torch


def test_error_in_one_branch_cancels_and_raises():
    p = tx.Variable("p", role="prompt", requires_grad=True)
    loss = Mix("top", []).forward([Mix(f"b{i}", []).forward([p]) for i in range(4)])

    def responder(req):
        if "b2" in req.messages[-1].content:
            raise RuntimeError("boom")
        return "ok"
    from textopt.engines import ScriptedEngine
    with pytest.raises(tx.TextoptError, match="boom"):
        loss.backward(engine=ScriptedEngine(responder, max_retries=0))
    assert p.grad == []  # nothing half-delivered


def test_intermediate_feedback_is_dropped_unless_retained_like_torch():
    p = tx.Variable("p", role="prompt", requires_grad=True)
    e = engine()
    mid = Mix("mid", []).forward([p])
    kept = Mix("kept", []).forward([mid]).retain_grad()
    loss = Mix("loss", []).forward([kept])
    loss.backward(engine=e)
    assert len(p.grad) == 1 and p.is_leaf                 # leaves (parameters) keep theirs
    assert kept.retains_grad and len(kept.grad) == 1      # a non-leaf after retain_grad()
    assert not mid.retains_grad and mid.grad == []        # any other intermediate: used, then dropped
    assert loss.grad == []                                # the loss too, as torch's loss.grad is None
    assert len(e.requests) == 3                           # dropping changes nothing upstream
