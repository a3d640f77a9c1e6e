"""``MultiFieldLoss``: an LLM judge that sees several named fields (question, answer, reference...).

    loss_fn = MultiFieldLoss("Is the answer correct given the reference? Explain.", engine,
                             fields={"question": "question", "answer": "answer to evaluate",
                                     "reference": "reference answer"})
    loss = loss_fn(question=q, answer=a, reference=r)

Each field that requires grad receives the evaluation directly (no extra LLM call), labelled with its field
name; a learnable instruction gets LLM feedback like any LLM call.
"""
from __future__ import annotations

from ..engines import Engine, Request, get_engine
from ..errors import InvalidVariableError
from ..variable import Feedback, Variable, as_variable
from . import prompts as P
from .llm import LLMCallFn
from .module import Module
from .scored import evaluation_for, is_evaluation


class MultiFieldLossFn(LLMCallFn):
    name = "multi_field_loss"
    evaluates = True

    async def backward_target(self, ctx, node, feedback, target):
        fields = node.saved["fields"]
        name = next((k for k, v in fields.items() if v is target), None)
        if name is not None and is_evaluation(feedback):
            text = P.MULTI_FIELD_ROUTE.format(names=", ".join(fields), field=name, role=target.role,
                                              evaluation=evaluation_for(node, feedback))
            return Feedback(text, target, conversation=node.output.meta.get("conversation", ()), source=node.name)
        return await super().backward_target(ctx, node, feedback, target)


class MultiFieldLoss(Module):
    needs_target = False

    lazy = True   # a call from synchronous code returns at once (textopt.lazy)

    def __init__(self, instruction: "Variable | str", engine: "Engine | str", fields: dict[str, str], *,
                 max_tokens: int = 384, name: str = "multi_field_loss"):
        super().__init__()
        self.instruction = as_variable(instruction, role="evaluation instruction")
        if not self.instruction.is_text:
            raise InvalidVariableError("MultiFieldLoss instruction must be text")
        if not fields or not all(isinstance(k, str) and k.isidentifier() for k in fields):
            raise InvalidVariableError("MultiFieldLoss fields must be a non-empty {name: role} dict with "
                                       "identifier names")
        self.fields = dict(fields)
        self.engine = get_engine(engine)
        self.max_tokens = max_tokens
        self.fn = MultiFieldLossFn()
        self.node_name = name

    def check_args(self, *args, **kwargs) -> dict:
        """The fields by name (positional values in the declared order); bad names raise."""
        if args:  # positional: in the declared field order
            names = list(self.fields)
            if len(args) > len(names):
                raise InvalidVariableError(f"MultiFieldLoss takes fields {names}, got {len(args)} positional values")
            kwargs = {**dict(zip(names, args)), **kwargs}
        missing = [k for k in self.fields if k not in kwargs]
        unknown = [k for k in kwargs if k not in self.fields]
        if missing or unknown:
            raise InvalidVariableError(f"MultiFieldLoss needs fields {list(self.fields)}; missing {missing}, "
                                       f"unexpected {unknown}")
        return kwargs

    async def aforward(self, *args, **kwargs) -> Variable:
        kwargs = self.check_args(*args, **kwargs)
        fields = {k: as_variable(kwargs[k], role=self.fields[k]) for k in self.fields}
        body = "\n".join(P.MULTI_FIELD_ITEM.format(name=k.upper(), role=v.role, value=v.value)
                         for k, v in fields.items())
        user = P.MULTI_FIELD_USER.format(fields=body)
        req = Request.chat(user, system=self.instruction.value, max_tokens=self.max_tokens, role="loss",
                           node=self.node_name)
        resp = await self.engine.generate(req)
        conv = [{"role": "system", "content": self.instruction.value}, {"role": "user", "content": user},
                {"role": "assistant", "content": resp.text}]
        return self.fn.attach([self.instruction, *fields.values()], resp.text,
                              f"evaluation of {', '.join(self.fields)}",
                              saved={"system": self.instruction.value, "input": user, "fields": fields},
                              name=self.node_name, meta={"conversation": conv})
