"""Answer extraction and metrics. Each metric returns a :class:`Score` whose explanation seeds the backward pass.

Extraction prefers an explicit ``Answer: X`` line (the format our starting prompts ask for), else falls back to
the last candidate in the response — the convention of BBH and GSM8K evaluations.
"""
from __future__ import annotations

import re

from ..functional import one_line
from . import prompts as P
from .base import Score

_ANSWER = re.compile(r"answer\s*(?:is)?\s*[:=]?\s*(.+)", re.I)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_CHOICE = re.compile(r"\(([A-R])\)")
# The one table of spelled-out numbers (the generated tasks write them, the metrics read them back).
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")
WORD_VALUES = {w: i for i, w in enumerate(NUMBER_WORDS)}


def _quote(text: str, n: int = 160) -> str:
    return repr(one_line(text, n))


def answer_span(response: str) -> str:
    """The text after the LAST ``Answer:`` marker, or the whole response when there is none."""
    hits = list(re.finditer(r"answer\s*(?:is)?\s*[:=]", response, re.I))
    return response[hits[-1].end():].strip() if hits else response


def extract_number(response: str) -> str | None:
    """The number after ``Answer:`` (first one there), else the last number in the response; commas dropped;
    a spelled-out small number ("seven") counts when no digit appears."""
    span = answer_span(response)
    found = _NUMBER.findall(span)
    if found:
        num = found[0] if span is not response else found[-1]
    else:
        words = re.findall(r"[a-z]+", span.lower())
        spelled = [WORD_VALUES[w] for w in words if w in WORD_VALUES]
        if not spelled:
            return None
        return str(spelled[0] if span is not response else spelled[-1])
    num = num.replace(",", "").rstrip(".")
    if re.fullmatch(r"-?\d+\.0+", num):
        num = num.split(".")[0]
    return num


def _num_equal(a: str, b: str) -> bool:
    try:
        return abs(float(a.replace(",", "")) - float(b.replace(",", ""))) < 1e-6
    except ValueError:
        return False


def number_match(response: str, target: str) -> Score:
    got = extract_number(response)
    if got is None:
        span = answer_span(response)
        if span is not response:   # an answer line without a number (a small model writes "Answer: N")
            line = span.strip().splitlines()[0] if span.strip() else ""
            return Score(0.0, None, P.NUMBER_LINE_EMPTY.format(target=target, line=_quote("Answer: " + line, 60),
                                                               response=_quote(response)))
        return Score(0.0, None, P.NUMBER_MISSING.format(target=target, response=_quote(response)))
    if _num_equal(got, target):
        return Score(1.0, got, P.NUMBER_OK.format(got=got, target=target))
    return Score(0.0, got, P.NUMBER_BAD.format(target=target, got=got, response=_quote(response)))


def extract_choice(response: str) -> str | None:
    """A multiple-choice letter as ``(X)``: after ``Answer:`` if present, else the last ``(X)`` in the response."""
    span = answer_span(response)
    found = _CHOICE.findall(span)
    if found:
        return f"({found[0] if span is not response else found[-1]})"
    bare = re.match(r"\s*\(?([A-R])\)?(?:[\s.:,]|$)", span)
    return f"({bare.group(1)})" if bare else None


def choice_match(response: str, target: str) -> Score:
    got = extract_choice(response)
    if got is None:
        return Score(0.0, None, P.CHOICE_MISSING.format(target=target, response=_quote(response)))
    if got == target.strip():
        return Score(1.0, got, P.CHOICE_OK.format(got=got))
    return Score(0.0, got, P.CHOICE_BAD.format(target=target, got=got, response=_quote(response)))


def extract_label(response: str, labels: tuple[str, ...]) -> str | None:
    """The label (case-insensitive, whole word) after ``Answer:``, else the last label in the response."""
    span = answer_span(response)
    pattern = re.compile(r"\b(" + "|".join(re.escape(l) for l in labels) + r")\b", re.I)
    found = pattern.findall(span)
    if not found:
        return None
    word = found[0] if span is not response else found[-1]
    return next(l for l in labels if l.lower() == word.lower())


def label_match(labels: tuple[str, ...]):
    def metric(response: str, target: str) -> Score:
        got = extract_label(response, labels)
        if got is None:
            return Score(0.0, None, P.LABEL_MISSING.format(target=target, labels=", ".join(labels),
                                                           response=_quote(response)))
        if got.lower() == target.strip().lower():
            return Score(1.0, got, P.LABEL_OK.format(got=got))
        return Score(0.0, got, P.LABEL_BAD.format(target=target, got=got, response=_quote(response)))
    metric.__name__ = "label_match"
    return metric


def _norm(text: str) -> str:
    return " ".join(text.strip().strip(".").split()).lower()


def extract_text(response: str) -> str:
    """After ``Answer:`` if present, else the last non-empty line."""
    span = answer_span(response)
    if span is response:
        lines = [l for l in response.strip().splitlines() if l.strip()]
        span = lines[-1] if lines else ""
    return span.strip().splitlines()[0].strip() if span.strip() else ""


def text_match(response: str, target: str) -> Score:
    got = extract_text(response)
    if _norm(got) == _norm(target):
        return Score(1.0, got, P.TEXT_OK)
    return Score(0.0, got, P.TEXT_BAD.format(target=target, got=got))


METRICS = {"number": number_match, "choice": choice_match, "text": text_match,
           "bool": label_match(("True", "False")), "yesno": label_match(("Yes", "No")),
           "validity": label_match(("valid", "invalid"))}


def infer_kind(targets: list[str]) -> str:
    """Which metric fits a list of targets: choice, number, bool, yesno, validity, or text."""
    ts = [t.strip() for t in targets]
    if ts and all(_CHOICE.fullmatch(t) for t in ts):
        return "choice"
    if ts and all(re.fullmatch(r"-?\d+(?:\.\d+)?", t.replace(",", "")) for t in ts):
        return "number"
    low = {t.lower() for t in ts}
    if low <= {"true", "false"}:
        return "bool"
    if low <= {"yes", "no"}:
        return "yesno"
    if low <= {"valid", "invalid"}:
        return "validity"
    return "text"
