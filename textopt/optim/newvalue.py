"""The one check of a proposed new value, shared by TGD and the search optimizers (``check_new_value``).

A proposal is refused (``ValueError``: the caller's one repair request quotes the reason) when it is empty;
holds a tag of the optimizer prompts (``TAGS``, any case) or an upper-case prompt tag the current value does not
hold; opens with commentary about the edit; copies a fixed sentence of the optimizer prompts
(``INSTRUCTION_SENTENCES``: TGD's and the search optimizers', one list); or, for an instruction-like role, says
one line three times (a small model's decoding loop). ``strip_commentary`` drops a leading "Here is the new
value:" line first; ``check_not_rejected`` refuses a value the caller already reverted.
"""
from __future__ import annotations

import difflib
import re

from . import prompts as P
from . import prompts_search as PS

TAGS = tuple(dict.fromkeys(t.upper() for t in (*P.TAGS, *PS.RESERVED_TAGS)))


def _sentences(*blocks: str) -> tuple:
    return tuple(s.strip() for block in blocks for s in re.split(r"(?<=[.:!?])\s+|\n", block)
                 if len(s.strip()) >= 30 and "{" not in s and "<" not in s)


# Fixed sentences of the optimizer prompts: a new value that contains one (and the old value did not) copied
# the optimizer's instructions instead of improving the variable.
INSTRUCTION_SENTENCES = tuple(dict.fromkeys(_sentences(*P.INSTRUCTION_BLOCKS, *PS.INSTRUCTION_BLOCKS)))
SIMILAR_TO_REJECTED = 0.9  # difflib ratio above which a new value counts as one the caller reverted

_SCAFFOLD_TAG = re.compile(r"</?([A-Z][A-Z_]{2,})\b")  # every prompt tag of textopt is upper case
_COMMENTARY = re.compile(r"(here is|here's|below is)\b.{0,40}\b(improved|new|updated|revised|better)\b"
                         r"|(the )?(improved|updated|revised|new) (version|value|variable)\b"
                         r"|the (improved|updated|revised) ")


_COMMENTARY_LEAD = re.compile(r"\s*((the|your) (improved|updated|revised|new|better) [^:\n]{0,80}?|"
                              r"(here is|here's|below is) [^:\n]{0,80}?)\s*:\s*\n?", re.I)


def is_instruction(role: str | None) -> bool:
    """Whether a parameter with this role is an instruction (a prompt): TGD's tactics and add-edits, the
    searches' reflection prompt and the repeat check apply to those only."""
    return bool(role) and any(w in role.lower() for w in P.INSTRUCTION_ROLE_WORDS)


def strip_commentary(value: str) -> str:
    """Drop a leading "The improved <role> is:" / "Here is the new value:" line when real content follows it
    (small models open with one; the constrained pattern guarantees content after it)."""
    m = _COMMENTARY_LEAD.match(value)
    return value[m.end():].strip() if m and value[m.end():].strip() else value


def check_new_value(value: str, current: str, role: str | None = None) -> None:
    """Raise ``ValueError`` (which triggers the repair) when ``value`` is unusable as a new parameter value:
    empty; containing an optimizer tag or any upper-case prompt tag (``<SYSTEM_PROMPT>``, ``<FEEDBACK>``...)
    that the current value does not contain; copying an instruction sentence; opening with commentary about
    the edit ("The improved system prompt is: ...")."""
    if not value.strip():
        raise ValueError("the new value is empty; write the complete improved variable")
    for tag in TAGS:
        pat = re.compile(rf"</?{tag}\b", re.I)
        if pat.search(value) and not pat.search(current):
            raise ValueError(f"the new value contains the optimizer's tag <{tag}>; return only the variable "
                             f"itself, without any tags")
    own = set(_SCAFFOLD_TAG.findall(current))
    leaked = [t for t in dict.fromkeys(_SCAFFOLD_TAG.findall(value)) if t not in own]
    if leaked:
        raise ValueError(f"the new value contains the prompt tag <{leaked[0]}>; return only the variable itself, "
                         f"without any tags")
    head = value.strip().lower()[:160]
    commentary = _COMMENTARY.match(head) or (role and head.startswith(f"the {role.lower()} is"))
    if commentary and not current.strip().lower().startswith(head[:16]):
        raise ValueError("the new value starts with commentary about the edit; return only the variable itself")
    if is_instruction(role):
        _check_repeats(value, current)
    low, cur = value.lower(), current.lower()
    for sentence in INSTRUCTION_SENTENCES:
        s = sentence.lower().rstrip(".:")
        if s in low and s not in cur:
            raise ValueError(f"the new value copies the optimizer's instruction {sentence!r}; return only the "
                             f"improved variable")


SHORT_LINE = 8   # shorter lines ("A:", "---") repeat in legitimate formats


def _check_repeats(value: str, current: str) -> None:
    """Instructions that say the same line three times are a small model's decoding loop, not a value."""
    lines = [" ".join(x.split()).lower().lstrip("0123456789.-*) ") for x in value.splitlines()]
    counts: dict = {}
    for line in lines:
        if len(line) >= SHORT_LINE:
            counts[line] = counts.get(line, 0) + 1
    low = current.lower()
    for line, k in sorted(counts.items(), key=lambda kv: -kv[1]):
        # a sentence said three times is a loop; a short line ("Answer: N", a label) five times (the demo's
        # 135M model wrote "The assistant will." nine times); what the current value already repeats is kept
        if k >= (3 if len(line) >= 20 else 5) and low.count(line) < k:
            raise ValueError(P.TGD_REPEATS.format(line=line[:80], k=k))


def check_not_rejected(value: str, rejected) -> None:
    """A value the caller already reverted (``record_rejection``) would only be reverted again: a small model
    shown it in the history tends to return it verbatim (measured: 12 of 12 steps on Qwen2.5-Coder-1.5B)."""
    norm = " ".join(value.split()).lower()
    for old in rejected:
        o = " ".join(old.split()).lower()
        if norm == o or difflib.SequenceMatcher(None, norm, o, autojunk=False).ratio() >= SIMILAR_TO_REJECTED:
            raise ValueError(P.TGD_TRIED)
