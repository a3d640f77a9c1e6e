"""Real run folders for the report tests: ``textopt optimize`` on scripted engines (TGD and beam search), one
with a step that is reverted, one whose prompts carry HTML."""
from __future__ import annotations

from textopt.cli import main
from textopt.engines import Request, ScriptedEngine, register

from tests.cli.scripted import NEW_PROMPT, _answer

WORSE = "Answer briefly."
HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=alert(1)> Answer the question."


def respond(req: Request) -> str:
    """Like ``tests.cli.scripted``; the optimizer's first proposal (a prompt without "count") makes the minibatch
    no better, so the Trainer reverts it; the next one is NEW_PROMPT (the rejected value is in its request)."""
    if req.role in ("forward", "eval"):
        n = _answer(req.messages[-1].content)
        return f"{n}. Let me count." if "count first" in (req.system or "") else f"Of 9 items, you have {n}."
    text = " ".join(m.content for m in req.messages)
    if req.role == "optimizer":
        new = NEW_PROMPT if WORSE in text else WORSE
        return (f"{new}</new_value>" if req.prefill else f"<NEW_VALUE>{new}</NEW_VALUE><new_value>{new}"
                                                           f"</new_value>")
    return "The system prompt must ask for the count first <b>now</b>."


def from_spec(rest: str, **kw) -> ScriptedEngine:
    return ScriptedEngine(respond, **kw)


register("reporttest", "tests.report.runs:from_spec")

BASE = ["optimize", "--task", "format_count", "--engine", "reporttest", "--batch-size", "2", "--train-size", "6",
        "--val-size", "5", "--test-size", "4", "--quiet", "--no-cache"]


def make_run(out, *extra: str, optimizer: str = "tgd", steps: int = 3) -> None:
    assert main(BASE + ["--optimizer", optimizer, "--steps", str(steps), "--out", str(out), *extra]) == 0
