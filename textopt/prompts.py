"""Backward prompts of the core (named constants; one module). The backward LLM is asked for criticism and
strategies — never for a rewrite of the variable."""

BACKWARD_SYSTEM = (
    "You are the feedback engine of an optimization system that improves the text variables of an LLM pipeline. "
    "You receive one step of the pipeline (what the model was told, what it produced) and feedback on its "
    "output. Explain concisely how the named variable should change so the output improves: point to concrete "
    "problems and give actionable strategies. Do not rewrite the variable and do not answer the task yourself."
)

# An LLM call whose output was evaluated directly (the output is the loss).
BACKWARD_LLM_EVAL = (
    "The language model received this system prompt:\n<SYSTEM_PROMPT>{system}</SYSTEM_PROMPT>\n"
    "and this input:\n<INPUT>{input}</INPUT>\n"
    "It produced:\n<OUTPUT>{output}</OUTPUT>\n"
    "This output is itself the evaluation we want to improve.\n"
    "Give feedback on the {role} (its current value: <VARIABLE>{value}</VARIABLE>): what should change in it so "
    "that the evaluation becomes better? Be specific and brief."
)

# An LLM call whose output received feedback from downstream.
BACKWARD_LLM = (
    "The language model received this system prompt:\n<SYSTEM_PROMPT>{system}</SYSTEM_PROMPT>\n"
    "and this input:\n<INPUT>{input}</INPUT>\n"
    "It produced:\n<OUTPUT>{output}</OUTPUT>\n"
    "The output (the {output_role}) received this feedback:\n<OUTPUT_FEEDBACK>{feedback}</OUTPUT_FEEDBACK>\n"
    "Give feedback on the {role} (its current value: <VARIABLE>{value}</VARIABLE>). First point to the exact "
    "place where the output went wrong (quote the step or line) and name the kind of mistake; then say what the "
    "{role} should add or change so that this kind of mistake does not happen on other inputs either. Be "
    "specific and brief."
)

# Appended to a backward prompt whose forward call read images (they are attached to the same message).
BACKWARD_IMAGES = (
    "\nThe input also included {n} image(s), attached to this message in the same order ({images}). Look at "
    "them: say whether the output read them correctly, and what in the {role} would make the model read such "
    "images better."
)

# concat routes feedback on the whole text to each part, without an LLM call.
# (one text for all parts: the receiving step names its own role)
CONCAT_FEEDBACK = "Feedback on a text made by joining {roles}, of which this is one part:\n{feedback}"


_PLANS: dict[str, tuple | None] = {}


def fill(template: str, /, **fields) -> str:
    """``template.format(**fields)`` for templates with plain ``{name}`` fields, parsed once per template: a
    backward pass fills one long prompt per edge, and ``str.format`` re-parses it each time (5-7x slower on
    these prompts). Fields with a format spec, a conversion or an index fall back to ``str.format``; a value
    that is not a str is formatted as ``str.format`` does (a str subclass is taken as its text)."""
    plan = _PLANS.get(template, False)
    if plan is False:
        if len(_PLANS) > 512:   # user templates (FormattedLLMCall) are few; never grow without bound
            _PLANS.clear()
        plan = _PLANS[template] = _plan(template)
    if plan is None:
        return template.format(**fields)
    segments, values = plan
    out = segments.copy()
    out[1::2] = values(fields)   # every field's value (in template order, one call) between the literal segments
    try:
        return "".join(out)
    except TypeError:            # a value that is not a str
        out[1::2] = [v if isinstance(v, str) else format(v) for v in values(fields)]
        return "".join(out)


def _plan(template: str) -> tuple | None:
    """(the literal segments with a place after each but the last for a field's value, a function: fields -> the
    fields' values in order), or None for a template that only ``str.format`` can fill."""
    import string
    from operator import itemgetter
    segments, names = [""], []    # even positions: literal text; odd positions: a field's value
    for literal, name, spec, conversion in string.Formatter().parse(template):
        segments[-1] += literal
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            return None
        segments += ["", ""]
        names.append(name)
    if len(names) == 1:
        return segments, lambda fields, name=names[0]: (fields[name],)
    return segments, itemgetter(*names) if names else (lambda fields: ())
