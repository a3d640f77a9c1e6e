"""Metric losses with an explanation: ``ExactMatch``, ``NumberMatch``, ``Regex``, ``F1``.

``loss = ExactMatch()(pred, target)`` is a :class:`~textopt.nn.scored.Scored` Variable: ``loss.meta["score"]``
(1.0 is best) and ``loss.score`` (a tensor) carry the number; its text — also ``loss.meta["feedback"]`` — is an
explanation such as "Wrong answer: expected 8, got 7." that seeds ``loss.backward()``. The explanation goes to
the prediction with no LLM call; upstream LLM calls then turn it into feedback for their parameters.
"""
from __future__ import annotations

import math
import re
import string
from collections import Counter
from typing import Any, Callable

from ..errors import InvalidVariableError
from ..function import Function
from ..variable import Variable, as_variable
from . import prompts as P
from .aggregate import clip_evaluation
from .module import Module
from .scored import evaluation_for, is_evaluation, scored


class MetricFn(Function):
    name = "metric"
    evaluates = True

    async def backward(self, ctx, node, feedback, targets):
        if is_evaluation(feedback):
            text = evaluation_for(node, feedback)
        else:
            downstream = "\n\n".join(f.value for f in feedback)
            text = P.METRIC_DOWNSTREAM.format(verdict=node.output.value, feedback=downstream)
        return [text if t is node.inputs[0] else None for t in targets]


def regex_extractor(pattern: str) -> Callable[[str], str]:
    """``extract="answer: (\\w+)"``: the first group of the first match (the whole match without groups; "" if
    nothing matches)."""
    compiled = re.compile(pattern, re.S)

    def extract(text: str) -> str:
        m = compiled.search(text)
        if m is None:
            return ""
        return m.group(1) if m.groups() else m.group(0)
    return extract


class MetricLoss(Module):
    """Base: subclasses implement ``compare(pred_text, target) -> (score, explanation)``."""

    needs_target = True

    lazy = True   # a call on a pending response chains on it (textopt.lazy); on a ready one it runs at once

    def __call__(self, pred: "Variable | str", target: Any = None) -> Variable:
        if isinstance(pred, Variable) and pred._pending is not None:
            return super().__call__(pred, target)
        return self.forward(pred, target)

    def __init__(self, *, extract: Callable[[str], str] | str | None = None, name: str | None = None):
        super().__init__()
        self.extract = regex_extractor(extract) if isinstance(extract, str) else extract
        self.fn = MetricFn()
        self.node_name = name or type(self).__name__.lower()

    def compare(self, pred: str, target: Any) -> tuple[float, str]:
        raise NotImplementedError

    def forward(self, pred: "Variable | str", target: Any = None) -> Variable:
        pred = as_variable(pred, role="response to evaluate")
        if not pred.is_text:
            raise InvalidVariableError(f"{type(self).__name__} evaluates text, got {pred!r}")
        tgt = target.value if isinstance(target, Variable) else target
        if tgt is None and self.needs_target:
            raise InvalidVariableError(f"{type(self).__name__} needs a target: call it as loss(pred, target)")
        text = self.extract(pred.value) if self.extract else pred.value
        score, explanation = self.compare(text, tgt)
        out = self.fn.attach([pred], explanation, f"evaluation of the {pred.role}", name=self.node_name,
                             meta={"score": float(score), "feedback": explanation})
        return scored(out)

    async def aforward(self, pred, target=None):
        return self.forward(pred, target)


def _norm(s: str) -> str:
    return " ".join(s.strip().strip(".").split()).lower()


class ExactMatch(MetricLoss):
    """1.0 when the (extracted) response equals the target after normalising case, spaces and a final period
    (``normalize=False``: compare verbatim)."""

    def __init__(self, *, normalize: bool = True, **kw):
        super().__init__(**kw)
        self.normalize = normalize

    def compare(self, pred, target):
        target = str(target)
        ok = (_norm(pred) == _norm(target)) if self.normalize else pred == target
        return (1.0, P.EXACT_OK.format(expected=target)) if ok else \
            (0.0, P.EXACT_BAD.format(expected=target, got=clip_evaluation(pred.strip(), 300)))


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def parse_number(text: str) -> float | None:
    """The answer number of a response: after '####' or 'answer is' if present, else the last number."""
    for marker in ("####", "answer is", "answer:", "Answer:"):
        if marker in text:
            found = _NUMBER.findall(text.split(marker)[-1])
            if found:
                return _to_float(found[0])
    found = _NUMBER.findall(text)
    return _to_float(found[-1]) if found else None


def _to_float(s: str) -> float | None:
    try:
        return float(s.replace(",", ""))
    except ValueError:
        return None


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


class NumberMatch(MetricLoss):
    """1.0 when the response's answer number equals the target within ``tol`` (absolute)."""

    def __init__(self, *, tol: float = 1e-6, **kw):
        super().__init__(**kw)
        self.tol = tol

    def compare(self, pred, target):
        expected = target if isinstance(target, (int, float)) else parse_number(str(target))
        if expected is None:
            raise InvalidVariableError(f"NumberMatch target {target!r} is not a number")
        got = parse_number(pred)
        if got is None:
            return 0.0, P.NUMBER_MISSING.format(expected=_fmt(expected))
        if math.isclose(got, expected, abs_tol=self.tol):
            return 1.0, P.NUMBER_OK.format(expected=_fmt(expected), got=_fmt(got))
        return 0.0, P.NUMBER_BAD.format(expected=_fmt(expected), got=_fmt(got))


class Regex(MetricLoss):
    """1.0 when the response matches ``pattern`` (``re.search``); without a pattern the target is the pattern."""

    def __init__(self, pattern: str | None = None, *, flags: int = re.S, **kw):
        super().__init__(**kw)
        if pattern is not None:
            try:
                re.compile(pattern, flags)
            except (re.error, TypeError) as exc:
                raise InvalidVariableError(f"Regex pattern {pattern!r:.80} is not a regular expression: {exc}") \
                    from None
        self.pattern = pattern
        self.flags = flags
        self.needs_target = pattern is None

    def compare(self, pred, target):
        pattern = self.pattern if self.pattern is not None else str(target)
        try:
            ok = re.search(pattern, pred, self.flags) is not None
        except re.error as exc:
            raise InvalidVariableError(f"Regex pattern {pattern!r} is invalid: {exc}") from exc
        return (1.0, P.REGEX_OK.format(pattern=pattern)) if ok else (0.0, P.REGEX_BAD.format(pattern=pattern))


def _tokens(s: str) -> list[str]:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return s.split()


class F1(MetricLoss):
    """Token-level F1 (SQuAD normalisation: case, punctuation, articles); the explanation names the missing
    and unexpected words."""

    def compare(self, pred, target):
        p, t = _tokens(pred), _tokens(str(target))
        common = Counter(p) & Counter(t)
        same = sum(common.values())
        if not p and not t:
            f1 = 1.0
        elif same == 0:
            f1 = 0.0
        else:
            prec, rec = same / len(p), same / len(t)
            f1 = 2 * prec * rec / (prec + rec)
        missing = list((Counter(t) - Counter(p)).elements())
        extra = list((Counter(p) - Counter(t)).elements())
        show = lambda ws: ", ".join(dict.fromkeys(ws[:20])) or "none"  # noqa: E731
        return f1, P.F1_TEXT.format(f1=f1, missing=show(missing), extra=show(extra))
