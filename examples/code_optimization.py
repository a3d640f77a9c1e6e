"""Code optimization against unit tests: the code is the parameter, the sandboxed test run is the loss.

    python examples/code_optimization.py --engine local --steps 2
    python examples/code_optimization.py --engine anthropic:claude-sonnet-4-5 --steps 4

``nn.CodeTestsLoss`` runs the candidate with the tests in a sandbox (subprocess, time and memory limits, no
network, no inherited secrets); the failures become the gradient of the code; TGD rewrites it.
"""
from __future__ import annotations

import argparse

import textopt as tx

START = '''def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]
'''
TESTS = '''
def test_odd():
    assert median([3, 1, 2]) == 2

def test_even():
    assert median([4, 1, 3, 2]) == 2.5

def test_empty():
    try:
        median([])
    except ValueError:
        return
    raise AssertionError("median([]) must raise ValueError")
'''


def run(engine="local", *, steps=2, code=START, tests=TESTS):
    engine = tx.get_engine(engine)
    var = tx.Variable(code, role="Python source of the function median(xs)", requires_grad=True, name="code")
    loss_fn = tx.nn.CodeTestsLoss(tests=tests, timeout=20.0)
    optimizer = tx.optim.TGD([var], engine=engine, max_tokens=400,
                             constraints=["Return only Python source code, no explanations."])
    history = []
    for step in range(steps + 1):
        loss = loss_fn(var)
        history.append({"step": step, "pass_rate": loss.meta["score"], "code": var.value})
        if loss.meta["score"] == 1.0 or step == steps:
            break
        optimizer.zero_grad()
        loss.backward(engine=engine)
        try:
            optimizer.step()
        except tx.errors.OptimizerStepError as exc:  # the model's rewrite was unusable; the code is unchanged
            history[-1]["error"] = str(exc)[:200]
    best = max(history, key=lambda h: h["pass_rate"])
    return history, best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="local")
    ap.add_argument("--steps", type=int, default=2)
    args = ap.parse_args(argv)
    history, best = run(args.engine, steps=args.steps)
    for h in history:
        print(f"step {h['step']}: pass rate {h['pass_rate']:.2f}" + (f"  ({h['error']})" if "error" in h else ""))
    print(f"best code (pass rate {best['pass_rate']:.2f}):\n{best['code']}")


if __name__ == "__main__":
    main()
