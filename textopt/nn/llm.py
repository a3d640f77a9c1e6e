"""``LLMCall``: one call to a model, a node of the graph (system prompt, input -> response)."""
from __future__ import annotations

import asyncio
import dataclasses

from ..engines import Engine, Message, Request, get_engine
from ..engines.images import check_supported
from ..checks import expect_int
from ..errors import BadRequestError, InvalidVariableError
from ..function import Function
from ..lazy import direct_output
from ..image import as_images
from ..prompts import BACKWARD_IMAGES, BACKWARD_LLM, BACKWARD_LLM_EVAL, BACKWARD_SYSTEM, fill
from ..variable import Feedback, Variable, as_variable
from .module import Module


class LLMCallFn(Function):
    """Backward of a call: for each input that requires grad, ask the backward engine for criticism."""

    name = "llm_call"
    _request_fields = None   # (node name, max_tokens, Request.chat_fields) of the last backward request

    async def backward(self, ctx, node, feedback, targets):
        if len(targets) == 1:  # the common case: asked inline (no task from gather, no coroutine per target)
            target = targets[0]
            if type(self).backward_target is not LLMCallFn.backward_target:   # a subclass's own per-target backward
                return [await self.backward_target(ctx, node, feedback, target)]
            user, request = self._ask(ctx, node, feedback, target)
            if "images" in node.saved:
                user, request = show_images(user, request, node.saved["images"], target.role)
            return [_feedback(user, await ctx.generate(request, node), target, node, feedback)]
        return list(await asyncio.gather(*(self.backward_target(ctx, node, feedback, t) for t in targets)))

    async def backward_target(self, ctx, node, feedback, target: Variable) -> Feedback:
        """The feedback for one input (what subclasses override: a loss routes its evaluation, a bounded call
        asks for less)."""
        user, request = self._ask(ctx, node, feedback, target)
        if "images" in node.saved:
            user, request = show_images(user, request, node.saved["images"], target.role)
        return _feedback(user, await ctx.generate(request, node), target, node, feedback)

    def _ask(self, ctx, node, feedback, target: Variable) -> tuple[str, Request]:
        """The backward prompt for ``target`` and the request that carries it."""
        saved = node.saved
        system, inp, output = saved.get("system", ""), saved.get("input", ""), node.output._value
        if (feedback[0].source == "seed") if len(feedback) == 1 else all(f.source == "seed" for f in feedback):
            user = fill(BACKWARD_LLM_EVAL, system=system, input=inp, output=output, role=target.role,
                        value=target._value)
        else:
            text = feedback[0]._value if len(feedback) == 1 else "\n\n".join([f._value for f in feedback])
            user = fill(BACKWARD_LLM, system=system, input=inp, output=output, output_role=node.output.role,
                        feedback=text, role=target.role, value=target._value)
        max_tokens = saved.get("backward_max_tokens") or ctx.max_tokens
        f = self._request_fields   # the backward request's fields, made once per node name and cap
        if f is None or f[0] is not node.name or f[1] is not max_tokens:
            f = self._request_fields = (node.name, max_tokens,
                                Request.chat_fields(role="backward", node=node.name, max_tokens=max_tokens))
        return user, Request.from_fields(f[2], user, BACKWARD_SYSTEM)


def _feedback(user: str, resp, target: Variable, node, feedback) -> Feedback:
    conversation = (("system", BACKWARD_SYSTEM), ("user", user), ("assistant", resp.text))
    saved = node.saved
    context = step_context(saved.get("system", ""), saved.get("input", ""), node.output._value, feedback, target)
    images = saved.get("images", ())
    if images:   # the optimizer is shown the same images, and the context names them
        context += (("images read with the input", "; ".join(im.describe() for im in images)),)
    return Feedback._make(resp.text, target, conversation, node.name, context, images)


def show_images(user: str, request: Request, images: tuple, role: str) -> tuple[str, Request]:
    """The backward request with the forward call's images attached and the prompt saying so."""
    if not images:
        return user, request
    user += fill(BACKWARD_IMAGES, n=str(len(images)), images="; ".join(im.describe() for im in images), role=role)
    messages = tuple(m for m in request.messages if m.role != "user") + (Message("user", user),)
    return user, dataclasses.replace(request, messages=messages, images=tuple(images))


def step_context(system: str, inp: str, output: str, feedback, target: Variable) -> tuple:
    """What explains a feedback item to an optimizer: the forward step's input and output and the feedback the
    output received (absent when the output was itself the evaluation); the system prompt too when the
    feedback is about something else (the target's own value is shown to the optimizer anyway)."""
    pairs = (("input", inp), ("output", output))
    if system and system != target._value:
        pairs = (("system prompt", system),) + pairs
    if len(feedback) == 1:   # a chain step: one feedback item
        if feedback[0].source != "seed":
            pairs += (("feedback on the output", feedback[0]._value),)
    elif not all(f.source == "seed" for f in feedback):
        pairs += (("feedback on the output", "\n\n".join([f._value for f in feedback])),)
    return pairs


def backward_max_tokens(ctx, node) -> int:
    """The node's own cap on backward answers (``backward_max_tokens=`` of the module), else the pass's."""
    return node.saved.get("backward_max_tokens") or ctx.max_tokens


def _text_input(x: "Variable | str") -> Variable:
    x = as_variable(x, role="input to the language model")
    if not x.is_text:
        raise InvalidVariableError(f"LLMCall takes a text input, got {x!r}; pass images with images=...")
    return x


def check_call_settings(owner: str, backward_max_tokens: int | None = None, **request_kw) -> None:
    """A model-calling module's settings, checked when it is built (a bad one is a ``BadRequestError`` there, not
    at its first call): the request settings as ``Request.chat`` takes them, and the cap on its backward answer."""
    Request.chat_fields(**request_kw)
    expect_int(backward_max_tokens, f"{owner} backward_max_tokens", lo=1, error=BadRequestError, allow_none=True)


class LLMCall(Module):
    """``LLMCall(engine, system_prompt=p)(x)`` -> response Variable with an edge from ``p`` and ``x``.

    ``engine`` is an Engine or a spec string. ``system_prompt`` may be a Variable (learnable when it requires
    grad), a plain string, or None. ``backward_max_tokens`` caps the backward LLM's answers for this call.
    """

    lazy = True   # a call from synchronous code returns at once (textopt.lazy)
    _request_fields = None   # (role, temperature, max_tokens, node name, request_kw, Request.chat_fields): the
    # last call's settings and the request fields made of them

    def __init__(self, engine: "Engine | str", system_prompt: "Variable | str | None" = None, *,
                 output_role: str = "response of the language model", temperature: float = 0.0,
                 max_tokens: int = 512, name: str | None = None, backward_max_tokens: int | None = None,
                 **request_kw):
        super().__init__()
        self.engine = get_engine(engine)
        check_call_settings(type(self).__name__, backward_max_tokens, temperature=temperature, max_tokens=max_tokens,
                            **request_kw)
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

    def forward_request(self, x: Variable, role: str) -> Request:
        """The forward request (subclasses change it, e.g. to add demonstrations to the system prompt)."""
        system = self.system_prompt._value if self.system_prompt is not None else None
        f = self._request_fields   # the request's fields, made once while the settings stay the same objects
        if f is None or f[0] != role or f[1] is not self.temperature or f[2] is not self.max_tokens \
                or f[3] is not self.node_name or f[4] != self.request_kw:
            f = (role, self.temperature, self.max_tokens, self.node_name, dict(self.request_kw),
                 Request.chat_fields(temperature=self.temperature, max_tokens=self.max_tokens, role=role,
                                     node=self.node_name, **self.request_kw))
            object.__setattr__(self, "_request_fields", f)   # a cache, not a parameter
        return Request.from_fields(f[5], x._value, system)

    def check_args(self, x: "Variable | str", images=None) -> None:
        """Bad arguments raise at the call, before it is launched: a non-text input, images for a text-only
        engine."""
        if not (isinstance(x, Variable) and x._pending is not None):
            _text_input(x)
        if images is not None and not getattr(self.engine, "supports_images", False):
            probe = Request.chat("", role="forward" if self.training else "eval", node=self.node_name)
            check_supported(self.engine, dataclasses.replace(probe, images=tuple(im.image
                                                                                 for im in as_images(images))))

    @direct_output
    async def aforward(self, x: "Variable | str", images=None) -> Variable:
        """``images``: an image or a list (ImageVariable, path, bytes, PIL image) read with ``x``; they become
        inputs of the node and are shown again to its backward calls and to the optimizer."""
        if type(x) is not Variable or not x._is_text:   # (a text Variable, the usual input, needs no check)
            x = _text_input(x)
        request = self.forward_request(x, "forward" if self.training else "eval")
        pics = as_images(images) if images is not None else ()
        if pics:
            request = dataclasses.replace(request, images=tuple(im.image for im in pics))
        resp = await self.engine.generate(request)
        prompt = self.system_prompt
        inputs = ((prompt, x) if prompt is not None else (x,)) + pics
        saved = {"system": prompt._value if prompt is not None else "", "input": x._value,
                 "backward_max_tokens": self.backward_max_tokens}
        if pics:
            saved["images"] = request.images
        return self.fn.attach(inputs, resp.text, self.output_role, saved=saved, name=self.node_name)
