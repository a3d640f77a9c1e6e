"""Bad data -> one DataError naming the file and the line of the offending record."""
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textopt.errors import DataError
from textopt.tasks import load_bbh, load_gsm8k

GOOD_Q = {"question": "How many?", "answer": "2 + 2 = 4\n#### 4"}
GOOD_B = {"input": "How many?", "target": "4"}

bad_value = st.one_of(st.none(), st.integers().map(lambda i: [i]), st.dictionaries(st.text(max_size=3),
                      st.integers(), max_size=2), st.booleans(), st.just(""), st.just("   "))


def _line_of(message: str) -> int:
    m = re.search(r":(\d+): ", message)
    assert m, message
    return int(m.group(1))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_good=st.integers(0, 6), field=st.sampled_from(["question", "answer"]), value=bad_value,
       drop=st.booleans(), blank_lines=st.integers(0, 2))
def test_gsm8k_malformed_record_names_file_and_line(tmp_path, n_good, field, value, drop, blank_lines):
    bad = dict(GOOD_Q)
    if drop:
        del bad[field]
    else:
        bad[field] = value
    lines = [json.dumps(GOOD_Q)] * n_good + [""] * blank_lines + [json.dumps(bad), json.dumps(GOOD_Q)]
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        load_gsm8k(p)
    msg = str(info.value)
    assert str(p) in msg and field in msg
    assert _line_of(msg) == n_good + blank_lines + 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_good=st.integers(0, 5), field=st.sampled_from(["input", "target"]), value=bad_value,
       drop=st.booleans(), indent=st.sampled_from([None, 1, 2]))
def test_bbh_malformed_example_names_file_and_line(tmp_path, n_good, field, value, drop, indent):
    bad = dict(GOOD_B)
    if drop:
        del bad[field]
    else:
        bad[field] = value
    examples = [GOOD_B] * n_good + [bad, GOOD_B]
    text = json.dumps({"examples": examples}, indent=indent)
    p = tmp_path / "task.json"
    p.write_text(text)
    with pytest.raises(DataError) as info:
        load_bbh(p)
    msg = str(info.value)
    assert str(p) in msg and field in msg and f"#{n_good + 1}" in msg
    if indent is None:
        assert _line_of(msg) == 1
        return
    # the named line is where the bad record starts
    line = text.splitlines()[_line_of(msg) - 1]
    expected_start = json.dumps(bad, indent=indent).splitlines()[0].strip()
    assert line.strip().startswith(expected_start[:20]), (line, expected_start)


@pytest.mark.parametrize("content,where", [("", ":1:"), ("  \n\n", ":1:"), ('{"examples": []}', ":1:"),
                                          ('{"examples": {"a": 1}}', ":1:"), ("[1, 2]", ":1:"),
                                          ('{"examples": [\n{"input": "a",\n "target": }]}', ":3:")])
def test_bbh_bad_files(tmp_path, content, where):
    p = tmp_path / "t.json"
    p.write_text(content)
    with pytest.raises(DataError, match=re.escape(str(p) + where)):
        load_bbh(p)


def test_gsm8k_bad_json_line_and_missing_marker(tmp_path):
    p = tmp_path / "g.jsonl"
    p.write_text(json.dumps(GOOD_Q) + "\n{not json\n")
    with pytest.raises(DataError, match=re.escape(f"{p}:2: invalid JSON")):
        load_gsm8k(p)
    p.write_text(json.dumps({"question": "q", "answer": "no final number"}) + "\n")
    with pytest.raises(DataError, match=re.escape(f"{p}:1:") + ".*####"):
        load_gsm8k(p)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_gsm8k(tmp_path / "absent.jsonl")
    with pytest.raises(DataError, match="is a folder"):
        load_bbh(tmp_path)
