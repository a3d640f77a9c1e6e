"""Losses. ``TextLoss``: an LLM judge with an instruction; its evaluation is the seed of the backward pass."""
from __future__ import annotations

from ..engines import Engine, Request, get_engine
from ..errors import InvalidVariableError
from ..lazy import direct_output
from ..variable import Feedback, Variable, as_variable
from .llm import LLMCallFn, check_call_settings
from .module import Module
from .scored import evaluation_for, is_evaluation


class TextLossFn(LLMCallFn):
    """The judge already wrote criticism of its input: route the evaluation to the evaluated variable directly
    (no extra LLM call); a learnable instruction still gets LLM feedback."""

    name = "text_loss"
    evaluates = True

    async def backward_target(self, ctx, node, feedback, target):
        if target is node.inputs[-1] and is_evaluation(feedback):
            conv = node.output.meta.get("conversation", ())
            return Feedback(evaluation_for(node, feedback), target, conversation=conv, source=node.name)
        return await super().backward_target(ctx, node, feedback, target)


class TextLoss(Module):
    """``TextLoss(instruction, engine=e)(y)`` -> an evaluation Variable (text). ``loss.backward()`` starts from it."""

    needs_target = False  # the trainer calls it as loss(pred)

    lazy = True   # a call from synchronous code returns at once (textopt.lazy)
    _request_fields = None   # (max_tokens, node name, Request.chat_fields) of the last call

    def __init__(self, instruction: "Variable | str", engine: "Engine | str", *, max_tokens: int = 384,
                 name: str = "text_loss"):
        super().__init__()
        self.instruction = as_variable(instruction, role="evaluation instruction")
        if not self.instruction.is_text:
            raise InvalidVariableError("TextLoss instruction must be text")
        self.engine = get_engine(engine)
        check_call_settings(type(self).__name__, max_tokens=max_tokens)
        self.max_tokens = max_tokens
        self.fn = TextLossFn()
        self.node_name = name

    @direct_output
    async def aforward(self, y: "Variable | str") -> Variable:
        y = as_variable(y, role="response to evaluate")
        f = self._request_fields   # the request's fields, made once while the settings stay the same objects
        if f is None or f[0] is not self.max_tokens or f[1] is not self.node_name:
            f = (self.max_tokens, self.node_name,
                 Request.chat_fields(max_tokens=self.max_tokens, role="loss", node=self.node_name))
            object.__setattr__(self, "_request_fields", f)   # a cache, not a parameter
        resp = await self.engine.generate(Request.from_fields(f[2], y.value, self.instruction.value))
        # (role, content) string pairs, as Feedback keeps them: untracked by the garbage collector (dicts are not)
        conversation = (("system", self.instruction.value), ("user", y.value), ("assistant", resp.text))
        return self.fn.attach([self.instruction, y], resp.text, f"evaluation of the {y.role}",
                              saved={"system": self.instruction.value, "input": y.value}, name=self.node_name,
                              meta={"conversation": conversation})
