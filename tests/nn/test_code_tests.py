"""CodeTestsLoss: pass rate, failure traces as feedback, hostile candidates, backward routing."""
import pytest
from hypothesis import given, settings, strategies as st

import textopt as tx
from textopt.nn import CodeTestsLoss
from textopt.nn.code_tests import read_results

TESTS = "def test_add():\n    assert add(2, 3) == 5\n\ndef test_neg():\n    assert add(-1, 1) == 0\n"


def code(text):
    return tx.Variable(text, role="candidate implementation of add", requires_grad=True)


def test_pass_rate_and_traces():
    ok = CodeTestsLoss(TESTS)(code("def add(a, b):\n    return a + b\n"))
    assert ok.meta["score"] == 1.0 and float(ok.score) == 1.0 and ok.value == "Passed 2 of 2 tests."
    half = CodeTestsLoss(["assert add(1, 1) == 2", "assert add(1, 2) == 4"])(code("def add(a, b):\n    return a + b"))
    assert half.meta["score"] == 0.5
    assert "FAILED test_2" in half.value and "assert add(1, 2) == 4" in half.value


def test_fenced_code_and_per_example_tests():
    loss_fn = CodeTestsLoss()
    assert loss_fn.needs_target
    out = loss_fn(code("Here it is:\n```python\ndef add(a, b):\n    return abs(a) + b\n```"), TESTS)
    assert out.meta["score"] == 0.5
    assert "FAILED test_neg" in out.value and "FAILED test_add" not in out.value


def test_hostile_candidates_score_zero_with_a_reason():
    loop = CodeTestsLoss(TESTS, per_test_timeout=0.5)(code("def add(a, b):\n    while True:\n        pass\n"))
    assert loop.meta["score"] == 0.0 and "TimeoutError" in loop.value
    hang_on_load = CodeTestsLoss(TESTS, timeout=1.5, per_test_timeout=10)(code("while True:\n    pass\n"))
    assert hang_on_load.meta["score"] == 0.0 and "time limit" in hang_on_load.value
    syntax = CodeTestsLoss(TESTS)(code("def add(a, b:\n"))
    assert syntax.meta["score"] == 0.0 and "failed to load" in syntax.value


def test_backward_routes_the_failures_to_the_code():
    c = code("def add(a, b):\n    return a * b\n")
    loss = CodeTestsLoss(TESTS)(c)
    loss.backward(engine=tx.engines.ScriptedEngine("unused"))
    assert len(c.grad) == 1 and "FAILED" in c.grad[0].value


def test_code_optimization_step_sees_the_failure_traces():
    c = code("def add(a, b):\n    return a - b\n")
    loss_fn = CodeTestsLoss(TESTS)
    seen = []

    def teacher(req):
        seen.append(req.messages[-1].content)
        return "<NEW_VALUE>def add(a, b):\n    return a + b\n</NEW_VALUE>"
    eng = tx.engines.ScriptedEngine(teacher)
    loss = loss_fn(c)
    assert loss.meta["score"] == 0.0
    loss.backward(engine=eng)
    tx.optim.TGD([c], engine=eng).step()
    assert "FAILED test_add" in seen[0] and "assert add(2, 3) == 5" in seen[0]
    assert loss_fn(c).meta["score"] == 1.0


EMPTY_THE_TESTS = """import gc
for obj in gc.get_objects():
    if isinstance(obj, list) and obj and all(isinstance(t, tuple) and len(t) == 3 for t in obj):
        obj.clear()
def add(a, b):
    return a + b
"""
GARBAGE_ON_THE_CHANNEL = """import os
fd = int(os.environ.get('TEXTOPT_RESULTS_FD', 3))
for junk in [b'not json\\n', b'[' * 100000 + b'\\n', b'[99, true, ""]\\n', b'[-1, true, ""]\\n', b'[true, true, ""]\\n',
             b'{"0": true}\\n', b'[0, 1, ""]\\n', b'\\xff\\xfe\\n']:
    try:
        os.write(fd, junk)
    except OSError:
        pass
print('\\n#textopt-results-0000:[["test_add", true, ""]]')
def add(a, b):
    return a - b
"""


SLOW_OK = {"timeout": 120, "per_test_timeout": 60}  # a starved CPU must not turn a pass into a timeout


@pytest.mark.parametrize("mode", ["bwrap", "namespaces"])
def test_a_candidate_cannot_break_the_result_channel(mode, monkeypatch):
    from textopt.nn.sandbox import unavailable
    if unavailable(mode):
        pytest.skip(f"the {mode} sandbox is not available here: {unavailable(mode)}")
    monkeypatch.setenv("TEXTOPT_SANDBOX", mode)
    emptied = CodeTestsLoss(TESTS, **SLOW_OK)(code(EMPTY_THE_TESTS))  # was a ZeroDivisionError in the parent
    assert emptied.meta["score"] == 0.0 and emptied.value.startswith("Passed 0 of 2 tests")
    assert emptied.meta["sandbox"] == mode
    garbage = CodeTestsLoss(TESTS, **SLOW_OK)(code(GARBAGE_ON_THE_CHANNEL))
    assert garbage.meta["score"] == 0.0 and "Passed 0 of 2 tests." in garbage.value
    assert "FAILED test_add" in garbage.value and "FAILED test_neg" in garbage.value
    exits = CodeTestsLoss(TESTS, **SLOW_OK)(code("import os\nos._exit(0)\n"))
    assert exits.meta["score"] == 0.0 and "ended before reporting" in exits.value
    half = CodeTestsLoss(TESTS, **SLOW_OK)(code("def add(a, b):\n    if a < 0:\n        import os; os._exit(0)\n"
                                     "    return a + b\n"))
    assert half.meta["score"] == 0.5 and "FAILED test_neg" in half.value and "ended before reporting" in half.value


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=5))
def test_reading_results_never_raises(text, count):
    rows = read_results(text, count)
    assert set(rows) <= set(range(count))
    assert all(isinstance(ok, bool) and isinstance(trace, str) for ok, trace in rows.values())
