"""Equation discovery: an LLM edits the equation skeleton (text) while Adam fits its constants (tensor), in ONE
graph and ONE backward per step.

    python examples/equation_discovery.py --engine scripted          # offline: a rule-based stand-in for the LLM
    python examples/equation_discovery.py --engine openai:gpt-4o-mini

* text parameter: a Python expression over ``x`` with constants ``c0..c7`` (e.g. ``c0 * x + c1``);
* tensor parameter: ``theta`` (8 constants), fitted by Adam through torch autograd;
* the skeleton is parsed by ``textopt.numeric.compile_expression`` (an AST whitelist evaluated with torch ops —
  never ``eval`` of model text), so it is differentiable w.r.t. the constants;
* ``loss.backward()``: the hybrid pre-pass hands the fit node d loss / d prediction (the residual direction), the
  node writes text feedback on the skeleton from the residual pattern (what the misfit correlates with, where it is
  largest, how often it changes sign); then one torch backward gives theta its gradient;
* ``MixedOptimizer``: Adam every step; TGD on the skeleton once per round (after the constants are fitted).
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import textopt as tx  # noqa: E402
from textopt import numeric as N  # noqa: E402
from textopt.engines import ScriptedEngine, get_engine  # noqa: E402
from textopt.errors import ExpressionError, OptimizerStepError  # noqa: E402
from textopt.function import Function  # noqa: E402
from textopt.optim.mixed import MixedOptimizer  # noqa: E402

MAX_CONSTANTS = 8
SKELETON_ROLE = ("equation skeleton: one Python expression over x using constants c0..c7 (fitted numerically) "
                 "and the functions sin, cos, exp, log, sqrt, abs, tanh")
CONSTRAINTS = ["The value must be ONE Python expression over x, e.g. 'c0 * sin(c1 * x) + c2'. No 'y =', no code.",
               "Use only x, constants c0..c7, numbers, + - * / **, and sin cos exp log sqrt abs tanh."]
RESIDUAL_FEEDBACK = (
    "After fitting the constants, the skeleton `{skeleton}` leaves an RMS misfit of {rms:.4g} (target RMS "
    "{scale:.4g}). The part the skeleton is missing correlates most with {top} over x in [{lo:.3g}, {hi:.3g}]; it "
    "changes sign {flips} times ({shape}). The largest misfit is near x = {xw:.3g}, where the prediction is too "
    "{side} by {size:.3g}. Change the skeleton so it can express that missing structure; keep it short."
)
BASES = {"x": lambda x: x, "x**2": lambda x: x ** 2, "exp(-x)": lambda x: torch.exp(-x), "log(x)": torch.log,
         "1/x": lambda x: 1 / x}
for _f in (0.5, 1.0, 1.5, 2.0, 3.0):
    BASES[f"sin({_f:g}*x)"] = lambda x, f=_f: torch.sin(f * x)
    BASES[f"cos({_f:g}*x)"] = lambda x, f=_f: torch.cos(f * x)


def residual_report(skeleton: str, x: torch.Tensor, want: torch.Tensor, pred: torch.Tensor) -> dict:
    """``want``: how each prediction should move (-d loss / d prediction, i.e. the residual direction)."""
    w = want - want.mean()
    corr = {}
    for name, f in BASES.items():
        b = f(x)
        b = b - b.mean()
        denom = float(w.norm() * b.norm())
        corr[name] = abs(float((w * b).sum()) / denom) if denom > 0 else 0.0
    ranked = sorted(corr.items(), key=lambda kv: -kv[1])
    signs = torch.sign(want)
    flips = int((signs[1:] * signs[:-1] < 0).sum())
    i = int(want.abs().argmax())
    return {"skeleton": skeleton, "rms": float(want.pow(2).mean().sqrt()), "ranked": ranked, "flips": flips,
            "shape": "oscillating" if flips >= 4 else ("one trend" if flips <= 1 else "a few bends"),
            "xw": float(x[i]), "side": "high" if want[i] < 0 else "low", "size": float(want[i].abs()),
            "lo": float(x.min()), "hi": float(x.max())}


class FitFn(Function):
    """pred = skeleton(x; theta). Hybrid: theta goes through torch; the skeleton gets residual-pattern feedback."""

    hybrid = True
    needs_output_grad = True
    name = "equation_fit"

    def __init__(self, x: torch.Tensor, scale: float, n: int):
        self.x, self.scale, self.n = x, scale, n
        self.last_report: dict | None = None

    async def backward(self, ctx, node, feedback, targets):
        g = ctx.output_grad(node.output)
        out = []
        for t in targets:
            if t.is_text and g is not None:
                want = -g * self.n / 2  # MSE: d loss / d pred = 2 (pred - y) / n  ->  y - pred
                rep = residual_report(t.value, self.x, want, node.output.value.detach())
                self.last_report = rep
                top = ", ".join(f"{k} (|r| = {v:.2f})" for k, v in rep["ranked"][:2])
                out.append(RESIDUAL_FEEDBACK.format(top=top, scale=self.scale, **{k: v for k, v in rep.items()
                                                                                  if k != "ranked"}))
            else:
                out.append(None)
        return out


class EquationModel(tx.nn.Module):
    def __init__(self, skeleton: str, x: torch.Tensor, y: torch.Tensor):
        super().__init__()
        self.skeleton = tx.Variable(skeleton, role=SKELETON_ROLE, requires_grad=True, name="skeleton")
        self.theta = N.parameter(torch.ones(MAX_CONSTANTS), "constants c0..c7 of the equation", name="theta")
        self.x, self.y = x, y
        self.fn = FitFn(x, float(y.pow(2).mean().sqrt()), len(x))

    def forward(self) -> tx.Variable:
        expr = N.compile_expression(self.skeleton.value, ("x",), MAX_CONSTANTS)
        pred = expr(self.theta.value, x=self.x)
        pred_v = self.fn.attach([self.skeleton, self.theta], pred, "predictions of the equation", name=self.fn.name)
        return N.apply(lambda p, y: torch.mean((p - y) ** 2), pred_v, self.y, role="mean squared error")


def scripted_engine(model: EquationModel) -> ScriptedEngine:
    """Offline stand-in for the LLM: adds a term for the basis the residual feedback names first."""
    def respond(req):
        rep = model.fn.last_report
        current = model.skeleton.value
        used = [int(i) for i in re.findall(r"c(\d+)", current)]
        j = max(used) + 1 if used else 0
        name = next((k for k, _ in (rep["ranked"] if rep else []) if k[:3] not in current), "x")
        if name[:3] in ("sin", "cos"):  # a frequency literal sets the scale; c{j+1} (starting at 1) refines it
            term = f"c{j} * {name[:3]}(c{j + 1} * {name[4:-3]} * x)"
        elif name == "exp(-x)":
            term = f"c{j} * exp(-c{j + 1} * x)"
        else:
            term = f"c{j} * {name}"
        return f"<NEW_VALUE>{current} + {term}</NEW_VALUE>"
    return ScriptedEngine(respond)


def run(engine_spec: str = "scripted", rounds: int = 3, fit_steps: int = 200, lr: float = 0.1, seed: int = 0,
        start: str = "c0 * x + c1", verbose: bool = True) -> dict:
    torch.manual_seed(seed)
    x = torch.linspace(0.1, 5.0, 200)
    y = 2.5 * torch.sin(1.3 * x) + 0.8 * x + 0.01 * torch.randn(200)
    model = EquationModel(start, x, y)
    engine = scripted_engine(model) if engine_spec == "scripted" else get_engine(engine_spec)
    opt = MixedOptimizer(model.parameters(), text="tgd", tensor="adam", tensor_options={"lr": lr},
                         text_options={"engine": engine, "constraints": CONSTRAINTS})
    history = []
    best = (math.inf, model.skeleton.value, model.theta.value.detach().clone())
    for r in range(rounds):
        for i in range(fit_steps):
            opt.zero_grad()
            loss = model()
            loss.backward(engine=engine)
            last = i == fit_steps - 1
            mse = float(loss.value.detach())
            if last:
                history.append({"round": r, "skeleton": model.skeleton.value, "mse": mse,
                                "feedback": model.skeleton.grad_text()})
                if mse < best[0]:
                    best = (mse, model.skeleton.value, model.theta.value.detach().clone())
                if verbose:
                    print(f"round {r}: mse {mse:.5f}  skeleton: {model.skeleton.value}")
                    print("  feedback:", model.skeleton.grad_text()[:300].replace("\n", " "))
            previous = model.skeleton.value
            try:
                opt.step(text=last and r < rounds - 1)
            except OptimizerStepError as exc:
                if verbose:
                    print("  text step failed, skeleton kept:", str(exc)[:200])
            if model.skeleton.value != previous:
                try:
                    N.compile_expression(model.skeleton.value, ("x",), MAX_CONSTANTS)
                except ExpressionError as exc:
                    if verbose:
                        print(f"  rejected {model.skeleton.value!r}: {exc}")
                    model.skeleton.value = previous
    if verbose:
        print(f"best: mse {best[0]:.5f} with {best[1]}  constants {[round(v, 3) for v in best[2].tolist()]}")
    return {"history": history, "best_mse": best[0], "best_skeleton": best[1], "theta": best[2]}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Equation discovery with text + tensor parameters in one graph")
    ap.add_argument("--engine", default="scripted", help="'scripted' (offline) or an engine spec")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fit-steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=0.1)
    args = ap.parse_args(argv)
    run(args.engine, args.rounds, args.fit_steps, args.lr)


if __name__ == "__main__":
    main()
