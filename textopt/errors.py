"""Every error textopt raises derives from :class:`TextoptError`.

Each message says what was wrong and what to do about it.
"""
from __future__ import annotations


class TextoptError(Exception):
    """Base class of all textopt errors."""


class InvalidVariableError(TextoptError, TypeError):
    """A Variable was built or used with a bad value, role or flag."""


class GraphError(TextoptError):
    """The computation graph cannot be differentiated as asked."""


class EngineError(TextoptError):
    """An LLM engine failed (provider error after retries, bad spec, missing key)."""


class EngineSpecError(EngineError, ValueError):
    """An engine spec string could not be resolved."""


class MissingAPIKeyError(EngineError):
    """The environment variable holding an API key is not set."""


class AuthenticationError(EngineError):
    """The provider rejected the credentials (not retried)."""


class RateLimitError(EngineError):
    """The provider kept answering 429 after all retries."""


class ContextLengthError(EngineError):
    """The request does not fit the model's context window (not retried)."""


class BadRequestError(EngineError):
    """The provider rejected the request as malformed (not retried)."""


class ProviderError(EngineError):
    """Server errors, timeouts or unreadable answers that persisted after retries."""


class ReplayMissError(EngineError, KeyError):
    """A replay engine was asked for a call that is not in its cassette."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class BudgetExceeded(TextoptError):
    """A call would exceed a budget; it was not sent and nothing was changed."""


class ParseError(TextoptError, ValueError):
    """An LLM answer could not be parsed or validated, even after a repair attempt."""


class OptimizerStepError(TextoptError):
    """An optimizer step failed; no parameter was changed."""


class SandboxError(TextoptError):
    """Candidate code could not be run in the sandbox."""


class CheckpointError(TextoptError):
    """A checkpoint could not be read, written, or does not match the run."""


class DataError(TextoptError, ValueError):
    """A data file or record is malformed (the message names the file and line)."""


class KernelError(TextoptError, ValueError):
    """A numeric kernel got inputs of the wrong shape, dtype or device (the message says which and how to fix)."""


class ExpressionError(TextoptError, ValueError):
    """A math expression (e.g. written by an LLM) uses syntax the restricted evaluator does not allow."""


class UnsupportedInputError(EngineError):
    """The engine cannot read part of the request (an image sent to a text-only engine)."""


class MissingDependencyError(TextoptError, ImportError):
    """An optional part of textopt needs a package that is not installed (the message names the extra)."""
