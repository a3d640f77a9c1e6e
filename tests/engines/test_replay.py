"""Record with a real SDK engine, replay with the server stopped; misses are clear errors."""
from __future__ import annotations

import asyncio
import json

import pytest

from textopt.engines import Request, ScriptedEngine, get_engine
from textopt.engines.replay import ReplayEngine
from textopt.engines.structured import agenerate_structured, agenerate_tagged
from textopt.errors import EngineSpecError, ReplayMissError

from .conftest import make
from .test_structured_wire import Answer, json_or_tag_responder


def _calls():
    return [Request.chat("What is 2+2?", system="math", role="forward", node="n1"),
            Request.chat("What is 2+2?", temperature=0.8, sample_index=0),
            Request.chat("What is 2+2?", temperature=0.8, sample_index=1),
            Request.chat("Explain", max_tokens=40, stop=["\n\n"])]


def test_record_then_replay_with_the_server_stopped(provider, serve, tmp_path):
    cassette = tmp_path / "calls.jsonl"
    srv = serve(lambda body: json_or_tag_responder(body) if "give" in str(body["messages"][0])
                else f"answer #{len(srv.requests)}")
    live = make(provider, srv, record=str(cassette), cache="memory")
    recorded = [live.generate_sync(r).text for r in _calls()]
    recorded.append(live.generate_sync(_calls()[0]).text)               # a cache hit is recorded too
    value, _ = asyncio.run(agenerate_structured(live, Request.chat("give 4"), Answer))
    tag, _ = asyncio.run(agenerate_tagged(live, Request.chat("give 5"), "answer"))
    srv.stop()
    n_requests = len(srv.requests)

    replay = get_engine(f"replay:{cassette}")
    assert replay.model_ids == [live.cache_model_id()]
    assert [replay.generate_sync(r).text for r in _calls()] + [replay.generate_sync(_calls()[0]).text] == recorded
    # structured output replays through the same request shapes (schema vs prefill follows the recording engine)
    assert asyncio.run(agenerate_structured(replay, Request.chat("give 4"), Answer))[0] == value
    assert asyncio.run(agenerate_tagged(replay, Request.chat("give 5"), "answer"))[0] == tag
    assert len(srv.requests) == n_requests
    assert replay.usage.as_dict()["total"]["calls"] == 7


def test_replay_miss_names_the_call_and_how_to_re_record(tmp_path):
    cassette = tmp_path / "c.jsonl"
    ScriptedEngine("hi", model="m", record=str(cassette)).generate_sync(Request.chat("recorded prompt"))
    replay = ReplayEngine(cassette)
    assert replay.generate_sync(Request.chat("recorded prompt")).text == "hi"
    with pytest.raises(ReplayMissError) as info:
        replay.generate_sync(Request.chat("a prompt never recorded", temperature=0.5, sample_index=3,
                                          role="backward", node="llm.x"))
    msg = str(info.value)
    for part in ("a prompt never recorded", "sample_index=3", "'backward'", "'llm.x'", "record=", str(cassette),
                 "scripted:m"):
        assert part in msg, part
    with pytest.raises(ReplayMissError):   # a changed parameter is a different call
        replay.generate_sync(Request.chat("recorded prompt", max_tokens=9))


def test_replay_keys_match_the_recording_engine_model_id(serve, tmp_path):
    """Two engines (two servers, same model name) record into one cassette: each call replays its own answer,
    and a request naming the model explicitly is matched too."""
    cassette = tmp_path / "c.jsonl"
    a, b = serve("from A"), serve("from B")
    ea = make("openai", a, model="m", record=str(cassette))
    eb = make("openai", b, model="m", record=str(cassette))
    ea.generate_sync(Request.chat("only A"))
    eb.generate_sync(Request.chat("only B"))
    ea.generate_sync(Request.chat("explicit", model="m2"))
    lines = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert [ln["request"]["model"] for ln in lines] == [ea.cache_model_id(), eb.cache_model_id(),
                                                        ea.cache_model_id("m2")]
    replay = ReplayEngine(cassette)
    assert replay.generate_sync(Request.chat("only A")).text == "from A"
    assert replay.generate_sync(Request.chat("only B")).text == "from B"
    assert replay.generate_sync(Request.chat("explicit", model="m2")).text == "from A"
    only_a = ReplayEngine(cassette, model_id=ea.cache_model_id())
    with pytest.raises(ReplayMissError):
        only_a.generate_sync(Request.chat("explicit"))        # recorded for model m2, not A's default model
    only_b = ReplayEngine(cassette, model_id=eb.cache_model_id())
    with pytest.raises(ReplayMissError):
        only_b.generate_sync(Request.chat("only A"))


def test_repeated_calls_replay_in_recorded_order(tmp_path):
    cassette = tmp_path / "c.jsonl"
    answers = iter(["first", "second"])
    live = ScriptedEngine(lambda r: next(answers), record=str(cassette))
    live.generate_sync(Request.chat("q"))
    live.generate_sync(Request.chat("q"))
    replay = ReplayEngine(cassette)
    assert [replay.generate_sync(Request.chat("q")).text for _ in range(3)] == ["first", "second", "second"]


def test_replay_reloads_a_re_recorded_cassette(tmp_path):
    cassette = tmp_path / "c.jsonl"
    ScriptedEngine("a", record=str(cassette)).generate_sync(Request.chat("one"))
    replay = ReplayEngine(cassette)
    with pytest.raises(ReplayMissError):
        replay.generate_sync(Request.chat("two"))
    ScriptedEngine("b", record=str(cassette)).generate_sync(Request.chat("two"))
    assert replay.generate_sync(Request.chat("two")).text == "b"


def test_replay_spec_errors(tmp_path):
    with pytest.raises(EngineSpecError, match="no cassette"):
        get_engine(f"replay:{tmp_path / 'missing.jsonl'}")
    with pytest.raises(EngineSpecError, match="needs a cassette path"):
        get_engine("replay:")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "k"}\n')
    with pytest.raises(Exception, match=r"bad.jsonl:1: not a cassette line"):
        ReplayEngine(bad)


def test_replay_adopts_the_recording_engines_abilities(serve, tmp_path):
    srv = serve("x")
    for provider, schema, prefill in (("openai", True, False), ("anthropic", False, True)):
        cassette = tmp_path / f"{provider}.jsonl"
        make(provider, srv, record=str(cassette)).generate_sync(Request.chat("q"))
        replay = ReplayEngine(cassette)
        assert (replay.supports_schema, replay.supports_prefill) == (schema, prefill)
    cassette = tmp_path / "anthropic-json.jsonl"
    make("anthropic", srv, record=str(cassette), json_schema=True).generate_sync(Request.chat("q"))
    assert ReplayEngine(cassette).supports_schema is True


def test_replay_with_a_fallback_extends_a_recording(serve, tmp_path):
    """fallback=: recorded calls come from the cassette (the server never sees them), new ones go live; with
    record= the replay engine writes a cassette of the whole extended run, which replays on its own."""
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    srv = serve(lambda body: f"live #{len(srv.requests)}")
    first = make("openai", srv, record=str(old), cache=False)
    recorded = [first.generate_sync(r).text for r in _calls()[:2]]
    seen = len(srv.requests)
    live = make("openai", srv, cache=False)
    extended = ReplayEngine(old, fallback=live, record=str(new))
    texts = [extended.generate_sync(r).text for r in _calls()]
    assert texts[:2] == recorded and len(srv.requests) == seen + 2   # only the two unrecorded calls went live
    srv.stop()
    assert [ReplayEngine(new).generate_sync(r).text for r in _calls()] == texts
    with pytest.raises(EngineSpecError, match="fallback must be an Engine"):
        ReplayEngine(old, fallback="openai:gpt-4o")
