"""``DemoCall``: an ``LLMCall`` with a second text parameter, ``demos`` (few-shot demonstrations), appended to its
system prompt on every call — what ``DemoBootstrap`` (``textopt optimize --optimizer demos``) learns.

    solver = tx.nn.DemoCall(engine, system_prompt=prompt)          # or DemoCall.from_call(an_llm_call)
    opt = DemoBootstrap({"demos": solver.demos}, Evaluator.from_module(solver, metric), ...)
"""
from __future__ import annotations

from ..engines import Request
from ..variable import Variable
from .llm import LLMCall
from .prompts import DEMOS_HEADER

DEMOS_ROLE = "few-shot demonstrations appended to the system prompt"


def compose_system(prompt: str, demos: str) -> str:
    """The system prompt the model sees: ``prompt``, then the demonstrations under :data:`DEMOS_HEADER`."""
    demos = demos.strip()
    return f"{prompt}\n\n{DEMOS_HEADER}\n\n{demos}" if demos else prompt


class DemoCall(LLMCall):
    """``LLMCall`` whose forward request's system prompt is :func:`compose_system` of ``system_prompt`` and the
    learnable ``demos`` Variable (empty at first: the call is then the plain ``LLMCall``)."""

    def __init__(self, *args, demos: str = "", **kw):
        super().__init__(*args, **kw)
        self.demos = Variable(demos, role=DEMOS_ROLE, requires_grad=True, name="demos")

    @classmethod
    def from_call(cls, call: LLMCall, demos: str = "") -> "DemoCall":
        """A ``DemoCall`` with ``call``'s engine, system prompt (the same Variable), settings and backward."""
        made = cls(call.engine, system_prompt=call.system_prompt, output_role=call.output_role,
                   temperature=call.temperature, max_tokens=call.max_tokens, name=call.node_name,
                   backward_max_tokens=call.backward_max_tokens, demos=demos, **call.request_kw)
        made.fn = call.fn
        return made

    def forward_request(self, x: Variable, role: str) -> Request:
        system = self.system_prompt.value if self.system_prompt is not None else None
        if self.demos.value.strip():
            system = compose_system(system or "", self.demos.value)
        return Request.chat(x.value, system=system,
                            temperature=self.temperature, max_tokens=self.max_tokens, role=role,
                            node=self.node_name, **self.request_kw)
