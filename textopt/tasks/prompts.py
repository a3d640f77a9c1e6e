"""Texts of textopt.tasks that reach an LLM (named constants; one module): the starting prompts of the tasks,
the role of the optimized prompt, and the metric explanations that seed the backward pass."""

# -- starting prompts ----------------------------------------------------------------------------------------
BBH_PROMPTS = {
    "choice": "Answer the question. Think step by step, then finish with the line 'Answer: (X)' where X is the "
              "letter of your option.",
    "number": "Answer the question. Think step by step, then finish with the line 'Answer: N' where N is a number.",
    "bool": "Answer the question. Think step by step, then finish with the line 'Answer: True' or 'Answer: False'.",
    "yesno": "Answer the question. Think step by step, then finish with the line 'Answer: Yes' or 'Answer: No'.",
    "validity": "Answer the question. Think step by step, then finish with the line 'Answer: valid' or "
                "'Answer: invalid'.",
    "text": "Answer the question. Think step by step, then finish with the line 'Answer: <your answer>'.",
}
GSM8K_PROMPT = ("Solve the math word problem. Reason step by step, then finish with the line 'Answer: N' where N is "
                "the final number.")
COUNTING_PROMPT = "Answer the question."
ARITHMETIC_PROMPT = "Compute the value of the expression."
SORTING_PROMPT = "Sort the words."
DEMO_PROMPT = "Answer the question."

# -- the role of the optimized system prompt (what the backward and optimizer LLMs are told it is for) ---------
PROMPT_ROLE = "system prompt of the language model that answers each question of the task ({task})"

# -- metric explanations (the seeds of backward) ---------------------------------------------------------------
NUMBER_MISSING = "The expected answer is {target}, but the response contains no number: {response}."
NUMBER_LINE_EMPTY = ("Wrong format: the final answer line {line} holds no number (the expected answer is {target}); "
                     "the line must give the number itself. The response was {response}.")
NUMBER_OK = "Correct: the answer {got} matches the expected {target}."
NUMBER_BAD = "Wrong answer: expected {target}, got {got}. The response was {response}."
CHOICE_MISSING = "The expected option is {target}, but the response names no option like (A): {response}."
CHOICE_OK = "Correct: option {got}."
CHOICE_BAD = "Wrong option: expected {target}, got {got}. The response was {response}."
LABEL_MISSING = "The expected answer is {target!r} (one of {labels}), but the response gives none of them: {response}."
LABEL_OK = "Correct: {got}."
LABEL_BAD = "Wrong answer: expected {target}, got {got}. The response was {response}."
TEXT_OK = "Correct: the answer matches exactly."
TEXT_BAD = "Wrong answer: expected {target!r}, got {got!r}."
SORT_OK = "Correct: the words are in alphabetical order."
SORT_BAD = "Wrong order: expected {target!r}, got {got}."
DEMO_MISSING = ("Wrong format: the reply must start with the count ({target}), but it contains no number at all. "
                "The reply was {response}.")
DEMO_OK = "Correct: the reply starts with the count {target}."
DEMO_BAD = ("Wrong: the first number of the reply must be the count, {target}, but it is {got}. Start the reply "
            "with the count itself. The reply was {response}.")

# Test-time code optimization (textopt.tasks.code): the first attempt, the code variable's role, TGD's constraint.
CODE_FIRST = ("Solve this programming problem in Python.\n{statement}\n"
              "Write the complete function (and any imports or helpers it needs). Return only Python source code, "
              "no explanation, no tests.")
CODE_ROLE = "Python source of the function {entry} solving a programming problem"
CODE_CONSTRAINTS = ("Return only the complete Python source code of the solution: no explanation, no tests.",
                    "The code must solve this problem: {statement}")
