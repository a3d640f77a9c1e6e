"""``tx.function(purpose=...)``: a plain Python function on Variables becomes a graph node.

    @tx.function(purpose="extract the final number from a worked solution")
    def parse_answer(solution: str) -> str: ...

    y = parse_answer(solution_var)   # the function receives plain values; y is a Variable with an edge

Arguments that are Variables are unwrapped to their values (positional or keyword); everything else passes
through unchanged. The result (str, number -> str, or tensor) becomes the output Variable. Backward asks the
backward engine, once per input that needs it, for feedback from the function's purpose, all its inputs, its
output and the feedback on the output (TextGrad's string-based function, but concurrent and for any input).
Async functions give async wrappers.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
from typing import Any, Callable

from ..engines import Request
from ..errors import InvalidVariableError
from ..function import Function
from ..prompts import BACKWARD_SYSTEM
from ..variable import Feedback, Variable, is_tensor
from . import prompts as P
from .aggregate import clip_evaluation
from .llm import step_context

MAX_INPUT_CHARS = 4000


class PyFunction(Function):
    def __init__(self, fn: Callable, purpose: str, role: str, name: str, max_tokens: int):
        self.fn, self.purpose, self.role, self.name, self.max_tokens = fn, purpose, role, name, max_tokens

    def _wrap(self, args, kwargs, result) -> Variable:
        labelled = [(f"arg{i}", a) for i, a in enumerate(args)] + list(kwargs.items())
        inputs = [v for _, v in labelled if isinstance(v, Variable)]
        if isinstance(result, Variable):
            result = result.value
        if not (isinstance(result, str) or is_tensor(result)):
            result = str(result)
        names = {id(v): k for k, v in labelled if isinstance(v, Variable)}
        return self.attach(inputs, result, self.role, saved={"names": names}, name=self.name)

    async def backward(self, ctx, node, feedback, targets):
        return list(await asyncio.gather(*(self.backward_target(ctx, node, feedback, t) for t in targets)))

    async def backward_target(self, ctx, node, feedback, target: Variable) -> Feedback:
        names = node.saved.get("names", {})
        inputs = "\n".join(P.FUNCTION_INPUT.format(name=names.get(id(v), "?"), role=v.role,
                                                   value=clip_evaluation(str(v.value), MAX_INPUT_CHARS))
                            for v in node.inputs)
        if all(f.source == "seed" for f in feedback):
            block = P.EVAL_BLOCK
        else:
            block = P.FEEDBACK_BLOCK.format(output_role=node.output.role,
                                            feedback="\n\n".join(f.value for f in feedback))
        output = clip_evaluation(str(node.output.value), MAX_INPUT_CHARS)
        user = P.BACKWARD_FUNCTION.format(name=self.name, purpose=self.purpose, inputs=inputs, output=output,
                                          feedback_block=block,
                                          target=names.get(id(target), "?"), role=target.role)
        resp = await ctx.generate(Request.chat(user, system=BACKWARD_SYSTEM, max_tokens=self.max_tokens), node)
        conv = [{"role": "system", "content": BACKWARD_SYSTEM}, {"role": "user", "content": user},
                {"role": "assistant", "content": resp.text}]
        return Feedback(resp.text, target, conversation=conv, source=node.name,
                        context=step_context("", inputs, str(node.output.value), feedback, target))


def _unwrap(x: Any) -> Any:
    return x.value if isinstance(x, Variable) else x


def function(fn: Callable | None = None, *, purpose: str, role: str | None = None, name: str | None = None,
             max_tokens: int = 384):
    """Decorator (see the module docstring). ``purpose`` says what the function does — the backward LLM reads
    it; ``role`` describes the output (default: "output of <name>")."""
    if not isinstance(purpose, str) or not purpose.strip():
        raise InvalidVariableError("tx.function needs purpose='what the function does' (the backward LLM reads it)")

    def deco(f: Callable):
        fname = name or getattr(f, "__name__", "function")
        node_fn = PyFunction(f, purpose.strip(), role or f"output of {fname}", fname, max_tokens)
        if inspect.iscoroutinefunction(f):
            @functools.wraps(f)
            async def awrapper(*args, **kwargs):
                result = await f(*map(_unwrap, args), **{k: _unwrap(v) for k, v in kwargs.items()})
                return node_fn._wrap(args, kwargs, result)
            awrapper.node_fn = node_fn
            return awrapper

        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            result = f(*map(_unwrap, args), **{k: _unwrap(v) for k, v in kwargs.items()})
            return node_fn._wrap(args, kwargs, result)
        wrapper.node_fn = node_fn
        return wrapper

    return deco(fn) if fn is not None else deco
