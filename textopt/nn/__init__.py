"""textopt.nn: modules, LLM calls and losses (torch.nn's twin for text pipelines)."""
from .aggregate import aggregate
from .code_tests import CodeTestsLoss
from .demos import DemoCall
from .formatted import FormattedLLMCall
from .llm import LLMCall, LLMCallFn
from .losses import TextLoss
from .metrics import F1, ExactMatch, MetricLoss, NumberMatch, Regex
from .module import Module
from .multifield import MultiFieldLoss
from .pyfunction import function
from .scored import Scored

__all__ = ["Module", "LLMCall", "LLMCallFn", "DemoCall", "FormattedLLMCall", "TextLoss", "MultiFieldLoss", "MetricLoss",
           "CodeTestsLoss", "ExactMatch", "NumberMatch", "Regex", "F1", "Scored", "aggregate", "function"]
