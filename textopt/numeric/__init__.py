"""textopt.numeric: tensor Variables in the text graph, and the bridges between text and numbers.

* :mod:`~textopt.numeric.ops` — ``apply(fn, *vars)``: torch computations as graph nodes; ``parameter(...)``.
* :mod:`~textopt.numeric.to_number` — text -> number: ``MetricScore``, ``JudgeScore``, ``LogProbScore``,
  ``EmbeddingSimilarity`` (each documents its estimator).
* :mod:`~textopt.numeric.to_text` — number -> text: ``WeightedItems`` (per-item judgements -> gradient on the
  weights), ``SampledItems`` (score-function / REINFORCE estimator for a discrete choice).
* :mod:`~textopt.numeric.expr` — restricted evaluator for LLM-written expressions; :mod:`~textopt.numeric.embed`
  — an offline hashing embedder.

The numeric half of ``loss.backward()`` (sensitivity pre-pass, one torch backward) is part of the core:
:mod:`textopt.hybrid`.
"""
from .embed import HashingEmbedder
from .expr import Expression, compile_expression
from .ops import NumericFn, apply, parameter
from .to_number import EmbeddingSimilarity, JudgeScore, LogProbScore, MetricScore
from .to_text import SampledItems, WeightedItems, judge_items, plackett_luce_logprob

__all__ = ["apply", "parameter", "NumericFn", "MetricScore", "JudgeScore", "LogProbScore", "EmbeddingSimilarity",
           "WeightedItems", "SampledItems", "judge_items", "plackett_luce_logprob", "HashingEmbedder",
           "compile_expression", "Expression"]
