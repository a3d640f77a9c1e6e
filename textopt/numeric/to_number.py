"""Text -> number bridges: a text Variable in, a tensor Variable out, in the same graph.

Estimators (what the backward pass gives back to each input):

* numeric side: the output is a torch tensor. Where it depends on tensors (``EmbeddingSimilarity`` against a
  learnable vector or adapter) torch differentiates it exactly; where it depends on text only it is a leaf scalar
  that requires grad, so downstream numeric ops still build their graph.
* text side: text has no derivative. The bridge receives d loss / d output from the hybrid pre-pass
  (``ctx.output_grad``) and writes ONE piece of feedback on its text input, with no LLM call: the score, the
  direction the objective wants ("increase"/"decrease", i.e. the sign of -d loss / d score), the sensitivity,
  and the scorer's own explanation (a metric's message, a judge's critique, the least likely target token).
  This is a sign-and-magnitude estimator: the text optimizer is told which way to move and how much it matters.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from pydantic import BaseModel, Field

from ..engines import Engine, Request, get_engine
from ..engines.structured import agenerate_structured
from ..errors import InvalidVariableError
from ..function import Function
from ..grad_mode import is_grad_enabled
from ..kernels import cosine
from ..nn.llm import check_call_settings
from ..nn.module import Module
from ..variable import Variable, as_variable
from . import prompts as P


def _leaf_or_graph(value: Any, inputs: Sequence[Variable]) -> torch.Tensor:
    """Bridge output: keep torch's graph when it has one; otherwise a leaf that requires grad when an input does."""
    if isinstance(value, torch.Tensor) and value.grad_fn is not None:
        return value
    t = torch.as_tensor(value, dtype=torch.get_default_dtype()).detach().clone()
    if is_grad_enabled() and any(v.requires_grad for v in inputs):
        t.requires_grad_(True)
    return t


def _emit(fn: Function, inputs: list[Variable], value: torch.Tensor, role: str, saved: dict) -> Variable:
    """Record the bridge node; a leaf output keeps requires_grad (Variable() would otherwise switch it off)."""
    wanted = value.requires_grad
    out = fn.attach(inputs, value, role, name=fn.name, saved=saved)
    if wanted and not out.value.requires_grad:
        out.requires_grad_(True)
    return out


def _text(x: "Variable | str", role: str, who: str) -> Variable:
    x = as_variable(x, role=role)
    if not x.is_text:
        raise InvalidVariableError(f"{who} scores text, got {x!r}")
    return x


def direction(grad: torch.Tensor | None) -> tuple[str, float]:
    """('increase' | 'decrease' | 'keep', d loss / d value summed) for a scalar-like bridge output."""
    if grad is None:
        return "keep", 0.0
    g = float(grad.detach().sum())
    if g < 0:
        return "increase", g
    if g > 0:
        return "decrease", g
    return "keep", g


class ScoreFn(Function):
    """Backward of every text->number bridge: sign-and-magnitude feedback on the text input(s)."""

    hybrid = True
    needs_output_grad = True

    def __init__(self, name: str, template: str = P.SCORE_FEEDBACK):
        self.name = name
        self.template = template

    async def backward(self, ctx, node, feedback, targets):
        way, g = direction(ctx.output_grad(node.output))
        if way == "keep":
            return [None] * len(targets)
        text_targets = node.saved.get("text_targets", (0,))
        out = []
        for t in targets:
            if t.is_text and any(node.inputs[i] is t for i in text_targets):
                out.append(self.message(node, t, way, g))
            else:
                out.append(None)  # tensors: torch differentiates them in the final backward
        return out

    def message(self, node, target: Variable, way: str, g: float) -> str:
        s = node.saved
        expl = P.SCORE_EXPLANATION.format(text=s["explanation"]) if s.get("explanation") else ""
        value = node.output.value.detach()
        shown = f"{float(value):.4g}" if value.numel() == 1 else str([round(float(v), 4) for v in value.flatten()])
        return self.template.format(role=target.role, what=s.get("what", self.name), value=shown, way=way,
                                    grad=g, explanation=expl)


class MetricScore(Module):
    """``MetricScore(fn)(text, *args)`` -> scalar tensor Variable ``fn(text, *args)``.

    ``fn`` returns a number or ``(number, explanation)``; the explanation goes into the text feedback."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None):
        super().__init__()
        if not callable(fn):
            raise InvalidVariableError(f"MetricScore takes a metric, a callable (text, *args) -> score or (score, "
                                       f"explanation), got {type(fn).__name__}")
        self.metric = fn
        self.fn = ScoreFn(name or getattr(fn, "__name__", "metric"))

    def forward(self, text: "Variable | str", *args) -> Variable:
        x = _text(text, "text to score", "MetricScore")
        got = self.metric(x.value, *[a.value if isinstance(a, Variable) else a for a in args])
        score, expl = got if isinstance(got, tuple) else (got, "")
        value = _leaf_or_graph(float(score), [x])
        return _emit(self.fn, [x], value, f"score of the {x.role} by {self.fn.name}",
                     {"what": f"the metric {self.fn.name}", "explanation": str(expl)})


class JudgeVerdict(BaseModel):
    critique: str = Field(description="the concrete problems of the text, briefly")
    score: float = Field(description="the numeric score")


class JudgeScore(Module):
    """An LLM judge whose parsed number is a tensor Variable; its critique becomes the text feedback.

    ``normalize=True`` maps [low, high] to [0, 1]. The judge's call is tagged ``role="loss"``."""

    def __init__(self, engine: "Engine | str", instruction: str, *, low: float = 0.0, high: float = 10.0,
                 normalize: bool = True, max_tokens: int = 300, name: str = "judge_score"):
        super().__init__()
        if not isinstance(instruction, str) or not instruction.strip():
            raise InvalidVariableError(f"JudgeScore instruction must be a non-empty str (what to judge), got "
                                       f"{instruction!r:.60}")
        if not (type(low) in (int, float) and type(high) in (int, float) and high > low):
            raise InvalidVariableError(f"JudgeScore needs numbers low < high, got low={low!r}, high={high!r}")
        check_call_settings("JudgeScore", max_tokens=max_tokens)
        self.engine = get_engine(engine)
        self.instruction, self.low, self.high, self.normalize = instruction, low, high, normalize
        self.max_tokens = max_tokens
        self.fn = ScoreFn(name)

    async def aforward(self, text: "Variable | str") -> Variable:
        x = _text(text, "text to judge", "JudgeScore")
        req = Request.chat(P.JUDGE_USER.format(instruction=self.instruction, text=x.value),
                           system=P.JUDGE_SYSTEM.format(low=self.low, high=self.high),
                           max_tokens=self.max_tokens, role="loss", node=self.fn.name)
        verdict, _ = await agenerate_structured(self.engine, req, JudgeVerdict)
        raw = min(max(verdict.score, self.low), self.high)
        score = (raw - self.low) / (self.high - self.low) if self.normalize else raw
        return _emit(self.fn, [x], _leaf_or_graph(score, [x]), f"judge score of the {x.role}",
                     {"what": "an LLM judge", "explanation": verdict.critique, "raw": raw})


class LogProbFn(ScoreFn):
    def message(self, node, target, way, g):
        lps = node.saved["logprobs"] or [0.0]
        worst = min(range(len(lps)), key=lambda i: lps[i])
        return self.template.format(target=node.saved["target"], role=target.role, total=sum(lps), n=len(lps),
                                    mean=sum(lps) / len(lps), worst=worst, worst_lp=lps[worst], way=way, grad=g,
                                    adj="more" if way == "increase" else "less")


class LogProbScore(Module):
    """Log-probability of a target continuation after a prompt, from ``engine.score(messages, continuation)``
    (the local engine implements it). ``reduction``: "sum" (default) or "mean" over the target's tokens."""

    def __init__(self, engine: "Engine | str", *, reduction: str = "sum", name: str = "logprob_score"):
        super().__init__()
        if reduction not in ("sum", "mean"):
            raise InvalidVariableError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
        self.engine = get_engine(engine)
        self.reduction = reduction
        self.fn = LogProbFn(name, P.LOGPROB_FEEDBACK)

    async def aforward(self, prompt: "Variable | str", target: str, system: "Variable | str | None" = None):
        x = _text(prompt, "prompt", "LogProbScore")
        sys_var = _text(system, "system prompt", "LogProbScore") if system is not None else None
        messages = ([{"role": "system", "content": sys_var.value}] if sys_var is not None else []) + [
            {"role": "user", "content": x.value}]
        lps = [float(v) for v in await self.engine.score(messages, target)]
        total = sum(lps) if self.reduction == "sum" else sum(lps) / max(len(lps), 1)
        inputs = [x] + ([sys_var] if sys_var is not None else [])
        return _emit(self.fn, inputs, _leaf_or_graph(total, inputs), f"log-probability of the target after the "
                     f"{x.role}", {"logprobs": lps, "target": target, "text_targets": tuple(range(len(inputs)))})


class SimilarityFn(ScoreFn):
    def message(self, node, target, way, g):
        return self.template.format(role=target.role, value=float(node.output.value.detach()),
                                    other=node.saved["other"], way=way, grad=g,
                                    adj="closer" if way == "increase" else "less close")


class EmbeddingSimilarity(Module):
    """Cosine similarity between ``embed(text)`` and a vector (a tensor Variable, maybe learnable) or the
    embedding of another text. Differentiable w.r.t. the vector and any tensor parameters used by ``embed``
    (exact torch gradient); the text gets sign-and-magnitude feedback."""

    def __init__(self, embed: Callable[[str], torch.Tensor], *, name: str = "embedding_similarity"):
        super().__init__()
        if not callable(embed):
            raise InvalidVariableError(f"EmbeddingSimilarity takes an embedder, a callable text -> 1-D tensor (e.g. "
                                       f"textopt.numeric.HashingEmbedder()), got {type(embed).__name__}")
        self.embed = embed
        self.fn = SimilarityFn(name, P.SIMILARITY_FEEDBACK)

    def forward(self, text: "Variable | str", other: "Variable | str | torch.Tensor") -> Variable:
        x = _text(text, "text to compare", "EmbeddingSimilarity")
        if isinstance(other, torch.Tensor):
            other = Variable(other, role="reference vector")
        other = as_variable(other, role="reference text")
        vec = self.embed(other.value) if other.is_text else other.value
        sim = cosine(self.embed(x.value).reshape(-1), vec.reshape(-1), dim=0)
        desc = f"the reference text <REFERENCE>{other.value}</REFERENCE>" if other.is_text else f"the {other.role}"
        inputs = [x, other]
        return _emit(self.fn, inputs, _leaf_or_graph(sim, inputs), f"similarity of the {x.role}",
                     {"other": desc, "text_targets": (0, 1) if other.is_text else (0,)})
