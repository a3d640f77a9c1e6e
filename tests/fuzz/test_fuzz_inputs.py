"""Fuzzing every parser and constructor a user's input reaches: only textopt errors (``TextoptError``
subclasses) may escape — never a ``TypeError``, ``KeyError``, ``UnicodeDecodeError`` or ``RecursionError``.

Run alone with ``pytest -m fuzz``; ``FUZZ_SCALE=10`` multiplies every example count (the default totals > 10k).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from textopt.engines import Request, get_engine
from textopt.engines.local.constrain import CompiledPattern, PatternConstraint
from textopt.engines.local.vocab import VocabTable
from textopt.engines.replay import ReplayEngine
from textopt.engines.types import Response
from textopt.errors import TextoptError
from textopt.runtime import run_sync
from textopt.tasks import load_bbh, load_gsm8k
from textopt.train import checkpoint as ckpt
from textopt.variable import Feedback, Variable

from .fakes import FakeTokenizer, decode_greedily, only_textopt_errors

pytestmark = pytest.mark.fuzz
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))


def fuzz(n: int):
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c,
                                                                                        max_size=4), max_leaves=12)
anything = st.one_of(json_values, st.builds(object), st.just(torch.zeros(2)), st.binary(max_size=8),
                     st.tuples(scalars, scalars))
deep = st.integers(1, 30_000).map(lambda n: "[" * n + "]" * n)


def _file(content: str | bytes, name: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="fuzz")) / name
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


# -- replay cassettes --------------------------------------------------------------------------------------
RESPONSE_FIELDS = ("text", "parsed", "prompt_tokens", "completion_tokens", "cost", "cached", "latency", "model",
                   "finish_reason", "logprobs")
responses = st.one_of(json_values, st.fixed_dictionaries(
    {"text": st.one_of(st.text(max_size=8), json_values)},
    optional={f: st.one_of(json_values, st.integers(-3, 3)) for f in RESPONSE_FIELDS[1:]}))


@st.composite
def cassette_lines(draw) -> str:
    model = draw(st.one_of(st.text(min_size=1, max_size=8), json_values))
    key = Request.chat("q").key(model) if isinstance(model, str) and draw(st.booleans()) else \
        draw(st.one_of(st.text(max_size=8), json_values))
    line = {"key": key, "request": draw(st.one_of(st.just({"model": model}), json_values)),
            "response": draw(responses)}
    if draw(st.booleans()):
        line["engine"] = draw(json_values)
    if draw(st.booleans()):
        del line[draw(st.sampled_from(sorted(line)))]
    return json.dumps(line)


@fuzz(1500)
@given(st.lists(st.one_of(cassette_lines(), st.text(max_size=20), deep), min_size=1, max_size=3))
def test_cassette_lines(lines):
    engine = only_textopt_errors(ReplayEngine, _file("\n".join(lines) + "\n", "c.jsonl"))
    if isinstance(engine, ReplayEngine):   # a well-formed cassette: a call is served or is a clean miss
        resp = only_textopt_errors(run_sync, engine.generate(Request.chat("q")))
        assert isinstance(resp, (Response, TextoptError))
        if isinstance(resp, Response):
            assert engine.usage.total.calls == 1 and resp.total_tokens >= 0


@fuzz(400)
@given(st.binary(max_size=60))
def test_cassette_bytes(data):
    only_textopt_errors(ReplayEngine, _file(data, "c.jsonl"))


# -- task files, checkpoints -------------------------------------------------------------------------------
file_texts = st.one_of(st.binary(max_size=80), st.text(max_size=80), deep, json_values.map(json.dumps),
                       deep.map(lambda d: '{"examples": [' + d + "]}"),
                       st.lists(json_values.map(json.dumps), max_size=4).map("\n".join))


@fuzz(1500)
@given(file_texts)
def test_task_files(content):
    path = _file(content, "t.json")
    only_textopt_errors(load_bbh, path)
    only_textopt_errors(load_gsm8k, path)


@fuzz(800)
@given(st.one_of(file_texts, st.dictionaries(st.text(max_size=8), json_values, max_size=6).map(json.dumps)))
def test_checkpoint_files(content):
    only_textopt_errors(ckpt.load, _file(content, "checkpoint.json"))


# -- constructors ------------------------------------------------------------------------------------------
@fuzz(1500)
@given(anything, st.one_of(st.none(), st.text(max_size=8), anything), st.one_of(st.booleans(), anything),
       st.one_of(st.none(), st.dictionaries(st.text(max_size=4), scalars), anything),
       st.one_of(st.none(), st.text(max_size=4), anything))
def test_variable_constructor(value, role, requires_grad, meta, name):
    v = only_textopt_errors(lambda: Variable(value, role=role, requires_grad=requires_grad, meta=meta, name=name))
    if isinstance(v, Variable):
        repr(v), str(v), v.meta


messages = st.one_of(st.fixed_dictionaries({"role": scalars, "content": scalars}), st.tuples(scalars, scalars),
                     anything)


@fuzz(1500)
@given(st.one_of(st.text(max_size=8), anything), st.one_of(st.none(), st.just(Variable("x", role="answer")), anything),
       st.one_of(st.lists(messages, max_size=3), anything), st.one_of(st.text(max_size=4), anything),
       st.one_of(st.none(), st.text(max_size=4), anything), st.one_of(st.tuples(st.integers()), anything),
       st.one_of(st.lists(st.tuples(scalars, scalars), max_size=2), anything))
def test_feedback_constructor(text, target, conversation, source, objective, key, context):
    fb = only_textopt_errors(lambda: Feedback(text, target, conversation=conversation, source=source,
                                              objective=objective, key=key, context=context))
    if isinstance(fb, Feedback):
        repr(fb), fb.conversation


@fuzz(800)
@given(st.one_of(st.text(max_size=8), st.lists(messages, max_size=3), anything),
       st.fixed_dictionaries({}, optional={"temperature": anything, "max_tokens": anything, "stop": anything,
                                           "n": anything}))
def test_request_constructor(msgs, kw):
    only_textopt_errors(lambda: Request(messages=msgs, **kw))


# -- engine specs ------------------------------------------------------------------------------------------
@fuzz(800)
@given(st.one_of(anything, st.tuples(st.sampled_from(["openai", "anthropic", "replay", "scripted", "local",
                                                      "nosuch", ""]),
                                     st.text(max_size=16)).map(":".join)))
def test_engine_specs(spec):
    assume(not (isinstance(spec, str) and spec.strip() in ("local", "local:")))   # would load the real model
    os.environ.pop("OPENAI_API_KEY", None)
    only_textopt_errors(get_engine, spec, cache=False)


# -- local-engine patterns (a fake vocabulary: no model) -----------------------------------------------------
VOCAB = VocabTable(FakeTokenizer(), len(FakeTokenizer()))
REGEX_CHARS = "abcxyzAB019 .*+?|()[]{}^$\\-,!é\n"


@fuzz(1500)
@given(st.one_of(st.text(alphabet=REGEX_CHARS, max_size=10), anything), st.integers(1, 24), st.integers(0, 9))
@example("00|", 1, 0)   # found 2026-12-03: in a final state with one token left, only EOS ends in a match
def test_patterns_fail_at_compile_time_or_decode_to_a_match(pattern, max_tokens, seed):
    assume(not (isinstance(pattern, str) and re.search(r"\d{3,}", pattern)))   # {999..}: huge automata
    compiled = only_textopt_errors(CompiledPattern, pattern, VOCAB)
    if not isinstance(compiled, CompiledPattern):
        return
    c = only_textopt_errors(PatternConstraint, compiled, max_tokens)
    if isinstance(c, PatternConstraint):   # compiled and fits: decoding never gets stuck and ends in a match
        ids = decode_greedily(c, VOCAB.size, max_tokens, seed)
        assert c.done or c.state in compiled.finals, "the budget ran out before the pattern was complete"
        text = "".join(VOCAB.texts[i] for i in ids if i != VOCAB.eos_id)
        assert compiled.fsm.accepts(text), (pattern, text)


# -- CLI arguments (parsing and the checks that run before any work) ------------------------------------------
OPTIONS = ["--seed", "--train-size", "--val-size", "--test-size", "--concurrency", "--steps", "--batch-size",
           "--patience", "--max-new-tokens", "--feedback-tokens", "--budget-usd", "--out", "--record", "--cache-dir"]
cli_values = st.one_of(st.integers(-2 ** 70, 2 ** 70).map(str), st.floats().map(str), st.text(max_size=10),
                       st.sampled_from(["/proc/x/y", "~nosuchuser/x", "", "-", "0", "1e400", "/"]))


@fuzz(800)
@given(st.lists(st.tuples(st.sampled_from(OPTIONS), cli_values), max_size=4))
def test_cli_arguments(pairs):
    from textopt.cli import build_parser
    argv = ["optimize", "--task", "format_count"] + [x for option, value in pairs for x in (option, value)]
    parser = build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as exc:   # the one clean way out: exit 2 with one line (checked in tests/cli)
        assert exc.code == 2
