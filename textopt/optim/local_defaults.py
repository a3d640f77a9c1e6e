"""Optimizer settings for the embedded model (``local:``), shared by ``textopt optimize`` and its dry-run estimate."""

LOCAL_OPTIMIZER_TOKENS = 80    # a 135M model rambles to its cap; a prompt never needs more on the local engine
# A 135M optimizer copies whatever scaffolding it sees (a <CONTEXT> block ended up in its "new prompt" in our
# runs) and reads slowly on a CPU: give it the feedback alone, short, with one past value.
LOCAL_TGD = dict(max_context_chars=0, max_gradient_chars=600, history=1)
LOCAL_FEEDBACK_TOKENS = 96     # feedback of the 135M model past this is repetition, and each token costs CPU time


def check_optimizer(name: str) -> None:
    """One textopt error for an optimizer name that is not registered."""
    from ..errors import DataError
    from . import OPTIMIZERS
    if name not in OPTIMIZERS:
        raise DataError(f"unknown optimizer {name!r}; --optimizer must be one of {', '.join(sorted(OPTIMIZERS))}")
