"""``FormattedLLMCall``: an LLM call whose input is a template filled with named fields, each a Variable.

    call = FormattedLLMCall(engine, "Question: {question}\\nNotes: {notes}", system_prompt=p)
    answer = call(question=q, notes=notes_var)

Backward gives every field that requires grad its own feedback (one backward request per field, concurrently),
naming the field and showing the template, so a learnable field (e.g. "notes") is criticised in its place in
the input rather than as the whole input. A learnable system prompt gets the usual LLM-call feedback.
"""
from __future__ import annotations

import string

from ..engines import Engine, Request, get_engine
from ..errors import InvalidVariableError
from ..prompts import BACKWARD_SYSTEM
from ..variable import Variable, as_variable
from . import prompts as P
from .llm import LLMCallFn, backward_max_tokens, check_call_settings
from .module import Module


class FormattedLLMCallFn(LLMCallFn):
    name = "formatted_llm_call"

    def _ask(self, ctx, node, feedback, target: Variable) -> tuple[str, Request]:
        saved = node.saved
        field = next((k for k, v in saved["fields"].items() if v is target), None)
        if field is None:  # the system prompt
            return super()._ask(ctx, node, feedback, target)
        if all(f.source == "seed" for f in feedback):
            block = P.EVAL_BLOCK
        else:
            block = P.FEEDBACK_BLOCK.format(output_role=node.output.role,
                                            feedback="\n\n".join(f.value for f in feedback))
        user = P.BACKWARD_FORMATTED.format(system=saved.get("system", ""), template=saved["template"],
                                           field=field, role=target.role, value=target.value,
                                           input=saved["input"], output=node.output.value, feedback_block=block)
        return user, Request.chat(user, system=BACKWARD_SYSTEM, max_tokens=backward_max_tokens(ctx, node))


def template_fields(template: str) -> list[str]:
    names = []
    for _, fname, spec, conv in string.Formatter().parse(template):
        if fname is None:
            continue
        if not fname.isidentifier():
            raise InvalidVariableError(f"template field {{{fname}}} must be a plain name (no indexing, no "
                                       f"positional fields); escape literal braces as {{{{ and }}}}")
        if fname not in names:
            names.append(fname)
    return names


class FormattedLLMCall(Module):
    """``FormattedLLMCall(engine, template, system_prompt=None, field_roles={...})(**fields)``.

    ``field_roles`` gives the role of a field passed as a plain string (default "<field> field of the input").
    """

    lazy = True   # a call from synchronous code returns at once (textopt.lazy)

    def __init__(self, engine: "Engine | str", template: str, system_prompt: "Variable | str | None" = None, *,
                 field_roles: dict[str, str] | None = None, output_role: str = "response of the language model",
                 temperature: float = 0.0, max_tokens: int = 512, name: str | None = None,
                 backward_max_tokens: int | None = None, **request_kw):
        super().__init__()
        check_call_settings(type(self).__name__, backward_max_tokens, temperature=temperature, max_tokens=max_tokens,
                            **request_kw)
        self.backward_max_tokens = backward_max_tokens
        if not isinstance(template, str):
            raise InvalidVariableError(f"FormattedLLMCall template must be a str, got {type(template).__name__}")
        self.template = template
        self.field_names = template_fields(template)
        if not self.field_names:
            raise InvalidVariableError("FormattedLLMCall template has no {fields}; use LLMCall for a plain input")
        self.field_roles = dict(field_roles or {})
        self.engine = get_engine(engine)
        if system_prompt is not None:
            system_prompt = as_variable(system_prompt, role="system prompt")
        self.system_prompt = system_prompt
        self.output_role, self.temperature, self.max_tokens = output_role, temperature, max_tokens
        self.request_kw = request_kw
        self.fn = FormattedLLMCallFn()
        self.node_name = name or "formatted_llm_call"

    def check_args(self, **kwargs) -> None:
        missing = [f for f in self.field_names if f not in kwargs]
        unknown = [k for k in kwargs if k not in self.field_names]
        if missing or unknown:
            raise InvalidVariableError(f"FormattedLLMCall template needs fields {self.field_names}; missing "
                                       f"{missing}, unexpected {unknown}")

    def _fields(self, kwargs: dict) -> dict[str, Variable]:
        self.check_args(**kwargs)
        out = {}
        for k in self.field_names:
            v = as_variable(kwargs[k], role=self.field_roles.get(k, f"{k} field of the input"))
            if not v.is_text:
                raise InvalidVariableError(f"field {k!r} must be text, got {v!r}")
            out[k] = v
        return out

    async def aforward(self, **kwargs) -> Variable:
        fields = self._fields(kwargs)
        text = self.template.format(**{k: v.value for k, v in fields.items()})
        system = self.system_prompt.value if self.system_prompt is not None else None
        req = Request.chat(text, system=system, temperature=self.temperature, max_tokens=self.max_tokens,
                           role="forward" if self.training else "eval", node=self.node_name, **self.request_kw)
        resp = await self.engine.generate(req)
        inputs = ([self.system_prompt] if self.system_prompt is not None else []) + list(fields.values())
        saved = {"system": system or "", "input": text, "template": self.template, "fields": fields,
                 "backward_max_tokens": self.backward_max_tokens}
        return self.fn.attach(inputs, resp.text, self.output_role, saved=saved, name=self.node_name)
