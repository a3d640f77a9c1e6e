"""Prompts of the search optimizers (BeamSearch, ParetoEvolution, OPRO) and of test-time solution refinement.

Named constants plus the two helpers that render evidence into them (examples with their traces, and the
feedback of each objective kept apart with its weight). Every proposal comes back between tags through
``agenerate_tagged``; the tag names below never reach a parameter (the copy of a tag is rejected).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from ..functional import clip
from .prompts import INSTRUCT_ASK, INSTRUCT_SYSTEM

PROPOSAL_TAG = "new_value"
SOLUTION_TAG = "improved_solution"
RESERVED_TAGS = (PROPOSAL_TAG, SOLUTION_TAG, "current_value", "value")

SEARCH_SYSTEM = (
    "You improve one text component of an LLM program. You see its role, its current value, and how the program "
    "did on a few examples. Write a complete new value for the component that fixes the problems the evidence "
    "shows and keeps what works. Write only the new value: no commentary, no mention of these instructions, and "
    "do not paste the examples into it."
)

# Reflective edit (BeamSearch edits, ParetoEvolution mutation). {objectives} states the weights.
REFLECT_PROMPT = (
    "Component role: {role}\n"
    "<current_value>\n{value}\n</current_value>\n\n"
    "The program ran on these examples:\n{examples}\n\n"
    "{objectives}\n"
    "Your task is to write the next value of the component ({role}). {ask} Do not paste the examples or their "
    "answers into it."
)
# Reflective edit of an instruction-like component (a prompt, an instruction): the form a small model follows
# (see prompts.TGD_INSTRUCT_USER), with INSTRUCT_SYSTEM as its system prompt.
REFLECT_INSTRUCT_SYSTEM = INSTRUCT_SYSTEM
REFLECT_INSTRUCT_PROMPT = (
    "I gave an assistant these instructions (the {role}):\n<current_value>\n{value}\n</current_value>\n\n"
    "Here is how it did on some examples:\n```\n{examples}\n```\n\n{objectives}\n" + INSTRUCT_ASK
)
# {ask} of REFLECT_PROMPT (any other component).
REFLECT_ASK_VALUE = "Fix the problems the evidence shows and keep what works."

# Merge of two frontier candidates that differ in one component.
MERGE_PROMPT = (
    "Component role: {role}\n"
    "Two versions of this component each do best on different examples.\n"
    "<version_a>\n{a}\n</version_a>\n<version_b>\n{b}\n</version_b>\n"
    "Write one value that keeps the strengths of both."
)

# OPRO meta-prompt: past values with their scores, ascending (best last).
OPRO_SYSTEM = (
    "You propose new values for a text component of an LLM program. Earlier values and their scores are listed "
    "from worst to best. Propose a value different from all of them that should score higher. Write only the "
    "value."
)
OPRO_PROMPT = (
    "Component role: {role}\n"
    "Earlier values, worst to best (score: higher is better; {objectives_short}):\n{history}\n\n"
    "Examples of the task:\n{examples}\n\n"
    "Write a new value for the component ({role}) that scores higher than all of the above."
)
OPRO_ENTRY = "<value score={score:.3f}>\n{value}\n</value>"

# Test-time solution refinement.
SOLUTION_SYSTEM = (
    "You improve a solution to a problem using a critique of it. Keep what is right, fix what the critique says "
    "is wrong, and end with the final answer on its own line as 'Answer: <answer>'."
)
SOLUTION_LOSS = (
    "You check a solution to the problem below. Go through it step by step, name every error (where it is and "
    "why it is wrong) and say what must change. Do not write a full new solution.\nProblem:\n{question}"
)
SOLUTION_UPDATE = (
    "Problem:\n{question}\n\n<current_solution>\n{solution}\n</current_solution>\n\n"
    "Critique of the current solution:\n{feedback}\n\n"
    "Write the improved solution, ending with 'Answer: <answer>'."
)
SOLUTION_FIRST = "Solve this problem. Reason briefly, then give the final answer on its own line as " \
                 "'Answer: <answer>'.\n\n{question}"

# Fixed text a proposal must not copy (``newvalue.INSTRUCTION_SENTENCES``, with TGD's).
INSTRUCTION_BLOCKS = (SEARCH_SYSTEM, OPRO_SYSTEM, SOLUTION_SYSTEM, INSTRUCT_SYSTEM, INSTRUCT_ASK)

EXAMPLE_ENTRY = "<example {i}>\n{body}\n</example {i}>"
OBJECTIVE_HEADER = ("The score is a weighted sum of {n} objective(s), each with its own feedback below. Weights: "
                    "{weights}. Improve the heavily weighted objectives first, without sacrificing the others.")
OBJECTIVE_SECTION = "Feedback for objective '{name}' (weight {weight:g}):\n{text}"


def render_trace(trace, limit: int = 600) -> str:
    if trace is None:
        return ""
    if isinstance(trace, Mapping):
        return "\n".join(f"{k}: {clip(str(v), limit)}" for k, v in trace.items())
    return clip(str(trace), limit)


def render_examples(evals: Sequence, weights: Mapping[str, float], limit: int = 600) -> str:
    """Each example: its trace, its scores, and its feedback per objective (never merged across objectives)."""
    blocks = []
    for i, ev in enumerate(evals, 1):
        lines = [render_trace(ev.trace, limit)] if ev.trace is not None else []
        lines.append("scores: " + ", ".join(f"{k}={ev.scores.get(k, 0.0):.3g}" for k in weights))
        for name in weights:
            if ev.feedback.get(name):
                lines.append(OBJECTIVE_SECTION.format(name=name, weight=weights[name],
                                                      text=clip(str(ev.feedback[name]), limit)))
        blocks.append(EXAMPLE_ENTRY.format(i=i, body="\n".join(x for x in lines if x)))
    return "\n".join(blocks)


def render_objectives(weights: Mapping[str, float]) -> str:
    return OBJECTIVE_HEADER.format(n=len(weights), weights=", ".join(f"{k}={w:g}" for k, w in weights.items()))
