"""Lazy calls (textopt.lazy): synchronous code runs concurrently, with the requests, cache keys, gradients and
errors of an eager run."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import textopt as tx
from textopt import lazy
from textopt.engines import Budget, ScriptedEngine
from textopt.errors import BudgetExceeded, GraphError, ProviderError

from .helpers import digest_responder


def _keys(e: ScriptedEngine) -> list[str]:
    return sorted(r.key("m") for r in e.requests)


def _program(ops, fwd, back):
    """Run a random program of module calls (sync code, as a user writes it); return what it produced."""
    p = tx.Variable("Solve it.", role="system prompt", requires_grad=True)
    q = tx.Variable("Use facts.", role="notes", requires_grad=True)
    solver = tx.nn.LLMCall(fwd, system_prompt=p, name="solver")
    step = tx.nn.LLMCall(fwd, name="step")
    fmt = tx.nn.FormattedLLMCall(fwd, "Q: {question}\nNotes: {notes}", name="fmt")
    judge = tx.nn.TextLoss("Judge it.", fwd, name="judge")
    outs, losses = [], []
    for i, (kind, pick) in enumerate(ops):
        src = outs[pick % len(outs)] if outs else None
        if kind == 0 or src is None:
            outs.append(solver(tx.Variable(f"question {i}", role="question")))
        elif kind == 1:
            outs.append(step(src))
        elif kind == 2:
            outs.append(fmt(question=src, notes=q))
        elif kind == 3:
            losses.append(judge(src))
        else:
            outs.append(tx.concat([src, outs[(pick * 7) % len(outs)]]))
    losses.append(judge(outs[-1]))
    total = tx.concat(losses)
    total.backward(engine=back)
    return {"forward": _keys(fwd), "backward": _keys(back), "loss": total.value,
            "p": [(f.value, f.key) for f in p.grad], "q": [(f.value, f.key) for f in q.grad],
            "outs": [o.value for o in outs]}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 50)), min_size=1, max_size=12),
       seed=st.integers(0, 3))
def test_lazy_and_eager_runs_send_identical_requests_and_give_identical_gradients(ops, seed):
    def engines():
        return (ScriptedEngine(digest_responder, latency=(0, 0.004), seed=seed),
                ScriptedEngine(digest_responder, latency=(0, 0.004), seed=seed + 1))

    with lazy.eager():
        eager = _program(ops, *engines())
    assert _program(ops, *engines()) == eager


def test_a_call_returns_at_once_and_chained_calls_overlap():
    e = ScriptedEngine(digest_responder, latency=0.3)
    p = tx.Variable("Be brief.", role="system prompt", requires_grad=True)
    solver, judge = tx.nn.LLMCall(e, p, name="solver"), tx.nn.TextLoss("judge", e, name="judge")
    t0 = time.perf_counter()
    losses = [judge(solver(tx.Variable(f"q{i}", role="question"))) for i in range(6)]
    assert time.perf_counter() - t0 < 0.25          # launched, not waited for
    total = tx.concat(losses)                       # needs the text: waits for all twelve calls
    assert time.perf_counter() - t0 < 0.3 * 2 + 0.5  # the critical path (two calls), not twelve
    assert len(e.requests) == 12 and total.value.count("fb-") == 6
    assert [ln.node.inputs[1].node.name for ln in losses] == ["solver"] * 6  # graph as built eagerly


def test_error_surfaces_where_the_value_is_needed_naming_the_failing_node():
    def answer(req):
        if "bad" in req.messages[-1].content:
            raise ValueError("boom")
        return "fine"

    e = ScriptedEngine(answer, max_retries=0)
    solver, judge = tx.nn.LLMCall(e, name="solver"), tx.nn.TextLoss("judge", e, name="judge")
    y = solver(tx.Variable("bad question", role="question"))      # no error yet
    loss = judge(y)                                                # chains on the failed call: no error yet
    ok = solver(tx.Variable("good question", role="question"))
    assert ok.value == "fine"
    for read in (lambda: y.value, lambda: str(loss), lambda: tx.concat([ok, loss])):
        with pytest.raises(ProviderError, match="node 'solver'.*ValueError: boom") as info:
            read()
        assert isinstance(info.value.__cause__, ProviderError) and "node" not in str(info.value.__cause__)
    with lazy.eager(), pytest.raises(ProviderError, match="ValueError: boom"):
        solver(tx.Variable("bad question", role="question"))       # the error an eager call raises


def test_bad_arguments_still_raise_at_the_call():
    e = ScriptedEngine("x")
    with pytest.raises(tx.errors.InvalidVariableError, match="text input"):
        tx.nn.LLMCall(e)(tx.Variable(__import__("torch").ones(2), role="t"))
    assert e.requests == []


def test_budgets_reserve_in_program_order():
    e = ScriptedEngine(digest_responder, latency=(0, 0.01), seed=1, budget=Budget(max_calls=3))
    call = tx.nn.LLMCall(e, name="c")
    outs = [call(tx.Variable(f"q{i}", role="question")) for i in range(5)]
    assert [o.value.startswith("fb-") for o in outs[:3]] == [True] * 3
    for o in outs[3:]:
        with pytest.raises(BudgetExceeded, match="node 'c'"):
            o.value


def test_grad_mode_is_the_one_at_launch_and_assignments_wait_for_launched_calls():
    e = ScriptedEngine(lambda r: r.messages[0].content, latency=0.05)
    p = tx.Variable("old prompt", role="system prompt", requires_grad=True)
    call = tx.nn.LLMCall(e, system_prompt=p, name="c")
    with tx.no_grad():
        y = call("q")
    z = call("q")
    p.value = "new prompt"               # a barrier: both calls already saw the old value
    assert y.node is None and z.node is not None
    assert y.value == z.value == "old prompt" and call("q").value == "new prompt"


def test_interrupt_while_waiting_cancels_every_launched_call():
    # a process started in the background by a non-interactive shell inherits SIGINT ignored: restore Python's
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_while_waiting()
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_while_waiting():
    e = ScriptedEngine("late", latency=30)
    call = tx.nn.LLMCall(e, name="slow")
    ys = [call(f"q{i}") for i in range(3)]
    stop = threading.Event()

    def ctrl_c():   # like a user pressing Ctrl-C until the program stops (a first SIGINT can land while the
        while not stop.wait(0.3):   # event loop's own handler turns it into a cancellation)
            os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=ctrl_c, daemon=True).start()
    t0 = time.perf_counter()
    value = None
    try:
        value = ys[0].value
        interrupted = False
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop.set()
    assert interrupted, (f"no KeyboardInterrupt: got {value!r} after {time.perf_counter() - t0:.1f} s; SIGINT "
                         f"handler {signal.getsignal(signal.SIGINT)!r}")
    assert time.perf_counter() - t0 < 10
    assert not lazy._running and not lazy._queue and e.in_flight == 0   # nothing left running
    with pytest.raises(GraphError, match="cancelled"):
        ys[1].value


def test_async_code_awaits_pending_arguments():
    e = ScriptedEngine(digest_responder, latency=0.05)
    y = tx.nn.LLMCall(e, name="a")("q")

    async def later():
        return await tx.nn.TextLoss("judge", e).acall(y)

    from textopt.runtime import run_sync
    assert run_sync(later()).value.startswith("fb-")


def test_wide_concat_gives_every_part_one_shared_bounded_feedback():
    parts = [tx.Variable(f"evaluation {i}: " + "x" * 40, role="evaluation", requires_grad=True) for i in range(3000)]
    tx.concat(parts).backward()
    first = parts[0].grad[0].value
    assert all(p.grad[0].value is first for p in parts)          # one text, referenced by every part
    assert len(first) < tx.functional.MAX_FEEDBACK_CHARS + 600 and "characters cut" in first


def test_a_concat_of_losses_gives_each_loss_its_own_evaluation():
    fwd, back = ScriptedEngine(digest_responder), ScriptedEngine(digest_responder)
    p = tx.Variable("Be brief.", role="system prompt", requires_grad=True)
    solver, judge = tx.nn.LLMCall(fwd, p, name="solver"), tx.nn.TextLoss("judge", fwd, name="judge")
    ys = [solver(f"q{i}").retain_grad() for i in range(3)]
    losses = [judge(y) for y in ys]
    tx.concat(losses + [tx.Variable("note", role="remark")]).backward(engine=back)
    assert [y.grad[0].value for y in ys] == [ln.value for ln in losses]   # no other example's evaluation
    assert [r.node for r in back.requests] == ["solver"] * 3               # routed without a call per loss


def test_a_launched_call_builds_its_node_output_in_the_pending_variable():
    e = ScriptedEngine(digest_responder, latency=(0, 0.01), seed=2)
    p = tx.Variable("p", role="system prompt", requires_grad=True)
    call, judge = tx.nn.LLMCall(e, system_prompt=p, name="c"), tx.nn.TextLoss("judge", e, name="j")
    y = call(tx.Variable("q", role="question"))
    y.name = "kept"                     # set while pending
    y.retain_grad()
    loss = judge(y)
    assert loss.node.output is loss and y.node.output is y and loss.node.inputs[1] is y   # no copy was made
    assert type(y) is tx.Variable and y.name == "kept" and loss.meta["conversation"][1][1] == y.value
    loss.backward(engine=e)
    assert y.grad                        # retain_grad() given while pending was kept


def test_subclasses_overriding_aforward_and_modules_breaking_the_mark():
    e = ScriptedEngine("ans")

    class Twice(tx.nn.LLMCall):          # not marked: its result is merged as any module's
        async def aforward(self, x):
            first = await super().aforward(x)
            return await super().aforward(first)

    p = tx.Variable("p", role="system prompt", requires_grad=True)
    y = Twice(e, system_prompt=p, name="t")(tx.Variable("q", role="question"))
    assert y.value == "ans" and y.node.output is y and y.node.inputs[1].node.output is not y

    class Broken(tx.nn.LLMCall):         # marked, yet returns another node's output
        @lazy.direct_output
        async def aforward(self, x):
            first = await tx.nn.LLMCall.aforward(self, x)
            return await tx.nn.LLMCall.aforward(self, first)

    z = Broken(e, system_prompt=p, name="b")(tx.Variable("q", role="question"))
    with pytest.raises(GraphError, match="direct_output"):
        z.value

    class FailsAfter(tx.nn.LLMCall):     # its node was built in the placeholder, then the call failed
        @lazy.direct_output
        async def aforward(self, x):
            out = await tx.nn.LLMCall.aforward(self, x)
            raise ValueError(f"late failure after {out.value}")

    w = FailsAfter(e, system_prompt=p, name="f")(tx.Variable("q", role="question"))
    for _ in range(2):
        with pytest.raises(ValueError, match="node 'f': late failure"):
            w.value
