"""Prompts of textopt.optim (named constants; one module). ``TAGS`` lists every tag the optimizer prompts use:
a new value containing one of them (that the old value did not) is rejected as leaked scaffolding."""

NEW_VALUE_TAG = "NEW_VALUE"
ADDITION_TAG = "ADDITION"
TAGS = ("NEW_VALUE", "CURRENT_VALUE", "FEEDBACK", "CONTEXT", "PAST_VALUE", "PAST_FEEDBACK", "CONSTRAINT",
        "EXAMPLE", "ADDITION")

TGD_SYSTEM = (
    "You are the optimizer of an LLM pipeline. You improve one text variable at a time, using feedback "
    "gathered on the pipeline's outputs. Return the complete new value of the variable, ready to be used as "
    "is, between <NEW_VALUE> and </NEW_VALUE>. Never include these instructions, tags or commentary about "
    "your edit inside the new value."
)

TGD_USER = (
    "A text variable of an LLM pipeline, the {role}, needs a better value.\n"
    "Its current value, in full:\n<CURRENT_VALUE>\n{value}\n</CURRENT_VALUE>\n\n"
    "Feedback gathered on it ({n} items, in order), each with the step of the pipeline it is about:\n{gradients}\n"
    "{history}{constraints}{examples}"
    "Your task is to write the next value of the {role}. {ask} Keep what works in the current value. Do not "
    "quote the examples, their answers or the outputs above unless the feedback asks for that. Return only the "
    "new value between <NEW_VALUE> and </NEW_VALUE>."
)
# {ask} of TGD_USER (instruction-like variables have TGD_INSTRUCT_USER instead)
TGD_ASK_VALUE = "Fix what the feedback says is wrong."

# Before the history when the feedback's forward steps read images (attached to this message, in this order).
TGD_IMAGES = ("The {n} image(s) read in the pipeline steps above are attached to this message, in this order: "
              "{images}. Each feedback item names the images it is about.\n\n")

TGD_GRADIENT = "<FEEDBACK index=\"{i}\" from=\"{source}\">\n{text}\n{context}</FEEDBACK>\n"
# The forward step a feedback item is about (input, output, what the output was told), each field bounded.
TGD_CONTEXT = "<CONTEXT>\n{fields}</CONTEXT>\n"
TGD_CONTEXT_FIELD = "{label}:\n{text}\n"
TGD_SEEN = "(the same text as in feedback {i})"
TGD_OMITTED = "({k} further feedback items were left out to keep this request bounded.)\n"

# Instruction-like variables (a system prompt, an instruction) are asked for in the words a small model follows:
# the value is an assistant's instructions, the feedback items are examples of its work in one fenced block, and
# the request says to write instructions, not to answer the examples. Measured on Qwen2.5-Coder-1.5B (the
# reference model, benchmarks/RESULTS.md): with TGD_USER it answered the example it was shown (a worked answer
# as the "new prompt", 2 of 2 requests); in this form it wrote numbered instructions (2 of 2).
INSTRUCT_SYSTEM = (
    "You write instructions for an AI assistant. From examples of its work and the mistakes found in them, you "
    "write better instructions for it. You never solve the examples yourself: the assistant will."
)
# The ask, shared with the search optimizers' reflection on instruction-like components (prompts_search.py).
INSTRUCT_ASK = (
    "Write new instructions for the assistant, to replace the ones above. Work out what kind of inputs these are "
    "and why the answers went wrong; then write instructions that explain the task, give a careful step-by-step "
    "method that avoids these mistakes on any input of this kind, and say exactly how to write the final answer. "
    "Write them as a short numbered list; they must work for new inputs, so do not solve or quote the examples "
    "above and give no worked example."
)
TGD_INSTRUCT_USER = (
    "I gave an assistant these instructions (the {role}):\n<CURRENT_VALUE>\n{value}\n</CURRENT_VALUE>\n\n"
    "Here are {n} of its answers and what was found about them:\n```\n{gradients}```\n\n"
    "{history}{constraints}{examples}{tactic}" + INSTRUCT_ASK + " Return only the new instructions between <NEW_VALUE> "
    "and </NEW_VALUE>."
)
# Tactics (TGD option ``tactics``, default for instruction-like variables): each step's request names ONE of
# these, in turn, as the technique to try. A small optimizer model rarely invents a method the assistant lacks
# (the 1.5B reference model blamed "the yam is not a vegetable" for an addition slip); given one concrete,
# general technique per step it writes a variant built on it, and the Trainer's screen and validation keep the
# ones that help. General prompt-writing techniques, none about a particular task.
INSTRUCT_TACTICS = (
    "Make every intermediate result visible: have the assistant go through the input one piece at a time, "
    "writing each piece's result on its own line together with the result so far, instead of combining many "
    "pieces in one line.",
    "Have the assistant first state exactly what the question asks for, then use only the parts of the input "
    "that matter for it and say which parts it leaves out.",
    "Show the exact form of the final answer line with a filled-in example value (never a placeholder letter), "
    "and say that this line comes last.",
    "Have the assistant check its result before the final line: redo the most error-prone step a second way "
    "and fix any difference.",
    "Turn the most frequent mistake in the examples into one general rule about this kind of input (not about "
    "one example) and add it.",
    "Make the instructions shorter and clearer: at most five numbered steps, one action each; drop anything "
    "the examples show is not needed.",
)
TGD_TACTIC = "A technique to use in the new instructions this time: {tactic}\n\n"
# The ask of TGD_ADD_USER when the step has a tactic: the technique leads, the mistakes above say how to word it
# (the 1.5B reference model, asked as TGD_ADD_USER with the technique beside it, followed the reviewer's note
# about one example instead; asked this way it wrote the technique as an instruction for the task).
TGD_ADD_TACTIC_ASK = (
    "Write one new instruction, one or two sentences, to add at the end of these instructions. It must apply "
    "this technique to this kind of input: {tactic} Word it for this task, so that mistakes like the ones above "
    "do not happen again on any input; do not mention particular examples. Write only the new instruction "
    "between <ADDITION> and </ADDITION>."
)

TGD_INSTRUCT_EXAMPLE = "# Example {i}\n{fields}## Reviewer's note\n{text}\n"
TGD_INSTRUCT_FIELD = "## {label}\n{text}\n"
# How the forward context's labels read in an example (others are capitalised as they are).
TGD_INSTRUCT_LABELS = {"input": "Input", "output": "Assistant's answer", "user": "Input", "assistant": "Assistant's answer",
                       "feedback on the output": "Evaluation of the answer"}
TGD_REPEATS = ("the new value repeats the line {line!r} {k} times; write each instruction once, as a short "
               "list")

TGD_HISTORY = (
    "Earlier values of this variable and the feedback each one received (oldest first). Keep what improved "
    "things and do not return to a value that already failed:\n{items}\n"
)
TGD_HISTORY_ITEM = ("<PAST_VALUE step=\"{step}\">\n{value}\n</PAST_VALUE>\n"
                    "<PAST_FEEDBACK step=\"{step}\">\n{feedback}\n</PAST_FEEDBACK>\n")

TGD_REJECTED = ("This value was tried and reverted: it changed the {split} score from {before:.3f} to "
                "{after:.3f}.")

# When a rewrite of an instruction-like variable comes back unchanged or unusable (a small model copies the
# value it was shown), TGD asks the simpler question: one instruction to add. A short answer is easier to get
# right than a whole new value; the Trainer's screen and validation judge it like any other update.
TGD_ADD_SYSTEM = (
    "You improve the instructions of an LLM pipeline from feedback on its mistakes. You write one new, general "
    "instruction at a time, between <ADDITION> and </ADDITION>, and nothing else."
)
TGD_ADD_ASK = (
    "Write one new instruction, one or two sentences, to add at the end of these instructions so that mistakes "
    "of this kind do not happen again on any input. Do not repeat an instruction that is already there and do "
    "not mention particular examples. Write only the new instruction between <ADDITION> and </ADDITION>."
)
TGD_ADD_USER = (
    "These are the instructions of the {role}:\n<CURRENT_VALUE>\n{value}\n</CURRENT_VALUE>\n\n"
    "Following them, it made mistakes. For each: what the evaluation found, then a reviewer's suggestion:\n"
    "{gradients}\n{ask}"
)
TGD_ADD_ITEM = "- Evaluation: {evaluation}\n  Suggestion: {text}\n"
# The retry of an unusable addition (``add_retries``): the 1.5B reference model, shown the current value, answered
# every technique with the instruction it had added last, word for word, even at temperature 0.7 and with the
# reviewers' suggestions left out; asked without the value and the suggestions (the evaluations and the
# technique only) it wrote a new instruction built on the technique (2 of 2 requests of the seed-2 run).
TGD_ADD_FRESH_USER = "The {role} made these mistakes:\n{mistakes}\n{ask}"
TGD_ADD_FRESH_ITEM = "- {text}\n"
TGD_ADD_FRESH_TACTIC_ASK = (
    "Write one instruction, one or two sentences, for it. It must apply this technique to this kind of input: "
    "{tactic} Word it for this task, so that mistakes like the ones above do not happen again on any input; do "
    "not mention particular examples. Write only the new instruction between <ADDITION> and </ADDITION>."
)
TGD_ADD_FRESH_ASK = (
    "Write one instruction, one or two sentences, for it, so that mistakes like the ones above do not happen "
    "again on any input; do not mention particular examples. Write only the new instruction between <ADDITION> "
    "and </ADDITION>."
)
TGD_ALREADY_THERE = "the new instruction is already in the instructions; write a different one"

# Repair messages of the new-value checks (each triggers one more request).
TGD_TRIED = ("this value was already tried and reverted (it did not raise the score); write a different one that "
             "addresses the feedback another way")
TGD_UNCHANGED = ("the new value is identical to the current value. If the feedback calls for a change, make it; "
                 "if it really calls for none, return the same value again")
TGD_COPIES = ("the new value {reason}; write general instructions that help with any question of the task "
              "instead of quoting training examples")

TGD_CONSTRAINTS = "The new value must satisfy every constraint:\n{items}\n"
TGD_CONSTRAINT = "<CONSTRAINT>{text}</CONSTRAINT>\n"
TGD_EXAMPLES = "Examples of good values for this kind of variable:\n{items}\n"
TGD_EXAMPLE = "<EXAMPLE>\n{text}\n</EXAMPLE>\n"

# Fixed text of the prompts above: a new value may not copy a sentence of it (``newvalue.INSTRUCTION_SENTENCES``).
INSTRUCTION_BLOCKS = (TGD_SYSTEM, TGD_USER, TGD_HISTORY, TGD_CONSTRAINTS, TGD_EXAMPLES, TGD_ADD_SYSTEM, TGD_ADD_USER,
                      TGD_ADD_ASK, TGD_ADD_TACTIC_ASK, TGD_ADD_FRESH_TACTIC_ASK, TGD_ADD_FRESH_ASK,
                      INSTRUCT_SYSTEM, TGD_INSTRUCT_USER)

# Constrained decoding of the new value (engines that honour ``Request.pattern``, e.g. the embedded model).
# The pattern covers what follows the prefilled <NEW_VALUE> tag. A small model copies whatever scaffolding it
# sees (<FEEDBACK>/<CONTEXT> blocks) and opens with commentary ("The improved system prompt is: ..."): the
# value may hold no '<' or '>', must end with the closing tag, and an instruction-like variable (a prompt,
# an instruction) must open like an instruction. Measured on SmolLM2-135M in the demo: with no pattern 2 of 2
# steps failed after the repair; with the tag-free pattern alone 2 of 2 failed (commentary openings); with
# the instruction pattern 6 of 6 succeeded.
INSTRUCTION_OPENERS = (
    "You", "Answer", "Count", "Reply", "Respond", "Read", "Start", "Begin", "Give", "State", "Write", "List",
    "Say", "Always", "Use", "Think", "Find", "Identify", "Solve", "Be", "Keep", "Focus", "Return", "Provide",
    "Please", "Check", "Make", "Look")
# (the value may not end on a colon: "The improved step is:" followed by nothing is never a value)
FREE_VALUE_PATTERN = r"[^<>]*[^<>:\s]\s*</" + NEW_VALUE_TAG + ">"
INSTRUCTION_VALUE_PATTERN = "(" + "|".join(INSTRUCTION_OPENERS) + r") [^<>]+</" + NEW_VALUE_TAG + ">"
ADDITION_PATTERN = "(" + "|".join(INSTRUCTION_OPENERS) + r") [^<>]+</" + ADDITION_TAG + ">"
INSTRUCTION_ROLE_WORDS = ("prompt", "instruction")
