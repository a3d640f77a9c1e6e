"""Constrained decoding on the real bundled model: JSON schemas and patterns parse every time (20/20 prompts),
budgets close answers instead of truncating them, and the structured-output helpers succeed on the local engine."""
from __future__ import annotations

import asyncio
import json
import random
import re
from typing import Literal, Optional

import pytest
from pydantic import BaseModel, Field

from textopt.engines import Request, get_engine
from textopt.engines.local.constrain import ConstraintFactory
from textopt.engines.structured import agenerate_structured, agenerate_tagged
from textopt.errors import BadRequestError

pytestmark = pytest.mark.local

TOPICS = ["apples", "the moon", "a python bug", "a cat", "rain", "taxes", "chess", "jazz", "a bridge", "coffee",
          "volcanoes", "a bicycle", "winter", "bread", "a robot", "the sea", "a library", "tennis", "a dragon",
          "glass"]


class Review(BaseModel):
    summary: str = Field(min_length=2, max_length=30)
    stars: int
    price: float
    recommended: bool
    mood: Literal["happy", "sad", "neutral"]
    note: Optional[str] = Field(default=None, max_length=12)


class Point(BaseModel):
    x: int
    name: str = Field(max_length=5)


class Lists(BaseModel):
    labels: list[Literal["helpful", "harmful", "neutral"]] = Field(min_length=3, max_length=3)
    tags: list[str] = Field(max_length=3)
    weights: list[float] = Field(min_length=2)
    points: list[Point] = Field(max_length=2)


@pytest.fixture(scope="module")
def engine():
    eng = get_engine("local")
    eng.load()
    return eng


def gather(engine, reqs):
    async def go():
        return await asyncio.gather(*(engine.generate(r) for r in reqs))
    return asyncio.run(go())


def test_json_schema_outputs_parse_and_validate_20_of_20(engine):
    schema = Review.model_json_schema()
    reqs = [Request.chat(f"Review {t} as JSON.", max_tokens=48, schema=schema) for t in TOPICS]
    before = engine.stats["generate_calls"]
    resps = gather(engine, reqs)
    assert engine.stats["generate_calls"] - before <= 2  # constrained rows share the batch
    for r in resps:
        value = Review.model_validate_json(r.text)
        assert r.parsed == json.loads(r.text) and r.completion_tokens <= 48
        assert value.summary.strip()
    assert len({r.text for r in resps}) > 10  # the prompts matter: not one canned answer


def test_tight_budget_closes_the_object_instead_of_truncating(engine):
    schema = {"type": "object", "properties": {"story": {"type": "string"}, "n": {"type": "integer"}},
              "required": ["story", "n"]}
    for budget in (12, 16):
        r = asyncio.run(engine.generate(Request.chat("Tell a long story about a dragon.", max_tokens=budget,
                                                     schema=schema)))
        obj = json.loads(r.text)
        assert set(obj) == {"story", "n"} and r.completion_tokens <= budget
    with pytest.raises(BadRequestError, match="too small"):
        asyncio.run(engine.generate(Request.chat("x", max_tokens=3, schema=schema)))


def test_pattern_outputs_fullmatch_20_of_20(engine):
    pattern = r"[A-Z]{3}-[0-9]{2,4}"
    reqs = [Request.chat(f"Invent a product code for {t}.", max_tokens=10, pattern=pattern) for t in TOPICS]
    resps = gather(engine, reqs)
    assert all(re.fullmatch(pattern, r.text) for r in resps), [r.text for r in resps]
    yes_no = gather(engine, [Request.chat(f"Is {t} edible? Answer yes or no.", max_tokens=3, pattern="(yes|no)")
                             for t in TOPICS[:5]])
    assert all(r.text in ("yes", "no") for r in yes_no)


def test_fixed_length_label_arrays_on_the_real_model(engine):
    """The shape judges use: exactly n labels from a closed set."""
    reqs = [Request.chat(f"Label each of these 4 remarks about {t} as helpful, harmful or neutral.", max_tokens=40,
                         schema={"type": "object", "required": ["labels"], "properties": {"labels": {
                             "type": "array", "minItems": 4, "maxItems": 4,
                             "items": {"enum": ["helpful", "harmful", "neutral"]}}}}) for t in TOPICS[:6]]
    for r in gather(engine, reqs):
        labels = json.loads(r.text)["labels"]
        assert len(labels) == 4 and set(labels) <= {"helpful", "harmful", "neutral"}


def test_unsupported_schema_and_pattern_are_clear_errors(engine):
    with pytest.raises(BadRequestError, match="does not support string pattern"):
        asyncio.run(engine.generate(Request.chat("x", schema={
            "type": "object", "properties": {"a": {"type": "string", "pattern": "x+"}}})))
    with pytest.raises(BadRequestError, match="pattern"):
        asyncio.run(engine.generate(Request.chat("x", pattern=r"(?<=a)b")))


def test_random_walks_through_the_masks_always_complete(engine):
    """Any token the masks allow, under any budget, still ends in a valid answer (the guarantee itself)."""
    factory: ConstraintFactory = engine.constraints
    tok = engine._tok
    rng = random.Random(0)
    for model, low, high in ((Review, 45, 75), (Lists, 55, 110)):
        schema = model.model_json_schema()
        for _ in range(10):
            budget = rng.randint(low, high)
            c = factory.for_request(Request.chat("x", schema=schema, max_tokens=budget))
            out: list[int] = []
            while not c.done and len(out) < budget:
                choice = rng.choice(c.allowed(budget - len(out)).nonzero()[:, 0].tolist())
                out.append(choice)
                c.advance(choice)
            assert c.done, tok.decode(out)
            model.model_validate_json(tok.decode(out))
    for pattern in (r"[A-Z]{3}-\d{2,4}", r"\d+(\.\d+)?", r"[a-z ]{5,30}\."):
        for _ in range(4):
            budget = rng.randint(7, 20)
            c = factory.for_request(Request.chat("x", pattern=pattern, max_tokens=budget))
            out = []
            while not c.done and len(out) < budget:
                choice = rng.choice(c.allowed(budget - len(out)).nonzero()[:, 0].tolist())
                if choice == tok.eos_token_id:
                    break
                out.append(choice)
                c.advance(choice)
            assert re.fullmatch(pattern, tok.decode(out)), (pattern, tok.decode(out))


class NewValue(BaseModel):
    new_value: str = Field(min_length=1, max_length=120)


def test_structured_and_tagged_helpers_succeed_on_the_real_model(engine):
    async def go():
        structured = asyncio.gather(*(agenerate_structured(
            engine, Request.chat(f"Rewrite this instruction to be clearer: 'Write about {t}.'", max_tokens=40),
            NewValue) for t in TOPICS[:4]))
        tagged = asyncio.gather(*(agenerate_tagged(
            engine, Request.chat(f"Rewrite this instruction to be clearer: 'Write about {t}.'", max_tokens=40),
            "NEW_VALUE") for t in TOPICS[:4]))
        return await structured, await tagged

    structured, tagged = asyncio.run(go())
    for value, resp in structured:
        assert isinstance(value, NewValue) and value.new_value.strip() and resp.parsed == value
    for value, resp in tagged:
        assert value.strip() and "</NEW_VALUE>" not in value and resp.text.startswith("<NEW_VALUE>")


def test_strings_close_with_natural_tokens_and_not_on_an_opening_quote(engine):
    vocab = engine.constraints.vocab
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    c = engine.constraints.for_request(Request.chat("x", schema=schema, max_tokens=30))
    out = c.leading_literal()
    for t in out:
        c.advance(t)
    out.append(vocab.tok2id["Hi"])
    c.advance(out[-1])
    mask = c.allowed(30 - len(out))
    assert mask[vocab.tok2id['",']] and mask[vocab.tok2id[" said"]]
    assert not mask[vocab.tok2id['"']] and not mask[vocab.tok2id[' "']]  # read as an opening quotation mark
    out.append(vocab.tok2id['",'])
    c.advance(out[-1])
    while not c.done:
        allowed = c.allowed(30 - len(out)).nonzero()[:, 0].tolist()
        out.append(vocab.tok2id["7"] if vocab.tok2id["7"] in allowed else allowed[0])
        c.advance(out[-1])
        if out[-1] == vocab.tok2id["7"] and not c.done:
            out.append(vocab.tok2id["}"])
            c.advance(out[-1])
    assert json.loads(engine._tok.decode(out)) == {"a": "Hi", "b": 7}
