"""The request TGD sends for one parameter: what the optimizer reads, rendered once and bounded.

Two forms (prompts in ``prompts.py``):
- instruction-like variables (role names a prompt or an instruction): ``TGD_INSTRUCT_USER`` — the value as an
  assistant's instructions, each feedback item as an example of its work (the forward context's fields, then
  the feedback as the reviewer's note) in one fenced block, and the ask to write instructions that work for new
  inputs, never an answer to the examples;
- any other variable: ``TGD_USER`` — the value in ``<CURRENT_VALUE>``, each feedback item in ``<FEEDBACK>`` with
  its ``<CONTEXT>``, and the ask to fix what the feedback says.
Both carry the full current value once, each feedback item once (the first ``max_gradients``, the rest
counted) with its forward context in at most ``max_context_chars``, then the history window, the constraints and
the in-context examples. Images the feedback's forward steps read (``Feedback.images``) are attached to the
request (distinct by content hash, at most 8) and named before the history.
"""
from __future__ import annotations

from ..engines import Request
from ..functional import clip
from ..variable import Feedback, Variable
from . import prompts as P
from .newvalue import is_instruction


def context_fields(g: Feedback) -> tuple:
    """The (label, text) fields of the forward step behind ``g``: its ``context``, else its conversation without
    system messages and without the answer that IS the feedback."""
    fields = getattr(g, "context", ())
    if fields:
        return tuple(fields)
    conv = [m for m in getattr(g, "conversation", ()) if m.get("role") != "system"]
    if conv and conv[-1].get("role") == "assistant" and conv[-1].get("content") == g.value:
        conv = conv[:-1]
    return tuple((m.get("role", "?"), m.get("content", "")) for m in conv)


def bounded_fields(g: Feedback, max_chars: int, seen: dict | None = None, index: int = 0) -> tuple:
    """``context_fields(g)`` within ``max_chars``: the output gets half (its end is kept: the reasoning a
    feedback item is about), the other fields share the rest. ``seen`` (paragraph -> item index) shortens a long
    paragraph an earlier item already showed (a batch view routed to every example) to a pointer at that item."""
    fields = context_fields(g)
    if not fields or max_chars <= 0:
        return ()
    if seen is not None:
        fields = tuple((label, _dedupe(body, seen, index)) for label, body in fields)
    others = sum(label != "output" for label, _ in fields)
    out_share = max_chars // 2 if others else max_chars
    share = (max_chars - out_share) // others if others else 0
    return tuple((label, clip(body, out_share if label == "output" else share,
                              tail=0.5 if label == "output" else 0.25)) for label, body in fields)


def render_context(g: Feedback, max_chars: int, seen: dict | None = None, index: int = 0) -> str:
    """``bounded_fields`` as a ``<CONTEXT>`` block ("" when there is none)."""
    fields = bounded_fields(g, max_chars, seen, index)
    if not fields:
        return ""
    return P.TGD_CONTEXT.format(fields="".join(P.TGD_CONTEXT_FIELD.format(label=label, text=text)
                                               for label, text in fields))


def _dedupe(text: str, seen: dict, index: int) -> str:
    parts = []
    for para in text.split("\n\n"):
        first = seen.setdefault(para, index) if len(para) >= 80 else index
        parts.append(para if first == index else P.TGD_SEEN.format(i=first))
    return "\n\n".join(parts)


def _gradient_items(grads: list, group: dict, instruct: bool) -> str:
    items, seen = [], {}
    for i, g in enumerate(grads, 1):
        text = clip(g.value, group["max_gradient_chars"])
        if instruct:
            fields = bounded_fields(g, group["max_context_chars"], seen, i)
            body = "".join(P.TGD_INSTRUCT_FIELD.format(label=P.TGD_INSTRUCT_LABELS.get(label, label.capitalize()),
                                                       text=t) for label, t in fields)
            items.append(P.TGD_INSTRUCT_EXAMPLE.format(i=i, fields=body, text=text))
        else:
            items.append(P.TGD_GRADIENT.format(i=i, source=getattr(g, "source", "") or "?", text=text,
                                               context=render_context(g, group["max_context_chars"], seen, i)))
    return "".join(items)


def feedback_images(grads, limit: int = 8) -> tuple:
    """The distinct images (by content hash) the feedback items' forward steps read, at most ``limit``."""
    out, seen = [], set()
    for g in grads:
        for im in getattr(g, "images", ()):
            if im.sha256 not in seen and len(out) < limit:
                seen.add(im.sha256)
                out.append(im)
    return tuple(out)


def tactic_for(p: Variable, group: dict, step: int) -> str | None:
    """The technique step ``step`` (0-based, this parameter's own count) asks for: ``group["tactics"]`` in turn
    ("auto": ``P.INSTRUCT_TACTICS`` for instruction-like variables, none for others; empty: none)."""
    tactics = group["tactics"]
    if tactics == "auto":
        tactics = P.INSTRUCT_TACTICS if is_instruction(p.role) else ()
    return tactics[step % len(tactics)] if tactics else None


def build_request(p: Variable, group: dict, name: str, history: list, step: int = 0) -> Request:
    """The optimizer request for ``p`` (``group``: its options; ``history``: the window of past
    {step, value, feedback} records to show; ``step``: how many steps ``p`` has taken, which picks the
    tactic)."""
    grads: list[Feedback] = list(p.grad)
    shown = grads[: group["max_gradients"]]
    instruct = is_instruction(p.role)
    gradients = _gradient_items(shown, group, instruct)
    if len(grads) > len(shown):
        gradients += P.TGD_OMITTED.format(k=len(grads) - len(shown))
    past = P.TGD_HISTORY.format(items="".join(
        P.TGD_HISTORY_ITEM.format(step=h["step"], value=h["value"], feedback=h["feedback"]) for h in history)) \
        if history else ""
    images = feedback_images(shown)   # what the forward steps read: attached, and named before the history
    if images:
        past = P.TGD_IMAGES.format(n=len(images), images="; ".join(im.describe() for im in images)) + past
    constraints = P.TGD_CONSTRAINTS.format(items="".join(
        P.TGD_CONSTRAINT.format(text=c) for c in group["constraints"])) if group["constraints"] else ""
    examples = P.TGD_EXAMPLES.format(items="".join(
        P.TGD_EXAMPLE.format(text=e) for e in group["examples"])) if group["examples"] else ""
    tactic = tactic_for(p, group, step)
    tactic = P.TGD_TACTIC.format(tactic=tactic) if tactic else ""
    if instruct:
        user = P.TGD_INSTRUCT_USER.format(role=p.role, value=p.value, n=len(grads), gradients=gradients,
                                          history=past, constraints=constraints, examples=examples, tactic=tactic)
        system = P.INSTRUCT_SYSTEM
    else:
        user = P.TGD_USER.format(role=p.role, value=p.value, n=len(grads), gradients=gradients, history=past,
                                 constraints=constraints, examples=examples + tactic, ask=P.TGD_ASK_VALUE)
        system = P.TGD_SYSTEM
    return Request.chat(user, system=system, temperature=group["temperature"], max_tokens=group["max_tokens"],
                        role="optimizer", node=f"tgd:{name}", images=images)
