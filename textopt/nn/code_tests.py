"""``CodeTestsLoss``: score candidate code by running unit tests on it in the sandbox (:mod:`.sandbox`).

    loss_fn = CodeTestsLoss(tests="def test_add():\\n    assert add(2, 3) == 5\\n")
    loss = loss_fn(code_var)            # or CodeTestsLoss()(code_var, tests) with per-example tests
    loss.meta["score"]                  # pass rate in [0, 1]; loss.score is the tensor
    loss.meta["feedback"]               # "Passed 1 of 2 tests." + each failure's trace (bounded)

Tests are a Python source (each ``test_*`` function is one test; without any, each top-level statement is one
test, e.g. ``assert f(1) == 2`` lines) or a list of snippets (one test each). They run after the candidate in
the same namespace, each under its own time limit (``per_test_timeout``); the whole run has ``timeout``.
Markdown code fences around the candidate are removed. A candidate that crashes, hangs or exhausts memory
scores 0 with the reason as feedback. Backward routes the feedback to the code variable (no LLM call).
Each test's outcome comes back on the sandbox's result channel, not stdout; the score is over this loss's own
list of tests, a test without a well-formed report fails, so a candidate that empties the list, prints fake
results or writes garbage cannot crash the parent or score above its reports. (The tests run in the
candidate's process: code written to fool its own tests can; the sandbox keeps that inside the sandbox.)
"""
from __future__ import annotations

import asyncio
import ast
import json
import re
from typing import Sequence

from ..errors import InvalidVariableError
from ..variable import Variable, as_variable
from .aggregate import clip_evaluation
from .metrics import MetricFn
from .module import Module
from .sandbox import SandboxResult, run_python
from .scored import scored

HARNESS = r'''
def _textopt_harness():  # locals only: nothing for the candidate to find in __main__
    import json, linecache, os, signal, traceback
    candidate, tests, per_test = {candidate!r}, {tests!r}, {per_test!r}
    channel = int(os.environ.pop("TEXTOPT_RESULTS_FD"))  # the result channel (see textopt.nn.sandbox)
    os.set_inheritable(channel, False)

    def report(index, ok, trace):
        os.write(channel, (json.dumps([index, ok, trace]) + "\n").encode())

    def alarm(signum, frame):
        raise TimeoutError(f"test exceeded {{per_test}}s")

    signal.signal(signal.SIGALRM, alarm)
    for fname, src in [("candidate.py", candidate)] + [(t[0] + ".py", t[1]) for t in tests]:
        linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
    ns = {{"__name__": "candidate"}}
    try:
        signal.setitimer(signal.ITIMER_REAL, per_test)
        exec(compile(candidate, "candidate.py", "exec"), ns)
        signal.setitimer(signal.ITIMER_REAL, 0)
        load_error = None
    except BaseException:
        signal.setitimer(signal.ITIMER_REAL, 0)
        load_error = traceback.format_exc(limit=-4)
    for index, (name, src, call) in enumerate(tests):
        if load_error is not None:
            report(index, False, "the candidate code failed to load:\n" + load_error)
            continue
        try:
            signal.setitimer(signal.ITIMER_REAL, per_test)
            exec(compile(src, name + ".py", "exec"), ns)
            if call:
                ns[call]()
            signal.setitimer(signal.ITIMER_REAL, 0)
            report(index, True, "")
        except BaseException:
            signal.setitimer(signal.ITIMER_REAL, 0)
            report(index, False, traceback.format_exc(limit=-3))


_textopt_harness()
'''


def split_tests(tests: str | Sequence[str]) -> list[tuple[str, str, str | None]]:
    """[(name, source, function to call or None)] — see the module docstring."""
    if isinstance(tests, (list, tuple)):
        if not tests or not all(isinstance(t, str) for t in tests):
            raise InvalidVariableError("CodeTestsLoss tests must be a Python source or a non-empty list of snippets")
        return [(f"test_{i + 1}", t, None) for i, t in enumerate(tests)]
    if not isinstance(tests, str) or not tests.strip():
        raise InvalidVariableError("CodeTestsLoss needs tests: a Python source or a list of snippets")
    try:
        tree = ast.parse(tests)
    except SyntaxError as exc:
        raise InvalidVariableError(f"CodeTestsLoss tests are not valid Python: {exc}") from exc
    funcs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
             and n.name.startswith("test")]
    if funcs:  # the module body (helpers, imports) runs with the first test; each test_* is called
        return [(f, tests if i == 0 else "", f) for i, f in enumerate(funcs)]
    return [(f"test_{i + 1}", ast.get_source_segment(tests, n) or ast.unparse(n), None)
            for i, n in enumerate(tree.body)]


def strip_fences(code: str) -> str:
    m = re.search(r"```(?:python|py)?[ \t]*\n(.*?)```", code, re.S)
    return m.group(1) if m else code


def read_results(text: str, count: int) -> dict[int, tuple[bool, str]]:
    """The first well-formed report ``[index, ok, trace]`` of each of ``count`` tests; anything else on the
    channel (garbage, unknown indices, repeats) is ignored, so the candidate cannot crash the parent."""
    rows: dict[int, tuple[bool, str]] = {}
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if (isinstance(row, list) and len(row) == 3 and type(row[0]) is int and 0 <= row[0] < count
                and isinstance(row[1], bool) and isinstance(row[2], str) and row[0] not in rows):
            rows[row[0]] = (row[1], row[2])
    return rows


def _why_stopped(result: SandboxResult) -> str:
    if result.timed_out:
        return "the run was stopped after the time limit (an infinite loop or very slow code?)"
    if result.returncode in (-9, 137) or "MemoryError" in result.stderr:
        return "the run was killed (memory or process limit exceeded?)"
    return f"the test run ended before reporting it (exit code {result.returncode})"


def summarize(result: SandboxResult, names: list[str], max_chars: int) -> tuple[float, str]:
    """(pass rate over the parent's own list of tests, feedback). A test without a report failed."""
    rows = read_results(result.results, len(names))
    if not rows:
        why = _why_stopped(result)
        return 0.0, clip_evaluation(f"Passed 0 of {len(names)} tests: {why}.\n{result.stderr.strip()}", max_chars)
    passed = sum(1 for ok, _ in rows.values() if ok)
    parts = [f"Passed {passed} of {len(names)} tests."]
    failed = len(names) - passed
    budget = max_chars // failed if failed else max_chars
    for index, name in enumerate(names):
        ok, trace = rows.get(index, (False, _why_stopped(result) + "\n" + result.stderr.strip()))
        if not ok:
            parts.append(clip_evaluation(f"FAILED {name}:\n{trace.strip()}", budget))
    return passed / len(names), "\n".join(parts)


class CodeTestsLoss(Module):
    lazy = True   # a call from synchronous code returns at once (textopt.lazy)

    def __init__(self, tests: str | Sequence[str] | None = None, *, timeout: float = 10.0,
                 per_test_timeout: float = 3.0, memory_mb: int = 512, max_feedback_chars: int = 3000,
                 name: str = "code_tests"):
        super().__init__()
        self.tests = split_tests(tests) if tests is not None else None
        self.needs_target = tests is None
        self.timeout, self.per_test_timeout, self.memory_mb = timeout, per_test_timeout, memory_mb
        self.max_feedback_chars = max_feedback_chars
        self.fn = MetricFn()
        self.node_name = name

    def _prepare(self, code, tests):
        code = as_variable(code, role="candidate code")
        if not code.is_text:
            raise InvalidVariableError(f"CodeTestsLoss evaluates code text, got {code!r}")
        if tests is not None:
            tests = split_tests(tests.value if isinstance(tests, Variable) else tests)
        elif self.tests is not None:
            tests = self.tests
        else:
            raise InvalidVariableError("CodeTestsLoss has no tests: give tests=... or call loss(code, tests)")
        program = HARNESS.format(candidate=strip_fences(code.value), tests=tests, per_test=self.per_test_timeout)
        return code, tests, program

    def _finish(self, code, tests, result):
        score, feedback = summarize(result, [t[0] for t in tests], self.max_feedback_chars)
        out = self.fn.attach([code], feedback, f"test results of the {code.role}", name=self.node_name,
                             meta={"score": score, "feedback": feedback, "isolation": result.isolation,
                                   "sandbox": result.mode})
        return scored(out)

    def forward(self, code, tests=None) -> Variable:
        code, tests, program = self._prepare(code, tests)
        result = run_python(program, timeout=self.timeout, memory_mb=self.memory_mb)
        return self._finish(code, tests, result)

    async def aforward(self, code, tests=None) -> Variable:
        code, tests, program = self._prepare(code, tests)
        result = await asyncio.to_thread(run_python, program, timeout=self.timeout, memory_mb=self.memory_mb)
        return self._finish(code, tests, result)
