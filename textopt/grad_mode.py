"""Grad modes: ``no_grad`` / ``enable_grad`` as context managers and decorators (torch's contract).

The flag lives in a ``ContextVar`` so concurrent asyncio tasks and threads each see their own mode.
"""
from __future__ import annotations

import contextvars
import functools
import inspect

_GRAD_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("textopt_grad_enabled", default=True)


def is_grad_enabled() -> bool:
    return _GRAD_ENABLED.get()


class _GradMode:
    enabled: bool

    def __enter__(self):
        self._token = _GRAD_ENABLED.set(self.enabled)
        return self

    def __exit__(self, *exc):
        _GRAD_ENABLED.reset(self._token)
        return False

    def __call__(self, fn):
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def awrapper(*args, **kwargs):
                with type(self)():
                    return await fn(*args, **kwargs)
            return awrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Build no graph: outputs of operations inside have no node and never require grad."""
    enabled = False


class enable_grad(_GradMode):
    """Re-enable graph building inside a ``no_grad`` block."""
    enabled = True
