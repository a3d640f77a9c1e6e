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
    "Give feedback on the {role} (its current value: <VARIABLE>{value}</VARIABLE>): how should it change so "
    "that the output addresses the feedback above? Be specific and brief."
)

# concat routes feedback on the whole text to each part, without an LLM call.
CONCAT_FEEDBACK = "Feedback on a text made by joining {roles}, of which this {role} is one part:\n{feedback}"
