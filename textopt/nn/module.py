"""``Module``: torch's contract for text pipelines (parameters, state_dict, train/eval, composition).

Subclasses implement ``forward`` (sync) or ``aforward`` (async; preferred for LLM calls). ``module(x)`` runs the
forward synchronously — for a module whose ``aforward`` returns one new Variable and that says so with
``lazy = True``, it launches the call and returns a pending Variable at once (see :mod:`textopt.lazy`);
``await module.acall(x)`` is the async twin (a sync-only ``forward`` runs in a worker thread so a batch can
still be gathered concurrently).
"""
from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any, Awaitable, Iterator

from threading import get_ident

from .. import lazy as _lazy
from .. import runtime as _runtime
from ..checks import loading
from ..errors import InvalidVariableError
from ..runtime import run_sync
from ..variable import Variable, is_tensor


class Module:
    #: ``aforward`` returns one new Variable: a call from synchronous code launches it and returns that Variable
    #: pending (textopt.lazy). False (the default) for modules that return anything else.
    lazy = False
    #: Validates a lazy call's arguments when it is launched, so bad input raises at the call as it does eagerly
    #: (the values of pending arguments are not known yet). None: nothing to check.
    check_args = None

    def __init__(self):
        object.__setattr__(self, "_params", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        try:   # not ``self.__dict__``: an instance whose __dict__ was ever read gets none of the interpreter's
            params, modules = self._params, self._modules   # fast paths for its attributes (CPython 3.11)
        except AttributeError:
            raise InvalidVariableError(f"{type(self).__name__}.__init__ must call super().__init__() first") \
                from None
        params.pop(name, None)
        modules.pop(name, None)
        if isinstance(value, Variable):
            params[name] = value
        elif isinstance(value, Module):
            modules[name] = value
        object.__setattr__(self, name, value)

    # -- forward -------------------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        if type(self).aforward is Module.aforward:
            raise NotImplementedError(f"{type(self).__name__} implements neither forward nor aforward")
        return run_sync(self.aforward(*args, **kwargs))

    async def aforward(self, *args, **kwargs):
        out = await asyncio.to_thread(self.forward, *args, **kwargs)
        await _lazy.aresolve(out)   # a sync forward may return what its submodules launched
        return out

    def __call__(self, *args, **kwargs):
        # ``_runtime._thread_id != get_ident()`` is ``not on_private_loop()`` inline (this runs for every call)
        if self.lazy and _lazy._ENABLED.get() and _runtime._thread_id != get_ident():
            check = self.check_args
            if check is not None:
                check(*args, **kwargs)
            return _lazy.launch(self, args, kwargs)
        if type(self).forward is Module.forward:
            return run_sync(self.aforward(*args, **kwargs))
        return self.forward(*args, **kwargs)

    def acall(self, *args, **kwargs) -> Awaitable:
        """The async twin of ``module(x)``: ``await module.acall(x)`` (``aforward``'s coroutine as is, with no
        wrapping coroutine of its own — unless calls were launched lazily: then pending arguments resolve first)."""
        if _lazy._dirty:
            return self._acall_resolved(args, kwargs)
        return self.aforward(*args, **kwargs)

    async def _acall_resolved(self, args, kwargs):
        await _lazy.aresolve(*args, *kwargs.values())
        return await self.aforward(*args, **kwargs)

    # -- parameters ----------------------------------------------------------------------------------------
    def named_variables(self, prefix: str = "") -> Iterator[tuple[str, Variable]]:
        seen = set()
        for name, v in self._params.items():
            if id(v) not in seen:
                seen.add(id(v))
                yield prefix + name, v
        for mname, m in self._modules.items():
            for name, v in m.named_variables(prefix + mname + "."):
                if id(v) not in seen:
                    seen.add(id(v))
                    yield name, v

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Variable]]:
        return ((n, v) for n, v in self.named_variables(prefix) if v.requires_grad)

    def parameters(self) -> Iterator[Variable]:
        return (v for _, v in self.named_parameters())

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix.rstrip("."), self
        for name, m in self._modules.items():
            yield from m.named_modules(prefix + name + ".")

    def children(self) -> Iterator["Module"]:
        return iter(self._modules.values())

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode: bool = True) -> "Module":
        _lazy.synchronize()   # launched calls run in the mode they were launched in
        for _, m in self.named_modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    # -- state ---------------------------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, Any]":
        out = OrderedDict()
        for name, v in self.named_variables():
            out[name] = v.value.detach().clone() if is_tensor(v.value) else v.value
        return out

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Set the parameters' values from ``state_dict()``'s result (all of them, or with ``strict=False`` those
        it names). A bad value raises one textopt error and leaves every parameter as it was."""
        before = self.state_dict()
        with loading(f"the state_dict given to {type(self).__name__}.load_state_dict", state, lambda: self._load(before, False)):
            self._load(state, strict)

    def _load(self, state: dict, strict: bool) -> None:
        own = dict(self.named_variables())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise InvalidVariableError(f"state_dict does not match {type(self).__name__}: missing {missing}, "
                                       f"unexpected {unexpected}; pass strict=False to load what matches")
        for k, value in state.items():
            if k in own:
                v = own[k]
                if is_tensor(v.value):
                    import torch   # loaded: the parameter is a tensor
                    with torch.no_grad():
                        v.value.copy_(torch.as_tensor(value))
                else:
                    v.value = value

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={v.short(30)!r}" for n, v in self._params.items())
        subs = "".join(f"\n  ({n}): " + repr(m).replace("\n", "\n  ") for n, m in self._modules.items())
        return f"{type(self).__name__}({inner}){subs}"
