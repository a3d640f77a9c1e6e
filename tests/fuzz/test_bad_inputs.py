"""The bad inputs issue 15 found, one by one: each is one textopt error naming what was wrong (and the fuzz
suite next door covers the class)."""
from __future__ import annotations

import json

import pytest

from textopt.engines import Request, get_engine
from textopt.engines.local.constrain import CompiledPattern, PatternConstraint
from textopt.engines.local.vocab import VocabTable
from textopt.engines.replay import ReplayEngine
from textopt.errors import (BadRequestError, CheckpointError, DataError, EngineSpecError, InvalidVariableError)
from textopt.tasks import load_bbh, load_gsm8k
from textopt.train import checkpoint as ckpt
from textopt.variable import Feedback, Variable

from .fakes import FakeTokenizer, decode_greedily

GOOD = {"text": "hi", "prompt_tokens": 3, "completion_tokens": 1}


def _line(key="k", model="m", response=GOOD) -> str:
    return json.dumps({"key": key, "request": {"model": model}, "response": response})


@pytest.mark.parametrize("content,match", [
    (b"\xff\xfe{}\n", "not UTF-8"),
    (_line(key={"a": 1}), r"'key' must be a string, got dict"),
    (_line(model={"a": 1}), r"'request.model' must be a string, got dict"),
    (_line(model=None), r"'request.model' must be a string, got None"),
    (_line(response={**GOOD, "prompt_tokens": "3"}), r"field 'prompt_tokens' must be an integer, got str"),
    (_line(response={**GOOD, "cost": -1}), r"field 'cost' must be >= 0"),
    (_line(response={**GOOD, "text": 5}), r"field 'text' must be a string"),
    (_line(response={**GOOD, "logprobs": ["x"]}), r"'logprobs' must be a list of numbers"),
    (_line(response=[1]), r"'response' must be a JSON object"),
    ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
    ('{"key": "k"}', "the field 'request' is missing"),
])
def test_bad_cassettes_name_the_line_and_field(tmp_path, content, match):
    path = tmp_path / "c.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:   # after a good line: the error names line 2
        path.write_text(_line() + "\n" + content + "\n")
    with pytest.raises(DataError, match=match) as err:
        ReplayEngine(path)
    assert str(path) in str(err.value)
    assert isinstance(content, bytes) or f"{path}:2:" in str(err.value)


def test_deeply_nested_task_files_are_data_errors(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    for name, content, load in [("a.json", deep, load_bbh), ("b.json", '{"examples": [' + deep + "]}", load_bbh),
                                ("c.jsonl", json.dumps({"question": "q", "answer": "#### 1"}) + "\n" + deep,
                                 load_gsm8k)]:
        (tmp_path / name).write_text(content)
        with pytest.raises(DataError, match=r"nested too deeply"):
            load(tmp_path / name)


@pytest.mark.parametrize("make,match", [
    (lambda: Variable("x", meta=5), "meta must be a dict"),
    (lambda: Feedback("x", target="not a variable"), "target must be a Variable, got str"),
    (lambda: Feedback("x", conversation=5), "conversation must be a list of messages, got int"),
    (lambda: Feedback("x", conversation="hello"), "conversation must be a list of messages, got str"),
    (lambda: Feedback("x", conversation=[{"role": "user"}]), "message #1 is not a chat message"),
    (lambda: Feedback("x", conversation=[("user", "a"), 7]), "message #2 is not a chat message"),
    (lambda: Feedback("x", source=3), "source must be a string"),
])
def test_bad_variables_and_feedback(make, match):
    with pytest.raises(InvalidVariableError, match=match):
        make()


def test_good_feedback_conversations_still_work():
    target = Variable("x", role="answer")
    fb = Feedback("bad", target, conversation=[{"role": "user", "content": "q"}, ("assistant", "a")])
    assert fb.conversation == ({"role": "user", "content": "q"}, {"role": "assistant", "content": "a"})
    assert Variable("y", meta={"a": 1}).meta == {"a": 1} and Variable("y", meta={}).meta == {}


@pytest.mark.parametrize("kw,match", [({"messages": 5}, "messages must be a str or a list"),
                                      ({"messages": [{"role": "user"}]}, "message #1 is not a chat message"),
                                      ({"messages": "q", "max_tokens": 0}, "max_tokens must be >= 1"),
                                      ({"messages": "q", "n": "2"}, "n must be an integer"),
                                      ({"messages": "q", "stop": 5}, "stop must be a str or a list of str"),
                                      ({"messages": "q", "pattern": 5}, "pattern must be a string")])
def test_bad_requests(kw, match):
    with pytest.raises(BadRequestError, match=match):
        Request(**kw)


def test_unknown_home_folder_in_a_local_spec():
    with pytest.raises(EngineSpecError, match=r"~nosuchuser.*does not exist"):
        get_engine("local:~nosuchuser/model.gguf")


@pytest.mark.parametrize("content,match", [("[1, 2]", "holds a JSON list"), ('"x"', "holds a JSON str"),
                                           (b"\xff", "not UTF-8"), ("{", "invalid JSON")])
def test_bad_checkpoints(tmp_path, content, match):
    path = tmp_path / "checkpoint.json"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(CheckpointError, match=match):
        ckpt.load(path)


def test_resume_sweeps_the_temporary_file_a_killed_write_left(tmp_path):
    path = tmp_path / "checkpoint.json"
    ckpt.save(path, {"a": 1})
    (tmp_path / ".checkpoint.json.abc123.tmp").write_text('{"torn')
    assert ckpt.load(path) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json"]


# -- local-engine patterns -----------------------------------------------------------------------------------
VOCAB = VocabTable(FakeTokenizer(), len(FakeTokenizer()))


@pytest.mark.parametrize("pattern,match", [(5, "pattern must be a string"), ("[A-Z]+", "vocabulary can spell"),
                                           ("x(", "cannot constrain"), ("é", "vocabulary can spell")])
def test_patterns_the_vocabulary_cannot_spell_fail_at_compile_time(pattern, match):
    with pytest.raises(BadRequestError, match=match):
        CompiledPattern(pattern, VOCAB)


def test_multi_character_only_characters_are_found_at_compile_time():
    tok = FakeTokenizer([*FakeTokenizer().vocab, "café"])   # "é" exists, but only after "caf"
    vocab = VocabTable(tok, len(tok))
    with pytest.raises(BadRequestError, match="cannot spell"):
        CompiledPattern("é+", vocab)
    assert CompiledPattern("café", vocab)


def test_a_branch_the_vocabulary_cannot_finish_is_never_entered():
    compiled = CompiledPattern("aB|c", VOCAB)   # no token spells "B": only "c" can be decoded
    for seed in range(20):
        c = PatternConstraint(compiled, 5)
        ids = decode_greedily(c, VOCAB.size, 5, seed)
        assert "".join(VOCAB.texts[i] for i in ids if i != VOCAB.eos_id) == "c"
