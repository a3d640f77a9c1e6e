"""Prompts and feedback templates of the text <-> number bridges (named constants; one module)."""

# -- text -> number: feedback to the text input, built from d loss / d score (no LLM call) -------------------
SCORE_FEEDBACK = (
    "This {role} was scored by {what}: {value}. The training objective improves when this score {way}s "
    "(d loss / d score = {grad:+.4g}).{explanation}"
)
SCORE_EXPLANATION = "\nWhat the scorer said: {text}"

LOGPROB_FEEDBACK = (
    "Under the scoring model, the log-probability of the target continuation <TARGET>{target}</TARGET> after "
    "this {role} is {total:.3f} ({n} tokens, mean {mean:.3f} per token; least likely token at position {worst} "
    "with {worst_lp:.3f}). The objective improves when this log-probability {way}s (d loss / d log-prob = "
    "{grad:+.4g}): change the {role} so that the target becomes a {adj} natural continuation."
)

SIMILARITY_FEEDBACK = (
    "The embedding of this {role} has cosine similarity {value:.3f} with {other}. The objective improves when "
    "this similarity {way}s (d loss / d similarity = {grad:+.4g}): make the {role} {adj} in meaning to it."
)

# -- LLM judge that returns a number -------------------------------------------------------------------------
JUDGE_SYSTEM = (
    "You are a strict evaluator. Read the instruction and the text to evaluate. Give a numeric score between "
    "{low} and {high} ({high} is best) and a short critique that names the concrete problems of the text."
)
JUDGE_USER = "Instruction:\n{instruction}\n\nText to evaluate:\n<TEXT>{text}</TEXT>"

# -- number -> text: per-item judgements of the items a tensor chose -----------------------------------------
ITEM_LINE = "[{i}] {text}"
ITEM_LINE_WEIGHTED = "[{i}] (weight {w:.2f}) {text}"
ITEMS_SYSTEM = (
    "You judge the items that were selected and placed into a prompt. Given the feedback on the text those items "
    "formed, decide for each item whether it helped, harmed, or did not matter for the outcome."
)
ITEMS_USER = (
    "The items below ({role}) were chosen by a learned scorer and formatted into a prompt:\n{items}\n\n"
    "The text they formed received this feedback:\n<FEEDBACK>{feedback}</FEEDBACK>\n\n"
    "For each of the {n} items, in order, answer \"helpful\", \"harmful\" or \"neutral\"."
)
