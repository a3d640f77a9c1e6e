"""``TGD``: textual gradient descent, transactional.

For each text parameter with feedback, one optimizer request carries: the role; the FULL current value, once
(never truncated); the feedback in its backward order, each once, with the forward step that explains it — its
``Feedback.context``: the input, the output, the feedback that output received — in at most
``max_context_chars`` (the output gets half, so the reasoning a feedback item is about stays visible; never
the feedback engine's own instructions or another copy of the value); at most ``max_gradients`` items, the
rest counted; the constraints; in-context examples; and the last ``history`` (value, feedback) pairs of this
parameter — the momentum that TextGrad stores but never sends.

The new value is asked through ``agenerate_tagged(engine, request, "NEW_VALUE", validate=...)`` (prefill and
stop sequence on engines that support them) with ``role="optimizer"``. A new value that copies a training
example is refused (``copy_guard``: the inputs and outputs the feedback is about, plus what
``guard_against(examples)`` was given — the Trainer gives its training split), as is one identical to the
current value; each gets one repair
request, and a value still identical after it is accepted as *unchanged*: ``step()`` returns a ``StepResult``
(a dict of the new values) whose ``unchanged`` lists those parameters, and logs a warning. On engines that honour
``Request.pattern`` (``supports_pattern``: the embedded model) the value is also decoded under a pattern
(``value_pattern="auto"``: no tags, must close; instruction-like for prompt/instruction roles), so a 135M
model cannot copy scaffolding or open with commentary; ``value_pattern=None`` disables it, a string overrides. Validation rejects an empty value, one
that contains the optimizer's own tags, or one that copies its instruction sentences; a rejected answer gets one
repair attempt. All parameters of a step are computed concurrently and only then assigned: if any fails, no
parameter changes and :class:`~textopt.errors.OptimizerStepError` names each failing parameter and why.

Tensor parameters take a plain SGD step when their group has ``lr`` (else they are left alone).
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from typing import Iterable

from ..engines import Engine, Request, get_engine, resolve_backward_engine
from ..engines.structured import agenerate_tagged
from ..errors import GraphError, InvalidVariableError, OptimizerStepError, ParseError
from ..functional import clip
from ..variable import Feedback, Variable
from . import prompts as P
from .guards import CopyDetector
from .newvalue import check_new_value, check_not_rejected, is_instruction, strip_commentary  # noqa: F401  (public here too)
from .tgd_prompt import build_request, render_context, tactic_for  # noqa: F401
from .optimizer import Optimizer, register_optimizer

DEFAULTS = dict(constraints=[], examples=[], history=3, max_gradients=12, max_gradient_chars=4000,
                max_context_chars=3000, history_feedback_chars=1500, temperature=0.0, max_tokens=1024, lr=None,
                value_pattern="auto", copy_guard=True, repair_temperature=0.7, add_when_stuck=True,
                refuse_reverted=True, tactics="auto", tactic_turns="attempts", edit="rewrite",
                add_retries=1)
log = logging.getLogger("textopt.optim.tgd")
REJECTED_KEPT = 20        # reverted values a new value is compared with (TGD state, so it survives a resume)


class StepResult(dict):
    """What ``TGD.step()`` returns: {parameter name: new value}; ``unchanged`` names the parameters whose
    optimizer answer was their current value (after one repair request asking for the change)."""

    def __init__(self, values: dict, unchanged: list[str]):
        super().__init__(values)
        self.unchanged = unchanged




def _check_options(g: dict) -> None:
    """A param group's TGD options: one ``InvalidVariableError`` naming a bad one; lists and tactics normalised."""
    def bad(key: str, want: str) -> InvalidVariableError:
        return InvalidVariableError(f"TGD {key} must be {want}, got {g[key]!r:.80}")

    for key in ("constraints", "examples"):
        if not isinstance(g[key], (list, tuple)) or (key == "constraints" and not all(isinstance(c, str)
                                                                                      for c in g[key])):
            raise bad(key, "a list" + (" of strings" if key == "constraints" else ""))
        g[key] = list(g[key])
    for key, lo in (("history", 0), ("max_gradients", 1), ("max_gradient_chars", 1), ("max_context_chars", 0),
                    ("history_feedback_chars", 0), ("max_tokens", 1), ("add_retries", 0)):
        if type(g[key]) is not int or g[key] < lo:
            raise bad(key, f"an int >= {lo}")
    for key, none_ok in (("temperature", False), ("repair_temperature", True), ("lr", True)):
        v = g[key]
        if not ((v is None and none_ok) or (type(v) in (int, float) and 0 <= v < float("inf"))):
            raise bad(key, "a finite number >= 0" + (" or None" if none_ok else ""))
    for key in ("copy_guard", "add_when_stuck", "refuse_reverted"):
        if not isinstance(g[key], bool):
            raise bad(key, "True or False")
    pattern = g["value_pattern"]
    if pattern not in ("auto", None):
        try:
            re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise bad("value_pattern", f"'auto', None or a regular expression ({exc})") from None
    tactics = g["tactics"]
    if tactics != "auto":
        if not (tactics is None or (isinstance(tactics, (list, tuple)) and
                                    all(isinstance(t, str) and t.strip() for t in tactics))):
            raise bad("tactics", "'auto' or a list of non-empty strings (none: [])")
        g["tactics"] = tuple(tactics or ())
    if g["tactic_turns"] not in ("attempts", "steps"):
        raise bad("tactic_turns", "'attempts' or 'steps'")
    if g["edit"] not in ("rewrite", "add"):
        raise bad("edit", "'rewrite' or 'add'")


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


@register_optimizer("tgd")
class TGD(Optimizer):
    """``TGD(params, engine="openai:gpt-4o", constraints=[...], examples=[...], history=3)``.

    ``engine``: Engine or spec string; None uses the ``tx.backward_engine(...)`` of the calling context.
    Options (per param group, JSON-able): ``constraints``, ``examples``, ``history`` (window of past values and
    their feedback; 0 disables), ``max_gradients``, ``max_gradient_chars``, ``max_context_chars``,
    ``history_feedback_chars``, ``temperature``, ``max_tokens``, ``lr`` (tensor parameters only),
    ``value_pattern`` ("auto", None or a regular expression for the text after the prefilled tag),
    ``copy_guard`` (refuse a value that copies a training example), ``repair_temperature`` (the sampling
    temperature of the one repair request; None keeps ``temperature``), ``add_when_stuck`` (an instruction-like
    variable whose rewrite came back unchanged or unusable gets one more, simpler request: one instruction to
    append), ``refuse_reverted`` (refuse, and repair once, a value that is nearly one the caller reverted with
    ``record_rejection``), ``tactics`` (one technique named per step, in turn: "auto" is
    ``prompts.INSTRUCT_TACTICS`` for instruction-like variables and none for others; a list of your own; ``[]``
    for none), ``tactic_turns`` (what moves the tactic on: "attempts", every step that asked, including one
    whose answer was unusable, so a failed step is not asked the same way again; "steps": successful steps only,
    the behaviour before 2026-12-02, kept so older recordings replay), ``edit`` ("rewrite": a whole new value
    each step; "add": for instruction-like variables, one new instruction appended each step — the safer edit
    for a small optimizer model), ``add_retries`` (an appended instruction still unusable after its repair is
    asked again, in the same step, this many times: a request with the next tactic that shows the mistakes'
    evaluations only, not the value, which a small model copies; 0 is the behaviour before 2026-12-03).
    """

    def __init__(self, params: Iterable, engine: "Engine | str | None" = None, **options):
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise InvalidVariableError(f"TGD got unknown options {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        opts = {**DEFAULTS, **options}
        super().__init__(params, opts)
        self.engine = get_engine(engine) if engine is not None else None
        self.guarded: list = []   # training examples a new value may not copy (guard_against)

    def add_param_group(self, group: dict) -> None:
        super().add_param_group(group)
        _check_options(self.param_groups[-1])   # the defaults and each group's own options

    def guard_against(self, examples: Iterable) -> None:
        """Refuse new values that copy any of ``examples`` (inputs or answers; see ``CopyDetector``). The Trainer
        calls it with its training split; the inputs of the feedback's own context are always guarded."""
        self.guarded = list(examples)

    def _engine(self) -> Engine:
        if self.engine is not None:
            return self.engine
        try:
            return resolve_backward_engine(None)
        except GraphError:
            raise InvalidVariableError("TGD has no engine to write new values: pass TGD(params, engine=...) or "
                                       "call step() inside `with tx.backward_engine(engine):`") from None

    # -- the request ---------------------------------------------------------------------------------------
    def build_request(self, p: Variable, group: dict, name: str) -> Request:
        """The optimizer request for ``p`` (see ``tgd_prompt.build_request``)."""
        window = self.state[p].get("history", [])[-group["history"]:] if group["history"] else []
        return build_request(p, group, name, window, self._turn(p, group))

    @staticmethod
    def value_pattern(engine: Engine, p: Variable, group: dict) -> str | None:
        """The constraint on the new value for this engine (see the module docstring)."""
        pattern = group["value_pattern"]
        if pattern != "auto":
            return pattern
        if not getattr(engine, "supports_pattern", False):
            return None
        return P.INSTRUCTION_VALUE_PATTERN if is_instruction(p.role) else P.FREE_VALUE_PATTERN

    # -- the step ------------------------------------------------------------------------------------------
    def copy_detector(self, p: Variable, group: dict) -> CopyDetector | None:
        """What a new value of ``p`` may not copy: the guarded examples, and the inputs and outputs its feedback
        is about (a worked answer to one training question is not an instruction for the next)."""
        if not group["copy_guard"]:
            return None
        seen = [text for g in p.grad for label, text in getattr(g, "context", ()) if label in ("input", "output")]
        return CopyDetector([*self.guarded, *seen]) if self.guarded or seen else None

    async def _propose(self, engine: Engine, p: Variable, group: dict, name: str) -> str:
        current = p.value
        request = self.build_request(p, group, name)
        pattern = self.value_pattern(engine, p, group)
        if pattern is not None:
            request = dataclasses.replace(request, pattern=pattern)
        detector = self.copy_detector(p, group)
        if group["edit"] == "add" and is_instruction(p.role):
            return await self._propose_addition(engine, p, group, name, detector)
        can_add = group["add_when_stuck"] and is_instruction(p.role)
        answers = 0

        def validate(raw: str) -> None:
            nonlocal answers
            answers += 1
            value = strip_commentary(raw)
            check_new_value(value, current, p.role)
            self._check_copies(detector, value, current)
            if group["refuse_reverted"]:
                check_not_rejected(value, self.state[p].get("rejected", ()))
            if answers == 1 and not can_add and _same(value, current):   # asked again once; that answer stands
                raise ValueError(P.TGD_UNCHANGED)
        failure = value = None
        try:
            value, _ = await agenerate_tagged(engine, request, P.NEW_VALUE_TAG, validate=validate,
                                              repair_temperature=self._repair_temperature(group))
        except ParseError as exc:
            if not can_add:
                raise
            failure = exc
        if can_add and (failure is not None or _same(strip_commentary(value), current)):
            try:
                return await self._propose_addition(engine, p, group, name, detector)
            except ParseError:
                if failure is not None:   # neither question got a usable answer: report the first one
                    raise failure from None
        return strip_commentary(value)

    @staticmethod
    def _repair_temperature(group: dict) -> float | None:
        t = group["repair_temperature"]
        return None if t is None else max(t, group["temperature"])

    @staticmethod
    def _check_copies(detector: CopyDetector | None, value: str, current: str) -> None:
        if detector is not None:
            reason = detector.check(value)
            if reason and reason != detector.check(current):
                raise ValueError(P.TGD_COPIES.format(reason=reason))

    async def _propose_addition(self, engine: Engine, p: Variable, group: dict, name: str,
                                detector: CopyDetector | None) -> str:
        """The simpler question (``edit="add"``, ``add_when_stuck``): one general instruction to append to
        ``p``'s value. An answer still unusable after its repair gets ``add_retries`` more requests in the same
        step, each with the next tactic and without the current value or the reviewers' suggestions (a small
        model shown the value returns the instruction it added last, word for word, whatever it is asked)."""
        first = self._turn(p, group)
        failure = None
        for k in range(1 + group["add_retries"]):
            if k and group["tactic_turns"] == "attempts":   # the retry spends the next tactic's turn
                self._spend_turn(p)
            request = self._addition_request(engine, p, group, name, tactic_for(p, group, first + k), fresh=k > 0)
            try:
                return await self._ask_addition(engine, p, request, detector, self._repair_temperature(group))
            except ParseError as exc:
                failure = failure or exc
                log.info("TGD %s: the addition was unusable (%s)%s", name, exc,
                         "; asking again with the next tactic" if k < group["add_retries"] else "")
        raise failure

    def _addition_request(self, engine: Engine, p: Variable, group: dict, name: str, tactic: str | None,
                          fresh: bool = False) -> Request:
        """The request for one instruction to append: the value, each mistake's evaluation and the reviewer's
        suggestion, the tactic; ``fresh`` (a retry): the evaluations and the tactic only (the suggestions where
        there is no evaluation, as in a run without forward context)."""
        items, evaluations, limit = [], [], min(400, group["max_context_chars"])   # 0: no forward context
        for g in list(p.grad)[: group["max_gradients"]]:
            evaluation = dict(getattr(g, "context", ())).get("feedback on the output", "-") if limit > 0 else "-"
            own = " ".join(clip(evaluation.split("\n\n")[0], max(limit, 1)).split())   # not a batch summary
            text = " ".join(clip(g.value, 600).split())
            items.append(P.TGD_ADD_ITEM.format(evaluation=own, text=text))
            evaluations.append(P.TGD_ADD_FRESH_ITEM.format(text=own if own != "-" else text))
        if fresh:
            ask = P.TGD_ADD_FRESH_TACTIC_ASK.format(tactic=tactic) if tactic else P.TGD_ADD_FRESH_ASK
            user = P.TGD_ADD_FRESH_USER.format(role=p.role, mistakes="".join(evaluations), ask=ask)
        else:
            ask = P.TGD_ADD_TACTIC_ASK.format(tactic=tactic) if tactic else P.TGD_ADD_ASK
            user = P.TGD_ADD_USER.format(role=p.role, value=p.value, gradients="".join(items), ask=ask)
        request = Request.chat(user, system=P.TGD_ADD_SYSTEM, temperature=group["temperature"],
                               max_tokens=min(group["max_tokens"], 256), role="optimizer", node=f"tgd:{name}")
        if getattr(engine, "supports_pattern", False) and group["value_pattern"] == "auto":
            request = dataclasses.replace(request, pattern=P.ADDITION_PATTERN)
        return request

    async def _ask_addition(self, engine: Engine, p: Variable, request: Request, detector: CopyDetector | None,
                            repair_temperature: float | None) -> str:
        current = p.value

        def validate(raw: str) -> None:
            addition = strip_commentary(raw)
            check_new_value(addition, current, p.role)
            self._check_copies(detector, addition, current)
            if _same(addition, current) or " ".join(addition.split()).lower() in " ".join(current.split()).lower():
                raise ValueError(P.TGD_ALREADY_THERE)
        addition, _ = await agenerate_tagged(engine, request, P.ADDITION_TAG, validate=validate,
                                             repair_temperature=repair_temperature)
        return current.rstrip() + "\n" + strip_commentary(addition)

    async def astep(self) -> StepResult:
        """Update every text parameter that has feedback; returns {parameter name: new value} (a
        ``StepResult``: ``.unchanged`` names the parameters whose new value is their current one)."""
        jobs = []
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                if p.is_text and p.grad:
                    jobs.append((p, group, p.name or f"group{gi}.param{pi} ({p.role})"))
        engine = self._engine() if jobs else None
        results = await asyncio.gather(*(self._propose(engine, p, g, n) for p, g, n in jobs),
                                       return_exceptions=True)
        failures = [(n, r) for (_, _, n), r in zip(jobs, results) if isinstance(r, BaseException)]
        for _, r in failures:
            if not isinstance(r, Exception):
                raise r  # cancellation and the like propagate untouched
        for p, group, _ in jobs:   # every attempt uses up its tactic's turn, a failed one too
            self._spend_turn(p)
        if failures:
            detail = "; ".join(f"{n}: {type(r).__name__}: {r}" for n, r in failures)
            err = OptimizerStepError(f"TGD step changed no parameter because {len(failures)} of {len(jobs)} "
                                     f"update(s) failed after a repair attempt — {detail}")
            err.failures = failures  # [(parameter name, exception)]
            raise err
        updated, unchanged = {}, []
        for (p, group, name), new in zip(jobs, results):
            if _same(new, p.value):
                unchanged.append(name)
                log.warning("TGD left %s unchanged: the optimizer returned its current value, even when asked "
                            "again", name)
            st = self.state[p]
            st["step"] = st.get("step", 0) + 1
            fb = clip("\n\n".join(g.value for g in p.grad), group["history_feedback_chars"])
            st.setdefault("history", []).append({"step": st["step"], "value": p.value, "feedback": fb})
            if group["history"]:
                st["history"] = st["history"][-max(group["history"], 1):]
            else:
                st["history"] = []
            p.value = new
            updated[name] = new
        self._tensor_step()
        return StepResult(updated, unchanged)

    def _turn(self, p: Variable, group: dict) -> int:
        """The count that picks ``p``'s tactic (``tactic_turns``): its attempts so far, or its successful steps."""
        st = self.state[p]
        return self._attempts(p) if group["tactic_turns"] == "attempts" else st.get("step", 0)

    def _attempts(self, p: Variable) -> int:
        st = self.state[p]
        return st.get("turns", st.get("step", 0))   # a state saved before "turns" existed counts its steps

    def _spend_turn(self, p: Variable) -> None:
        self.state[p]["turns"] = self._attempts(p) + 1

    def record_rejection(self, p: Variable, value: str, before: float, after: float,
                         split: str = "validation") -> None:
        """Remember that ``value`` (now being reverted by the caller) did not raise the score on ``split``: it
        enters this parameter's history window so the next request says not to go back to it, and a new value
        that is (nearly) one of the last ``REJECTED_KEPT`` reverted values is refused and repaired."""
        group = next((g for g in self.param_groups if any(p is q for q in g["params"])), None)
        if group is None:
            raise InvalidVariableError(f"{p!r} is not a parameter of this optimizer")
        st = self.state[p]
        st["rejected"] = (st.get("rejected", []) + [value])[-REJECTED_KEPT:]
        if not group["history"]:
            return
        st.setdefault("history", []).append({"step": f"{st.get('step', 0)}, reverted", "value": value,
                                             "feedback": P.TGD_REJECTED.format(before=before, after=after,
                                                                               split=split)})
        st["history"] = st["history"][-group["history"]:]

    def _tensor_step(self) -> None:
        todo = [(p, group["lr"]) for group in self.param_groups if group.get("lr") for p in group["params"]
                if not p.is_text and p.grad is not None]
        if not todo:
            return
        import torch   # loaded: a tensor parameter exists (the library never loads torch for text alone)
        with torch.no_grad():
            for p, lr in todo:
                p.value.add_(p.grad, alpha=-lr)
