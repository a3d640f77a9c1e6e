"""``LLMCall``: one call to a model, a node of the graph (system prompt, input -> response)."""
from __future__ import annotations

import asyncio

from ..engines import Engine, Request, get_engine
from ..errors import InvalidVariableError
from ..function import Function
from ..prompts import BACKWARD_LLM, BACKWARD_LLM_EVAL, BACKWARD_SYSTEM, fill
from ..variable import Feedback, Variable, as_variable
from .module import Module


class LLMCallFn(Function):
    """Backward of a call: for each input that requires grad, ask the backward engine for criticism."""

    name = "llm_call"

    async def backward(self, ctx, node, feedback, targets):
        if len(targets) == 1:  # the common case: asked inline (no task from gather, no coroutine per target)
            target = targets[0]
            if type(self)._one is not LLMCallFn._one:   # a subclass's own per-target backward
                return [await self._one(ctx, node, feedback, target)]
            user, request = self._ask(ctx, node, feedback, target)
            return [_feedback(user, await ctx.generate(request, node), target, node, feedback)]
        return list(await asyncio.gather(*(self._one(ctx, node, feedback, t) for t in targets)))

    async def _one(self, ctx, node, feedback, target: Variable) -> Feedback:
        user, request = self._ask(ctx, node, feedback, target)
        return _feedback(user, await ctx.generate(request, node), target, node, feedback)

    def _ask(self, ctx, node, feedback, target: Variable) -> tuple[str, Request]:
        """The backward prompt for ``target`` and the request that carries it."""
        saved = node.saved
        system, inp, output = saved.get("system", ""), saved.get("input", ""), node.output.value
        if (feedback[0].source == "seed") if len(feedback) == 1 else all(f.source == "seed" for f in feedback):
            user = fill(BACKWARD_LLM_EVAL, system=system, input=inp, output=output, role=target.role,
                        value=target.value)
        else:
            text = feedback[0].value if len(feedback) == 1 else "\n\n".join([f.value for f in feedback])
            user = fill(BACKWARD_LLM, system=system, input=inp, output=output, output_role=node.output.role,
                        feedback=text, role=target.role, value=target.value)
        return user, Request.chat(user, system=BACKWARD_SYSTEM, role="backward", node=node.name,
                                  max_tokens=backward_max_tokens(ctx, node))


def _feedback(user: str, resp, target: Variable, node, feedback) -> Feedback:
    conversation = (("system", BACKWARD_SYSTEM), ("user", user), ("assistant", resp.text))
    saved = node.saved
    return Feedback._make(resp.text, target, conversation, node.name,
                          step_context(saved.get("system", ""), saved.get("input", ""), node.output.value, feedback,
                                       target))


def step_context(system: str, inp: str, output: str, feedback, target: Variable) -> tuple:
    """What explains a feedback item to an optimizer: the forward step's input and output and the feedback the
    output received (absent when the output was itself the evaluation); the system prompt too when the
    feedback is about something else (the target's own value is shown to the optimizer anyway)."""
    pairs = [("system prompt", system)] if system and system != target.value else []
    pairs += [("input", inp), ("output", output)]
    if not all(f.source == "seed" for f in feedback):
        pairs.append(("feedback on the output", "\n\n".join(f.value for f in feedback)))
    return tuple(pairs)


def backward_max_tokens(ctx, node) -> int:
    """The node's own cap on backward answers (``backward_max_tokens=`` of the module), else the pass's."""
    return node.saved.get("backward_max_tokens") or ctx.max_tokens


def _text_input(x: "Variable | str") -> Variable:
    x = as_variable(x, role="input to the language model")
    if not x.is_text:
        raise InvalidVariableError(f"LLMCall takes a text input, got {x!r}")
    return x


class LLMCall(Module):
    """``LLMCall(engine, system_prompt=p)(x)`` -> response Variable with an edge from ``p`` and ``x``.

    ``engine`` is an Engine or a spec string. ``system_prompt`` may be a Variable (learnable when it requires
    grad), a plain string, or None. ``backward_max_tokens`` caps the backward LLM's answers for this call.
    """

    lazy = True   # a call from synchronous code returns at once (textopt.lazy)

    def __init__(self, engine: "Engine | str", system_prompt: "Variable | str | None" = None, *,
                 output_role: str = "response of the language model", temperature: float = 0.0,
                 max_tokens: int = 512, name: str | None = None, backward_max_tokens: int | None = None,
                 **request_kw):
        super().__init__()
        self.engine = get_engine(engine)
        self.backward_max_tokens = backward_max_tokens
        if system_prompt is not None:
            system_prompt = as_variable(system_prompt, role="system prompt")
            if not system_prompt.is_text:
                raise InvalidVariableError("system_prompt must be text")
        self.system_prompt = system_prompt
        self.output_role = output_role
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.request_kw = request_kw
        self.fn = LLMCallFn()
        self.node_name = name or "llm_call"

    def _request(self, x: Variable, role: str) -> Request:
        """The forward request (subclasses change it, e.g. to add demonstrations to the system prompt)."""
        system = self.system_prompt.value if self.system_prompt is not None else None
        return Request.chat(x.value, system=system, temperature=self.temperature, max_tokens=self.max_tokens,
                            role=role, node=self.node_name, **self.request_kw)

    def check_args(self, x: "Variable | str") -> None:
        if not (isinstance(x, Variable) and x._pending is not None):
            _text_input(x)

    async def aforward(self, x: "Variable | str") -> Variable:
        x = _text_input(x)
        resp = await self.engine.generate(self._request(x, "forward" if self.training else "eval"))
        prompt = self.system_prompt
        inputs = (prompt, x) if prompt is not None else (x,)
        saved = {"system": prompt.value if prompt is not None else "", "input": x.value,
                 "backward_max_tokens": self.backward_max_tokens}
        return self.fn.attach(inputs, resp.text, self.output_role, saved=saved, name=self.node_name)
