"""textopt.nn: modules, LLM calls and losses (torch.nn's twin for text pipelines)."""
from .llm import LLMCall, LLMCallFn
from .losses import TextLoss
from .module import Module

__all__ = ["Module", "LLMCall", "LLMCallFn", "TextLoss"]
