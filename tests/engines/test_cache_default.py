"""The response cache is on by default in the Python API (one shared disk cache), off per engine (cache=False),
per call (Request.use_cache=False) and by environment (TEXTOPT_CACHE=0); sampling keeps its meaning."""
import os
from pathlib import Path

import pytest

import textopt as tx
from textopt.engines import Request, ScriptedEngine
from textopt.engines.cache import ResponseCache, default_cache, default_cache_dir
from textopt.errors import EngineSpecError

from .conftest import make_openai


def test_the_suite_never_writes_the_real_user_cache(tmp_path):
    home = Path.home() / ".cache" / "textopt"
    assert not str(default_cache_dir()).startswith(str(home))
    assert str(default_cache_dir()).startswith(str(tmp_path))   # conftest: a folder per test


def test_engines_cache_by_default_and_share_one_cache(serve):
    srv = serve(lambda body: "forty-two")
    a, b = make_openai(srv), make_openai(srv)
    assert isinstance(a.cache, ResponseCache) and a.cache is b.cache is default_cache()
    assert a.cache.path == default_cache_dir()
    first = a.generate_sync(Request.chat("q"))
    again = b.generate_sync(Request.chat("q"))   # another engine of the same model and server: a hit
    assert (first.cached, again.cached, again.text) == (False, True, "forty-two")
    assert len(srv.requests) == 1


def test_opt_out_per_engine_per_call_and_by_environment(serve, monkeypatch):
    srv = serve(lambda body: "x")
    off = make_openai(srv, cache=False)
    assert off.cache is None
    off.generate_sync(Request.chat("q"))
    off.generate_sync(Request.chat("q"))
    assert len(srv.requests) == 2
    on = make_openai(srv)
    on.generate_sync(Request.chat("p"))
    assert on.generate_sync(Request.chat("p", use_cache=False)).cached is False   # per call
    assert len(srv.requests) == 4
    assert on.generate_sync(Request.chat("p")).cached is True
    call = tx.nn.LLMCall(on, use_cache=False)   # a module's calls: the request option passes through
    call("p").value
    assert len(srv.requests) == 5
    monkeypatch.setenv("TEXTOPT_CACHE", "0")
    assert make_openai(srv).cache is None and default_cache() is None
    assert make_openai(srv, cache=True).cache is not None   # asked for by name: still there
    monkeypatch.setenv("TEXTOPT_CACHE", "maybe")
    with pytest.raises(EngineSpecError, match="TEXTOPT_CACHE='maybe'.*set it to 0"):
        make_openai(srv)


def test_sampling_keeps_its_meaning(serve):
    answers = iter(f"sample {i}" for i in range(100))
    srv = serve(lambda body: next(answers))
    eng = make_openai(srv)
    hot = [eng.generate_sync(Request.chat("idea", temperature=0.9, sample_index=i)).text for i in range(3)]
    assert len(set(hot)) == 3 and len(srv.requests) == 3   # N samples are N entries
    assert eng.generate_sync(Request.chat("idea", temperature=0.9, sample_index=1)).text == hot[1]
    assert len(srv.requests) == 3   # the same sample asked again is the same answer (DSPy's rollout_id)
    many = eng.generate_sync(Request.chat("three", temperature=0.9, n=3))
    hit = eng.generate_sync(Request.chat("three", temperature=0.9, n=3))
    assert hit.cached and hit.choices == many.choices and len(many.choices) == 3


def test_test_doubles_and_cassettes_have_no_cache_by_default(tmp_path):
    assert ScriptedEngine("ok").cache is None
    assert ScriptedEngine("ok", cache="memory").cache is not None


def test_the_default_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("TEXTOPT_RESPONSE_CACHE_DIR")
    monkeypatch.setenv("TEXTOPT_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache().path == tmp_path / "c" / "responses"
    monkeypatch.setenv("TEXTOPT_RESPONSE_CACHE_DIR", str(tmp_path / "r"))
    assert default_cache().path == tmp_path / "r" and os.path.isdir(tmp_path / "r")
