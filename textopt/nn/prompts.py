"""Prompts of textopt.nn (named constants; one module): backward of formatted calls, Python-function nodes,
batch aggregation, and the judges of the multi-field loss. Backward prompts ask for criticism and strategies,
never for a rewrite."""

# FormattedLLMCall: a template filled with named fields; feedback for one field.
BACKWARD_FORMATTED = (
    "The language model received this system prompt:\n<SYSTEM_PROMPT>{system}</SYSTEM_PROMPT>\n"
    "Its input was built from the template\n<TEMPLATE>{template}</TEMPLATE>\n"
    "by filling the field {{{field}}} (the {role}) with:\n<VARIABLE>{value}</VARIABLE>\n"
    "The full input was:\n<INPUT>{input}</INPUT>\n"
    "It produced:\n<OUTPUT>{output}</OUTPUT>\n"
    "{feedback_block}"
    "Give feedback on the field {{{field}}} only: how should its value change so that the output improves? "
    "Be specific and brief."
)
FEEDBACK_BLOCK = ("The output (the {output_role}) received this feedback:\n"
                  "<OUTPUT_FEEDBACK>{feedback}</OUTPUT_FEEDBACK>\n")
EVAL_BLOCK = "This output is itself the evaluation we want to improve.\n"

# tx.function: a Python function node; feedback for one of its inputs.
BACKWARD_FUNCTION = (
    "A Python function `{name}` ran as one step of the pipeline. Its purpose: {purpose}\n"
    "Its inputs were:\n{inputs}\n"
    "It returned:\n<OUTPUT>{output}</OUTPUT>\n"
    "{feedback_block}"
    "Give feedback on the input {target} (the {role}): how should it change so that the function's output "
    "improves? The function itself cannot change. Be specific and brief."
)
FUNCTION_INPUT = "<INPUT name=\"{name}\" role=\"{role}\">{value}</INPUT>"

# tx.aggregate: summarise the feedback of a batch when it exceeds the token cap.
AGGREGATE_SYSTEM = (
    "You condense the evaluations of a batch of examples into one short report for the engineer who tunes "
    "the pipeline. Keep every distinct failure pattern, how often it occurs, and concrete evidence; drop "
    "repetition and praise."
)
AGGREGATE_SUMMARY = (
    "Here are the evaluations of {n} examples, in order:\n{items}\n"
    "Summarise them in at most {words} words: the recurring problems first (with how many examples show each), "
    "then isolated ones."
)
AGGREGATE_ITEM = "<EVALUATION example=\"{i}\">{text}</EVALUATION>"
# What each aggregated input receives (once): its own evaluation and the batch view.
AGGREGATE_ROUTE = (
    "Evaluation of this example ({i} of {n}):\n{own}\n\n"
    "What the evaluations of the whole batch say:\n{batch}"
)

# MultiFieldLoss: the judge sees several named fields.
MULTI_FIELD_ITEM = "<{name} role=\"{role}\">{value}</{name}>"
MULTI_FIELD_USER = "Evaluate using these fields:\n{fields}"
MULTI_FIELD_ROUTE = "Evaluation of the fields {names}, concerning the field {field} (the {role}):\n{evaluation}"

# Metric losses: the explanation that seeds backward (feedback texts, not LLM prompts).
EXACT_OK = "Correct: the response matches the expected answer {expected!r}."
EXACT_BAD = "Wrong answer: expected {expected!r}, got {got!r}."
NUMBER_OK = "Correct: expected {expected}, got {got}."
NUMBER_BAD = "Wrong answer: expected {expected}, got {got}."
NUMBER_MISSING = "Wrong answer: expected {expected}, but the response contains no number it could be read from."
REGEX_OK = "The response has the required form (it matches /{pattern}/)."
REGEX_BAD = "The response does not have the required form: it must match the pattern /{pattern}/."
F1_TEXT = "Token F1 {f1:.2f} against the reference. Missing words: {missing}. Unexpected words: {extra}."
METRIC_DOWNSTREAM = "The metric's verdict ({verdict}) received this feedback:\n{feedback}"

# DemoCall: the header of the few-shot demonstrations appended to the system prompt.
DEMOS_HEADER = "Examples of correct answers:"
