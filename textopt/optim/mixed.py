"""``MixedOptimizer``: a torch optimizer for tensor parameters and a text optimizer for text parameters, stepped
together, with one ``state_dict``.

    opt = MixedOptimizer(model.parameters(), text="tgd", tensor="adam",
                         text_options={"engine": "openai:gpt-4o"}, tensor_options={"lr": 1e-2})
    loss.backward(); opt.step(); opt.zero_grad()

``text``: a registry name (``OPTIMIZERS``), an Optimizer subclass, a factory ``groups -> Optimizer``, or an
Optimizer instance over exactly the text parameters. ``tensor``: "adam" | "adamw" | "sgd" | "rmsprop", a
``torch.optim.Optimizer`` subclass, a factory, or an instance over exactly the parameters' tensors. Param-group
dicts may mix kinds: each group is split by kind and its options go to that kind's optimizer.

``step()`` runs the text step first (it may fail, and then nothing changed), then the torch step;
``step(text=False)`` runs only the torch step (many cheap numeric steps per expensive text step).

Text optimizers are resolved through the registry (``OPTIMIZERS``). ``MixedOptimizer`` itself is deliberately
not registered: the registry's property suite (tests/optim/test_registry_props.py) drives search-style optimizers
with metric budgets, which a wrapper does not have. Its ``state_dict`` survives a JSON checkpoint
(``textopt.train.checkpoint.to_jsonable``): string keys of the torch state are turned back into ints on load.
"""
from __future__ import annotations

from typing import Any, Iterable

import torch

from ..errors import InvalidVariableError
from ..runtime import run_sync
from ..variable import Variable
from . import beam, demos, opro, pareto, tgd  # noqa: F401  (each registers its optimizers in OPTIMIZERS)
from .optimizer import OPTIMIZERS, Optimizer, check_params

TORCH_OPTIMIZERS: dict[str, type] = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
                                     "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}


def _split(params: Iterable) -> tuple[list[dict], list[dict]]:
    params = list(params)
    groups = params if params and isinstance(params[0], dict) else [{"params": params}]
    text, tensor = [], []
    for g in groups:
        ps = g["params"]
        ps = [ps] if isinstance(ps, Variable) else list(ps)
        for p in ps:
            if not isinstance(p, Variable):
                raise InvalidVariableError(f"MixedOptimizer parameters must be textopt Variables, got "
                                           f"{type(p).__name__}; wrap tensors as Variable(t, requires_grad=True)")
        opts = {k: v for k, v in g.items() if k != "params"}
        texts = [p for p in ps if p.is_text]
        tensors = [p for p in ps if not p.is_text]
        if texts:
            text.append({**opts, "params": texts})
        if tensors:
            tensor.append({**opts, "params": tensors})
    return text, tensor


class MixedOptimizer(Optimizer):
    def __init__(self, params: Iterable, text: Any = "tgd", tensor: Any = "adam", *,
                 text_options: dict | None = None, tensor_options: dict | None = None, engine: Any = None):
        check_params("MixedOptimizer", params)
        text_groups, tensor_groups = _split(params)
        groups = [{**g, "kind": "text"} for g in text_groups] + [{**g, "kind": "tensor"} for g in tensor_groups]
        super().__init__(groups, {})
        text_options = dict(text_options or {})
        if engine is not None:
            text_options.setdefault("engine", engine)
        self.text: Optimizer | None = self._make_text(text, text_groups, text_options) if text_groups else None
        self.tensor: torch.optim.Optimizer | None = self._make_tensor(
            tensor, tensor_groups, dict(tensor_options or {})) if tensor_groups else None

    # -- construction --------------------------------------------------------------------------------------
    @staticmethod
    def _make_text(spec: Any, groups: list[dict], options: dict) -> Optimizer:
        wanted = [p for g in groups for p in g["params"]]
        if isinstance(spec, Optimizer):
            if [id(p) for p in spec.params()] != [id(p) for p in wanted]:
                raise InvalidVariableError("the text optimizer instance must hold exactly the text parameters "
                                           "given to MixedOptimizer, in the same order")
            return spec
        if isinstance(spec, str):
            if spec not in OPTIMIZERS:
                raise InvalidVariableError(f"unknown text optimizer {spec!r}; registered: {sorted(OPTIMIZERS)}")
            spec = OPTIMIZERS[spec]
        if not callable(spec):
            raise InvalidVariableError(f"text= must be a registry name, an Optimizer class, a factory or an "
                                       f"instance, got {spec!r}")
        made = spec([{k: v for k, v in g.items() if k != "kind"} for g in groups], **options)
        if not isinstance(made, Optimizer):
            raise InvalidVariableError(f"the text optimizer factory returned {type(made).__name__}, not an Optimizer")
        return made

    @staticmethod
    def _make_tensor(spec: Any, groups: list[dict], options: dict) -> torch.optim.Optimizer:
        torch_groups = [{**{k: v for k, v in g.items() if k not in ("params", "kind")},
                         "params": [p.value for p in g["params"]]} for g in groups]
        if isinstance(spec, torch.optim.Optimizer):
            have = [id(t) for g in spec.param_groups for t in g["params"]]
            if have != [id(t) for g in torch_groups for t in g["params"]]:
                raise InvalidVariableError("the torch optimizer instance must hold exactly the tensors of the tensor "
                                           "parameters given to MixedOptimizer, in the same order")
            return spec
        if isinstance(spec, str):
            if spec.lower() not in TORCH_OPTIMIZERS:
                raise InvalidVariableError(f"unknown tensor optimizer {spec!r}; use one of {sorted(TORCH_OPTIMIZERS)}"
                                           ", a torch.optim class or a factory")
            spec = TORCH_OPTIMIZERS[spec.lower()]
        made = spec(torch_groups, **options)
        if not isinstance(made, torch.optim.Optimizer):
            raise InvalidVariableError(f"the tensor optimizer factory returned {type(made).__name__}, "
                                       "not a torch.optim.Optimizer")
        return made

    # -- step ----------------------------------------------------------------------------------------------
    async def astep(self, *, text: bool = True, tensor: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = {"text": None, "tensor": None}
        if text and self.text is not None:
            result["text"] = await self.text.astep()
        if tensor and self.tensor is not None:
            result["tensor"] = self.tensor.step()
        return result

    def step(self, *, text: bool = True, tensor: bool = True) -> dict[str, Any]:
        return run_sync(self.astep(text=text, tensor=tensor))

    def zero_grad(self, set_to_none: bool = True) -> None:
        if self.text is not None:
            self.text.zero_grad()
        if self.tensor is not None:
            self.tensor.zero_grad(set_to_none=set_to_none)

    # -- state ---------------------------------------------------------------------------------------------
    def _tensor_params(self) -> list[Variable]:
        return [p for g in self.param_groups if g["kind"] == "tensor" for p in g["params"]]

    def state_dict(self) -> dict:
        return {"kind": "mixed",
                "layout": [[g["kind"], len(g["params"])] for g in self.param_groups],
                "text": self.text.state_dict() if self.text is not None else None,
                "tensor": self.tensor.state_dict() if self.tensor is not None else None,
                "tensor_values": [p.value.detach().clone() for p in self._tensor_params()]}

    def _load(self, state_dict: dict) -> None:   # (Optimizer.load_state_dict: checked, restored on failure)
        layout = [[g["kind"], len(g["params"])] for g in self.param_groups]
        if state_dict.get("kind") != "mixed" or [list(x) for x in state_dict.get("layout", [])] != layout:
            raise InvalidVariableError(f"this state_dict does not belong to a MixedOptimizer with the layout {layout} "
                                       f"(got {state_dict.get('layout')}); build the optimizer over the same params")
        if self.text is not None:
            self.text.load_state_dict(state_dict["text"])
        if self.tensor is not None:
            tensor_sd = dict(state_dict["tensor"])
            tensor_sd["state"] = {int(k): v for k, v in tensor_sd["state"].items()}  # JSON made the keys str
            self.tensor.load_state_dict(tensor_sd)
        with torch.no_grad():
            for p, v in zip(self._tensor_params(), state_dict["tensor_values"]):
                p.value.copy_(torch.as_tensor(v))

    def __repr__(self) -> str:
        return f"MixedOptimizer(text={self.text!r}, tensor={type(self.tensor).__name__ if self.tensor else None})"
