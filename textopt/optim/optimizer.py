"""``Optimizer``: torch's contract (param_groups, per-parameter state, zero_grad, step, state_dict, hooks).

Subclasses implement ``async astep()``; ``step()`` runs it synchronously. As in torch, the step hooks come with
every subclass: an ``astep`` a subclass defines is wrapped (``__init_subclass__``) so the pre/post hooks run
around it whether it is reached through ``step()`` or ``await opt.astep()`` — once per step, even when an
override calls ``super().astep()``. ``state`` is keyed by the parameter
Variable; ``state_dict()`` keys it by the parameter's position in ``param_groups`` and must hold everything
needed to continue exactly (values, history, candidates, RNG) — plain JSON-able data.

``uses_gradients`` says what a step needs, as ``torch.optim.LBFGS`` takes a closure that evaluates the model:
True (TGD), the step reads the parameters' textual gradients, so a training loop (:class:`textopt.train.Trainer`)
runs forward and backward first; False (the search optimizers), the step evaluates and selects candidates by
itself, so a training loop just awaits it.
"""
from __future__ import annotations

import copy
import functools
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Callable

from ..checks import loading
from ..errors import InvalidVariableError
from ..runtime import run_sync
from ..variable import Variable, is_tensor

OPTIMIZERS: dict[str, type] = {}


def register_optimizer(name: str):
    """Class decorator: add an optimizer to the registry (the CLI and the property suite use it)."""
    def deco(cls):
        OPTIMIZERS[name] = cls
        cls.registry_name = name
        return cls
    return deco


def check_params(owner: str, params: Any) -> None:
    """What an optimizer takes as ``params``: an iterable of Variables or of param groups (not one Variable)."""
    if isinstance(params, (Variable, str, dict)) or not isinstance(params, Iterable):
        raise InvalidVariableError(f"{owner} takes an iterable of parameters (Variables) or of param groups "
                                   f"(dicts with a 'params' list), got {type(params).__name__}: write "
                                   f"{owner}([p]) for one parameter")


def _with_hooks(astep: Callable) -> Callable:
    """``astep`` with the optimizer's step hooks around its outermost call."""
    @functools.wraps(astep)
    async def hooked(self, *args, **kwargs):
        if self._stepping:   # an override's super().astep(): the hooks already run around the outer call
            return await astep(self, *args, **kwargs)
        self._stepping = True
        try:
            for h in self._pre_hooks:
                h(self)
            result = await astep(self, *args, **kwargs)
            for h in self._post_hooks:
                h(self, result)
            return result
        finally:
            self._stepping = False
    hooked.with_hooks = True
    return hooked


class Optimizer:
    _stepping = False
    uses_gradients = True   # see the module docstring

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("astep")
        if own is not None and not getattr(own, "with_hooks", False):
            cls.astep = _with_hooks(own)

    def __init__(self, params: Iterable[Variable] | Iterable[dict], defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict[Variable, dict] = defaultdict(dict)
        self._pre_hooks: list[Callable] = []
        self._post_hooks: list[Callable] = []
        name = type(self).__name__
        check_params(name, params)
        params = list(params)
        if not params:
            raise InvalidVariableError(f"{name} got an empty parameter list")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for group in params:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        if not isinstance(group, dict) or "params" not in group:
            raise InvalidVariableError(f"a param group is a dict with a 'params' list (and options), got "
                                       f"{type(group).__name__}; do not mix groups and bare Variables")
        group = dict(group)
        ps = group["params"]
        if not isinstance(ps, (Variable, Iterable)) or isinstance(ps, (str, dict)):
            raise InvalidVariableError(f"a param group's 'params' must be a Variable or a list of them, got "
                                       f"{type(ps).__name__}")
        ps = [ps] if isinstance(ps, Variable) else list(ps)
        for p in ps:
            if not isinstance(p, Variable):
                raise InvalidVariableError(f"optimizer parameters must be textopt Variables, got {type(p).__name__}")
            if not p.requires_grad:
                raise InvalidVariableError(f"{p!r} does not require grad; set requires_grad=True to optimize it")
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in existing for p in ps):
            raise InvalidVariableError("a parameter appears in more than one param group")
        group["params"] = ps
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self.param_groups.append(group)

    def params(self) -> list[Variable]:
        return [p for g in self.param_groups for p in g["params"]]

    def zero_grad(self) -> None:
        for p in self.params():
            p.zero_grad()

    # -- step ----------------------------------------------------------------------------------------------
    async def astep(self) -> Any:
        """One optimization step (subclasses implement it; the step hooks run around it)."""
        raise NotImplementedError

    def step(self) -> Any:
        return run_sync(self.astep())

    def register_step_pre_hook(self, hook: Callable) -> Callable:
        self._pre_hooks.append(hook)
        return lambda: self._pre_hooks.remove(hook)

    def register_step_post_hook(self, hook: Callable) -> Callable:
        self._post_hooks.append(hook)
        return lambda: self._post_hooks.remove(hook)

    # -- state ---------------------------------------------------------------------------------------------
    def get_extra_state(self) -> dict:
        """Optimizer-wide state beyond the per-parameter ``state`` (RNG, candidate store ...), as JSON-able data:
        subclasses override it and :meth:`set_extra_state` (torch.nn.Module's names), and ``state_dict`` /
        ``load_state_dict`` carry it under "extra"."""
        return {}

    def set_extra_state(self, extra: dict) -> None:
        """Restore what :meth:`get_extra_state` returned (inside ``load_state_dict``: a malformed value is one
        CheckpointError and the optimizer is restored)."""

    def state_dict(self) -> dict:
        params = self.params()
        index = {id(p): i for i, p in enumerate(params)}
        groups = []
        for g in self.param_groups:
            opts = {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
            groups.append({**opts, "params": [index[id(p)] for p in g["params"]]})
        values = [p.value.detach().clone() if is_tensor(p.value) else p.value for p in params]
        return {"state": {index[id(p)]: copy.deepcopy(s) for p, s in self.state.items() if id(p) in index},
                "param_groups": groups, "values": values, "extra": copy.deepcopy(self.get_extra_state())}

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue from ``state_dict()``'s result. A malformed one raises one ``CheckpointError`` and leaves the
        optimizer (and its parameters' values) as it was."""
        before = self.state_dict()
        with loading(f"the state_dict given to {type(self).__name__}.load_state_dict", state_dict, lambda: self._load(before)):
            self._load(state_dict)

    def _load(self, state_dict: dict) -> None:
        params = self.params()
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(g["params"]) != len(own["params"]) for g, own in zip(groups, self.param_groups)):
            raise InvalidVariableError("optimizer state_dict does not match this optimizer's param groups")
        for g, own in zip(groups, self.param_groups):
            own.update({k: copy.deepcopy(v) for k, v in g.items() if k != "params"})
        for p, value in zip(params, state_dict.get("values", [])):
            if is_tensor(p.value):
                import torch   # loaded: the parameter is a tensor
                with torch.no_grad():
                    p.value.copy_(torch.as_tensor(value))
            else:
                p.value = value
        self.state = defaultdict(dict)
        for i, s in state_dict["state"].items():
            self.state[params[int(i)]] = copy.deepcopy(s)
        self.set_extra_state(copy.deepcopy(state_dict.get("extra", {})))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.params())} parameters)"
