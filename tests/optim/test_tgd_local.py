"""Issue 9: on the real embedded model every TGD step yields a valid candidate (20 of 20 independent steps),
never containing the optimizer's tags or instructions. The steps run concurrently (one micro-batched decode)."""
from __future__ import annotations

import asyncio
import re

import pytest

import textopt as tx
from textopt.engines import get_engine
from textopt.optim import TGD
from textopt.optim import prompts as P
from textopt.optim.tgd import check_new_value, is_instruction

pytestmark = pytest.mark.local

CASES = [
    ("system prompt of a question-answering assistant", "Answer the question.",
     "The answers were long and rambling; the count should come first."),
    ("system prompt of a math solver", "Solve the problem.", "It skipped steps and got 12 instead of 15."),
    ("system prompt of a translator", "Translate to French.", "Proper nouns were translated; keep them as is."),
    ("system prompt of a summarizer", "Summarize the text.", "Summaries exceed three sentences."),
    ("instruction for a classifier", "Classify the review.", "Labels must be positive or negative only."),
    ("system prompt of a counting assistant", "Count the items.", "<FEEDBACK>Say the number first.</FEEDBACK>"),
    ("system prompt of a code reviewer", "Review the code.", "Reviews miss off-by-one errors in loops."),
    ("instruction for a date parser", "Parse the date.", "Output must use the YYYY-MM-DD format."),
    ("system prompt of a tutor", "Explain the concept.", "Explanations use jargon; use simple words."),
    ("system prompt of an email writer", "Write the email.", "Emails lack a greeting and a sign-off."),
    ("solution to the arithmetic problem", "3 + 4 * 2 = 14", "Multiplication goes before addition: 11."),
    ("answer to the trivia question", "The capital of Australia is Sydney.", "Wrong city: it is Canberra."),
    ("short product description", "A phone.", "Too short; mention the battery and the camera."),
    ("title of a blog post", "Things about cooking", "Vague; name the dish and the main benefit."),
    ("list of shopping items", "eggs milk", "Add bread and separate items with commas."),
    ("reply to a customer", "No.", "Rude; apologise and offer a refund."),
    ("definition of a word", "Photosynthesis is a plant thing.", "Mention sunlight, water and sugar."),
    ("caption of a photo", "A dog.", "Say what the dog is doing on the beach."),
    ("slogan of a bakery", "We sell bread.", "Make it catchy and mention fresh morning bread."),
    ("step of a recipe", "Cook the pasta.", "Say how long and in how much salted water."),
]


def test_twenty_tgd_steps_on_the_real_model_all_yield_valid_values():
    engine = get_engine("local")
    params, opts = [], []
    for role, value, feedback in CASES:
        p = tx.Variable(value, role=role, requires_grad=True)
        p._extend_grad([tx.Feedback(feedback, p, source="judge")])
        params.append(p)
        opts.append(TGD([p], engine=engine, max_tokens=48, max_context_chars=0, history=1))

    async def main():
        return await asyncio.gather(*(o.astep() for o in opts), return_exceptions=True)

    results = asyncio.run(main())
    failures = [(c[0], r) for c, r in zip(CASES, results) if isinstance(r, BaseException)]
    assert not failures, failures
    for (role, old, _), p in zip(CASES, params):
        new = p.value
        assert new.strip() and "<" not in new and ">" not in new, (role, new)
        check_new_value(new, old, role)  # no tags, no copied instructions, no commentary opening
        if is_instruction(role):
            assert re.match("(" + "|".join(P.INSTRUCTION_OPENERS) + ") ", new), (role, new)
    # each request really was constrained and went to the engine as an optimizer call
    assert engine.usage.as_dict()["by_role"]["optimizer"]["calls"] + \
        engine.usage.as_dict()["by_role"]["optimizer"]["cached"] >= 20
