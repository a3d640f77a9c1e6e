"""``SearchOptimizer``: the shared base of BeamSearch, ParetoEvolution, OPRO and DemoBootstrap.

One ``step()`` is one search iteration. Every optimizer here:
- keeps a :class:`~textopt.optim.store.CandidateStore` (evaluation cache keyed by (candidate, example, split));
- selects on the held-out ``val`` split only (``trainset`` feeds proposals) and never returns a candidate that
  scores lower on the full val split than the starting values (promotion is gated on full-val score);
- respects budgets: ``max_metric_calls`` (uncached evaluator calls, checked BEFORE calling), and a
  :class:`~textopt.engines.usage.Budget` (calls/tokens/dollars, enforced by the engines that share it — a
  ``BudgetExceeded`` stops the search cleanly);
- stops on ``stoppers`` (``NoImprovement``, ``Timeout``, ``StopFile``, ``MaxSteps``), and by itself after
  ``max_idle_steps`` steps that produced no new candidate, evaluation or rejection; reports to
  ``callbacks`` (``callback(event, info)``: "init" (the seed scored, in the first step), "proposed",
  "rejected", "accepted", "new_best", "step", "stop"; ``info["step"]``: the steps finished);
- resumes exactly from ``state_dict()`` (RNG, store, frontier/beam/history, step, counters, budget figures);
- runs evaluations concurrently (:func:`textopt.parallel.amap` under one semaphore, or fanned out over Ray
  with ``executor="ray"``) and records results in example order.
After each step the parameters hold the best candidate found so far. ``Trainer(model, loss, opt, ...)`` runs it
as it runs TGD (``uses_gradients = False``: its step is ``await opt.astep()``), with the Trainer's log,
checkpoint (usage restored on resume) and result.json.
"""
from __future__ import annotations

import asyncio
import random
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..checks import expect, expect_int, loading
from ..data import rng_state_from_json, rng_state_to_json
from ..engines import Request, get_engine
from ..engines.structured import agenerate_tagged
from ..engines.usage import Budget
from ..errors import BudgetExceeded, CheckpointError, DataError, InvalidVariableError, ParseError
from ..parallel import amap
from ..variable import Variable
from .guards import CopyDetector, optimizer_data
from .newvalue import check_new_value, is_instruction
from .guards import log as guard_log
from .optimizer import Optimizer
from .prompts_search import (PROPOSAL_TAG, REFLECT_ASK_VALUE, REFLECT_INSTRUCT_PROMPT,
                             REFLECT_INSTRUCT_SYSTEM, REFLECT_PROMPT, RESERVED_TAGS, SEARCH_SYSTEM,
                             render_examples, render_objectives)
from .stoppers import MaxSteps, NoImprovement, StopFile, Timeout  # noqa: F401  (re-exported)
from .store import (DEFAULT_OBJECTIVE, CandidateJob, CandidateStore, Evaluation, as_evaluator, candidate_hash,
                    example_id, pareto_front)

class SearchExhausted(Exception):
    """Internal: the metric-call budget does not allow the next evaluation."""


def _strip_open(value: str, tag: str) -> str:
    """Small models often repeat the (prefilled) opening tag: drop leading copies of it."""
    value = value.strip()
    while value.startswith(f"<{tag}>"):
        value = value[len(tag) + 2:].strip()
    return value


def counts(opt: "SearchOptimizer", *, lo: int = 1, allow_none: bool = False, **values: Any) -> None:
    """A search's count options (``beam_width=2`` ...): ints >= ``lo``, else one InvalidVariableError."""
    for key, value in values.items():
        expect_int(value, f"{type(opt).__name__} {key}", lo=lo, error=InvalidVariableError, allow_none=allow_none)


def _named_params(params: Any, evaluate: Any) -> tuple[list[str], list[Variable]]:
    if isinstance(params, Mapping):
        pairs = list(params.items())
    elif isinstance(params, (Variable, str)) or not isinstance(params, Iterable):
        raise InvalidVariableError(f"a search optimizer takes its parameters as module.named_parameters(), a dict "
                                   f"{{name: Variable}} or a list of Variables, got {type(params).__name__}")
    else:
        items = list(params)
        if items and isinstance(items[0], tuple):
            if not all(isinstance(t, tuple) and len(t) == 2 for t in items):
                raise InvalidVariableError("named parameters are (name, Variable) pairs, as "
                                           "module.named_parameters() gives them")
            pairs = [(str(n), v) for n, v in items]
        else:
            by_id = {id(v): n for n, v in getattr(evaluate, "variables", {}).items()}
            pairs = [(by_id.get(id(v)) or v.name or f"param{i}", v) for i, v in enumerate(items)]
    names = [n for n, _ in pairs]
    known = getattr(evaluate, "variables", {})
    for n, v in pairs:
        if known and known.get(n) is not v:
            raise InvalidVariableError(
                f"parameter {n!r} is not the module's parameter of that name, so the evaluator would never see "
                f"its candidates; pass module.named_parameters() (or a dict using those names: {sorted(known)})")
    if len(set(names)) != len(names):
        raise InvalidVariableError(f"search parameters need distinct names, got {names}; pass a dict "
                                   f"{{name: Variable}} or module.named_parameters()")
    for n, v in pairs:
        if not isinstance(v, Variable) or not v.is_text:
            raise InvalidVariableError(f"search optimizers optimize text Variables; {n!r} is {v!r}")
    return names, [v for _, v in pairs]


class SearchOptimizer(Optimizer):
    registry_name = "search"
    uses_gradients = False   # a step evaluates and selects by itself: the Trainer just awaits astep()

    def __init__(self, params, evaluate, *, engine=None, data=None, trainset: Sequence | None = None,
                 valset: Sequence | None = None, objectives: Mapping[str, float] | None = None,
                 max_metric_calls: int | None = None, budget: Budget | None = None,
                 stoppers: Iterable[Callable] = (), callbacks: Iterable[Callable] = (), max_concurrency: int = 8,
                 seed: int = 0, copy_guard: bool = True, copy_exempt: Iterable[str] = (),
                 copy_detector: CopyDetector | None = None, temperature: float = 0.7, max_tokens: int = 512,
                 max_idle_steps: int = 5, executor=None, **defaults):
        if defaults:
            raise InvalidVariableError(f"{type(self).__name__} got unknown options {sorted(defaults)}; see "
                                       f"help({type(self).__name__}) for the options it takes")
        for key, value, lo in (("max_metric_calls", max_metric_calls, 0), ("max_concurrency", max_concurrency, 1),
                               ("max_tokens", max_tokens, 1), ("max_idle_steps", max_idle_steps, 1),
                               ("seed", seed, None)):
            expect_int(value, f"{type(self).__name__} {key}", lo=lo, error=InvalidVariableError,
                       allow_none=key == "max_metric_calls")
        if type(temperature) not in (int, float) or not 0 <= temperature < float("inf"):
            raise InvalidVariableError(f"{type(self).__name__} temperature must be a finite number >= 0, "
                                       f"got {temperature!r}")
        expect(budget, Budget, f"{type(self).__name__} budget", error=InvalidVariableError, allow_none=True)
        self.evaluator = as_evaluator(evaluate)
        self.names, variables = _named_params(params, self.evaluator)
        super().__init__(variables, {})
        self.engine = get_engine(engine) if engine is not None else None
        d = optimizer_data(data, trainset, valset)
        self.train, self.val = d.train, d.val
        self.weights = dict(objectives or {DEFAULT_OBJECTIVE: 1.0})
        if not self.weights or any(not isinstance(w, (int, float)) for w in self.weights.values()):
            raise InvalidVariableError(f"objectives must map objective names to numeric weights, got {objectives!r}")
        self.max_metric_calls = max_metric_calls
        self.budget = budget
        self.stoppers, self.callbacks = list(stoppers), list(callbacks)
        self.max_concurrency = max_concurrency
        self.executor = executor   # where evaluations run: None (this process), "ray", an Executor
        self.temperature, self.max_tokens = temperature, max_tokens
        self.copy_exempt = set(copy_exempt)
        self.copy_detector = copy_detector or (CopyDetector(self.train) if copy_guard else None)
        self.seed = seed
        self.rng = random.Random(seed)
        self.store = CandidateStore()
        self.step_count = 0
        self.metric_calls = 0
        self.best: str | None = None
        self.best_score = float("-inf")
        self.best_history: list[float] = []
        self.stopped: str | None = None
        self.idle_steps, self.max_idle_steps = 0, max_idle_steps
        self.seed_hash = self.store.add(self.current_values(), origin="seed")
        self._ids = {s: [example_id(ex, i) for i, ex in enumerate(data_)] for s, data_ in
                     (("train", self.train), ("val", self.val))}
        for split, ids in self._ids.items():
            if len(set(ids)) != len(ids):
                raise DataError(f"the {split} split has duplicate example ids; ids key the evaluation cache, so "
                                f"give each example a unique 'id' (or none, to use positions)")

    # -- candidates ----------------------------------------------------------------------------------------
    def current_values(self) -> dict[str, str]:
        return {n: v.value for n, v in zip(self.names, self.params())}

    def apply(self, h: str) -> None:
        for n, v in zip(self.names, self.params()):
            v.value = self.store.values(h)[n]

    def admit(self, values: Mapping[str, str], *, parents: Sequence[str] = (), origin: str = "") -> str | None:
        """Register a proposed candidate; None when a guard rejects it (reason logged and stored)."""
        reason = None
        for n, text in values.items():
            if any(f"<{t}>" in text or f"</{t}>" in text for t in RESERVED_TAGS):
                reason = f"parameter {n!r} contains the optimizer's own tags"
        if reason is None and self.copy_detector is not None:
            reason = self.copy_detector.check_candidate(values, self.copy_exempt)
        if reason is not None:
            self.store.rejected.append({"values": dict(values), "reason": reason, "step": self.step_count})
            guard_log.info("%s rejected a candidate: %s", type(self).__name__, reason)
            self._emit("rejected", values=dict(values), reason=reason)
            return None
        h = self.store.add(values, parents=parents, origin=origin, step=self.step_count)
        self._emit("proposed", hash=h, origin=origin)
        return h

    # -- evaluation ----------------------------------------------------------------------------------------
    def split_data(self, split: str) -> Sequence:
        return self.train if split == "train" else self.val

    async def evaluate(self, h: str, split: str, indices: Sequence[int] | None = None) -> list[Evaluation]:
        """Evaluations of candidate ``h`` on ``split`` (all examples, or ``indices``), cached, budgeted."""
        data = self.split_data(split)
        indices = list(range(len(data))) if indices is None else list(indices)
        ids = self._ids[split]
        todo = [i for i in indices if self.store.get(h, split, ids[i]) is None]
        allowed = len(todo) if self.max_metric_calls is None else max(0, self.max_metric_calls - self.metric_calls)
        run, short = todo[:allowed], len(todo) > allowed
        self.metric_calls += len(run)
        job = CandidateJob(self.evaluator, self.store.values(h), list(self.weights))
        results = await amap(job, [data[i] for i in run], concurrency=self.max_concurrency,
                             executor=self.executor, semaphore=self._semaphore(), return_exceptions=True)
        error = None
        for i, res in zip(run, results):
            if isinstance(res, BaseException):
                error = error or res
            else:
                self.store.put(h, split, ids[i], res)
        if error is not None:
            raise error
        if short:
            raise SearchExhausted(f"metric-call budget of {self.max_metric_calls} reached")
        return [self.store.get(h, split, ids[i]) for i in indices]

    def _semaphore(self) -> asyncio.Semaphore:
        """ONE limit for every evaluation of this optimizer (per event loop: sync and async callers differ)."""
        loop = asyncio.get_running_loop()
        if getattr(self, "_sem_loop", None) is not loop:
            self._sem, self._sem_loop = asyncio.Semaphore(self.max_concurrency), loop
        return self._sem

    async def evaluate_many(self, hashes: Sequence[str], split: str, indices: Sequence[int] | None = None,
                            ) -> list[list[Evaluation]]:
        """Several candidates concurrently; every finished result is stored before the first error is raised."""
        results = await asyncio.gather(*(self.evaluate(h, split, indices) for h in hashes), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return results

    def mean(self, evals: Sequence[Evaluation]) -> float:
        return sum(e.total(self.weights) for e in evals) / len(evals) if evals else float("-inf")

    def known_score(self, h: str, split: str) -> float:
        """Mean over whatever is cached for ``h`` on ``split`` (no new calls)."""
        return self.mean(list(self.store.scored(h, split).values()))

    async def full_val(self, h: str) -> float:
        return self.mean(await self.evaluate(h, "val"))

    async def promote(self, h: str) -> bool:
        """Score ``h`` on the whole val split; it becomes the best (and the parameters' value) only if higher."""
        score = await self.full_val(h)
        if score > self.best_score:
            self.best, self.best_score = h, score
            self.apply(h)
            self._emit("new_best", hash=h, score=score)
            return True
        return False

    def minibatch(self, split: str, k: int) -> list[int]:
        n = len(self.split_data(split))
        return sorted(self.rng.sample(range(n), min(k, n)))

    # -- proposals -----------------------------------------------------------------------------------------
    async def propose(self, system: str, user: str, tag: str, *, sample: int = 0, current: str = "",
                      role: str | None = None) -> str | None:
        """One tagged proposal from the optimizer engine (role="optimizer"); None when it cannot be parsed or
        ``newvalue.check_new_value`` refuses it twice (``current``: the value it replaces; ``role``: its role)."""
        if self.engine is None:
            raise InvalidVariableError(f"{type(self).__name__} needs engine=... to propose new values")
        req = Request.chat(user, system=system, temperature=self.temperature, max_tokens=self.max_tokens,
                           seed=self.seed, role="optimizer", node=self.registry_name, sample_index=sample)
        try:
            value, _ = await agenerate_tagged(self.engine, req, tag,
                                              validate=lambda v: check_new_value(_strip_open(v, tag), current, role))
        except ParseError as exc:
            self.store.rejected.append({"values": {}, "reason": f"unparseable proposal: {exc}",
                                        "step": self.step_count})
            self._emit("rejected", values={}, reason=str(exc))
            return None
        return _strip_open(value, tag)

    async def reflect(self, h: str, name: str, evals: Sequence[Evaluation], *, sample: int = 0) -> dict | None:
        """A new candidate: ``h`` with parameter ``name`` rewritten from the traces and per-objective feedback."""
        values = self.store.values(h)
        role = self.role_of(name)
        evidence = dict(role=role, value=values[name], examples=render_examples(evals, self.weights),
                        objectives=render_objectives(self.weights))
        if is_instruction(role):
            system, user = REFLECT_INSTRUCT_SYSTEM, REFLECT_INSTRUCT_PROMPT.format(**evidence)
        else:
            system, user = SEARCH_SYSTEM, REFLECT_PROMPT.format(**evidence, ask=REFLECT_ASK_VALUE)
        new = await self.propose(system, user, PROPOSAL_TAG, sample=sample, current=values[name], role=role)
        if new is None or new == values[name]:
            return None
        return {**values, name: new}

    def objective_front(self) -> list[str]:
        """Candidates scored on the whole val split that no other such candidate beats on every objective."""
        n = len(self.val)
        points = {}
        for h in self.store.candidates:
            evs = self.store.scored(h, "val")
            if len(evs) == n:
                points[h] = {k: sum(e.scores.get(k, 0.0) for e in evs.values()) / n for k in self.weights}
        return pareto_front(points)

    def role_of(self, name: str) -> str:
        return self.params()[self.names.index(name)].role

    # -- the step ------------------------------------------------------------------------------------------
    async def search_step(self) -> None:
        raise NotImplementedError

    def _budget_reason(self) -> str | None:
        if self.max_metric_calls is not None and self.metric_calls >= self.max_metric_calls:
            return f"metric-call budget of {self.max_metric_calls} used"
        b = self.budget
        if b is not None and ((b.max_calls is not None and b.calls >= b.max_calls)
                              or (b.max_tokens is not None and b.tokens >= b.max_tokens)
                              or (b.max_usd is not None and b.usd >= b.max_usd)):
            return f"budget used: {b!r}"
        return None

    async def astep(self) -> dict:
        if self.stopped is None:
            self.stopped = self._budget_reason() or next((r for s in self.stoppers if (r := s(self))), None)
        if self.stopped is not None:
            return self.info()
        before = self._progress()
        try:
            if self.best is None:
                await self.promote(self.seed_hash)
                self._emit("init", **self.info())   # the starting point: the seed, scored on val
            await self.search_step()
            self.step_count += 1
            self.best_history.append(self.best_score)
            self.idle_steps = 0 if self._progress() != before else self.idle_steps + 1
            if self.idle_steps >= self.max_idle_steps:
                self.stopped = (f"search exhausted: no new candidate, evaluation or rejection in "
                                f"{self.idle_steps} steps")
        except (SearchExhausted, BudgetExceeded) as exc:
            self.stopped = f"budget: {exc}"
        finally:  # an evaluator may have loaded other candidates into the parameters
            self.apply(self.best or self.seed_hash)
        if self.stopped is not None:
            self._emit("stop", reason=self.stopped)
        self._emit("step", **self.info())
        return self.info()

    def _progress(self) -> tuple[int, int, int]:
        return len(self.store.candidates), len(self.store.evals), len(self.store.rejected)

    async def arun(self, max_steps: int | None = None) -> dict:
        """Step until a stopper, a budget or ``max_steps`` ends the search; return :meth:`info`."""
        n = 0
        while self.stopped is None and (max_steps is None or n < max_steps):
            await self.astep()
            n += 1
        return self.info()

    def run(self, max_steps: int | None = None) -> dict:
        from ..runtime import run_sync
        return run_sync(self.arun(max_steps))

    def info(self) -> dict:
        return {"step": self.step_count, "best": self.best, "best_score": self.best_score,
                "best_values": self.store.values(self.best) if self.best else None,
                "metric_calls": self.metric_calls, "candidates": len(self.store.candidates),
                "rejected": len(self.store.rejected), "stopped": self.stopped,
                "objective_front": self.objective_front() if len(self.weights) > 1 else None}

    def _emit(self, event: str, **info) -> None:
        info.setdefault("step", self.step_count)   # steps finished (a run-log row's step)
        for cb in self.callbacks:
            cb(event, info)

    # -- state ---------------------------------------------------------------------------------------------
    def search_state(self) -> dict:
        return {}

    def load_search_state(self, d: dict) -> None:
        pass

    def get_extra_state(self) -> dict:
        return {"rng": rng_state_to_json(self.rng.getstate()), "store": self.store.state_dict(), "seed": self.seed_hash,
                "names": list(self.names), "data": self._data_fingerprint(),
                "step": self.step_count, "metric_calls": self.metric_calls, "best": self.best,
                "best_score": self.best_score, "best_history": list(self.best_history), "stopped": self.stopped,
                "idle_steps": self.idle_steps,
                "budget": self.budget.state_dict() if self.budget is not None else None,
                "search": self.search_state()}

    def _data_fingerprint(self) -> str:
        return candidate_hash({s: "\x1f".join(ids) for s, ids in self._ids.items()})

    def load_state_dict(self, state_dict: dict) -> None:
        with loading(f"the state_dict given to {type(self).__name__}.load_state_dict", state_dict):
            self._check_extra(state_dict.get("extra") or {})  # before anything changes
        super().load_state_dict(state_dict)

    def _check_extra(self, d: dict) -> None:
        if d.get("names", self.names) != self.names:
            raise CheckpointError(f"this state_dict optimizes parameters {d['names']}, this optimizer {self.names}")
        if d.get("data", self._data_fingerprint()) != self._data_fingerprint():
            raise CheckpointError("this state_dict was made on different train/val examples (their ids differ); "
                                  "resume with the same splits or start a new search")

    def set_extra_state(self, d: dict) -> None:
        if not d:
            return
        self.rng.setstate(rng_state_from_json(d["rng"]))
        self.store = CandidateStore.from_state(d["store"])
        self.seed_hash = d["seed"]
        self.step_count, self.metric_calls = d["step"], d["metric_calls"]
        self.best, self.best_score = d["best"], d["best_score"]
        self.best_history, self.stopped = list(d["best_history"]), d["stopped"]
        self.idle_steps = d.get("idle_steps", 0)
        if self.budget is not None and d.get("budget"):
            self.budget.load_state_dict(d["budget"])
        self.load_search_state(d.get("search", {}))
