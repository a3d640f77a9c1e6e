"""textopt.numeric: tensor Variables in the text graph, and the bridges between text and numbers.

* :mod:`~textopt.numeric.ops` — ``apply(fn, *vars)``: torch computations as graph nodes; ``parameter(...)``.
* :mod:`~textopt.numeric.hybrid` — the numeric half of ``loss.backward()`` (sensitivity pre-pass, one torch backward).
* :mod:`~textopt.numeric.to_number` — text -> number: ``MetricScore``, ``JudgeScore``, ``LogProbScore``,
  ``EmbeddingSimilarity`` (each documents its estimator).
* :mod:`~textopt.numeric.to_text` — number -> text: ``WeightedItems`` (per-item judgements -> gradient on the
  weights), ``SampledItems`` (score-function / REINFORCE estimator for a discrete choice).
* :mod:`~textopt.numeric.expr` — restricted evaluator for LLM-written expressions; :mod:`~textopt.numeric.embed`
  — an offline hashing embedder.
"""
import importlib

from .embed import HashingEmbedder
from .expr import Expression, compile_expression
from .ops import NumericFn, apply, parameter

# The bridges import engines and nn; textopt.backward imports this package, so they load on first use (no cycle).
_LAZY = {"EmbeddingSimilarity": "to_number", "JudgeScore": "to_number", "LogProbScore": "to_number",
         "MetricScore": "to_number", "SampledItems": "to_text", "WeightedItems": "to_text",
         "judge_items": "to_text", "plackett_luce_logprob": "to_text"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["apply", "parameter", "NumericFn", "MetricScore", "JudgeScore", "LogProbScore", "EmbeddingSimilarity",
           "WeightedItems", "SampledItems", "judge_items", "plackett_luce_logprob", "HashingEmbedder",
           "compile_expression", "Expression"]
