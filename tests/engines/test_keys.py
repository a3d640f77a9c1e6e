"""Cache/cassette keys: everything that changes the answer is in the key, metadata and secrets are not."""
from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from textopt.engines import Request, ScriptedEngine

ENGINE = ScriptedEngine("x", model="m")
text = st.text(max_size=20)
requests = st.builds(
    lambda user, system, temperature, max_tokens, top_p, seed, stop, sample_index: Request.chat(
        user, system=system, temperature=temperature, max_tokens=max_tokens, top_p=top_p, seed=seed, stop=stop,
        sample_index=sample_index),
    text, st.none() | text, st.sampled_from([0.0, 0.5, 1.0]), st.integers(1, 4096),
    st.none() | st.sampled_from([0.5, 0.9]), st.none() | st.integers(0, 5), st.lists(text, max_size=2),
    st.integers(0, 3))

CHANGES = {"temperature": lambda r: r.temperature + 0.25, "max_tokens": lambda r: r.max_tokens + 1,
           "top_p": lambda r: 0.7 if r.top_p != 0.7 else 0.8, "seed": lambda r: (r.seed or 0) + 1,
           "stop": lambda r: r.stop + ("END",), "n": lambda r: r.n + 1, "schema": lambda r: {"type": "object"},
           "prefill": lambda r: "<a>", "logprobs": lambda r: not r.logprobs, "pattern": lambda r: r"\d+"}


@settings(max_examples=60, deadline=None)
@given(requests, st.sampled_from(sorted(CHANGES)))
def test_every_answer_changing_field_changes_the_key(req, field):
    changed = dataclasses.replace(req, **{field: CHANGES[field](req)})
    assert ENGINE.request_key(req)[0] != ENGINE.request_key(changed)[0]


@settings(max_examples=60, deadline=None)
@given(requests, st.sampled_from(["forward", "loss", "backward", "optimizer", "eval"]), st.none() | text,
       st.sampled_from([None, True, False]))
def test_metadata_never_changes_the_key(req, role, node, use_cache):
    assert ENGINE.request_key(req) == ENGINE.request_key(req.with_meta(role=role, node=node, use_cache=use_cache))


@settings(max_examples=60, deadline=None)
@given(requests, st.integers(4, 9))
def test_sample_index_keys_only_sampled_calls(req, other_index):
    other = req.with_meta(sample_index=other_index)
    same = ENGINE.request_key(req)[0] == ENGINE.request_key(other)[0]
    assert same == (req.temperature == 0)


def test_explicit_default_model_is_the_same_call():
    assert ENGINE.request_key(Request.chat("q")) == ENGINE.request_key(Request.chat("q", model="m"))
    assert ENGINE.request_key(Request.chat("q"))[0] != ENGINE.request_key(Request.chat("q", model="m2"))[0]
