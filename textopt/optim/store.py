"""Candidates, the evaluation cache, and the evaluator contract shared by every search optimizer.

A **candidate** is a plain dict ``{parameter name: text}`` over the optimizer's text parameters.

The **evaluator** is ONE async function you write::

    async def evaluate(candidate: dict[str, str], example) -> tuple[score, feedback, trace]

- ``score``: a float (higher is better) — or, for several objectives, a dict ``{objective: float}``.
- ``feedback``: a str explaining the score (what the proposal LLM reads) — or a dict ``{objective: str}``, or a
  list of :class:`textopt.Feedback` whose ``.objective`` names the objective each one serves.
- ``trace``: anything describing what the program did (inputs, outputs, intermediate calls); it is stored as
  JSON (non-JSON values become strings) and shown to the proposal LLM. ``None`` is fine.

:meth:`Evaluator.from_module` builds one from a ``textopt.nn.Module`` and a metric. Results are cached in the
:class:`CandidateStore` under (candidate hash, example id, split): an evaluation is never paid for twice.
"""
from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Sequence

from ..errors import DataError, InvalidVariableError

DEFAULT_OBJECTIVE = "score"


def candidate_hash(values: Mapping[str, str]) -> str:
    """Stable short id of a candidate (independent of dict order, process and platform)."""
    blob = json.dumps(dict(values), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def example_id(example: Any, index: int) -> str:
    """An example's id: its ``"id"`` field / attribute when it has one, else its position in its split."""
    if isinstance(example, Mapping) and "id" in example:
        return str(example["id"])
    ident = getattr(example, "id", None)
    return str(ident) if isinstance(ident, (str, int)) else str(index)


def jsonable(x: Any) -> Any:
    """``x`` as plain JSON data (non-JSON leaves become their ``str``): traces go into checkpoints."""
    return json.loads(json.dumps(x, default=str, ensure_ascii=False))


@dataclass
class Evaluation:
    """One cached result: per-objective scores and feedback, and the trace."""
    scores: dict[str, float]
    feedback: dict[str, str]
    trace: Any = None

    def total(self, weights: Mapping[str, float]) -> float:
        return sum(w * self.scores.get(k, 0.0) for k, w in weights.items())

    def to_dict(self) -> dict:
        return {"scores": self.scores, "feedback": self.feedback, "trace": self.trace}


def normalize_result(result: Any, objectives: Sequence[str]) -> Evaluation:
    """Check and normalise what an evaluator returned (a clear error says what was wrong)."""
    if isinstance(result, Evaluation):
        return result
    if isinstance(result, (int, float, dict)) and not isinstance(result, bool):
        result = (result, "", None)
    if not isinstance(result, (tuple, list)) or len(result) not in (2, 3):
        raise InvalidVariableError(f"an evaluator must return (score, feedback, trace); got {result!r:.200}")
    score, feedback = result[0], result[1]
    trace = result[2] if len(result) == 3 else None
    if isinstance(score, Mapping):
        scores = {str(k): float(v) for k, v in score.items()}
    elif isinstance(score, (int, float)) and not isinstance(score, bool):
        scores = {objectives[0] if len(objectives) == 1 else DEFAULT_OBJECTIVE: float(score)}
    else:
        raise InvalidVariableError(f"an evaluator's score must be a float or a dict of floats, got {score!r:.100}")
    missing = [o for o in objectives if o not in scores]
    if missing:
        raise InvalidVariableError(f"the evaluator returned scores for {sorted(scores)} but the optimizer weighs "
                                   f"objectives {list(objectives)}: missing {missing}")
    return Evaluation(scores, normalize_feedback(feedback, objectives), jsonable(trace))


def normalize_feedback(feedback: Any, objectives: Sequence[str]) -> dict[str, str]:
    """str | dict | list[Feedback] -> {objective: text}; untagged text goes to the first objective."""
    first = objectives[0] if objectives else DEFAULT_OBJECTIVE
    if feedback is None:
        return {}
    if isinstance(feedback, str):
        return {first: feedback} if feedback else {}
    if isinstance(feedback, Mapping):
        return {str(k): str(v) for k, v in feedback.items() if v}
    out: dict[str, list[str]] = {}
    for fb in feedback:
        key = getattr(fb, "objective", None) or first
        out.setdefault(key, []).append(getattr(fb, "value", str(fb)))
    return {k: "\n".join(v) for k, v in out.items()}


EvaluateFn = Callable[[dict, Any], Awaitable[Any]]


class Evaluator:
    """Wraps the user's ``evaluate`` coroutine (or a sync function, run in a worker thread)."""

    def __init__(self, fn: EvaluateFn | Callable, *, variables: Mapping[str, Any] | None = None):
        if not callable(fn):
            raise InvalidVariableError(f"evaluate must be a function (candidate, example) -> (score, feedback, "
                                       f"trace), got {type(fn).__name__}")
        self.fn = fn
        self.variables = dict(variables or {})  # name -> Variable, when built from a module

    async def __call__(self, candidate: dict, example: Any) -> Any:
        if inspect.iscoroutinefunction(self.fn):
            return await self.fn(candidate, example)
        out = await asyncio.to_thread(self.fn, candidate, example)
        return await out if inspect.isawaitable(out) else out

    @classmethod
    def from_task(cls, module, task) -> "Evaluator":
        """Evaluate ``module`` on a ``textopt.tasks`` task: its examples' ``.input``, scored by ``task.metric``
        against ``.target`` (the Score's explanation is the feedback)."""
        return cls.from_module(module, lambda text, ex: task.score(text, ex.target), input="input")

    @classmethod
    def from_module(cls, module, metric: Callable, *, input: Callable[[Any], Any] | str = "input",
                    target: str = "answer") -> "Evaluator":
        """Evaluate a ``textopt.nn.Module``: load the candidate into its parameters, run it on the example's
        input (``example[input]``, or ``input(example)``), score the output with ``metric(output_text, example)``
        -> float or (float, feedback) — or with a metric loss module (``tx.nn.ExactMatch()`` ...), called as
        ``metric(output_text, example[target])``; a dict ``{objective: metric}`` scores several objectives,
        each with its own feedback. Parameter names are ``module.named_parameters()`` names.

        Candidates are loaded one at a time: examples of the same candidate run concurrently, different
        candidates take turns (the module's parameters hold one value at a time)."""
        return cls(_ModuleRunner(module, metric, input, target), variables=dict(module.named_parameters()))


class CandidateJob:
    """The evaluation job of one example for one candidate (see :func:`textopt.parallel.amap`): the evaluator's
    result, checked and normalised. Picklable, so it can run in another process (``executor="ray"``)."""

    def __init__(self, evaluator: Evaluator, values: Mapping[str, str], objectives: Sequence[str]):
        self.evaluator, self.values, self.objectives = evaluator, dict(values), list(objectives)

    async def __call__(self, example: Any) -> "Evaluation":
        return normalize_result(await self.evaluator(dict(self.values), example), self.objectives)


def as_evaluator(evaluate: Any) -> Evaluator:
    return evaluate if isinstance(evaluate, Evaluator) else Evaluator(evaluate)


class _ModuleRunner:
    def __init__(self, module, metric, input_key, target_key):
        self.module, self.metric, self.input_key, self.target_key = module, metric, input_key, target_key
        self.params = dict(module.named_parameters())
        self._loaded: str | None = None
        self._users = 0
        self._cond: asyncio.Condition | None = None
        self._cond_loop = None

    def __getstate__(self) -> dict:   # the loop-bound turn-taking state stays in this process
        return {**self.__dict__, "_loaded": None, "_users": 0, "_cond": None, "_cond_loop": None}

    async def __call__(self, candidate: dict, example: Any):
        from ..grad_mode import no_grad
        loop = asyncio.get_running_loop()
        if self._cond is None or self._cond_loop is not loop:   # sync (private loop) and async callers differ
            self._cond, self._cond_loop, self._users = asyncio.Condition(), loop, 0
        h = candidate_hash(candidate)
        async with self._cond:
            await self._cond.wait_for(lambda: self._users == 0 or self._loaded == h)
            if self._users == 0:
                for name, text in candidate.items():
                    if name in self.params:
                        self.params[name].value = text
                self._loaded = h
            self._users += 1
        try:
            x = self.input_key(example) if callable(self.input_key) else _field(example, self.input_key)
            with no_grad():
                out = await self.module.acall(x)
            text = getattr(out, "value", out)
            if isinstance(self.metric, Mapping):   # several objectives: one metric (and one feedback) each
                results = {k: await self._score(m, text, example) for k, m in self.metric.items()}
                score = {k: r[0] for k, r in results.items()}
                fb = {k: r[1] for k, r in results.items()}
            else:
                score, fb = await self._score(self.metric, text, example)
        finally:
            async with self._cond:
                self._users -= 1
                self._cond.notify_all()
        return score, fb, {"input": x, "output": text}

    async def _score(self, metric, text: str, example: Any) -> tuple[float, str]:
        from ..grad_mode import no_grad
        if hasattr(metric, "acall"):  # a metric loss module: a Scored Variable (score + explanation)
            with no_grad():
                res = await metric.acall(text, _field(example, self.target_key, "target"))
            return float(res.meta["score"]), str(res.meta.get("feedback", res.value))
        res = metric(text, example)
        if inspect.isawaitable(res):
            res = await res
        if hasattr(res, "value") and hasattr(res, "explanation"):   # a textopt.tasks Score
            return float(res.value), str(res.explanation)
        score, fb = (res if isinstance(res, tuple) else (res, ""))
        return float(score), str(fb)


def _field(example: Any, key: str, what: str = "input") -> Any:
    if not isinstance(example, Mapping) and hasattr(example, key):   # textopt.tasks.Example: .input, .target
        return getattr(example, key)
    if isinstance(example, Mapping):
        if key not in example:
            raise DataError(f"example has no {key!r} field (fields: {sorted(example)}); pass {what}=... to "
                            f"Evaluator.from_module to say which field is the module's {what}")
        return example[key]
    if isinstance(example, (tuple, list)):
        return example[0]
    return example


@dataclass
class CandidateStore:
    """Every candidate seen (with where it came from) and every evaluation, JSON-serialisable."""
    candidates: dict[str, dict] = field(default_factory=dict)  # hash -> {"values", "parents", "origin", "step"}
    evals: dict[str, dict] = field(default_factory=dict)       # "hash|split|example id" -> Evaluation dict
    rejected: list[dict] = field(default_factory=list)         # {"values", "reason", "step"}

    def add(self, values: Mapping[str, str], *, parents: Sequence[str] = (), origin: str = "seed",
            step: int = 0) -> str:
        h = candidate_hash(values)
        if h not in self.candidates:
            self.candidates[h] = {"values": dict(values), "parents": list(parents), "origin": origin, "step": step}
        return h

    def values(self, h: str) -> dict[str, str]:
        return dict(self.candidates[h]["values"])

    def order(self, h: str) -> int:
        """Insertion position (deterministic tie-break: older first)."""
        return list(self.candidates).index(h)

    @staticmethod
    def key(h: str, split: str, ex_id: str) -> str:
        return f"{h}|{split}|{ex_id}"

    def get(self, h: str, split: str, ex_id: str) -> Evaluation | None:
        d = self.evals.get(self.key(h, split, ex_id))
        return Evaluation(**d) if d is not None else None

    def put(self, h: str, split: str, ex_id: str, ev: Evaluation) -> None:
        key = self.key(h, split, ex_id)
        if key not in self.evals:
            self._by_candidate().setdefault((h, split), []).append(ex_id)
        self.evals[key] = ev.to_dict()

    def _by_candidate(self) -> dict:
        """(hash, split) -> example ids in insertion order (built once, kept up to date by ``put``)."""
        if getattr(self, "_index", None) is None:
            self._index = {}
            for k in self.evals:
                h, split, ex_id = k.split("|", 2)
                self._index.setdefault((h, split), []).append(ex_id)
        return self._index

    def scored(self, h: str, split: str) -> dict[str, Evaluation]:
        """All cached evaluations of ``h`` on ``split``: example id -> Evaluation (in the order they were made)."""
        ids = self._by_candidate().get((h, split), [])
        return {i: Evaluation(**self.evals[self.key(h, split, i)]) for i in ids}

    def state_dict(self) -> dict:
        """Lists of pairs, not dicts: insertion order is meaningful (tie-breaks) and must survive a checkpoint
        writer that sorts keys."""
        return {"candidates": [[h, c] for h, c in self.candidates.items()],
                "evals": [[k, v] for k, v in self.evals.items()], "rejected": self.rejected}

    @classmethod
    def from_state(cls, d: Mapping) -> "CandidateStore":
        return cls({h: c for h, c in d.get("candidates", [])}, {k: v for k, v in d.get("evals", [])},
                   list(d.get("rejected", [])))


def dominates(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return all(a[k] >= b[k] for k in b) and any(a[k] > b[k] for k in b)


def pareto_front(points: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Keys of the non-dominated points (objective -> value, higher is better), in the given order."""
    return [k for k, p in points.items() if not any(dominates(q, p) for j, q in points.items() if j != k)]
