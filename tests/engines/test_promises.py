"""Engines keep their promises: ``n>1`` returns every completion it billed; a USD budget warns about a model it
cannot price, and a token budget stops any model."""
from __future__ import annotations

import warnings

import pytest

from textopt.cli import main
from textopt.engines import Budget, Request
from textopt.engines.base import UnpricedModelWarning
from textopt.engines.types import Response
from textopt.errors import BudgetExceeded

from .conftest import make


def test_openai_n_returns_every_completion(serve):
    answers = iter(["first", "second", "third", "single"])   # the server asks the responder once per choice
    srv = serve(lambda body: next(answers))
    eng = make("openai", srv)
    resp = eng.generate_sync(Request.chat("q", n=3, temperature=1.0))
    assert srv.requests[0].body["n"] == 3
    assert resp.choices == ["first", "second", "third"] and resp.text == "first"
    assert Response.from_dict(resp.to_dict()).choices == resp.choices   # cache and cassette keep them all
    single = eng.generate_sync(Request.chat("q"))
    assert single.text == "single" and single.choices is None


def test_usd_budget_warns_about_a_model_without_a_price(serve):
    srv = serve("ok")
    eng = make("openai", srv, model="my-finetune", budget=Budget(max_usd=1.0))
    with pytest.warns(UnpricedModelWarning, match="no price is known for model 'my-finetune'"):
        eng.generate_sync(Request.chat("q"))
    priced = make("openai", srv, model="my-finetune", budget=Budget(max_usd=1.0), prices={"my-finetune": (1, 2)})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnpricedModelWarning)
        priced.generate_sync(Request.chat("q"))
        make("openai", srv, model="gpt-4o-mini", budget=Budget(max_usd=1.0)).generate_sync(Request.chat("q"))


def test_token_budget_stops_an_unpriced_model(serve):
    srv = serve("ok")
    eng = make("openai", srv, model="my-finetune", budget=Budget(max_tokens=600))
    eng.generate_sync(Request.chat("q", max_tokens=200))
    with pytest.raises(BudgetExceeded, match="tokens"):
        eng.generate_sync(Request.chat("q2", max_tokens=600))
    assert len(srv.requests) == 1


def test_cli_budget_tokens(tmp_path, capsys):
    from textopt.engines import register
    register("clitest", "tests.cli.scripted:from_spec")
    args = ["optimize", "--task", "format_count", "--engine", "clitest", "--steps", "1", "--batch-size", "2",
            "--train-size", "4", "--val-size", "4", "--test-size", "4", "--quiet", "--no-cache",
            "--out", str(tmp_path / "run")]
    assert main(args + ["--budget-tokens", "50"]) == 2
    assert "budget of 50 tokens would be exceeded" in capsys.readouterr().err
