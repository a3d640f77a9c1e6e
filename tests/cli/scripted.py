"""A role-aware scripted engine for CLI tests (spec ``clitest``): the solver puts the count first only when
its system prompt asks for the count first; the feedback engine says so; the optimizer adds the format."""
import re

from textopt.engines import Request, ScriptedEngine

NEW_PROMPT = "Answer the question. Give the count first."


def _answer(question: str) -> str:
    # the right count for the generated format_count questions (a tiny counter of our own phrases)
    words = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3}
    asked = question.split("How many ")[1].split(" do I have")[0]
    from textopt.tasks.generated import CATEGORIES, PLURAL
    items = question[len("I have "):].split(". How many")[0]
    total = 0
    for part in re.split(r", and |, | and ", items):
        w = part.split()
        name = w[-1]
        singular = {v.split()[-1]: k for k, v in PLURAL.items()}.get(name, name)
        if singular not in CATEGORIES[asked] and singular.rstrip("s") in CATEGORIES[asked]:
            singular = singular.rstrip("s")
        if singular in CATEGORIES[asked]:
            total += words[w[0]]
    return str(total)


def respond(req: Request) -> str:
    if req.role in ("forward", "eval"):
        question = req.messages[-1].content
        n = _answer(question)
        return f"{n}. Let me count." if "count first" in (req.system or "") else f"Of 9 items, you have {n}."
    if req.role == "optimizer":
        return f"<NEW_VALUE>{NEW_PROMPT}</NEW_VALUE>"
    return "The system prompt must ask for the count first."


def from_spec(rest: str, **kw) -> ScriptedEngine:
    return ScriptedEngine(respond, **kw)


def priced_from_spec(rest: str, **kw) -> ScriptedEngine:
    """The same answers at 1000 USD per million tokens each way (a budget test needs calls that cost money)."""
    return ScriptedEngine(respond, prices={"scripted": (1000.0, 1000.0)}, **kw)
