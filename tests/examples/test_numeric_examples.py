"""Smoke tests of the hybrid examples in offline (scripted) mode: they run and both kinds of parameter improve."""
import importlib.util
from pathlib import Path

import torch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_equation_discovery_improves_skeleton_and_constants():
    eq = load("equation_discovery")
    out = eq.run("scripted", rounds=3, fit_steps=60, verbose=False)
    hist = out["history"]
    assert [h["skeleton"] for h in hist][0] == "c0 * x + c1"
    assert len({h["skeleton"] for h in hist}) == 3          # the text parameter changed every round
    assert "correlates most with" in hist[0]["feedback"]       # feedback came from the residual pattern
    assert hist[-1]["mse"] < 0.2 * hist[0]["mse"]              # and the fit got much better
    assert out["theta"].shape == (8,) and not torch.equal(out["theta"], torch.ones(8))


def test_equation_model_refuses_unsafe_skeletons():
    eq = load("equation_discovery")
    model = eq.EquationModel("__import__('os').getcwd()", torch.linspace(0, 1, 5), torch.zeros(5))
    try:
        model()
    except eq.ExpressionError as exc:
        assert "not allowed" in str(exc) or "unknown name" in str(exc)
    else:
        raise AssertionError("an unsafe skeleton was evaluated")


def test_rag_hybrid_trains_adapter_temperature_and_prompt():
    rag = load("rag_hybrid")
    log = rag.run("scripted", epochs=1, verbose=False)
    before, after = log["before"], log["epoch0"]
    assert after["train"]["gold_weight"] > before["train"]["gold_weight"]
    assert after["train"]["top1"] >= before["train"]["top1"]
    assert after["tau"] != 0.1                                  # the temperature received a gradient
    assert after["prompt"] != rag.START_PROMPT and after["train"]["exact"] > before["train"]["exact"]
