"""Test-time code optimization on the shipped LeetCode-style problems, in the real sandbox: reference solutions
pass every test (so the tests are right), public failures drive TGD, hidden tests score and never reach a prompt."""
from __future__ import annotations

import json

import pytest

from textopt.engines import ScriptedEngine
from textopt.errors import DataError, InvalidVariableError
from textopt.nn import CodeTestsLoss
from textopt.tasks.code import load_code_problems, optimize_code, pass_rates

REFERENCE = {
    "two_sum": "def two_sum(nums, target):\n    seen = {}\n    for i, x in enumerate(nums):\n"
               "        if target - x in seen:\n            return [seen[target - x], i]\n        seen[x] = i\n",
    "valid_parentheses": "def is_valid(s):\n    pairs = {')': '(', ']': '[', '}': '{'}\n    stack = []\n"
                         "    for c in s:\n        if c in pairs:\n            if not stack or stack.pop() != pairs[c]:\n"
                         "                return False\n        else:\n            stack.append(c)\n"
                         "    return not stack\n",
    "merge_intervals": "def merge(intervals):\n    out = []\n    for s, e in sorted(intervals):\n"
                       "        if out and s <= out[-1][1]:\n            out[-1][1] = max(out[-1][1], e)\n"
                       "        else:\n            out.append([s, e])\n    return out\n",
    "roman_to_int": "def roman_to_int(s):\n    v = dict(I=1, V=5, X=10, L=50, C=100, D=500, M=1000)\n    total = 0\n"
                    "    for a, b in zip(s, s[1:] + ' '):\n        total += -v[a] if b != ' ' and v[a] < v[b] else v[a]\n"
                    "    return total\n",
    "max_subarray": "def max_subarray(nums):\n    best = cur = nums[0]\n    for x in nums[1:]:\n"
                    "        cur = max(x, cur + x)\n        best = max(best, cur)\n    return best\n",
    "longest_common_prefix": "import os\ndef longest_common_prefix(strs):\n    return os.path.commonprefix(strs)\n",
}
BUGGY_TWO_SUM = ("def two_sum(nums, target):\n    for i in range(len(nums)):\n        for j in range(len(nums)):\n"
                 "            if nums[i] + nums[j] == target:\n                return [i, j]\n")


def test_every_shipped_problem_has_tests_its_reference_solution_passes():
    problems = load_code_problems()
    assert [p.name for p in problems] == list(REFERENCE)
    for p in problems:
        code = REFERENCE[p.name]
        for tests in (p.public, p.hidden):
            loss = CodeTestsLoss(tests=list(tests), timeout=20)(code)
            assert loss.meta["score"] == 1.0, (p.name, loss.meta["feedback"])
        assert not set(p.public) & set(p.hidden)


def test_public_failures_drive_the_rewrite_and_hidden_tests_only_score():
    problem = load_code_problems()[0]          # two_sum
    fixed = REFERENCE["two_sum"]

    def respond(req):
        text = req.messages[-1].content
        assert not any(t in text for t in problem.hidden), "a hidden test reached a prompt"
        if req.role == "forward":
            return f"```python\n{BUGGY_TWO_SUM}```"
        assert req.role == "optimizer" and "FAILED" in text and "two_sum([3, 2, 4], 6)" in text
        return f"<NEW_VALUE>{fixed}</NEW_VALUE>"
    eng = ScriptedEngine(respond)
    res = optimize_code(problem, eng, steps=2)
    assert res.public_before == 0.5 and res.public_after == 1.0
    assert res.hidden_before < res.hidden_after == 1.0
    assert res.code.strip() == fixed.strip() and len(res.trajectory) == 2
    assert [r.role for r in eng.requests] == ["forward", "optimizer"]
    assert pass_rates([res])["hidden_after"] == 1.0


def test_an_unusable_rewrite_keeps_the_code_and_says_so():
    problem = load_code_problems()[4]          # max_subarray
    start = "def max_subarray(nums):\n    return sum(nums)\n"
    eng = ScriptedEngine(lambda req: "I cannot help with that.")
    res = optimize_code(problem, eng, steps=1, start=start)
    assert res.code == start and res.public_after == res.public_before == 0.5
    assert res.notes and "unusable" in res.notes[0]


def test_bad_inputs_are_clear(tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"problems": [{"name": "x"}]}))
    with pytest.raises(DataError, match="not a code-problem file"):
        load_code_problems(bad)
    with pytest.raises(InvalidVariableError, match="CodeProblem"):
        optimize_code("two_sum", ScriptedEngine("x"))


def test_a_rewrite_that_passes_no_more_public_tests_does_not_replace_the_code():
    problem = load_code_problems()[4]          # max_subarray: public [-2, 1, ...] == 6 and [1] == 1
    start = "def max_subarray(nums):\n    return max(nums)\n"             # passes [1] only
    other = "def max_subarray(nums):\n    return 6 if len(nums) > 1 else 0\n"   # passes the other one only
    eng = ScriptedEngine(lambda req: f"<NEW_VALUE>{other}</NEW_VALUE>")
    res = optimize_code(problem, eng, steps=1, start=start)
    assert [t["public"] for t in res.trajectory] == [0.5, 0.5]
    assert res.code == start and res.hidden_after == res.hidden_before
