"""Test helpers shipped with textopt: a loopback server speaking the OpenAI and Anthropic wire formats."""
from .servers import Fault, LoopbackServer, SeenRequest

__all__ = ["Fault", "LoopbackServer", "SeenRequest"]
