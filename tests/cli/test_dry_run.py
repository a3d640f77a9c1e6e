"""``textopt optimize --dry-run``: an estimate of the whole run that makes no call, checked against real runs."""
import json
import threading

import pytest

from textopt.cli import main
from textopt.engines import Request, ScriptedEngine, register
from textopt.errors import DataError
from textopt.estimate import estimate_optimize

register("drytest", "tests.cli.test_dry_run:from_spec")
SIZES = ["--train-size", "6", "--val-size", "4", "--test-size", "5"]


class Steps:
    """Forward answers are always wrong (every example fails, so every step backpropagates its whole batch);
    each optimizer answer is a new prompt (so every step changes the prompt and is validated)."""

    def __init__(self):
        self.n, self.lock = 0, threading.Lock()

    def __call__(self, req: Request) -> str:
        if req.role in ("forward", "eval"):
            return "I am not sure how many there are."
        if req.role == "optimizer":
            tag = "new_value" if "<new_value>" in req.messages[-1].content else "NEW_VALUE"   # search / TGD
            with self.lock:
                self.n += 1
                return f"<{tag}>Count the items one by one and give the count first, version {self.n}.</{tag}>"
        return "The prompt should ask for the count first, as a number."


def from_spec(rest: str, **kw) -> ScriptedEngine:
    return ScriptedEngine(Steps(), model="drytest", **kw)


def _usage(out) -> dict:
    return json.loads((out / "summary.json").read_text())["usage"]["by_role"]


def _estimate(capsys, args) -> dict:
    assert main(["optimize", "--task", "format_count", "--engine", "drytest", "--quiet", *SIZES, *args,
                 "--dry-run", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("steps,batch", [(2, 3), (3, 2)])
def test_tgd_estimate_matches_a_deterministic_run(tmp_path, capsys, steps, batch):
    """No early exit anywhere (every example fails, every step changes the prompt, no screening): the estimated
    calls are the run's calls, role by role; tokens are upper estimates within a stated factor."""
    args = ["--steps", str(steps), "--batch-size", str(batch), "--feedback-from", "all", "--no-screen"]
    est = _estimate(capsys, args)
    out = tmp_path / "run"
    assert main(["optimize", "--task", "format_count", "--engine", "drytest", "--quiet", *SIZES, *args,
                 "--no-cache", "--out", str(out)]) == 0
    used = _usage(out)
    assert {r: v["calls"] for r, v in est["by_role"].items()} == {r: v["calls"] for r, v in used.items()}
    assert est["total"]["calls"] == 4 + steps * batch * 2 + steps + steps * 4 + 2 * 5
    for role, v in used.items():
        e = est["by_role"][role]
        assert v["completion_tokens"] <= e["completion_tokens"], role   # caps: an upper bound
        # prompts are the texts as sent (new prompts sized as the starting one); quoted model outputs count at
        # their cap, so the backward and optimizer estimates lean high
        ratio = e["prompt_tokens"] / v["prompt_tokens"]
        lo, hi = (0.75, 1.25) if role in ("forward", "eval") else (0.9, 3.0)
        assert lo <= ratio <= hi, (role, v["prompt_tokens"], e["prompt_tokens"])


def test_tgd_estimate_bounds_a_run_with_screening_and_failures_only(tmp_path, capsys):
    est = _estimate(capsys, ["--steps", "3", "--batch-size", "2"])
    out = tmp_path / "run"
    assert main(["optimize", "--task", "format_count", "--engine", "drytest", "--quiet", *SIZES, "--steps", "3",
                 "--batch-size", "2", "--no-cache", "--out", str(out)]) == 0
    used = _usage(out)
    for role, v in used.items():   # reverted proposals make the optimizer's later answers need repairs
        assert v["calls"] <= est["by_role"][role]["calls_with_repairs"], role
    assert used["forward"]["calls"] == est["by_role"]["forward"]["calls"]   # forward calls are exact
    phases = {p["name"]: p for p in est["phases"]}
    assert phases["screen: new prompt on its batch"]["bound"] == "at most"


@pytest.mark.parametrize("optimizer", ["beam", "pareto", "opro", "demos"])
def test_search_estimate_bounds_the_run(tmp_path, capsys, optimizer):
    est = _estimate(capsys, ["--optimizer", optimizer, "--steps", "2", "--batch-size", "2"])
    out = tmp_path / "run"
    assert main(["optimize", "--task", "format_count", "--engine", "drytest", "--quiet", *SIZES, "--optimizer",
                 optimizer, "--steps", "2", "--batch-size", "2", "--no-cache", "--out", str(out)]) == 0
    used = _usage(out)
    for role, v in used.items():
        assert v["calls"] <= est["by_role"][role]["calls_with_repairs"], (role, v, est["by_role"][role])
        assert v["completion_tokens"] <= est["by_role"][role]["completion_tokens"]
    # the seed on the val split and on the test split always happen
    assert used["eval"]["calls"] >= 4 + 5


def test_dry_run_makes_no_call_and_needs_no_key(capsys, monkeypatch):
    from textopt.testing import LoopbackServer
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with LoopbackServer(lambda body: "never") as srv:
        spec = f"openai:{srv.openai_base_url}#gpt-4o-mini"
        assert main(["optimize", "--task", "format_count", "--engine", spec, "--steps", "2", *SIZES,
                     "--dry-run"]) == 0
        assert srv.requests == []
    text = capsys.readouterr().out
    assert "no LLM call was made" in text and "optimizer: new prompt (TGD)" in text
    assert "total" in text and "unknown" not in text.split("total")[1].splitlines()[0]   # gpt-4o-mini is priced


def test_an_unpriced_model_says_unknown_price_never_zero(capsys):
    est = estimate_optimize("format_count", engine="openai:http://127.0.0.1:9/v1#my-vllm-model", steps=1,
                            val_size=3, test_size=3)
    assert est.usd() is None and est.unpriced() == ["openai:http://127.0.0.1:9/v1#my-vllm-model"]
    assert "unknown price: openai:http://127.0.0.1:9/v1#my-vllm-model" in est.table()
    assert estimate_optimize("format_count", engine="local", steps=1, val_size=3, test_size=3).usd() == 0.0


def test_priced_dollars_follow_the_price_table():
    est = estimate_optimize("format_count", engine="openai:gpt-4o-mini", steps=2, val_size=3, test_size=3)
    t = est.total()
    assert t["usd"] == pytest.approx((t["prompt_tokens"] * 0.15 + t["completion_tokens"] * 0.60) / 1e6)
    mixed = estimate_optimize("format_count", engine="openai:gpt-4o-mini", optimizer_engine="openai:gpt-4o",
                              steps=2, val_size=3, test_size=3)
    assert mixed.usd() > t["usd"]


def test_bad_settings_are_one_textopt_error(capsys):
    with pytest.raises(DataError, match="unknown optimizer"):
        estimate_optimize("format_count", optimizer="sgd")
    assert main(["optimize", "--task", "format_count", "--json"]) == 2
    assert "--json prints the --dry-run estimate" in capsys.readouterr().err
