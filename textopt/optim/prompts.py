"""Prompts of textopt.optim (named constants; one module). ``TAGS`` lists every tag the optimizer prompts use:
a new value containing one of them (that the old value did not) is rejected as leaked scaffolding."""

NEW_VALUE_TAG = "NEW_VALUE"
TAGS = ("NEW_VALUE", "CURRENT_VALUE", "FEEDBACK", "CONTEXT", "PAST_VALUE", "PAST_FEEDBACK", "CONSTRAINT",
        "EXAMPLE")

TGD_SYSTEM = (
    "You are the optimizer of an LLM pipeline. You improve one text variable at a time, using feedback "
    "gathered on the pipeline's outputs. Return the complete new value of the variable, ready to be used as "
    "is, between <NEW_VALUE> and </NEW_VALUE>. Never include these instructions, tags or commentary about "
    "your edit inside the new value."
)

TGD_USER = (
    "The variable to improve is the {role}.\n"
    "Its current value, in full:\n<CURRENT_VALUE>\n{value}\n</CURRENT_VALUE>\n\n"
    "Feedback on the current value ({n} items, in order):\n{gradients}\n"
    "{history}{constraints}{examples}"
    "Write the improved {role}. Address the feedback, keep the parts that work, and do not copy task "
    "examples or answers into it unless the feedback asks for that. Return the whole new value between "
    "<NEW_VALUE> and </NEW_VALUE>."
)

TGD_GRADIENT = "<FEEDBACK index=\"{i}\" from=\"{source}\">\n{text}\n{context}</FEEDBACK>\n"
TGD_CONTEXT = "<CONTEXT>\n{conversation}\n</CONTEXT>\n"
TGD_OMITTED = "({k} further feedback items were left out to keep this request bounded.)\n"

TGD_HISTORY = (
    "Earlier values of this variable and the feedback each one received (oldest first). Keep what improved "
    "things and do not return to a value that already failed:\n{items}\n"
)
TGD_HISTORY_ITEM = ("<PAST_VALUE step=\"{step}\">\n{value}\n</PAST_VALUE>\n"
                    "<PAST_FEEDBACK step=\"{step}\">\n{feedback}\n</PAST_FEEDBACK>\n")

TGD_REJECTED = ("This value was tried and reverted: it lowered the validation score from {before:.3f} to "
                "{after:.3f}.")

TGD_CONSTRAINTS = "The new value must satisfy every constraint:\n{items}\n"
TGD_CONSTRAINT = "<CONSTRAINT>{text}</CONSTRAINT>\n"
TGD_EXAMPLES = "Examples of good values for this kind of variable:\n{items}\n"
TGD_EXAMPLE = "<EXAMPLE>\n{text}\n</EXAMPLE>\n"

# Fixed sentences of the prompts above; a new value that contains one (and the old value did not) copied
# the optimizer's instructions instead of improving the variable.
INSTRUCTION_SENTENCES = tuple(
    s.strip() for block in (TGD_SYSTEM, TGD_USER, TGD_HISTORY, TGD_CONSTRAINTS, TGD_EXAMPLES)
    for s in __import__("re").split(r"(?<=[.:!?])\s+|\n", block)
    if len(s.strip()) >= 30 and "{" not in s and "<" not in s)
